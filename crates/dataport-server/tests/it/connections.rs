//! How the server holds its connections: the handshake timeout, idle and age
//! limits, the cap on connections and on streams, from raw TCP and an
//! HTTP/2 client, as a misbehaving or long-lived client would meet them.

use std::time::{Duration, Instant};

use dataport_server::config::Config;
use dataport_testkit::{EVENT_TIMEOUT, TestServer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

async fn server(tune: impl FnOnce(&mut Config)) -> TestServer {
    let (mut config, dir) = dataport_testkit::config();
    tune(&mut config);
    dataport_testkit::start_with(config, dir).await
}

/// How long until the server closes `tcp`, reading (and dropping) whatever
/// it sends first.
async fn closed_after(mut tcp: TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let read = async {
        // EOF, or a reset: either way the server closed it.
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(EVENT_TIMEOUT, read).await.expect("the server closes the connection");
    start.elapsed()
}

/// An HTTP/2 connection to `server`, its preface and settings sent.
async fn h2(
    server: &TestServer,
) -> (h2::client::SendRequest<prost::bytes::Bytes>, tokio::task::JoinHandle<Duration>) {
    let tcp = TcpStream::connect(server.addr).await.expect("connects");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    let start = Instant::now();
    let ended = tokio::spawn(async move {
        let _ = connection.await;
        start.elapsed()
    });
    (client, ended)
}

/// Starts a health Watch, a call that stays under way until the server ends it.
async fn watch_health(
    client: &mut h2::client::SendRequest<prost::bytes::Bytes>,
    addr: std::net::SocketAddr,
) -> h2::RecvStream {
    let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Watch"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    let mut ready = client.clone().ready().await.expect("ready");
    let (response, mut send) = ready.send_request(request, false).expect("sent");
    // An empty HealthCheckRequest: the server as a whole.
    send.send_data(prost::bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true).expect("the message goes");
    let mut body = response.await.expect("an answer").into_body();
    let first = body.data().await.expect("a first status").expect("its data");
    assert!(!first.is_empty());
    body
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_handshake_timeout() {
    let server = server(|c| c.handshake_timeout = Duration::from_millis(300)).await;
    let silent = TcpStream::connect(server.addr).await.expect("connects");
    let after = closed_after(silent).await;
    assert!(after >= Duration::from_millis(250) && after < Duration::from_secs(5), "{after:?}");
    // Half a preface is no greeting either.
    let mut half = TcpStream::connect(server.addr).await.expect("connects");
    tokio::io::AsyncWriteExt::write_all(&mut half, b"PRI * HTTP/2.0\r\n").await.expect("writes");
    let after = closed_after(half).await;
    assert!(after >= Duration::from_millis(250) && after < Duration::from_secs(5), "{after:?}");
}

#[tokio::test]
async fn a_silent_connection_does_not_hold_up_a_shutdown() {
    let server = server(|c| c.handshake_timeout = Duration::from_secs(60)).await;
    let silent = TcpStream::connect(server.addr).await.expect("connects");
    // Accepted by the server, not only by the kernel.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    server.stop().await;
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert!(closed_after(silent).await < Duration::from_secs(1));
}

#[tokio::test]
async fn a_greeted_connection_outlives_the_handshake_timeout_and_closes_when_idle() {
    let server = server(|c| {
        c.handshake_timeout = Duration::from_millis(200);
        c.max_connection_idle = Some(Duration::from_millis(800));
    })
    .await;
    let (mut client, ended) = h2(&server).await;
    // A call under way keeps it from idling, however long it lasts.
    let watch = watch_health(&mut client, server.addr).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!ended.is_finished(), "closed with a call under way");
    // The call is cancelled: from then on the connection is idle.
    drop(watch);
    let lasted = tokio::time::timeout(EVENT_TIMEOUT, ended).await.expect("closed when idle").expect("joins");
    assert!(lasted >= Duration::from_millis(2000), "{lasted:?}");
}

#[tokio::test]
async fn an_old_connection_is_told_to_go_and_closed_after_the_grace() {
    let server = server(|c| {
        c.max_connection_age = Some(Duration::from_millis(400));
        c.max_connection_age_grace = Duration::from_millis(600);
    })
    .await;
    let (mut client, ended) = h2(&server).await;
    let mut watch = watch_health(&mut client, server.addr).await;
    let lasted = tokio::time::timeout(EVENT_TIMEOUT, ended).await.expect("closed").expect("joins");
    assert!(lasted >= Duration::from_millis(900) && lasted < Duration::from_secs(10), "{lasted:?}");
    // The call under way was cut at the end of the grace.
    while let Some(Ok(_)) = watch.data().await {}
    // New calls go to a new connection, which is served.
    let (mut again, _) = h2(&server).await;
    let _served = watch_health(&mut again, server.addr).await;
}

#[tokio::test]
async fn past_max_connections_a_new_connection_is_closed_at_once() {
    let server = server(|c| c.max_connections = 2).await;
    let (mut first, _) = h2(&server).await;
    let (mut second, _) = h2(&server).await;
    // Both connections greeted and serving, each with a call under way.
    let _calls = (watch_health(&mut first, server.addr).await, watch_health(&mut second, server.addr).await);
    let third = TcpStream::connect(server.addr).await.expect("connects");
    assert!(closed_after(third).await < Duration::from_secs(2));
}

#[tokio::test]
async fn the_server_offers_its_stream_limit() {
    let server = server(|c| c.max_concurrent_streams = 7).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connects");
    let (_client, mut connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    // The server's SETTINGS arrive with the handshake's first exchange.
    let settled = tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            tokio::select! {
                _ = &mut connection => panic!("the connection ended"),
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
            if connection.max_concurrent_send_streams() == 7 {
                break;
            }
        }
    });
    settled.await.expect("the server's limit arrives");
}

#[tokio::test]
async fn past_max_calls_a_call_is_refused_at_once_and_health_still_answers() {
    use dataport_proto::grpc::health::v1::HealthCheckRequest;
    use dataport_proto::grpc::health::v1::health_client::HealthClient;
    use dataport_proto::helloworld::HelloRequest;
    use dataport_proto::helloworld::greeter_client::GreeterClient;
    use dataport_proto::routeguide::route_guide_client::RouteGuideClient;

    let server = server(|c| c.max_calls = 1).await;
    let channel = server.channel().await;
    // One call under way: a route chat whose client keeps its stream open.
    let (notes, held) = tokio::sync::mpsc::channel(1);
    let chat = RouteGuideClient::new(channel.clone())
        .route_chat(tokio_stream::wrappers::ReceiverStream::new(held))
        .await
        .expect("the chat starts");
    let mut greeter = GreeterClient::new(channel.clone());
    let hello = || HelloRequest { name: "busy".into() };
    let start = Instant::now();
    let refused = greeter.say_hello(hello()).await.expect_err("shed");
    assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("max_calls"), "{refused:?}");
    let health =
        HealthClient::new(channel).check(HealthCheckRequest::default()).await.expect("health answers");
    assert_eq!(health.into_inner().status, 1, "SERVING");
    // Once the chat ends, calls are served again.
    drop(notes);
    drop(chat);
    let served = tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            match greeter.say_hello(hello()).await {
                Ok(reply) => break reply.into_inner().message,
                Err(e) => assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(served.await.expect("served once the chat ended"), "Hello, busy!");
}
