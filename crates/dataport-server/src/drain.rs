//! The drain signal, and a wrapper that ends a service's open streams with
//! UNAVAILABLE when it fires.
//!
//! Calls that are doing work finish during the drain. Calls that would only
//! wait forever (health and position watches) end as soon as the drain starts,
//! after handing over whatever they already have, so that a server with
//! watchers stops promptly instead of at the shutdown deadline.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tonic::server::NamedService;

/// Starts the drain once; every [`Drain::signaled`] future then resolves.
#[derive(Clone, Debug)]
pub struct Drain(watch::Sender<bool>);

impl Default for Drain {
    fn default() -> Self {
        Drain(watch::Sender::new(false))
    }
}

impl Drain {
    pub fn start(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once [`Drain::start`] has been called.
    pub fn signaled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            // An error means every sender is gone, which ends the server too.
            let _ = rx.wait_for(|started| *started).await;
        }
    }
}

/// Wraps a service so that its response streams end with UNAVAILABLE once
/// the drain starts.
#[derive(Clone, Debug)]
pub struct EndOnDrain<S> {
    inner: S,
    drain: Drain,
}

impl<S> EndOnDrain<S> {
    pub fn new(inner: S, drain: Drain) -> Self {
        EndOnDrain { inner, drain }
    }
}

impl<S: NamedService> NamedService for EndOnDrain<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for EndOnDrain<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<EndOnDrainBody<ResBody>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let response = self.inner.call(req);
        let drained = Box::pin(self.drain.signaled());
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| EndOnDrainBody { inner, drained, ended: false }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends with UNAVAILABLE trailers once the drain
    /// starts, after passing on every frame the inner body has ready.
    pub struct EndOnDrainBody<B> {
        #[pin]
        inner: B,
        drained: Pin<Box<dyn Future<Output = ()> + Send>>,
        ended: bool,
    }
}

impl<B: Body> Body for EndOnDrainBody<B> {
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
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.drained.as_mut().poll(cx).is_ready() {
            *this.ended = true;
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("14"));
            trailers.insert("grpc-message", HeaderValue::from_static("the%20server%20is%20shutting%20down"));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
