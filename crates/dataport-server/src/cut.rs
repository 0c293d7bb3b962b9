//! Response bodies ended early: once a signal fires, the body ends with a
//! status in its trailers instead of the rest of its stream. A deadline
//! ([`crate::deadline`]) and the drain ([`crate::drain`]) cut calls this way.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// Why a body is cut, and so its status and whether frames the handler has
/// ready still go first.
#[derive(Clone, Copy, Debug)]
pub enum Reason {
    /// The client's deadline (the time it gave the call) passed: nothing
    /// more is sent, not even frames already ready, so no call the client
    /// has given up on ends OK.
    Deadline(Duration),
    /// The server drains: what the handler already has is handed over first.
    Drain,
}

impl Reason {
    pub fn status(self) -> tonic::Status {
        match self {
            Reason::Deadline(timeout) => tonic::Status::deadline_exceeded(format!(
                "the client's deadline ({timeout:?} after the call began) passed before the reply"
            )),
            Reason::Drain => tonic::Status::unavailable("the server is shutting down"),
        }
    }
}

/// A signal and what it cuts for.
pub struct Cut {
    pub signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    pub reason: Reason,
}

impl std::fmt::Debug for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cut").field("reason", &self.reason).finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// A response body that [`Cut`] can end early.
    #[derive(Debug, Default)]
    pub struct CutBody<B> {
        #[pin]
        inner: B,
        cut: Option<Cut>,
        ended: bool,
    }
}

impl<B> CutBody<B> {
    pub fn new(inner: B, cut: Option<Cut>) -> Self {
        CutBody { inner, cut, ended: false }
    }

    /// A body with nothing in it: the status went in the headers.
    pub fn ended(mut self) -> Self {
        self.ended = true;
        self
    }
}

impl<B: Body> Body for CutBody<B> {
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
        let Some(Cut { signal, reason }) = this.cut.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        let due_first = matches!(reason, Reason::Deadline(_)) && signal.as_mut().poll(cx).is_ready();
        if !due_first {
            if let ready @ Poll::Ready(_) = this.inner.poll_frame(cx) {
                return ready;
            }
            ready!(signal.as_mut().poll(cx));
        }
        // The stream ends here; the inner body is dropped with the response.
        *this.ended = true;
        let mut trailers = HeaderMap::new();
        // A status's headers (grpc-status, grpc-message) are valid trailers.
        let _ = reason.status().add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
