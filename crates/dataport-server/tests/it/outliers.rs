//! pb.Outliers (compat) and dataport.outliers.v1 against a real server.

use crate::common;

use common::assert_status;
use dataport_proto::dataport::outliers::v1;
use dataport_proto::dataport::outliers::v1::outliers_service_client::OutliersServiceClient;
use dataport_proto::pb;
use dataport_proto::pb::outliers_client::OutliersClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

fn metric(name: &str, value: f64) -> pb::Metric {
    pb::Metric { time: None, name: name.into(), value }
}

fn v1_metric(name: &str, value: f64) -> v1::Metric {
    v1::Metric { time: None, name: name.into(), value }
}

async fn compat(server: &common::TestServer) -> OutliersClient<Channel> {
    OutliersClient::new(server.channel().await).max_encoding_message_size(usize::MAX)
}

async fn detect(
    client: &mut OutliersClient<Channel>,
    metrics: Vec<pb::Metric>,
) -> Result<Vec<i32>, tonic::Status> {
    Ok(client.detect(pb::OutliersRequest { metrics }).await?.into_inner().indices)
}

// numpy: a = np.array(VALUES); np.where(np.abs(a - a.mean()) > 2 * a.std())[0]
const SERIES: [f64; 12] = [10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 11.0, 9.0, 10.0, 45.0, 10.0, 11.0]; // -> [9]
const OTHER: [f64; 8] = [5.0, 5.1, 4.9, 5.0, 20.0, 5.2, 4.8, 5.0]; // -> [4]

#[tokio::test]
async fn detect_answers_what_numpy_answers_for_one_series() {
    let server = common::start().await;
    let mut client = compat(&server).await;
    let metrics = SERIES.iter().map(|&v| metric("cpu", v)).collect();
    assert_eq!(detect(&mut client, metrics).await.unwrap(), [9]);
    // Rounding decides this one: the exact score of -68 is 2, numpy's is above.
    let metrics = [-49.0, -49.0, -49.0, -68.0, -49.0].iter().map(|&v| metric("x", v)).collect();
    assert_eq!(detect(&mut client, metrics).await.unwrap(), [3]);
    assert!(detect(&mut client, vec![]).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_series_is_judged_on_its_own_with_positions_in_the_request() {
    let server = common::start().await;
    let mut client = compat(&server).await;
    // Interleave the two series while both last: a, b, a, b, ..., then the rest of a.
    let mut metrics = Vec::new();
    for (i, &a) in SERIES.iter().enumerate() {
        metrics.push(metric("a", a));
        if let Some(&b) = OTHER.get(i) {
            metrics.push(metric("b", b));
        }
    }
    // SERIES[9] comes after all eight of OTHER: position 9 + 8; OTHER[4] at 2 * 4 + 1.
    let (expected_a, expected_b) = (17, 9);
    assert_eq!((metrics[17].name.as_str(), metrics[17].value), ("a", 45.0));
    assert_eq!((metrics[9].name.as_str(), metrics[9].value), ("b", 20.0));
    assert_eq!(detect(&mut client, metrics).await.unwrap(), [expected_b, expected_a]);
}

#[tokio::test]
async fn a_value_that_is_not_finite_is_refused_naming_its_index() {
    let server = common::start().await;
    let mut client = compat(&server).await;
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let metrics = vec![metric("a", 1.0), metric("a", 2.0), metric("b", bad)];
        assert_status(detect(&mut client, metrics).await, Code::InvalidArgument, &["metrics[2].value"]);
    }
}

#[tokio::test]
async fn a_request_over_the_size_limit_is_resource_exhausted_naming_the_limit() {
    let (mut config, dir) = common::config();
    config.max_detect_bytes = 64 * 1024;
    let server = common::start_with(config, dir).await;
    let mut client = compat(&server).await;
    let metrics: Vec<_> = (0..10_000).map(|i| metric("cpu", f64::from(i))).collect();
    assert_status(detect(&mut client, metrics).await, Code::ResourceExhausted, &["limit of 65536 bytes"]);
    // Under the limit, the same server answers.
    let metrics: Vec<_> = (0..1_000).map(|i| metric("cpu", f64::from(i))).collect();
    assert!(detect(&mut client, metrics).await.is_ok());
    let mut v1 = OutliersServiceClient::new(server.channel().await);
    let metrics: Vec<_> = (0..10_000).map(|i| v1_metric("cpu", f64::from(i))).collect();
    let request = v1::DetectRequest { metrics, method: None };
    assert_status(v1.detect(request).await, Code::ResourceExhausted, &["limit of 65536 bytes"]);
}

fn method(kind: v1::method::Kind) -> Option<v1::Method> {
    Some(v1::Method { kind: Some(kind) })
}

#[tokio::test]
async fn v1_detect_answers_scores_and_the_statistics_of_each_series() {
    let server = common::start().await;
    let mut client = OutliersServiceClient::new(server.channel().await);
    let metrics: Vec<_> = OTHER.iter().map(|&v| v1_metric("b", v)).collect();
    let reply = client.detect(v1::DetectRequest { metrics: metrics.clone(), method: None }).await.unwrap();
    let reply = reply.into_inner();
    assert_eq!(reply.indices, [4]);
    // numpy: (c - c.mean()) / c.std() for c = OTHER
    let want = [-0.37786852, -0.35771553, -0.39802151, -0.37786852, 2.64507963, -0.33756254, -0.41817449];
    for (got, want) in reply.scores.iter().zip(want) {
        assert!((got - want).abs() < 1e-8, "{got} vs {want}");
    }
    assert_eq!(reply.scores.len(), 8);
    let [series] = reply.series.as_slice() else { panic!("one series: {:?}", reply.series) };
    assert_eq!((series.name.as_str(), series.count, series.outliers), ("b", 8, 1));
    let Some(v1::series_stats::Stats::ZScore(z)) = &series.stats else { panic!("z-score stats") };
    assert!((z.mean - 6.875).abs() < 1e-12, "{}", z.mean);

    let modified = v1::DetectRequest {
        metrics,
        method: method(v1::method::Kind::ModifiedZScore(v1::ModifiedZScore { threshold: 0.0 })),
    };
    let reply = client.detect(modified).await.unwrap().into_inner();
    assert_eq!(reply.indices, [4]);
    let Some(v1::series_stats::Stats::ModifiedZScore(m)) = &reply.series[0].stats else {
        panic!("modified stats")
    };
    assert_eq!((m.median, m.mad), (5.0, 0.09999999999999964));
}

#[tokio::test]
async fn v1_detect_refuses_bad_parameters_naming_them() {
    let server = common::start().await;
    let mut client = OutliersServiceClient::new(server.channel().await);
    let metrics = vec![v1_metric("a", 1.0)];
    let cases = [
        (v1::method::Kind::ZScore(v1::ZScore { threshold: -1.0, sample: false }), "method.z_score.threshold"),
        (
            v1::method::Kind::ModifiedZScore(v1::ModifiedZScore { threshold: f64::NAN }),
            "method.modified_z_score",
        ),
        (v1::method::Kind::Iqr(v1::Iqr { k: f64::INFINITY }), "method.iqr.k"),
    ];
    for (kind, field) in cases {
        let request = v1::DetectRequest { metrics: metrics.clone(), method: method(kind) };
        assert_status(client.detect(request).await, Code::InvalidArgument, &[field]);
    }
}

/// Opens a DetectStream; returns the sender of requests and the reply stream.
async fn open_stream(
    server: &common::TestServer,
) -> (mpsc::Sender<v1::DetectStreamRequest>, tonic::Streaming<v1::DetectStreamResponse>) {
    let mut client = OutliersServiceClient::new(server.channel().await);
    let (tx, rx) = mpsc::channel(16);
    let replies = client.detect_stream(ReceiverStream::new(rx)).await.expect("opens").into_inner();
    (tx, replies)
}

fn batch(first: bool, window: u32, metrics: Vec<v1::Metric>) -> v1::DetectStreamRequest {
    v1::DetectStreamRequest { method: None, window: if first { window } else { 0 }, metrics }
}

#[tokio::test]
async fn detect_stream_answers_each_anomaly_as_soon_as_its_message_is_read() {
    let server = common::start().await;
    let (tx, mut replies) = open_stream(&server).await;
    // A steady wave in two series; the window (10) holds only earlier points.
    let wave = |i: usize| 10.0 + (i % 5) as f64 * 0.1;
    let steady: Vec<_> =
        (0..20).flat_map(|i| [v1_metric("a", wave(i)), v1_metric("b", 100.0 + wave(i))]).collect();
    tx.send(batch(true, 10, steady)).await.unwrap();
    tx.send(batch(false, 0, vec![v1_metric("b", 100.0 + wave(2)), v1_metric("a", 50.0)])).await.unwrap();
    // The anomaly arrives while the stream is still open.
    let reply = replies.message().await.unwrap().expect("an anomaly");
    let [anomaly] = reply.anomalies.as_slice() else { panic!("{:?}", reply.anomalies) };
    assert_eq!((anomaly.index, anomaly.window_points), (41, 10));
    assert_eq!(anomaly.metric.as_ref().map(|m| (m.name.as_str(), m.value)), Some(("a", 50.0)));
    assert!(anomaly.score > 2.0, "{}", anomaly.score);
    drop(tx);
    assert!(replies.message().await.unwrap().is_none(), "the stream ends when the client's does");
}

/// Sends `requests`, closes the stream and reads every anomaly to its end.
async fn stream_anomalies(
    server: &common::TestServer,
    requests: Vec<v1::DetectStreamRequest>,
) -> Vec<v1::Anomaly> {
    let (tx, mut replies) = open_stream(server).await;
    for r in requests {
        tx.send(r).await.expect("the call takes requests");
    }
    drop(tx);
    let mut out = Vec::new();
    while let Some(reply) = replies.message().await.expect("the stream ends OK") {
        out.extend(reply.anomalies);
    }
    out
}

#[tokio::test]
async fn a_spike_at_point_50_is_flagged_by_detect_and_by_detect_stream_with_a_window_of_100() {
    // README: tail -f metrics.csv | dataport outliers --stream --window 100 -
    let server = common::start().await;
    let mut client = OutliersServiceClient::new(server.channel().await);
    // Two series interleaved; cpu's point 50 is a spike, at position 100 of both.
    let cpu = |i: u32| if i == 50 { 95.0 } else { 40.0 + f64::from(i % 4) };
    let metrics: Vec<_> =
        (0..60).flat_map(|i| [v1_metric("cpu", cpu(i)), v1_metric("mem", 70.0 + f64::from(i % 3))]).collect();
    let batch_reply =
        client.detect(v1::DetectRequest { metrics: metrics.clone(), method: None }).await.unwrap();
    assert_eq!(batch_reply.into_inner().indices, [100]);

    // Sent in pieces, as a live feed comes.
    let requests: Vec<_> =
        metrics.chunks(7).enumerate().map(|(i, m)| batch(i == 0, 100, m.to_vec())).collect();
    let found = stream_anomalies(&server, requests).await;
    let [anomaly] = found.as_slice() else { panic!("{found:?}") };
    assert_eq!((anomaly.index, anomaly.window_points, anomaly.warm_up), (100, 50, true));
    assert_eq!(anomaly.metric.as_ref().map(|m| (m.name.as_str(), m.value)), Some(("cpu", 95.0)));
}

#[tokio::test]
async fn detect_stream_judges_no_point_before_the_methods_min_points() {
    let server = common::start().await;
    let z3 = method(v1::method::Kind::ZScore(v1::ZScore { threshold: 3.0, sample: false }));
    let iqr = method(v1::method::Kind::Iqr(v1::Iqr { k: 3.5 }));
    let modified = method(v1::method::Kind::ModifiedZScore(v1::ModifiedZScore { threshold: 0.0 }));
    // The fewest points each method can flag anything with, at its threshold.
    for (m, min) in [(None, 5), (z3, 10), (iqr, 5), (modified, 3)] {
        let alternating = |n: usize| (0..n).map(|i| (i % 2) as f64);
        // a's spike comes after min - 1 points: not judged; b's after min: judged.
        let mut metrics: Vec<_> = alternating(min - 1).map(|v| v1_metric("a", v)).collect();
        metrics.push(v1_metric("a", 1000.0));
        metrics.extend(alternating(min).map(|v| v1_metric("b", v)));
        metrics.push(v1_metric("b", 1000.0));
        let first = v1::DetectStreamRequest { method: m, window: 100, metrics };
        let found = stream_anomalies(&server, vec![first]).await;
        let got: Vec<_> = found.iter().map(|a| (a.index, a.window_points, a.warm_up)).collect();
        assert_eq!(got, [(2 * min as u64, min as u32, true)], "min_points {min}");
    }
}

#[tokio::test]
async fn detect_stream_marks_warm_up_anomalies_and_none_once_the_window_is_full() {
    let server = common::start().await;
    // Window 10: a spike at point 6 is judged against 6 points, one at point 25 against 10.
    let values: Vec<f64> =
        (0..30).map(|i| if i == 6 || i == 25 { 500.0 } else { f64::from(i % 2) }).collect();
    let metrics = values.iter().map(|&v| v1_metric("a", v)).collect();
    let found = stream_anomalies(&server, vec![batch(true, 10, metrics)]).await;
    let got: Vec<_> = found.iter().map(|a| (a.index, a.window_points, a.warm_up)).collect();
    assert_eq!(got, [(6, 6, true), (25, 10, false)]);
}

#[tokio::test]
async fn detect_stream_refuses_bad_streams() {
    let server = common::start().await;
    let status = async |requests: Vec<v1::DetectStreamRequest>| {
        let (tx, mut replies) = open_stream(&server).await;
        for r in requests {
            let _ = tx.send(r).await;
        }
        drop(tx);
        loop {
            match replies.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended OK"),
                Err(status) => return status,
            }
        }
    };
    let check = |s: tonic::Status, code: Code, part: &str| {
        assert_eq!(s.code(), code, "{s:?}");
        assert!(s.message().contains(part), "{:?} should mention {part:?}", s.message());
    };
    let s = status(vec![batch(true, 1_000_000, vec![])]).await;
    check(s, Code::InvalidArgument, "window 1000000 is larger than the server's limit of 10000");
    let s = status(vec![batch(true, 1, vec![])]).await;
    check(s, Code::InvalidArgument, "window 1 is too small");
    let later_method = v1::DetectStreamRequest {
        method: method(v1::method::Kind::Iqr(v1::Iqr { k: 1.0 })),
        ..batch(false, 0, vec![])
    };
    let s = status(vec![batch(true, 0, vec![v1_metric("a", 1.0)]), later_method]).await;
    check(s, Code::InvalidArgument, "first message only");
    let s = status(vec![batch(true, 0, vec![v1_metric("a", 1.0), v1_metric("a", f64::NAN)])]).await;
    check(s, Code::InvalidArgument, "metric 1 of the stream");
}

#[tokio::test]
async fn detect_stream_past_the_series_limit_is_resource_exhausted_after_what_it_found() {
    let (mut config, dir) = common::config();
    config.max_stream_series = 2;
    let server = common::start_with(config, dir).await;
    let (tx, mut replies) = open_stream(&server).await;
    let mut metrics: Vec<_> = (0..100).map(|i| v1_metric("a", f64::from(i % 2))).collect();
    metrics.push(v1_metric("a", 100.0));
    metrics.push(v1_metric("b", 1.0));
    metrics.push(v1_metric("c", 1.0));
    tx.send(batch(true, 0, metrics)).await.unwrap();
    let reply = replies.message().await.unwrap().expect("the anomaly comes first");
    assert_eq!(reply.anomalies[0].index, 100);
    let status = replies.message().await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("metric 102") && status.message().contains("2 series"), "{status:?}");
}

#[tokio::test]
async fn detect_stream_ends_unavailable_when_the_server_drains() {
    let mut server = common::start().await;
    let (tx, mut replies) = open_stream(&server).await;
    tx.send(batch(true, 0, vec![v1_metric("a", 1.0)])).await.unwrap();
    server.signal_shutdown();
    let status = replies.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    drop(tx);
    server.stop().await;
}
