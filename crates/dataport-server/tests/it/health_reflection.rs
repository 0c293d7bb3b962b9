use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use dataport_proto::grpc::health::v1::health_check_response::ServingStatus;
use dataport_proto::grpc::health::v1::health_client::HealthClient;
use dataport_proto::grpc::health::v1::{HealthCheckRequest, HealthListRequest};
use dataport_proto::routeguide::route_guide_client::RouteGuideClient;
use dataport_proto::routeguide::{Point, RouteNote};
use dataport_server::SERVICES;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest as V1ReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as ReflectionV1;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Request;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Response;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest as V1AlphaReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as ReflectionV1Alpha;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as V1AlphaRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as V1AlphaResponse;

const EXPECTED_SERVICES: &[&str] = &[
    "FileSrv",
    "FileTransfer.FileService",
    "dataport.files.v1.FilesService",
    "dataport.market.v1.MarketService",
    "dataport.outliers.v1.OutliersService",
    "dataport.position.v1.PositionService",
    "google.bytestream.ByteStream",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "helloworld.Greeter",
    "idc.Indicator",
    "idc.IndicatorGraph",
    "pb.Outliers",
    "posXYZ.PositionService",
    "routeguide.RouteGuide",
];

async fn check(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let reply = HealthClient::new(channel).check(HealthCheckRequest { service: service.into() }).await?;
    Ok(reply.into_inner().status())
}

#[tokio::test]
async fn every_service_reports_serving() {
    let server = common::start().await;
    let channel = server.channel().await;
    for service in std::iter::once(&"").chain(SERVICES) {
        assert_eq!(
            check(channel.clone(), service).await.expect("known"),
            ServingStatus::Serving,
            "{service}"
        );
    }
    let err = check(channel.clone(), "no.Such").await.expect_err("unknown service");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("\"no.Such\""), "{err:?}");

    let listed = HealthClient::new(channel).list(HealthListRequest {}).await.expect("ok").into_inner();
    let mut names: Vec<&str> = listed.statuses.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut want: Vec<&str> = std::iter::once("").chain(SERVICES.iter().copied()).collect();
    want.sort_unstable();
    assert_eq!(names, want);
    assert!(listed.statuses.values().all(|s| s.status() == ServingStatus::Serving));
}

#[tokio::test]
async fn watch_of_an_unknown_service_answers_service_unknown_and_stays_open() {
    let mut server = common::start().await;
    let mut watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest { service: "no.Such".into() })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(watch.next().await.expect("first").expect("ok").status(), ServingStatus::ServiceUnknown);
    // Still open: nothing ends it until the drain does, with UNAVAILABLE.
    server.signal_shutdown();
    let end = watch.next().await.expect("a final status").expect_err("an error status");
    assert_eq!(end.code(), Code::Unavailable);
    server.stop().await;
}

#[tokio::test]
async fn health_watchers_see_not_serving_when_draining_starts() {
    // A deadline no test waits for: the server stops only if the watch ends.
    let (mut config, dir) = common::config();
    config.shutdown_timeout = Duration::from_secs(3600);
    let mut server = common::start_with(config, dir).await;
    let mut watch = watch_serving(server.channel().await).await;
    server.signal_shutdown();
    let next = watch.next().await.expect("an update");
    assert_eq!(next.expect("ok").status(), ServingStatus::NotServing);
    // Then the watch ends, so it does not hold the server up until the deadline.
    let end = watch.next().await.expect("a final status").expect_err("an error status");
    assert_eq!(end.code(), Code::Unavailable);
    server.stop().await;
}

/// A health Watch of the whole server, after its first answer: SERVING.
async fn watch_serving(
    channel: Channel,
) -> tonic::Streaming<dataport_proto::grpc::health::v1::HealthCheckResponse> {
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(watch.next().await.expect("first").expect("ok").status(), ServingStatus::Serving);
    watch
}

/// One reflection request and its reply, over one version of the API
/// (v1 and v1alpha have the same shape in different packages).
macro_rules! ask {
    ($name:ident, $client:ident, $wrapper:ident, $request:ty, $response:ty) => {
        async fn $name(channel: Channel, request: $request) -> $response {
            let request = $wrapper { host: String::new(), message_request: Some(request) };
            let mut replies = $client::new(channel)
                .server_reflection_info(tokio_stream::once(request))
                .await
                .expect("ok")
                .into_inner();
            replies.next().await.expect("a reply").expect("ok").message_response.expect("a response")
        }
    };
}

ask!(v1, ReflectionV1, V1ReflectionRequest, V1Request, V1Response);
ask!(v1alpha, ReflectionV1Alpha, V1AlphaReflectionRequest, V1AlphaRequest, V1AlphaResponse);

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service() {
    let server = common::start().await;
    let channel = server.channel().await;
    let V1Response::ListServicesResponse(list) =
        v1(channel.clone(), V1Request::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let names: BTreeSet<_> = list.service.into_iter().map(|s| s.name).collect();
    assert_eq!(names.iter().map(String::as_str).collect::<Vec<_>>(), EXPECTED_SERVICES);

    let V1AlphaResponse::ListServicesResponse(list) =
        v1alpha(channel, V1AlphaRequest::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let alpha: BTreeSet<_> = list.service.into_iter().map(|s| s.name).collect();
    assert_eq!(alpha, names);
}

#[tokio::test]
async fn reflection_resolves_symbols_and_their_well_known_imports() {
    let server = common::start().await;
    let channel = server.channel().await;
    let V1Response::FileDescriptorResponse(files) =
        v1(channel.clone(), V1Request::FileContainingSymbol("dataport.position.v1.PositionService".into()))
            .await
    else {
        panic!("not a file descriptor response");
    };
    let file =
        prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).expect("decodes");
    assert_eq!(file.name(), "dataport/position/v1/position.proto");
    assert!(file.dependency.iter().any(|d| d == "google/protobuf/timestamp.proto"));

    let V1Response::FileDescriptorResponse(files) =
        v1(channel.clone(), V1Request::FileByFilename("google/protobuf/timestamp.proto".into())).await
    else {
        panic!("the well-known import is not resolvable");
    };
    let file =
        prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).expect("decodes");
    assert_eq!(file.package(), "google.protobuf");

    // Compat files keep the names their seed clients were generated from.
    let V1AlphaResponse::FileDescriptorResponse(files) =
        v1alpha(channel, V1AlphaRequest::FileContainingSymbol("helloworld.Greeter".into())).await
    else {
        panic!("not a file descriptor response");
    };
    let file =
        prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).expect("decodes");
    assert_eq!(file.name(), "helloworld.proto");
}

#[tokio::test]
async fn in_flight_calls_finish_during_the_drain() {
    let mut server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies =
        client.route_chat(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("ok").into_inner();
    let note = |message: &str| RouteNote {
        location: Some(Point { latitude: 1, longitude: 1 }),
        message: message.into(),
    };
    tx.send(note("one")).await.expect("send");
    tx.send(note("two")).await.expect("send");
    // A reply proves the call is in flight on the server.
    assert_eq!(replies.next().await.expect("reply").expect("ok").message, "one");
    let mut health = watch_serving(server.channel().await).await;
    server.signal_shutdown();
    assert_eq!(health.next().await.expect("update").expect("ok").status(), ServingStatus::NotServing);
    tx.send(note("three")).await.expect("the call is still open");
    drop(tx);
    let mut rest = Vec::new();
    while let Some(reply) = replies.next().await {
        rest.push(reply.expect("the in-flight call completes").message);
    }
    assert_eq!(rest, ["one", "two"]);
    server.stop().await;
}

#[tokio::test]
async fn calls_still_open_at_the_deadline_are_dropped_and_the_server_stops() {
    let (mut config, dir) = common::config();
    config.shutdown_timeout = Duration::from_millis(300);
    let server = common::start_with(config, dir).await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies =
        client.route_chat(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("ok").into_inner();
    let note = || RouteNote { location: Some(Point { latitude: 1, longitude: 1 }), message: "hi".into() };
    tx.send(note()).await.expect("send");
    tx.send(note()).await.expect("send");
    replies.next().await.expect("reply").expect("the call is in flight");
    // Draining, the server still serves the call in flight ...
    let mut server = server;
    server.signal_shutdown();
    tx.send(note()).await.expect("send");
    // (A note is answered with every earlier one at its location: two.)
    for _ in 0..2 {
        assert_eq!(replies.next().await.expect("reply").expect("still served while draining").message, "hi");
    }
    // ... and, as the client never closes its side, only the deadline lets
    // the server stop, cleanly.
    server.stop().await;
    drop(tx);
}

#[tokio::test]
async fn health_listen_serves_health_alone_in_plaintext() {
    use dataport_proto::helloworld::HelloRequest;
    use dataport_proto::helloworld::greeter_client::GreeterClient;

    let (mut config, _dir) = common::config();
    config.health_listen = Some("127.0.0.1:0".parse().expect("an address"));
    let server = dataport_server::Server::new(config).expect("starts");
    let health_addr = server.health_addr().expect("bound in new");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{health_addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connects");
    let reply = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers");
    assert_eq!(reply.into_inner().status(), ServingStatus::Serving);
    let other = GreeterClient::new(channel)
        .say_hello(HelloRequest { name: "x".into() })
        .await
        .expect_err("health alone");
    assert_eq!(other.code(), Code::Unimplemented, "{other:?}");
    assert!(other.message().contains("helloworld.Greeter"), "{other:?}");
    let _ = stop.send(());
    tokio::time::timeout(dataport_testkit::EVENT_TIMEOUT, run).await.expect("stops").expect("joins");
}
