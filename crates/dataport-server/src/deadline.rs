//! A call whose client deadline passes before its response is answered
//! DEADLINE_EXCEEDED, as gRPC specifies.
//!
//! tonic reads `grpc-timeout` itself, outside every layer of ours, and ends
//! an expired call with CANCELLED "Timeout expired". Clients mostly report
//! their own DEADLINE_EXCEEDED first, but when the server's answer wins the
//! race (a handler still working at the deadline), they saw CANCELLED. This
//! layer sits inside tonic's and sets its own timer from the same header, 1 ms
//! earlier: tokio's timers tick in milliseconds and tonic polls the call
//! before its own timer, so ours always answers first.
//!
//! The deadline covers the whole call, not only its first answer: a reply
//! ready after it (a timer fires late on a busy machine) is not sent, and a
//! response stream still going at the deadline is cut there ([`crate::cut`]),
//! with DEADLINE_EXCEEDED in its trailers, rather than finishing OK for a
//! client that has given up.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use tokio::time::{Instant, Sleep};

use crate::cut::{Cut, CutBody, Reason};

/// How much earlier than the client's deadline this layer answers.
const MARGIN: Duration = Duration::from_millis(1);

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// See [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<CutBody<ResBody>>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let timer = grpc_timeout(req.headers())
            .map(|timeout| (timeout, Box::pin(tokio::time::sleep(timeout.saturating_sub(MARGIN)))));
        DeadlineFuture { inner: self.inner.call(req), timer }
    }
}

/// The client's deadline: how long it gave the call, and a timer that fires
/// [`MARGIN`] before it passes.
type Timer = (Duration, Pin<Box<Sleep>>);

pin_project_lite::pin_project! {
    /// The response future of [`Deadline`].
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        timer: Option<Timer>,
    }
}

impl<F, ResBody, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<http::Response<CutBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            // A reply that comes too late is not sent (a timer can fire late).
            let passed = this.timer.as_ref().is_some_and(|(_, sleep)| sleep.deadline() <= Instant::now());
            if !passed {
                let cut = this.timer.take().map(|(timeout, sleep)| Cut {
                    signal: sleep as Pin<Box<dyn Future<Output = ()> + Send>>,
                    reason: Reason::Deadline(timeout),
                });
                return Poll::Ready(result.map(|response| response.map(|inner| CutBody::new(inner, cut))));
            }
        } else {
            let Some((_, sleep)) = this.timer else {
                return Poll::Pending;
            };
            ready!(sleep.as_mut().poll(cx));
        }
        let timeout = this.timer.as_ref().map_or(Duration::ZERO, |(timeout, _)| *timeout);
        // Trailers-only: the status is in the headers, and the body is empty.
        let response = Reason::Deadline(timeout).status().into_http::<CutBody<ResBody>>();
        Poll::Ready(Ok(response.map(CutBody::ended)))
    }
}

/// The `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n).
/// Anything else is no deadline, as tonic treats it.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Instant;

    use http_body::{Body, Frame};
    use tower::{Layer, Service};

    use super::*;

    /// A service that answers after `delay`.
    #[derive(Clone)]
    struct After(Duration);

    impl Service<http::Request<()>> for After {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let delay = self.0;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(http::Response::new(tonic::body::Body::default()))
            })
        }
    }

    /// A service whose handler blocks its thread for `block`, as a busy
    /// machine can keep a ready timer from firing, and whose response body
    /// sends one frame and then never ends.
    #[derive(Clone)]
    struct Streaming(Duration);

    #[derive(Default)]
    struct Endless {
        sent: bool,
    }

    impl Body for Endless {
        type Data = prost::bytes::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Infallible>>> {
            if std::mem::replace(&mut self.sent, true) {
                return Poll::Pending;
            }
            Poll::Ready(Some(Ok(Frame::data(prost::bytes::Bytes::from_static(b"frame")))))
        }
    }

    impl Service<http::Request<()>> for Streaming {
        type Response = http::Response<Endless>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            std::thread::sleep(self.0);
            std::future::ready(Ok(http::Response::new(Endless::default())))
        }
    }

    fn with_timeout(timeout: &str) -> http::Request<()> {
        http::Request::builder().header("grpc-timeout", timeout).body(()).unwrap()
    }

    #[tokio::test]
    async fn a_response_stream_still_going_at_the_deadline_ends_there_deadline_exceeded() {
        let mut service = DeadlineLayer.layer(Streaming(Duration::ZERO));
        let start = Instant::now();
        let mut body = std::pin::pin!(service.call(with_timeout("40m")).await.unwrap().into_body());
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "frame");
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await.unwrap().unwrap();
        let trailers = frame.into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "4");
        assert!(start.elapsed() >= Duration::from_millis(39), "{:?}", start.elapsed());
        assert!(std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_reply_ready_only_after_the_deadline_is_not_sent() {
        // The handler's reply is ready at 60 ms; the 30 ms timer never got to fire.
        let mut service = DeadlineLayer.layer(Streaming(Duration::from_millis(60)));
        let response = service.call(with_timeout("30m")).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "4");
        assert!(response.into_body().is_end_stream());
    }

    async fn call(
        delay: Duration,
        timeout: Option<&str>,
    ) -> (http::Response<CutBody<tonic::body::Body>>, Duration) {
        let mut service = DeadlineLayer.layer(After(delay));
        let mut request = http::Request::builder();
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", timeout);
        }
        let start = Instant::now();
        let response = service.call(request.body(()).unwrap()).await.unwrap();
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

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("99999999S"), Some(Duration::from_secs(99_999_999)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("0n"), Some(Duration::ZERO));
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
        for bad in ["", "m", "100", "123456789m", "1.5S", "-1S", "10x", "1 S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
