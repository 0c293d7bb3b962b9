//! Logs: the subscriber, and the tower layer that writes one line per call.
//!
//! The line for a call is written when the call ends: for a unary or
//! streaming response, when its trailers (which carry `grpc-status`) leave the
//! server; for an error answered in the headers, at once; for a call the client
//! abandons, when the server drops it (logged as CANCELLED). Formatting happens
//! on the calling task, writing on a dedicated thread that batches lines, so a
//! slow stdout never stalls the reactor; its queue is bounded and never drops
//! lines (a full queue slows callers instead).

use std::future::Future;
use std::io::{BufWriter, IsTerminal};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tonic::transport::server::TcpConnectInfo;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber writing to stdout; `RUST_LOG` filters
/// (default `info`). Keep the guard alive until exit: dropping it flushes.
pub fn init(format: LogFormat) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("dataport-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stdout()));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// The canonical name of a gRPC status code.
pub fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

/// A tower layer that logs every call: method, status code, duration, peer.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallLogLayer;

impl<S> tower::Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> CallLog<S> {
        CallLog { inner }
    }
}

/// See [`CallLogLayer`].
#[derive(Clone, Debug)]
pub struct CallLog<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for CallLog<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<CallLogBody<ResBody>>;
    type Error = S::Error;
    type Future = CallLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let call = PendingCall {
            method: req.uri().path_and_query().cloned(),
            peer: req.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr),
            start: Instant::now(),
            done: false,
        };
        CallLogFuture { inner: self.inner.call(req), call: Some(call) }
    }
}

/// A call whose line is not written yet; dropping it unfinished logs CANCELLED.
#[derive(Debug)]
struct PendingCall {
    method: Option<http::uri::PathAndQuery>,
    peer: Option<SocketAddr>,
    start: Instant,
    done: bool,
}

impl PendingCall {
    fn finish(mut self, code: i32, message: Option<&str>) {
        self.done = true;
        let method = self.method.as_ref().map_or("", |m| m.path());
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let peer = self.peer.map(tracing::field::display);
        let code = code_name(code);
        match message {
            None => tracing::info!(target: "dataport::call", %method, %code, duration_us, peer),
            Some(message) => {
                let message = percent_encoding::percent_decode_str(message).decode_utf8_lossy();
                tracing::info!(target: "dataport::call", %method, %code, duration_us, peer, %message)
            }
        }
    }

    /// Finishes the call from the `grpc-status` in `headers`, if there is one.
    fn finish_from(self, headers: &HeaderMap) -> Option<Self> {
        let Some(status) = headers.get("grpc-status") else {
            return Some(self);
        };
        let code = std::str::from_utf8(status.as_bytes()).ok().and_then(|s| s.parse().ok()).unwrap_or(2);
        let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).filter(|_| code != 0);
        self.finish(code, message);
        None
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if !self.done {
            let call =
                PendingCall { method: self.method.take(), peer: self.peer, start: self.start, done: false };
            call.finish(1, Some("the call ended before its response did"));
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CallLog`].
    #[derive(Debug)]
    pub struct CallLogFuture<F> {
        #[pin]
        inner: F,
        call: Option<PendingCall>,
    }
}

impl<F, ResBody, E> Future for CallLogFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<CallLogBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                let (parts, inner) = response.into_parts();
                let call = call.and_then(|c| c.finish_from(&parts.headers));
                Ok(http::Response::from_parts(parts, CallLogBody { inner, call }))
            }
            Err(e) => {
                if let Some(call) = call {
                    call.finish(13, Some("the service failed before answering"));
                }
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that logs its call when the trailers pass.
    #[derive(Debug)]
    pub struct CallLogBody<B> {
        #[pin]
        inner: B,
        call: Option<PendingCall>,
    }
}

impl<B: Body> Body for CallLogBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref() {
                    *this.call = this.call.take().and_then(|call| call.finish_from(trailers));
                }
            }
            Some(Err(_)) => {
                if let Some(call) = this.call.take() {
                    call.finish(13, Some("the response body failed"));
                }
            }
            None => {
                if let Some(call) = this.call.take() {
                    call.finish(2, Some("the response ended without a grpc-status"));
                }
            }
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
