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

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, HeaderName};

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
    type Response = S::Response;
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

pin_project_lite::pin_project! {
    /// The response future of [`Deadline`].
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        timer: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    }
}

impl<F, ResBody, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let ready @ Poll::Ready(_) = this.inner.poll(cx) {
            return ready;
        }
        let Some((timeout, sleep)) = this.timer else {
            return Poll::Pending;
        };
        ready!(sleep.as_mut().poll(cx));
        let status = tonic::Status::deadline_exceeded(format!(
            "the client's deadline ({timeout:?} after the call began) passed before the reply"
        ));
        Poll::Ready(Ok(status.into_http()))
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

    async fn call(delay: Duration, timeout: Option<&str>) -> (http::Response<tonic::body::Body>, Duration) {
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
