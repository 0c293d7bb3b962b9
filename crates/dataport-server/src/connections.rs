//! The connections: the accept loop, HTTP/2 (and HTTP/1.1 for gRPC-Web) on
//! each connection with hyper, and [`Connection`], the service every request
//! of a connection goes to.
//!
//! tonic's server does the same with more on the way of each request: it
//! clones a boxed copy of the whole stack, boxes the request body, puts the
//! connection's details in the request's extensions and races its own
//! deadline timer against the call layer's. Here a request is handed to the
//! call layer ([`crate::stack`]) with its connection's [`Remote`] beside it,
//! and the call layer hands it to the [`Router`], all behind one shared
//! reference.
//!
//! Every connection is held to [`Limits`]: one that has not sent the
//! HTTP/2 preface within `handshake_timeout` is dropped (a TLS handshake has
//! its own as long); one with no call for `max_connection_idle`, or older
//! than `max_connection_age`, is told to finish (GOAWAY: the calls started
//! go on, new ones go to a new connection; past the age's grace it is
//! closed); past `max_connections`, a new one is closed at once.
//!
//! On the shutdown signal the listener is dropped (the port stops accepting
//! at once) and every connection is told to finish the same way; the caller
//! bounds how long that may take.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dataport_wire::compression::{Compression, Decoded, Out};
use futures_util::task::AtomicWaker;
use futures_util::{Stream, StreamExt as _};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::{oneshot, watch};

use crate::auth::Auth;
use crate::metrics::CallMetrics;
use crate::router::{Routed, Router};
use crate::stack::{self, CallBody, CallFuture};
use crate::tls::{Conn, Peer};
use crate::tonic_fixes::Watched;
use crate::traces::Spans;

/// What a call answers: the routed service's response, watched by the call
/// layer.
pub type Response = http::Response<CallBody<Out<tonic::body::Body>>>;

/// What every connection shares: the call layer's settings and the router.
#[derive(Debug)]
pub struct Shared<B> {
    pub compression: Compression,
    pub auth: Option<Arc<Auth>>,
    pub router: Router<Decoded<Watched<B>>>,
}

/// The other end of a connection, as its calls know it: who it is, and
/// how many of its calls are under way.
#[derive(Clone, Debug)]
pub struct Remote {
    pub peer: Peer,
    pub activity: Arc<Activity>,
}

/// What one [`serve`] has under way and has refused, across its
/// connections: the calls (bound by `max_calls`), the connections, the calls
/// shed and the connections refused; and who else watches its calls.
#[derive(Debug)]
pub struct Load {
    calls: AtomicUsize,
    max: usize,
    connections: AtomicUsize,
    shed: AtomicU64,
    refused: AtomicU64,
    observers: Observers,
}

/// What records every call besides its line, when configured.
#[derive(Debug, Default)]
pub struct Observers {
    pub metrics: Option<Arc<CallMetrics>>,
    pub spans: Option<Arc<Spans>>,
}

/// A reading of a [`Load`], for the metrics.
#[derive(Clone, Copy, Debug)]
pub struct LoadCounts {
    pub calls: u64,
    pub connections: u64,
    pub shed: u64,
    pub refused: u64,
}

impl Load {
    pub fn new(max_calls: usize, observers: Observers) -> Arc<Load> {
        Arc::new(Load {
            calls: AtomicUsize::new(0),
            max: max_calls,
            connections: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            observers,
        })
    }

    pub fn counts(&self) -> LoadCounts {
        LoadCounts {
            calls: self.calls.load(Ordering::Relaxed) as u64,
            connections: self.connections.load(Ordering::Relaxed) as u64,
            shed: self.shed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// A connection counted open in [`Load`] until dropped.
struct Open(Arc<Load>);

impl Open {
    fn counted(load: &Arc<Load>) -> Open {
        load.connections.fetch_add(1, Ordering::AcqRel);
        Open(Arc::clone(load))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many calls of a connection are under way, and since when none is.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    calls: AtomicUsize,
    /// Milliseconds from `opened` to when the last call ended.
    idle_since: AtomicU64,
    load: Arc<Load>,
}

/// A call refused because the server has `max` calls under way.
#[derive(Clone, Copy, Debug)]
pub struct Shed {
    max: usize,
}

impl Shed {
    pub fn status(self) -> tonic::Status {
        tonic::Status::unavailable(format!(
            "the server has {} calls under way (max_calls); try again shortly",
            self.max
        ))
    }
}

impl Activity {
    fn new(load: Arc<Load>) -> Self {
        Activity { opened: Instant::now(), calls: AtomicUsize::new(0), idle_since: AtomicU64::new(0), load }
    }

    /// Counts a call under way, here and across the server, until the guard
    /// is dropped; a `sheddable` one is not counted but shed when the server
    /// already has `max_calls` under way (health's are not: they answer,
    /// shedding or not).
    pub fn call(self: &Arc<Self>, sheddable: bool) -> ActiveCall {
        let load = &self.load;
        let before = load.calls.fetch_add(1, Ordering::AcqRel);
        let counted = !sheddable || before < load.max;
        if counted {
            self.calls.fetch_add(1, Ordering::AcqRel);
        } else {
            load.calls.fetch_sub(1, Ordering::AcqRel);
            load.shed.fetch_add(1, Ordering::Relaxed);
        }
        ActiveCall { activity: Arc::clone(self), counted }
    }

    /// How long no call has been under way; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.calls.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.opened + Duration::from_millis(self.idle_since.load(Ordering::Acquire));
        Some(since.elapsed())
    }
}

/// A call under way on a connection; see [`Activity::call`].
#[derive(Debug)]
pub struct ActiveCall {
    activity: Arc<Activity>,
    counted: bool,
}

impl ActiveCall {
    /// Why the call is refused at once, if it is.
    pub fn shed(&self) -> Option<Shed> {
        (!self.counted).then_some(Shed { max: self.activity.load.max })
    }

    /// The server's call metrics, when it keeps them.
    pub fn metrics(&self) -> Option<&CallMetrics> {
        self.activity.load.observers.metrics.as_deref()
    }

    /// The server's spans, when it exports them.
    pub fn spans(&self) -> Option<&Spans> {
        self.activity.load.observers.spans.as_deref()
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let activity = &self.activity;
        activity.load.calls.fetch_sub(1, Ordering::AcqRel);
        if activity.calls.fetch_sub(1, Ordering::AcqRel) == 1 {
            let since = u64::try_from(activity.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
            activity.idle_since.store(since, Ordering::Release);
        }
    }
}

/// The service of one connection: each request goes through the call layer
/// to the router, knowing the connection's [`Remote`].
#[derive(Debug)]
pub struct Connection<B> {
    shared: Arc<Shared<B>>,
    remote: Remote,
}

impl<B> Connection<B> {
    pub fn new(shared: Arc<Shared<B>>, remote: Remote) -> Self {
        Connection { shared, remote }
    }

    fn serve(&self, request: http::Request<B>) -> CallFuture<Routed> {
        let Shared { compression, auth, router } = &*self.shared;
        stack::begin(compression, auth.as_deref(), Some(&self.remote), request, |request| {
            router.route(request)
        })
    }
}

impl<B> Clone for Connection<B> {
    fn clone(&self) -> Self {
        Connection { shared: Arc::clone(&self.shared), remote: self.remote.clone() }
    }
}

impl<B: Send + 'static> hyper::service::Service<http::Request<B>> for Connection<B> {
    type Response = Response;
    type Error = Infallible;
    type Future = CallFuture<Routed>;

    fn call(&self, request: http::Request<B>) -> Self::Future {
        self.serve(request)
    }
}

/// For tower layers in front of the call layer (gRPC-Web's).
impl<B: Send + 'static> tower::Service<http::Request<B>> for Connection<B> {
    type Response = Response;
    type Error = Infallible;
    type Future = CallFuture<Routed>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.serve(request)
    }
}

/// The HTTP/2 flow-control windows: how much a client may send on one
/// stream, and on one connection, before the server has read it. A 1 GiB
/// upload over loopback runs as fast with these as with 8 and 16 MiB, which
/// held about 12 MB more at the server's peak (bench/run files); beyond
/// loopback, 4 MiB still covers a fast link's round trip.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;
/// The largest HTTP/2 frame a client may send: file chunks of 1 MiB go in
/// one frame each.
const MAX_FRAME: u32 = 1 << 20;
/// The largest header list HTTP/2 decodes: far past what a call may carry
/// ([`stack::MAX_METADATA`]), so that such a call gets a gRPC status
/// rather than HTTP 431. grpc-go's server takes 16 MiB.
const MAX_HEADER_LIST: u32 = 1 << 20;

/// The bounds the connections and their calls are held to; each is the
/// setting of the same name (see the module docs; `max_calls`, which
/// bounds the calls of every connection one `serve` runs, is its [`Load`]'s).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_calls: usize,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    pub max_connection_idle: Option<Duration>,
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_grace: Duration,
    pub max_concurrent_streams: u32,
    pub keepalive_interval: Option<Duration>,
    pub keepalive_timeout: Duration,
}

/// What a client sends first on an HTTP/2 connection: the 24-byte preface
/// and the header of its SETTINGS frame. A gRPC-Web request over HTTP/1.1
/// is longer than that too.
const GREETING: usize = 24 + 9;

/// How each connection speaks: HTTP/2 only, or also HTTP/1.1 (which
/// gRPC-Web over HTTP/1.1 needs).
pub fn http(http1: bool, limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if !http1 {
        builder = builder.http2_only();
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    // hyper's HTTP/1 header read timeout (30 s) needs a timer.
    builder.http1().timer(TokioTimer::new());
    builder
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves every connection of `incoming` with `http`, within `limits`
/// (`load` counts what is under way: its `max_calls` is the bound), each
/// request going to the service `service` makes for its connection's
/// [`Remote`], until `signal`; then stops accepting and returns once every
/// connection has finished the calls it had started.
pub async fn serve<S, ResBody>(
    incoming: impl Stream<Item = io::Result<Conn>>,
    http: auto::Builder<TokioExecutor>,
    limits: Limits,
    load: Arc<Load>,
    service: impl Fn(Remote) -> S,
    signal: impl Future<Output = ()>,
) where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<ResBody>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ResBody: http_body::Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    // Every connection's tasks hold a receiver: the sender's `closed` says
    // when all have ended.
    let (stop, stopped) = watch::channel(false);
    let mut refused = Refusals::default();
    let http = Arc::new(http);
    let mut incoming = Box::pin(incoming);
    let mut signal = std::pin::pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = incoming.next() => accepted,
        };
        let mut conn = match accepted {
            Some(Ok(conn)) => conn,
            Some(Err(e)) => {
                accept_failed(e).await;
                continue;
            }
            None => break,
        };
        let peer = conn.peer();
        if load.connections.load(Ordering::Acquire) >= limits.max_connections {
            load.refused.fetch_add(1, Ordering::Relaxed);
            refused.note(&peer, limits.max_connections);
            continue;
        }
        let open = Open::counted(&load);
        let greet_by = tokio::time::Instant::now() + limits.handshake_timeout;
        let remote = Remote { peer, activity: Arc::new(Activity::new(Arc::clone(&load))) };
        let greeted = conn.watch_greeting(GREETING);
        let activity = Arc::clone(&remote.activity);
        let (http, service, mut stop) = (Arc::clone(&http), service(remote), stopped.clone());
        tokio::spawn(async move {
            // Until its client sends a byte, a connection is this small task:
            // hyper's HTTP/2 state (about 30 KiB of buffers) waits for it, so
            // thousands of silent connections cost little.
            if !first_byte(&conn, greet_by, &mut stop).await {
                return;
            }
            let connection = http.serve_connection(TokioIo::new(conn), service).into_owned();
            Box::pin(drive(connection, greeted, activity, limits, greet_by, stop, open)).await;
        });
    }
    // The port stops accepting now, not once the last call is done.
    drop(incoming);
    stop.send_replace(true);
    drop(stopped);
    stop.closed().await;
}

/// Connections closed at once for `max_connections`, logged at most once a
/// second.
#[derive(Debug, Default)]
struct Refusals {
    last_logged: Option<Instant>,
    since: u64,
}

impl Refusals {
    fn note(&mut self, peer: &Peer, max_connections: usize) {
        self.since += 1;
        if self.last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            tracing::warn!(
                peer = ?peer.addr,
                max_connections,
                refused = self.since,
                "refused new connections: max_connections are open"
            );
            self.last_logged = Some(Instant::now());
            self.since = 0;
        }
    }
}

/// Why a connection is to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    /// No HTTP/2 preface in time: closed at once, nothing was started on it.
    Silent = 1,
    Shutdown,
    Idle,
    Age,
}

/// What a connection's watchdog tells its task: why it is to end (0 for
/// not yet), and the task to wake to hear it.
#[derive(Debug, Default)]
struct Order {
    finish: AtomicU8,
    task: AtomicWaker,
}

impl Order {
    fn give(&self, finish: Finish) {
        self.finish.store(finish as u8, Ordering::Release);
        self.task.wake();
    }

    fn take(&self) -> Option<Finish> {
        let finish = match self.finish.swap(0, Ordering::AcqRel) {
            0 => return None,
            1 => Finish::Silent,
            2 => Finish::Shutdown,
            3 => Finish::Idle,
            _ => Finish::Age,
        };
        Some(finish)
    }
}

pin_project_lite::pin_project! {
    /// A connection that also hears its watchdog's [`Order`]: a poll costs
    /// one atomic load more than the connection's own (the timers are the
    /// watchdog's, polled only when one is due). The task's waker is given
    /// to the watchdog once: a spawned task keeps its waker for its life.
    struct Heeding<C> {
        #[pin]
        connection: C,
        order: Arc<Order>,
        registered: bool,
    }
}

impl<C: Future> Future for Heeding<C> {
    type Output = Result<C::Output, Finish>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !*this.registered {
            this.order.task.register(cx.waker());
            *this.registered = true;
        }
        if let Some(finish) = this.order.take() {
            return Poll::Ready(Err(finish));
        }
        this.connection.poll(cx).map(Ok)
    }
}

/// Waits for the first byte of `conn` until `greet_by`; false (the
/// connection is to be closed) when none came, it failed, or the server is
/// shutting down.
async fn first_byte(conn: &Conn, greet_by: tokio::time::Instant, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        first = tokio::time::timeout_at(greet_by, conn.readable()) => match first {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a connection failed before its first byte");
                false
            }
            Err(_) => {
                tracing::debug!("closing a connection that sent nothing within handshake_timeout");
                false
            }
        },
        _ = stop.changed() => false,
    }
}

/// Runs one connection within `limits` until it ends (see the module docs).
async fn drive<C>(
    connection: C,
    greeted: Arc<AtomicBool>,
    activity: Arc<Activity>,
    limits: Limits,
    greet_by: tokio::time::Instant,
    stop: watch::Receiver<bool>,
    _open: Open,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let order = Arc::new(Order::default());
    // Dropped when this ends, which ends the watchdog.
    let (_alive, ended) = oneshot::channel::<()>();
    tokio::spawn(watchdog(greeted, activity, limits, greet_by, stop.clone(), Arc::clone(&order), ended));
    let mut heeding = std::pin::pin!(Heeding { connection, order, registered: false });
    let finish = match heeding.as_mut().await {
        Ok(ended) => return ended_with(ended),
        Err(finish) => finish,
    };
    let mut connection = heeding.project().connection;
    tracing::debug!(why = ?finish, "ending a connection");
    match finish {
        Finish::Silent => {}
        Finish::Age => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.max_connection_age_grace, connection).await {
                Ok(ended) => ended_with(ended),
                Err(_) => tracing::info!(
                    grace = ?limits.max_connection_age_grace,
                    "closed a connection at max_connection_age with calls still open after the grace"
                ),
            }
        }
        Finish::Shutdown | Finish::Idle => {
            connection.as_mut().graceful_shutdown();
            ended_with(connection.await);
        }
    }
}

/// Waits for the first reason a connection has to end and gives it as its
/// [`Order`]; gives up when the connection ends first (`ended`).
async fn watchdog(
    greeted: Arc<AtomicBool>,
    activity: Arc<Activity>,
    limits: Limits,
    greet_by: tokio::time::Instant,
    mut stop: watch::Receiver<bool>,
    order: Arc<Order>,
    mut ended: oneshot::Receiver<()>,
) {
    // Far enough to be never, near enough not to overflow an Instant.
    const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let handshake = tokio::time::sleep_until(greet_by);
    let age = tokio::time::sleep(limits.max_connection_age.unwrap_or(NEVER));
    let max_idle = limits.max_connection_idle.unwrap_or(NEVER);
    let idle = tokio::time::sleep(max_idle);
    tokio::pin!(handshake, age, idle);
    let mut waiting_greeting = true;
    let finish = loop {
        tokio::select! {
            _ = &mut ended => return,
            () = &mut handshake, if waiting_greeting => {
                if !greeted.load(Ordering::Acquire) {
                    tracing::debug!(timeout = ?limits.handshake_timeout, "closing a connection that sent no HTTP/2 preface in time");
                    break Finish::Silent;
                }
                waiting_greeting = false;
            }
            _ = stop.changed() => break Finish::Shutdown,
            () = &mut age => break Finish::Age,
            () = &mut idle => match activity.idle_for() {
                Some(idle_for) if idle_for >= max_idle => break Finish::Idle,
                Some(idle_for) => idle.as_mut().reset(tokio::time::Instant::now() + (max_idle - idle_for)),
                None => idle.as_mut().reset(tokio::time::Instant::now() + max_idle),
            },
        }
    };
    order.give(finish);
}

fn ended_with<E: std::fmt::Display>(ended: Result<(), E>) {
    // A client that goes away mid-frame is no news to the server.
    if let Err(e) = ended {
        tracing::debug!(error = %e, "a connection ended with an error");
    }
}

/// After a failed accept: one aborted connection is no reason to wait, but
/// out of descriptors or memory, accepting again at once would only spin.
async fn accept_failed(e: io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted => {
            tracing::debug!(error = %e, "accept failed");
        }
        _ => {
            tracing::warn!(error = %e, "accept failed; accepting again in 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
