//! The connections: the accept loop, HTTP/2 (and HTTP/1.1 for gRPC-Web) on
//! each connection with hyper, and [`Connection`], the service every request
//! of a connection goes to.
//!
//! tonic's server does the same with more on the way of each request: it
//! clones a boxed copy of the whole stack, boxes the request body, puts the
//! connection's details in the request's extensions and races its own
//! deadline timer against the call layer's. Here a request is handed to the
//! call layer ([`crate::stack`]) with its connection's [`Peer`] beside it,
//! and the call layer hands it to the [`Router`], all behind one shared
//! reference.
//!
//! On the shutdown signal the listener is dropped (the port stops accepting
//! at once) and every connection is told to finish: HTTP/2 sends GOAWAY and
//! serves the calls already started; the caller bounds how long that may take.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dataport_wire::compression::{Compression, Decoded, Out};
use futures_util::{Stream, StreamExt as _};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

use crate::auth::Auth;
use crate::router::{Routed, Router};
use crate::stack::{self, CallBody, CallFuture};
use crate::tls::{Conn, Peer};
use crate::tonic_fixes::Watched;

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

/// The service of one connection: each request goes through the call layer
/// to the router, knowing the connection's [`Peer`].
#[derive(Debug)]
pub struct Connection<B> {
    shared: Arc<Shared<B>>,
    peer: Peer,
}

impl<B> Connection<B> {
    pub fn new(shared: Arc<Shared<B>>, peer: Peer) -> Self {
        Connection { shared, peer }
    }

    fn serve(&self, request: http::Request<B>) -> CallFuture<Routed> {
        let Shared { compression, auth, router } = &*self.shared;
        stack::begin(compression, auth.as_deref(), Some(&self.peer), request, |request| router.route(request))
    }
}

impl<B> Clone for Connection<B> {
    fn clone(&self) -> Self {
        Connection { shared: Arc::clone(&self.shared), peer: self.peer.clone() }
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

/// How each connection speaks: HTTP/2 only, or also HTTP/1.1 (which
/// gRPC-Web over HTTP/1.1 needs).
pub fn http(http1: bool) -> auto::Builder<TokioExecutor> {
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
        // No bound on the streams of a connection yet, as tonic's server had.
        .max_concurrent_streams(None);
    // hyper's HTTP/1 header read timeout (30 s) needs a timer.
    builder.http1().timer(TokioTimer::new());
    builder
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves every connection of `incoming` with `http`, each request going to
/// the service `service` makes for its connection's [`Peer`], until `signal`;
/// then stops accepting and returns once every connection has finished the
/// calls it had started.
pub async fn serve<S, ResBody>(
    incoming: impl Stream<Item = io::Result<Conn>>,
    http: auto::Builder<TokioExecutor>,
    service: impl Fn(Peer) -> S,
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
    let graceful = GracefulShutdown::new();
    let mut incoming = Box::pin(incoming);
    let mut signal = std::pin::pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = incoming.next() => accepted,
        };
        let conn = match accepted {
            Some(Ok(conn)) => conn,
            Some(Err(e)) => {
                accept_failed(e).await;
                continue;
            }
            None => break,
        };
        let peer = conn.peer();
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(conn), service(peer)).into_owned());
        tokio::spawn(async move {
            // A client that goes away mid-frame is no news to the server.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    // The port stops accepting now, not once the last call is done.
    drop(incoming);
    graceful.shutdown().await;
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
