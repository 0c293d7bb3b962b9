//! `/metrics` on `metrics_listen`: the call counters under go-grpc-middleware's
//! names and labels, what the areas hold, and the process.

use crate::common;

use std::net::SocketAddr;

use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;
use dataport_proto::routeguide::route_guide_client::RouteGuideClient;
use dataport_proto::routeguide::{Point, Rectangle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::Code;

async fn server(tune: impl FnOnce(&mut dataport_server::config::Config)) -> common::TestServer {
    let (mut config, dir) = common::config();
    config.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
    tune(&mut config);
    common::start_with(config, dir).await
}

/// GET `path` over HTTP/1.1: the status line, the headers and the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_owned(), body.to_owned())
}

pub async fn scrape(server: &common::TestServer) -> String {
    let (head, body) = get(server.metrics.expect("metrics_listen is bound"), "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body
}

/// The value of the sample `series` (name and labels, as written).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn greeter(labels: &str) -> String {
    format!(r#"{{grpc_type="unary",grpc_service="helloworld.Greeter",grpc_method="SayHello"{labels}}}"#)
}

fn route(kind: &str, method: &str, labels: &str) -> String {
    format!(r#"{{grpc_type="{kind}",grpc_service="routeguide.RouteGuide",grpc_method="{method}"{labels}}}"#)
}

#[tokio::test]
async fn calls_are_counted_by_method_code_and_message() {
    let server = server(|_| {}).await;
    let channel = server.channel().await;
    let mut hello = GreeterClient::new(channel.clone());
    for _ in 0..3 {
        hello.say_hello(HelloRequest { name: "m".into() }).await.expect("ok");
    }
    let mut route_guide = RouteGuideClient::new(channel);
    let points = (0..5).map(|i| Point { latitude: i, longitude: i });
    route_guide.record_route(tokio_stream::iter(points)).await.expect("ok");
    let whole = Rectangle {
        lo: Some(Point { latitude: -900_000_000, longitude: -1_800_000_000 }),
        hi: Some(Point { latitude: 900_000_000, longitude: 1_800_000_000 }),
    };
    let features = route_guide.list_features(whole).await.expect("ok").into_inner().collect::<Vec<_>>().await;
    let bad = route_guide.list_features(Rectangle { lo: None, hi: None }).await.expect_err("no corners");
    assert_eq!(bad.code(), Code::InvalidArgument);

    let text = scrape(&server).await;
    assert_eq!(sample(&text, &format!("grpc_server_started_total{}", greeter(""))), Some(3.0), "{text}");
    let ok = greeter(r#",grpc_code="OK""#);
    assert_eq!(sample(&text, &format!("grpc_server_handled_total{ok}")), Some(3.0), "{text}");
    assert_eq!(sample(&text, &format!("grpc_server_msg_received_total{}", greeter(""))), Some(3.0));
    assert_eq!(sample(&text, &format!("grpc_server_msg_sent_total{}", greeter(""))), Some(3.0));
    assert_eq!(sample(&text, &format!("grpc_server_handling_seconds_count{}", greeter(""))), Some(3.0));
    let inf = greeter(r#",le="+Inf""#);
    assert_eq!(sample(&text, &format!("grpc_server_handling_seconds_bucket{inf}")), Some(3.0), "{text}");
    // A client stream: five messages in, one out.
    let record = route("client_stream", "RecordRoute", "");
    assert_eq!(sample(&text, &format!("grpc_server_msg_received_total{record}")), Some(5.0), "{text}");
    assert_eq!(sample(&text, &format!("grpc_server_msg_sent_total{record}")), Some(1.0));
    // A server stream: one in, a message a feature out; the refused call sent none.
    let list = route("server_stream", "ListFeatures", "");
    assert_eq!(sample(&text, &format!("grpc_server_started_total{list}")), Some(2.0), "{text}");
    assert_eq!(sample(&text, &format!("grpc_server_msg_sent_total{list}")), Some(features.len() as f64));
    let refused = route("server_stream", "ListFeatures", r#",grpc_code="InvalidArgument""#);
    assert_eq!(sample(&text, &format!("grpc_server_handled_total{refused}")), Some(1.0), "{text}");
    // Methods not called yet are listed at zero, so a rate starts from the first call.
    let chat = route("bidi_stream", "RouteChat", "");
    assert_eq!(sample(&text, &format!("grpc_server_started_total{chat}")), Some(0.0), "{text}");
    // What the areas hold, and the process.
    assert_eq!(sample(&text, "dataport_files_stored"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "dataport_position_entities"), Some(1.0), "the default entity");
    assert_eq!(sample(&text, "dataport_connections_open"), Some(1.0), "{text}");
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|rss| rss > 1e6), "{text}");
    assert!(sample(&text, "process_open_fds").is_some_and(|fds| fds > 3.0), "{text}");
    assert!(sample(&text, "process_cpu_seconds_total").is_some(), "{text}");
}

#[tokio::test]
async fn shed_calls_are_counted_and_other_paths_are_not_found() {
    use dataport_proto::routeguide::RouteNote;

    let server = server(|c| c.max_calls = 1).await;
    let channel = server.channel().await;
    let (notes, held) = tokio::sync::mpsc::channel::<RouteNote>(1);
    let chat = RouteGuideClient::new(channel.clone())
        .route_chat(tokio_stream::wrappers::ReceiverStream::new(held))
        .await
        .expect("the chat starts");
    let refused = GreeterClient::new(channel).say_hello(HelloRequest { name: "x".into() }).await;
    assert_eq!(refused.expect_err("shed").code(), Code::Unavailable);

    let text = scrape(&server).await;
    assert_eq!(sample(&text, "dataport_calls_shed_total"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "dataport_calls_in_flight"), Some(1.0), "{text}");
    let unavailable = greeter(r#",grpc_code="Unavailable""#);
    assert_eq!(sample(&text, &format!("grpc_server_handled_total{unavailable}")), Some(1.0), "{text}");
    drop((notes, chat));

    let (head, body) = get(server.metrics.expect("bound"), "/").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(body.contains("/metrics"), "{body}");
}
