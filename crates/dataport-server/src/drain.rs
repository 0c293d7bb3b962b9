//! The drain signal, and a wrapper that ends a service's open streams with
//! UNAVAILABLE when it fires.
//!
//! Calls that are doing work finish during the drain. Calls that would only
//! wait forever (health and position watches) end as soon as the drain starts,
//! after handing over whatever they already have, so that a server with
//! watchers stops promptly instead of at the shutdown deadline.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

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

    /// What a stream the drain ends says.
    pub fn status() -> tonic::Status {
        tonic::Status::unavailable("the server is shutting down")
    }
}

/// Wraps a service so that its response streams end with UNAVAILABLE once
/// the drain starts: it hands each response's [`Drain`] to the layer stack
/// (in the response's extensions), whose response body ends the stream
/// ([`crate::stack`]).
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
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Marked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Marked { inner: self.inner.call(req), drain: Some(self.drain.clone()) }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`EndOnDrain`].
    #[derive(Debug)]
    pub struct Marked<F> {
        #[pin]
        inner: F,
        drain: Option<Drain>,
    }
}

impl<F, ResBody, E> Future for Marked<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(drain) = this.drain.take() {
            response.extensions_mut().insert(drain);
        }
        Poll::Ready(Ok(response))
    }
}
