//! The one layer every call goes through, between its connection
//! ([`crate::connections`]) and the router: [`begin`], then one future
//! ([`CallFuture`]) and one response body ([`CallBody`]) a call, for every
//! concern, so that each costs only its own work. In order:
//!
//! - the request's body is watched ([`watch_end`]): its
//!   [`BodyEnd`](crate::tonic_fixes::BodyEnd) says whether the client reset it;
//! - with `auth_tokens`, the caller is known and allowed ([`Auth::check`]), or
//!   the call is refused UNAUTHENTICATED or PERMISSION_DENIED;
//! - its metadata is no larger than [`MAX_METADATA`], or the call is refused
//!   RESOURCE_EXHAUSTED naming its size and its largest entry;
//! - its `grpc-encoding` is undone before any service (dataport-wire's
//!   [`Compression`], within each service's message limit), and an encoding
//!   not accepted is refused UNIMPLEMENTED; every response advertises
//!   `grpc-accept-encoding` and is compressed when configured;
//! - the client's deadline ([`Deadline`]): a call still running at it is
//!   answered DEADLINE_EXCEEDED; a reply ready only after it (a timer can
//!   fire late on a busy machine) is not sent; a response stream still going
//!   at it ends there, DEADLINE_EXCEEDED in its trailers, rather than
//!   finishing OK for a client that has given up;
//! - the drain, for the responses of services wrapped in [`EndOnDrain`]
//!   (which put the [`Drain`] in the response's extensions): their stream
//!   ends with UNAVAILABLE once the drain starts, after what the handler
//!   already has;
//! - the status: wherever the `grpc-status` leaves the server (the headers
//!   of a trailers-only response, or the trailers), [`on_status`], the one
//!   place that reads it, rewrites what [`corrected`] corrects and writes
//!   the call's line ([`Call`]).
//!
//! Per call, the layer allocates only the request's `BodyEnd`, and what a
//! call needs beyond the common case (a timer for the deadline or the drain,
//! a decompressor, a refusal's status) out of line, so that the future and
//! the bodies of the common call stay small: tonic moves and boxes them.
//!
//! [`watch_end`]: crate::tonic_fixes::watch_end
//! [`corrected`]: crate::tonic_fixes::corrected
//! [`EndOnDrain`]: crate::drain::EndOnDrain

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use dataport_wire::compression::{self, Compression, Decoded, Out, Respond};
use futures_util::future::OptionFuture;
use http::{HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};
use prost::bytes::Bytes;
use tonic::{Code, Status};

use crate::auth::Auth;
use crate::connections::{ActiveCall, Remote};
use crate::drain::Drain;
use crate::logging::{Call, TraceParent};
use crate::tonic_fixes::{self, Deadline, Watched};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most metadata a call may carry, counted as HTTP/2 counts a header
/// list (each entry's name and value and 32 bytes). HTTP/2 itself takes
/// more ([`crate::connections`]' `MAX_HEADER_LIST`), so that a call past
/// this is answered with a status that says why, as grpcio's server does,
/// not with HTTP 431 (which clients report as UNKNOWN) or a closed
/// connection.
pub const MAX_METADATA: usize = 64 << 10;

/// What one pass over a request's headers finds: their size as HTTP/2
/// counts it, and the headers the layer reads, if present. Most calls carry
/// none of them, and a lookup that misses still hashes the name.
#[derive(Default)]
struct Scan {
    size: usize,
    timeout: bool,
    traceparent: bool,
    encoding: Option<http::HeaderValue>,
}

/// An entry's size in a header list, as HTTP/2 counts it.
fn entry_size((name, value): (&HeaderName, &http::HeaderValue)) -> usize {
    name.as_str().len() + value.len() + 32
}

impl Scan {
    fn of(headers: &HeaderMap) -> Scan {
        let mut scan = Scan::default();
        for entry in headers {
            scan.size += entry_size(entry);
            match entry.0.as_str() {
                "grpc-timeout" => scan.timeout = true,
                "traceparent" => scan.traceparent = true,
                "grpc-encoding" => scan.encoding = Some(entry.1.clone()),
                _ => {}
            }
        }
        scan
    }

    /// Whether the headers are within [`MAX_METADATA`].
    fn fits(&self, headers: &HeaderMap) -> Result<(), Status> {
        if self.size <= MAX_METADATA {
            return Ok(());
        }
        let largest = headers.iter().max_by_key(|&e| entry_size(e)).map(|(name, value)| (name, value.len()));
        let (name, len) = largest.unwrap_or((&http::header::CONTENT_TYPE, 0));
        Err(Status::resource_exhausted(format!(
            "the call's metadata is {} bytes, more than the server's limit of {MAX_METADATA}; \
             its largest entry is {name:?} ({len} bytes)",
            self.size
        )))
    }
}

/// Starts a call of `req`, from the connection of `remote`: everything the
/// module docs list up to handing the request to `route`, the service; the
/// future it returns does the rest.
pub fn begin<B, F>(
    compression: &Compression,
    auth: Option<&Auth>,
    remote: Option<&Remote>,
    req: http::Request<B>,
    route: impl FnOnce(http::Request<Decoded<Watched<B>>>) -> F,
) -> CallFuture<F> {
    let (mut parts, body) = req.into_parts();
    let (body, end) = tonic_fixes::watch_end(&mut parts, body);
    let need = crate::auth::need(parts.uri.path());
    let peer = remote.map(|r| &r.peer);
    let active = remote.map(|r| r.activity.call(need != Some(crate::auth::Need::Open)));
    let (caller, allowed) = match (active.as_ref().and_then(ActiveCall::shed), auth) {
        (Some(shed), _) => (None, Err(shed.status())),
        (None, None) => (None, Ok(())),
        (None, Some(auth)) => auth.check(&parts, peer, need),
    };
    let scan = Scan::of(&parts.headers);
    let parent = if scan.traceparent { TraceParent::of(&parts.headers) } else { None };
    let call = Call::start(&mut parts, peer, active, end, need, caller, parent);
    let deadline = if scan.timeout { Deadline::of(&parts.headers) } else { None };
    let decoded = allowed
        .and_then(|()| scan.fits(&parts.headers))
        .and_then(|()| compression.request(&mut parts, scan.encoding.as_ref(), body));
    let (inner, respond, refused) = match decoded {
        Ok((body, respond)) => (Some(route(http::Request::from_parts(parts, body))), respond, None),
        Err(status) => (None, Respond::default(), Some(Box::new(status))),
    };
    CallFuture { inner: inner.into(), call: Some(call), deadline, respond, refused }
}

pin_project_lite::pin_project! {
    /// The response future of [`Calls`].
    #[derive(Debug)]
    pub struct CallFuture<F> {
        // None: the call was refused before any service saw it.
        #[pin]
        inner: OptionFuture<F>,
        call: Option<Call>,
        deadline: Option<Deadline>,
        respond: Respond,
        refused: Option<Box<Status>>,
    }
}

impl<F, B, E> Future for CallFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<http::Response<CallBody<Out<B>>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let late = match this.inner.poll(cx) {
            Poll::Ready(Some(result)) => match this.deadline.take() {
                Some(deadline) if deadline.passed() => deadline.status(),
                deadline => return Poll::Ready(respond(result, this.call.take(), deadline, *this.respond)),
            },
            Poll::Ready(None) => match this.refused.take() {
                Some(status) => *status,
                None => Status::internal("the call was polled after it ended"),
            },
            Poll::Pending => {
                let Some(deadline) = this.deadline else {
                    return Poll::Pending;
                };
                ready!(deadline.poll_fired(cx));
                deadline.status()
            }
        };
        finish(this.call, late.code(), late.message());
        // Trailers-only: the status is in the headers, and the body is empty.
        let mut response = late.into_http::<Out<B>>();
        compression::advertise(response.headers_mut());
        Poll::Ready(Ok(response.map(CallBody::ended)))
    }
}

/// The response the service gave, compressed as the call asked and its body
/// ready to be watched.
fn respond<B, E>(
    result: Result<http::Response<B>, E>,
    mut call: Option<Call>,
    deadline: Option<Deadline>,
    compress: Respond,
) -> Result<http::Response<CallBody<Out<B>>>, E>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            finish(&mut call, Code::Internal, "the service failed before answering");
            return Err(e);
        }
    };
    let (mut parts, inner) = response.into_parts();
    let drain = parts.extensions.remove::<Drain>();
    let inner = Compression::response(compress, &mut parts, inner);
    if inner.is_end_stream() {
        // Only a trailers-only response (an empty body) carries its status in
        // the headers, and tonic drops such a body unread.
        on_status(&mut call, &mut parts.headers);
        finish(&mut call, Code::Unknown, "the response ended without a grpc-status");
        return Ok(http::Response::from_parts(parts, CallBody::ended(inner)));
    }
    let body = CallBody {
        inner,
        call,
        deadline,
        drain: drain.map(|drain| Box::pin(drain.signaled()) as Signal),
        ended: false,
    };
    Ok(http::Response::from_parts(parts, body))
}

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

pin_project_lite::pin_project! {
    /// A response body that passes its trailers through [`on_status`], and
    /// that the deadline or the drain can end early.
    pub struct CallBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
        deadline: Option<Deadline>,
        drain: Option<Signal>,
        ended: bool,
    }
}

impl<B> CallBody<B> {
    /// A body with nothing more in it: its status went in the headers.
    fn ended(inner: B) -> Self {
        CallBody { inner, call: None, deadline: None, drain: None, ended: true }
    }
}

impl<B: Body<Data: AsRef<[u8]>>> Body for CallBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        // Past the deadline nothing more is sent, not even frames the handler
        // has ready, so no call the client has given up on ends OK.
        let fired = this.deadline.as_mut().is_some_and(|deadline| deadline.poll_fired(cx).is_ready());
        let cut = match this.deadline {
            Some(deadline) if fired => deadline.status(),
            _ => match this.inner.poll_frame(cx) {
                Poll::Ready(mut frame) => {
                    watch(this.call, &mut frame);
                    return Poll::Ready(frame);
                }
                // The drain hands over what the handler already has first.
                Poll::Pending => {
                    let drained = this.drain.as_mut().is_some_and(|drain| drain.as_mut().poll(cx).is_ready());
                    if !drained {
                        return Poll::Pending;
                    }
                    Drain::status()
                }
            },
        };
        // The stream ends here; the inner body is dropped with the response.
        *this.ended = true;
        finish(this.call, cut.code(), cut.message());
        let mut trailers = HeaderMap::new();
        // A status's headers (grpc-status, grpc-message) are valid trailers.
        let _ = cut.add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> std::fmt::Debug for CallBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallBody")
            .field("call", &self.call)
            .field("deadline", &self.deadline)
            .field("drains", &self.drain.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Finishes the call from a frame of its response body.
fn watch<D: AsRef<[u8]>, E>(call: &mut Option<Call>, frame: &mut Option<Result<Frame<D>, E>>) {
    match frame {
        Some(Ok(frame)) => {
            if let Some(trailers) = frame.trailers_mut() {
                on_status(call, trailers);
            } else if let (Some(data), Some(call)) = (frame.data_ref(), call) {
                call.sent(data.as_ref());
            }
        }
        Some(Err(_)) => finish(call, Code::Internal, "the response body failed"),
        None => finish(call, Code::Unknown, "the response ended without a grpc-status"),
    }
}

/// The hook every status from a service passes on its way out (`headers`:
/// the trailers, or the headers of a trailers-only response): the one place
/// that reads `grpc-status`. It rewrites what Dataport corrects and finishes
/// the call; headers without a status are left alone.
fn on_status(call: &mut Option<Call>, headers: &mut HeaderMap) {
    const STATUS: HeaderName = HeaderName::from_static("grpc-status");
    const MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
    match headers.get(STATUS) {
        None => {}
        // Most calls: nothing to read further, nothing to allocate.
        Some(code) if code.as_bytes() == b"0" => finish(call, Code::Ok, ""),
        Some(_) => {
            let Some(mut status) = Status::from_header_map(headers) else {
                return;
            };
            if let Some(ours) = tonic_fixes::corrected(&status) {
                headers.remove(MESSAGE);
                // Our own words: plain ASCII, always a valid header value.
                let _ = ours.add_header(headers);
                status = ours;
            }
            finish(call, status.code(), status.message());
        }
    }
}

fn finish(call: &mut Option<Call>, code: Code, message: &str) {
    if let Some(call) = call.take() {
        call.finish(code, message);
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::{Duration, Instant};

    use http_body_util::BodyExt as _;
    use tower::Service;

    use super::*;
    use crate::drain::EndOnDrain;

    /// A service that answers after `delay`.
    fn after<R>(delay: Duration) -> impl Service<R, Response = Response, Error = Infallible> {
        tower::service_fn(move |_| async move {
            tokio::time::sleep(delay).await;
            Ok(http::Response::new(tonic::body::Body::default()))
        })
    }

    /// A service whose handler blocks its thread for `block`, as a busy
    /// machine can keep a ready timer from firing, and whose response body
    /// sends one frame and then never ends.
    fn streaming<R>(
        block: Duration,
    ) -> impl Service<R, Response = Response, Error = Infallible, Future: Send + 'static> {
        tower::service_fn(move |_| {
            std::thread::sleep(block);
            use tokio_stream::StreamExt as _;
            let frame = Ok::<_, Status>(Frame::data(Bytes::from_static(b"frame")));
            let frames = tokio_stream::once(frame).chain(tokio_stream::pending());
            std::future::ready(Ok(http::Response::new(tonic::body::Body::new(
                http_body_util::StreamBody::new(frames),
            ))))
        })
    }

    type Response = http::Response<tonic::body::Body>;
    type Empty = http_body_util::Empty<Bytes>;

    /// The call layer in front of `inner`, as the server has it (compressing
    /// no response), as a service.
    struct Calls<S> {
        inner: S,
        compression: Compression,
    }

    impl<S, B, ResBody> Service<http::Request<B>> for Calls<S>
    where
        S: Service<http::Request<Decoded<Watched<B>>>, Response = http::Response<ResBody>>,
        ResBody: Body<Data = Bytes>,
        ResBody::Error: Into<BoxError>,
    {
        type Response = http::Response<CallBody<Out<ResBody>>>;
        type Error = S::Error;
        type Future = CallFuture<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, req: http::Request<B>) -> Self::Future {
            let Calls { inner, compression } = self;
            begin(compression, None, None, req, |req| inner.call(req))
        }
    }

    fn layered<S>(inner: S) -> Calls<S> {
        let limits = dataport_wire::compression::Limits { default: 1 << 20, services: Vec::new() };
        Calls { inner, compression: Compression::new(limits, None, &[]) }
    }

    fn with_timeout(timeout: &str) -> http::Request<Empty> {
        http::Request::builder().header("grpc-timeout", timeout).body(Empty::default()).unwrap()
    }

    #[tokio::test]
    async fn a_response_stream_still_going_at_the_deadline_ends_there_deadline_exceeded() {
        let mut service = layered(streaming(Duration::ZERO));
        let start = Instant::now();
        let mut body = Box::pin(service.call(with_timeout("40m")).await.unwrap().into_body());
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "frame");
        let trailers = body.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "4");
        assert!(start.elapsed() >= Duration::from_millis(39), "{:?}", start.elapsed());
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    /// Every call's future and response body carry its `Call`, and hyper
    /// moves them and allocates a task for each: a few bytes more in them
    /// measured about 1% of SayHello (callgrind, instructions a call).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_call_stays_small() {
        assert!(std::mem::size_of::<Call>() <= 168, "{}", std::mem::size_of::<Call>());
    }

    #[tokio::test]
    async fn a_reply_ready_only_after_the_deadline_is_not_sent() {
        // The handler's reply is ready at 60 ms; the 30 ms timer never got to fire.
        let mut service = layered(streaming(Duration::from_millis(60)));
        let response = service.call(with_timeout("30m")).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "4");
        assert!(response.into_body().is_end_stream());
    }

    async fn call(
        delay: Duration,
        timeout: Option<&str>,
    ) -> (http::Response<CallBody<Out<tonic::body::Body>>>, Duration) {
        let mut service = layered(after(delay));
        let mut request = http::Request::builder();
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", timeout);
        }
        let start = Instant::now();
        let response = service.call(request.body(Empty::default()).unwrap()).await.unwrap();
        (response, start.elapsed())
    }

    #[tokio::test]
    async fn a_call_still_running_at_its_deadline_is_deadline_exceeded() {
        let (response, elapsed) = call(Duration::from_secs(60), Some("30m")).await;
        assert_eq!(response.headers()["grpc-status"], "4");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("deadline"), "{message}");
        assert!(elapsed >= Duration::from_millis(29) && elapsed < Duration::from_secs(30), "{elapsed:?}");
    }

    #[tokio::test]
    async fn calls_that_answer_in_time_or_have_no_deadline_are_left_alone() {
        let (response, _) = call(Duration::from_millis(1), Some("10S")).await;
        assert!(response.headers().get("grpc-status").is_none());
        let (response, elapsed) = call(Duration::from_millis(50), None).await;
        assert!(response.headers().get("grpc-status").is_none());
        assert!(elapsed >= Duration::from_millis(50));
    }

    /// A service answering one data frame and then `trailers`, or, when
    /// `trailers_only`, those in the headers of an empty response.
    fn answers<R>(
        trailers: HeaderMap,
        trailers_only: bool,
    ) -> impl Service<R, Response = Response, Error = Infallible> {
        tower::service_fn(move |_| {
            let response = if trailers_only {
                let mut response = http::Response::new(tonic::body::Body::empty());
                response.headers_mut().extend(trailers.clone());
                response
            } else {
                let frames = [Frame::data(Bytes::from_static(b"data")), Frame::trailers(trailers.clone())];
                let stream = tokio_stream::iter(frames.map(Ok::<_, Status>));
                http::Response::new(tonic::body::Body::new(http_body_util::StreamBody::new(stream)))
            };
            std::future::ready(Ok(response))
        })
    }

    /// The status headers a client gets from a service that answers `status`.
    async fn status_out(status: Status, trailers_only: bool) -> HeaderMap {
        let mut trailers = HeaderMap::new();
        status.add_header(&mut trailers).unwrap();
        let mut service = layered(answers(trailers, trailers_only));
        let response = service.call(http::Request::new(Empty::default())).await.unwrap();
        if trailers_only {
            assert!(response.body().is_end_stream());
            // Every response advertises the encodings; the rest is the status.
            let mut headers = response.headers().clone();
            assert_eq!(headers.remove("grpc-accept-encoding").unwrap(), "gzip,deflate,zstd");
            return headers;
        }
        let collected = Box::pin(response.into_body()).collect().await.unwrap();
        collected.trailers().cloned().expect("trailers")
    }

    #[tokio::test]
    async fn an_oversized_message_leaves_resource_exhausted_in_headers_or_trailers() {
        let tonics =
            "Error, decoded message length too large: found 70000000 bytes, the limit is: 67108864 bytes";
        for trailers_only in [true, false] {
            let out = status_out(Status::out_of_range(tonics), trailers_only).await;
            let status = Status::from_header_map(&out).unwrap();
            assert_eq!(status.code(), Code::ResourceExhausted);
            assert_eq!(
                status.message(),
                "the request message is 70000000 bytes, over this service's limit of 67108864 bytes"
            );
        }
    }

    #[tokio::test]
    async fn other_statuses_leave_unchanged() {
        for trailers_only in [true, false] {
            for status in [
                Status::out_of_range("start_date is out of range"),
                Status::not_found("entity \"ghost\" has never been published"),
                Status::new(Code::Ok, ""),
            ] {
                let mut expected = HeaderMap::new();
                status.add_header(&mut expected).unwrap();
                assert_eq!(status_out(status, trailers_only).await, expected);
            }
        }
    }

    async fn body_of<S, B>(mut service: S) -> Pin<Box<B>>
    where
        S: Service<http::Request<Empty>, Response = http::Response<B>, Error = Infallible>,
    {
        Box::pin(service.call(http::Request::new(Empty::default())).await.unwrap().into_body())
    }

    #[tokio::test]
    async fn a_stream_of_a_service_that_ends_on_drain_ends_unavailable_after_what_is_ready() {
        let drain = Drain::default();
        let mut other = body_of(layered(streaming(Duration::ZERO))).await;
        let mut marked = body_of(layered(EndOnDrain::new(streaming(Duration::ZERO), drain.clone()))).await;
        drain.start();
        // The frame the handler had ready goes first, then UNAVAILABLE.
        assert_eq!(marked.frame().await.unwrap().unwrap().into_data().unwrap(), "frame");
        let trailers = marked.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "14");
        assert!(marked.frame().await.is_none());
        // A service that does not end on drain goes on.
        assert_eq!(other.frame().await.unwrap().unwrap().into_data().unwrap(), "frame");
        assert!(tokio::time::timeout(Duration::from_millis(50), other.frame()).await.is_err());
    }
}
