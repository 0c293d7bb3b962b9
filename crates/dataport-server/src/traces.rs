//! Traces: with `otlp_endpoint`, a server span for every call, exported
//! over OTLP/gRPC to a collector by OpenTelemetry's batch exporter (its own
//! thread; a bounded queue that drops spans rather than hold memory when
//! the collector is slow or gone).
//!
//! A call with a valid W3C `traceparent` continues the client's trace (its
//! span is a child of the client's, sampled as the client sampled it); one
//! without starts a trace, sampled at `otlp_sample_ratio`. The span is made
//! when the call ends, from what its [`crate::logging::Call`] knows, so a
//! call costs nothing more while it runs; a sampled span's trace id goes in
//! the call's line.

use std::net::SocketAddr;
use std::time::SystemTime;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

use crate::logging::TraceParent;

/// The exporter and the tracer of one server.
#[derive(Debug)]
pub struct Spans {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// A finished call, as its span records it.
#[derive(Debug)]
pub struct Finished<'a> {
    /// `/service/Method`.
    pub path: &'a str,
    pub code: tonic::Code,
    pub message: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    pub peer: Option<SocketAddr>,
    pub caller: Option<&'a str>,
    pub parent: Option<TraceParent>,
}

impl Spans {
    /// Exports to `endpoint` (`http://HOST:PORT`, or `https://` with the
    /// system's roots). The channel connects when the first batch goes, so
    /// a collector that is not up yet is no error here. Needs the runtime.
    pub fn start(endpoint: &str, sample_ratio: f64) -> Result<Spans, String> {
        use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint);
        if endpoint.starts_with("https://") {
            builder = builder.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
        }
        let exporter = builder.build().map_err(|e| format!("otlp_endpoint = {endpoint:?}: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(sample_ratio))))
            .with_resource(
                Resource::builder_empty()
                    .with_service_name("dataport")
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("dataport");
        Ok(Spans { provider, tracer })
    }

    /// Records `call`'s span; answers its trace when the span is sampled
    /// (it is then exported).
    pub fn record(&self, call: &Finished<'_>) -> Option<u128> {
        let context = match call.parent {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                parent.trace.to_u128().into(),
                SpanId::from(parent.parent),
                TraceFlags::new(parent.flags),
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let name = call.path.strip_prefix('/').unwrap_or(call.path);
        let (service, method) = name.split_once('/').unwrap_or((name, ""));
        let mut attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("rpc.grpc.status_code", call.code as i64),
        ];
        if let Some(peer) = call.peer {
            attributes.push(KeyValue::new("network.peer.address", peer.ip().to_string()));
            attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
        }
        if let Some(caller) = call.caller {
            attributes.push(KeyValue::new("dataport.caller", caller.to_owned()));
        }
        let mut span = self
            .tracer
            .span_builder(name.to_owned())
            .with_kind(SpanKind::Server)
            .with_start_time(call.start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &context);
        if server_fault(call.code) {
            span.set_status(Status::error(call.message.to_owned()));
        }
        let sampled = span.span_context().is_sampled();
        let trace = u128::from_be_bytes(span.span_context().trace_id().to_bytes());
        span.end_with_timestamp(call.end);
        sampled.then_some(trace)
    }

    /// Sends what is queued; blocks until it is sent or times out.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "otlp: the last spans could not be sent");
        }
    }
}

/// The codes OpenTelemetry's gRPC conventions mark a server span's error.
fn server_fault(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss)
}
