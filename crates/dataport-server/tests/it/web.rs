//! gRPC-Web over HTTP/1.1 as a browser sends it, CORS for the configured
//! origins, and auth applied as to any call.

use crate::common;

use dataport_proto::helloworld::HelloRequest;
use dataport_proto::routeguide::Rectangle;
use dataport_server::auth::secret_sha256;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ORIGIN: &str = "https://app.example.com";

async fn web_server(auth: bool) -> (common::TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut config, data) = common::config();
    config.grpc_web = true;
    config.cors_allowed_origins = vec![http::HeaderValue::from_static(ORIGIN)];
    if auth {
        let file = dir.path().join("tokens.toml");
        let entry = format!(
            "[[token]]\nname = \"page\"\nsha256 = \"{}\"\nscopes = [\"*:read\"]\n",
            secret_sha256("web-secret")
        );
        std::fs::write(&file, entry).expect("write");
        config.auth_tokens = Some(file);
    }
    (common::start_with(config, data).await, dir)
}

/// Sends one HTTP/1.1 request and answers the whole response, lower-cased
/// where it is text.
async fn http1(
    server: &common::TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        server.addr,
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    stream.write_all(body).await.expect("writes");
    let mut response = Vec::new();
    // A server that speaks only HTTP/2 resets the connection: no answer.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).to_ascii_lowercase()
}

fn framed(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("small").to_be_bytes());
    out.extend_from_slice(&bytes);
    out
}

async fn grpc_web(
    server: &common::TestServer,
    path: &str,
    message: &impl Message,
    extra: &[(&str, &str)],
) -> String {
    let mut headers =
        vec![("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1"), ("origin", ORIGIN)];
    headers.extend_from_slice(extra);
    http1(server, "POST", path, &headers, &framed(message)).await
}

#[tokio::test]
async fn unary_and_server_streaming_calls_work_over_grpc_web_for_an_allowed_origin() {
    let (server, _dir) = web_server(false).await;
    let hello =
        grpc_web(&server, "/helloworld.Greeter/SayHello", &HelloRequest { name: "Web".into() }, &[]).await;
    assert!(hello.starts_with("http/1.1 200"), "{hello}");
    assert!(hello.contains("hello, web!") && hello.contains("grpc-status:0"), "{hello}");
    assert!(hello.contains(&format!("access-control-allow-origin: {ORIGIN}")), "{hello}");

    // Every landmark of the built-in features, streamed back.
    let world = Rectangle {
        lo: Some(dataport_proto::routeguide::Point { latitude: -900_000_000, longitude: -1_800_000_000 }),
        hi: Some(dataport_proto::routeguide::Point { latitude: 900_000_000, longitude: 1_800_000_000 }),
    };
    let features = grpc_web(&server, "/routeguide.RouteGuide/ListFeatures", &world, &[]).await;
    assert!(features.contains("eiffel tower") && features.contains("grpc-status:0"), "{features}");

    let preflight = http1(
        &server,
        "OPTIONS",
        "/helloworld.Greeter/SayHello",
        &[
            ("origin", ORIGIN),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-grpc-web,authorization"),
        ],
        b"",
    )
    .await;
    assert!(preflight.contains(&format!("access-control-allow-origin: {ORIGIN}")), "{preflight}");
    assert!(preflight.contains("authorization") && preflight.contains("x-grpc-web"), "{preflight}");

    let other = [("origin", "https://evil.example")];
    let refused = http1(
        &server,
        "OPTIONS",
        "/helloworld.Greeter/SayHello",
        &[other[0], ("access-control-request-method", "POST")],
        b"",
    )
    .await;
    assert!(!refused.contains("access-control-allow-origin"), "another origin is not allowed: {refused}");
}

#[tokio::test]
async fn grpc_web_calls_need_a_token_like_any_other() {
    let (server, _dir) = web_server(true).await;
    let request = HelloRequest { name: "Web".into() };
    let without = grpc_web(&server, "/helloworld.Greeter/SayHello", &request, &[]).await;
    assert!(without.contains("grpc-status: 16") || without.contains("grpc-status:16"), "{without}");
    let with = grpc_web(
        &server,
        "/helloworld.Greeter/SayHello",
        &request,
        &[("authorization", "Bearer web-secret")],
    )
    .await;
    assert!(with.contains("hello, web!") && with.contains("grpc-status:0"), "{with}");
}

#[tokio::test]
async fn without_grpc_web_a_browser_call_is_not_served() {
    let (server, _dir) = (common::start().await, ());
    let response =
        grpc_web(&server, "/helloworld.Greeter/SayHello", &HelloRequest { name: "Web".into() }, &[]).await;
    assert!(!response.contains("hello, web!"), "{response}");
}
