//! `max_inflight_bytes`: request data held across calls is bounded; a call
//! that finds no room waits briefly, then is refused RESOURCE_EXHAUSTED,
//! and the call holding the room still answers correctly.

use crate::common;

use std::time::{Duration, Instant};

use dataport_proto::pb;
use dataport_proto::pb::outliers_client::OutliersClient;
use prost::Message;
use prost::bytes::Bytes;
use tonic::Code;

/// A Detect request of about `bytes` bytes, one series, the last value an outlier.
fn detect_request(bytes: usize) -> pb::OutliersRequest {
    let one = pb::Metric {
        time: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
        name: "cpu".into(),
        value: 1.0,
    };
    let n = bytes / one.encoded_len().max(1);
    let mut metrics: Vec<pb::Metric> =
        (0..n).map(|i| pb::Metric { value: (i % 10) as f64, ..one.clone() }).collect();
    if let Some(last) = metrics.last_mut() {
        last.value = 1e9;
    }
    pb::OutliersRequest { metrics }
}

async fn inflight_bytes(server: &common::TestServer) -> f64 {
    let text = crate::metrics::scrape(server).await;
    crate::metrics::sample(&text, "dataport_inflight_bytes").expect("the gauge")
}

#[tokio::test]
async fn past_max_inflight_bytes_a_call_waits_then_is_refused_and_the_holder_still_answers() {
    let (mut config, dir) = common::config();
    config.max_inflight_bytes = 4 << 20;
    config.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
    let server = common::start_with(config, dir).await;

    // A Detect of 3 MiB, sent but for its last bytes: the server holds what it read.
    let request = detect_request(3 << 20);
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(request.encoded_len()).expect("small").to_be_bytes());
    request.encode(&mut framed).expect("encodes");
    let (head, tail) = framed.split_at(framed.len() - 10);
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    tokio::spawn(connection);
    let held = http::Request::post(format!("http://{}/pb.Outliers/Detect", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    let (response, mut send) = client.ready().await.expect("ready").send_request(held, false).expect("sent");
    send.reserve_capacity(head.len());
    send.send_data(Bytes::copy_from_slice(head), false).expect("the data goes");
    let deadline = Instant::now() + dataport_testkit::EVENT_TIMEOUT;
    while inflight_bytes(&server).await < (3 << 20) as f64 {
        assert!(Instant::now() < deadline, "the server never held the first call's data");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second of 2 MiB finds 1 MiB of room: it waits, then is refused.
    let mut detect = OutliersClient::new(server.channel().await);
    let start = Instant::now();
    let refused = detect.detect(detect_request(2 << 20)).await.expect_err("no room");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("max_inflight_bytes (4194304)"), "{refused:?}");
    assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());

    // The first call ends its request and is answered as ever.
    send.send_data(Bytes::copy_from_slice(tail), true).expect("the rest goes");
    let mut body = response.await.expect("an answer").into_body();
    let mut answer = Vec::new();
    while let Some(data) = body.data().await {
        answer.extend_from_slice(&data.expect("data"));
    }
    let trailers = body.trailers().await.expect("trailers").expect("some");
    assert_eq!(trailers["grpc-status"], "0", "{trailers:?}");
    let reply = pb::OutliersResponse::decode(&answer[5..]).expect("a response");
    assert_eq!(reply.indices, [i32::try_from(request.metrics.len() - 1).expect("fits")]);

    // Its room is given back: the second fits now.
    let reply = detect.detect(detect_request(2 << 20)).await.expect("room now").into_inner();
    assert_eq!(reply.indices.len(), 1);
    assert_eq!(inflight_bytes(&server).await, 0.0);
}
