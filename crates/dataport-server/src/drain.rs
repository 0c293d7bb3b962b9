//! The drain signal, and a wrapper that ends a service's open streams with
//! UNAVAILABLE when it fires.
//!
//! Calls that are doing work finish during the drain. Calls that would only
//! wait forever (health and position watches) end as soon as the drain starts,
//! after handing over whatever they already have, so that a server with
//! watchers stops promptly instead of at the shutdown deadline.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

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

    /// Ticks every `period`, the first at once, until the drain starts: for
    /// the server's own periodic work.
    pub fn every(&self, period: std::time::Duration) -> Ticks {
        Ticks { interval: tokio::time::interval(period), stop: Box::pin(self.signaled()) }
    }

    /// What a stream the drain ends says.
    pub fn status() -> tonic::Status {
        tonic::Status::unavailable("the server is shutting down")
    }
}

/// The ticks of [`Drain::every`].
pub struct Ticks {
    interval: tokio::time::Interval,
    stop: BoxFuture<'static, ()>,
}

impl std::fmt::Debug for Ticks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticks").field("period", &self.interval.period()).finish_non_exhaustive()
    }
}

impl Ticks {
    /// Waits for the next tick: true, or false once the drain has started.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            () = &mut self.stop => false,
            _ = self.interval.tick() => true,
        }
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
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    // Boxed, as the router takes every service's future: these services'
    // calls are few and long.
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let response = self.inner.call(req);
        let drain = self.drain.clone();
        Box::pin(async move {
            let mut response = response.await?;
            response.extensions_mut().insert(drain);
            Ok(response)
        })
    }
}
