//! A request message over a service's size limit is RESOURCE_EXHAUSTED, as
//! gRPC specifies, with the limit in the message.
//!
//! tonic refuses such a message with OUT_OF_RANGE "Error, decoded message
//! length too large: found N bytes, the limit is: L bytes". This layer
//! rewrites that status where it leaves the server: in the headers of a
//! trailers-only response (unary requests) or in the trailers (streams).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageLimitLayer;

impl<S> tower::Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> MessageLimit<S> {
        MessageLimit { inner }
    }
}

/// See [`MessageLimitLayer`].
#[derive(Clone, Debug)]
pub struct MessageLimit<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for MessageLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: Body,
{
    type Response = http::Response<MessageLimitBody<ResBody>>;
    type Error = S::Error;
    type Future = MessageLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        MessageLimitFuture { inner: self.inner.call(req) }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`MessageLimit`].
    #[derive(Debug)]
    pub struct MessageLimitFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, ResBody, E> Future for MessageLimitFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<MessageLimitBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        let (mut parts, inner) = response.into_parts();
        rewrite(&mut parts.headers);
        Poll::Ready(Ok(http::Response::from_parts(parts, MessageLimitBody { inner })))
    }
}

pin_project_lite::pin_project! {
    /// A response body whose trailers pass through [`rewrite`].
    #[derive(Debug)]
    pub struct MessageLimitBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for MessageLimitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut frame = ready!(self.project().inner.poll_frame(cx));
        if let Some(Ok(f)) = &mut frame
            && let Some(trailers) = f.trailers_mut()
        {
            rewrite(trailers);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

const STATUS: HeaderName = HeaderName::from_static("grpc-status");
const MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Turns tonic's OUT_OF_RANGE for an oversized message into RESOURCE_EXHAUSTED.
fn rewrite(headers: &mut HeaderMap) {
    if headers.get(STATUS).is_none_or(|s| s.as_bytes() != b"11") {
        return;
    }
    let Some(message) = headers.get(MESSAGE).and_then(|m| m.to_str().ok()) else {
        return;
    };
    // "Error, decoded message length too large: found N bytes, the limit is: L bytes",
    // percent-encoded on the wire.
    let decoded = percent_encoding::percent_decode_str(message).decode_utf8_lossy();
    let Some(rest) = decoded.strip_prefix("Error, decoded message length too large: found ") else {
        return;
    };
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    let (Some(found), Some(limit)) = (numbers.next(), numbers.next()) else {
        return;
    };
    let text = format!("the request message is {found} bytes, over this service's limit of {limit} bytes");
    headers.insert(STATUS, HeaderValue::from_static("8"));
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.insert(MESSAGE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(status: &'static str, message: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(STATUS, HeaderValue::from_static(status));
        h.insert(MESSAGE, HeaderValue::from_static(message));
        h
    }

    #[test]
    fn an_oversized_message_becomes_resource_exhausted_with_the_limit() {
        let mut h = headers(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%2070000000%20bytes,%20the%20limit%20is:%2067108864%20bytes",
        );
        rewrite(&mut h);
        assert_eq!(h[STATUS], "8");
        assert_eq!(
            h[MESSAGE],
            "the request message is 70000000 bytes, over this service's limit of 67108864 bytes"
        );
    }

    #[test]
    fn other_statuses_pass_unchanged() {
        for (status, message) in [("11", "start_date is out of range"), ("0", ""), ("3", "Error, decoded")] {
            let mut h = headers(status, message);
            rewrite(&mut h);
            assert_eq!((h[STATUS].to_str().unwrap(), h[MESSAGE].to_str().unwrap()), (status, message));
        }
    }
}
