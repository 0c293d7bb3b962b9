//! Spans over OTLP/gRPC (`otlp_endpoint`), received by a collector made of
//! the protocol's own service (opentelemetry-proto's TraceService) in this
//! process: a call's `traceparent` is continued, a call without one starts
//! a trace, a server fault marks its span.

use crate::common;

use dataport_proto::dataport::position::v1::GetRequest;
use dataport_proto::dataport::position::v1::position_service_client::PositionServiceClient;
use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use tokio::sync::mpsc;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// Hands every export it receives to the test.
struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

fn with_traceparent<T>(message: T, flags: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("00-{TRACE}-{PARENT}-{flags}").parse().expect("ascii");
    request.metadata_mut().insert("traceparent", value);
    request
}

#[tokio::test]
async fn every_call_is_a_server_span_continuing_the_callers_trace() {
    let (tx, mut exports) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector = listener.local_addr().expect("addr");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(incoming),
    );
    let (mut config, dir) = common::config();
    config.otlp_endpoint = Some(format!("http://{collector}"));
    let server = common::start_with(config, dir).await;

    let channel = server.channel().await;
    let mut greeter = GreeterClient::new(channel.clone());
    greeter.say_hello(with_traceparent(HelloRequest { name: "traced".into() }, "01")).await.expect("ok");
    greeter.say_hello(HelloRequest { name: "fresh".into() }).await.expect("ok");
    // The caller did not sample this one: neither does the server.
    greeter.say_hello(with_traceparent(HelloRequest { name: "unsampled".into() }, "00")).await.expect("ok");
    let missing = PositionServiceClient::new(channel).get(GetRequest { entity: "ghost".into() }).await;
    assert_eq!(missing.expect_err("never published").code(), tonic::Code::NotFound);
    // Stopping sends what is queued.
    server.stop().await;

    let mut spans = Vec::new();
    while let Ok(export) = exports.try_recv() {
        for resource in export.resource_spans {
            let service = resource.resource.as_ref().and_then(|r| {
                r.attributes.iter().find(|kv| kv.key == "service.name")?.value.as_ref()?.value.clone()
            });
            assert_eq!(service, Some(Value::StringValue("dataport".into())));
            spans.extend(resource.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let hello: Vec<&Span> = spans.iter().filter(|s| s.name == "helloworld.Greeter/SayHello").collect();
    assert_eq!(hello.len(), 2, "{spans:#?}");
    let continued = hello.iter().find(|s| hex(&s.trace_id) == TRACE).expect("the caller's trace");
    assert_eq!(hex(&continued.parent_span_id), PARENT);
    assert_eq!(continued.kind, SpanKind::Server as i32);
    assert_eq!(attribute(continued, "rpc.system"), Some(&Value::StringValue("grpc".into())));
    assert_eq!(attribute(continued, "rpc.service"), Some(&Value::StringValue("helloworld.Greeter".into())));
    assert_eq!(attribute(continued, "rpc.method"), Some(&Value::StringValue("SayHello".into())));
    assert_eq!(attribute(continued, "rpc.grpc.status_code"), Some(&Value::IntValue(0)));
    assert!(continued.end_time_unix_nano >= continued.start_time_unix_nano);
    let fresh = hello.iter().find(|s| hex(&s.trace_id) != TRACE).expect("a trace of its own");
    assert!(fresh.parent_span_id.is_empty(), "{fresh:#?}");
    // NOT_FOUND is the caller's affair: the span is no error.
    let get = spans.iter().find(|s| s.name == "dataport.position.v1.PositionService/Get").expect("Get");
    assert_eq!(attribute(get, "rpc.grpc.status_code"), Some(&Value::IntValue(5)));
    assert_ne!(get.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
}
