//! Whether a request stream ended cleanly or was reset.
//!
//! tonic reports a request stream the client cancelled (an HTTP/2
//! RST_STREAM with CANCEL) as its clean end: `Streaming::message` answers
//! `Ok(None)`, exactly as when the client finished sending. An upload that
//! trusted that would commit the part received before the client gave up,
//! the very thing the seed service did wrong; an import would store part of
//! a file. [`WatchEndLayer`] wraps every request body below tonic and records
//! how it really ended in a [`BodyEnd`] put in the request's extensions,
//! where every handler that commits a client stream (UploadFile, Upload,
//! Write, ImportBars) checks it before committing, and the call log reads it
//! to log a call the client reset as CANCELLED, whatever the handler made
//! of the missing request.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};

const FAILED: u8 = 1;

/// How the request body of a call ended, as far as it has been read.
#[derive(Clone, Debug, Default)]
pub struct BodyEnd(Arc<AtomicU8>);

impl BodyEnd {
    /// True once reading the body failed: the client reset the stream or
    /// the connection broke.
    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Acquire) == FAILED
    }
}

/// A tower layer that gives each request its [`BodyEnd`].
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchEndLayer;

impl<S> tower::Layer<S> for WatchEndLayer {
    type Service = WatchEnd<S>;

    fn layer(&self, inner: S) -> WatchEnd<S> {
        WatchEnd(inner)
    }
}

/// See [`WatchEndLayer`].
#[derive(Clone, Debug)]
pub struct WatchEnd<S>(S);

impl<S, B> tower::Service<http::Request<B>> for WatchEnd<S>
where
    S: tower::Service<http::Request<Watched<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let end = BodyEnd::default();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(end.clone());
        self.0.call(http::Request::from_parts(parts, Watched { inner: body, end }))
    }
}

pin_project_lite::pin_project! {
    /// A request body that records a failure in its [`BodyEnd`].
    pub struct Watched<B> {
        #[pin]
        inner: B,
        end: BodyEnd,
    }
}

impl<B: Body> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Err(_)) = &frame {
            // Before tonic sees the error (and may call it a clean end).
            this.end.0.store(FAILED, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_body_end_has_not_failed() {
        let end = BodyEnd::default();
        assert!(!end.failed());
        end.0.store(FAILED, Ordering::Release);
        assert!(end.clone().failed());
    }
}
