//! Methods a service serves itself, in front of its generated code.
//!
//! tonic decodes a whole request message into the generated types before a
//! handler sees it, and encodes every response message into a buffer of its
//! own. Where that costs more than the work itself (a Detect request of a
//! million metrics, a 1 GiB file in 1 MiB chunks), the service implements
//! [`OffTheWire`] for those methods: it gets the HTTP request as it comes
//! and answers the HTTP response, reading and writing gRPC frames itself
//! (with this crate's reader, framing and bodies). [`Lean`] routes those
//! exact paths to it and every other to the generated service. The layers
//! outside the router (compression, the call log, deadlines, the drain, the
//! message limit) see both alike.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http_body::Body;
use prost::bytes::Bytes;
use tonic::server::NamedService;

/// A call served here: the response, whatever happened.
pub type Served = BoxFuture<'static, http::Response<tonic::body::Body>>;

/// A service that serves some of its methods off the wire.
pub trait OffTheWire: Clone + Send + Sync + 'static {
    /// The methods served here, exactly as `dataport_proto::methods` names
    /// them (e.g. `methods::file_srv::file_srv::DOWNLOAD_FILE`).
    const PATHS: &'static [&'static str];
    /// Serves a call to one of [`OffTheWire::PATHS`].
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served;
}

/// Serves [`OffTheWire::PATHS`] of `D` here and everything else through
/// `inner`, the generated service.
#[derive(Clone, Debug)]
pub struct Lean<S, D> {
    inner: S,
    service: D,
}

impl<S, D> Lean<S, D> {
    pub fn new(inner: S, service: D) -> Self {
        Lean { inner, service }
    }
}

impl<S: NamedService, D> NamedService for Lean<S, D> {
    const NAME: &'static str = S::NAME;
}

impl<S, D, B> tower::Service<http::Request<B>> for Lean<S, D>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    D: OffTheWire,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !D::PATHS.contains(&req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        let served = self.service.serve(req.map(tonic::body::Body::new));
        Box::pin(async move { Ok(served.await) })
    }
}

/// What a generated method answers when [`Lean`] serves its path: it is
/// never reached while the router is in front, and says so if it is.
pub fn shadowed(path: &str) -> tonic::Status {
    tonic::Status::internal(format!(
        "{path} is served off the wire; the generated handler was reached without its router"
    ))
}
