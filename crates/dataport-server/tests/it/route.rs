use crate::common;

use common::assert_status;
use dataport_proto::routeguide::route_guide_client::RouteGuideClient;
use dataport_proto::routeguide::{Point, Rectangle, RouteNote};
use dataport_server::{Server, StartError};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

const EIFFEL: Point = Point { latitude: 488_583_701, longitude: 22_944_813 };
const BERLIN_GATE: Point = Point { latitude: 525_162_746, longitude: 133_777_041 };
const COLOSSEUM: Point = Point { latitude: 418_902_102, longitude: 124_922_309 };

async fn list(
    client: &mut RouteGuideClient<Channel>,
    lo: Option<Point>,
    hi: Option<Point>,
) -> Result<Vec<String>, tonic::Status> {
    let mut stream = client.list_features(Rectangle { lo, hi }).await?.into_inner();
    let mut names = Vec::new();
    while let Some(f) = stream.next().await {
        names.push(f?.name);
    }
    Ok(names)
}

#[tokio::test]
async fn get_feature_answers_the_feature_or_an_unnamed_one_at_the_point() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let f = client.get_feature(EIFFEL).await.expect("ok").into_inner();
    assert_eq!((f.name.as_str(), f.location), ("Eiffel Tower, Paris, France", Some(EIFFEL)));
    let off = Point { latitude: EIFFEL.latitude + 1, longitude: EIFFEL.longitude };
    let f = client.get_feature(off).await.expect("ok").into_inner();
    assert_eq!((f.name.as_str(), f.location), ("", Some(off)));
    assert_status(
        client.get_feature(Point { latitude: 900_000_001, longitude: 0 }).await,
        Code::InvalidArgument,
        &["point", "latitude 900000001"],
    );
    assert_status(
        client.get_feature(Point { latitude: 0, longitude: -1_800_000_001 }).await,
        Code::InvalidArgument,
        &["longitude -1800000001"],
    );
}

#[tokio::test]
async fn list_features_is_inclusive_whichever_corners_are_given() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    // The box with the Eiffel Tower and the Brandenburg Gate at its corners
    // holds both, on its edges, and Amsterdam inside; Prague lies just east.
    let swapped = list(&mut client, Some(BERLIN_GATE), Some(EIFFEL)).await.expect("ok");
    let straight = list(&mut client, Some(EIFFEL), Some(BERLIN_GATE)).await.expect("ok");
    let mixed = list(
        &mut client,
        Some(Point { latitude: EIFFEL.latitude, longitude: BERLIN_GATE.longitude }),
        Some(Point { latitude: BERLIN_GATE.latitude, longitude: EIFFEL.longitude }),
    )
    .await
    .expect("ok");
    assert_eq!(
        straight,
        [
            "Eiffel Tower, Paris, France",
            "Brandenburg Gate, Berlin, Germany",
            "Rijksmuseum, Amsterdam, Netherlands"
        ]
    );
    assert_eq!(swapped, straight);
    assert_eq!(mixed, straight);
    assert_eq!(
        list(&mut client, Some(COLOSSEUM), Some(COLOSSEUM)).await.expect("ok"),
        ["Colosseum, Rome, Italy"]
    );
    let world = list(
        &mut client,
        Some(Point { latitude: -900_000_000, longitude: -1_800_000_000 }),
        Some(Point { latitude: 900_000_000, longitude: 1_800_000_000 }),
    )
    .await
    .expect("ok");
    assert_eq!(world.len(), 24);
    assert!(
        list(
            &mut client,
            Some(Point { latitude: 1, longitude: 1 }),
            Some(Point { latitude: 2, longitude: 2 })
        )
        .await
        .expect("ok")
        .is_empty()
    );
}

#[tokio::test]
async fn list_features_refuses_a_missing_or_impossible_corner() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    assert_status(list(&mut client, None, Some(EIFFEL)).await, Code::InvalidArgument, &["lo is required"]);
    assert_status(list(&mut client, Some(EIFFEL), None).await, Code::InvalidArgument, &["hi is required"]);
    assert_status(
        list(&mut client, Some(EIFFEL), Some(Point { latitude: -900_000_001, longitude: 0 })).await,
        Code::InvalidArgument,
        &["hi", "latitude -900000001"],
    );
}

#[tokio::test]
async fn record_route_counts_points_features_and_metres() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let route = [EIFFEL, Point { latitude: 1, longitude: 1 }, BERLIN_GATE, COLOSSEUM, COLOSSEUM];
    let s = client.record_route(tokio_stream::iter(route)).await.expect("ok").into_inner();
    // The haversine legs, summed as floats then truncated, from an independent
    // Python computation (R = 6371000 m, coordinates / 1e7):
    // 5437263.958 + 5971081.764 + 1183432.059 + 0 = 12591777.78
    let expected: f64 = route.windows(2).map(|w| haversine(w[0], w[1])).sum();
    assert_eq!((s.point_count, s.feature_count, s.elapsed_time), (5, 4, 0));
    assert_eq!(s.distance, expected as i32);
    assert_eq!(s.distance, 12_591_777);

    let empty = client.record_route(tokio_stream::iter(Vec::<Point>::new())).await.expect("ok").into_inner();
    assert_eq!((empty.point_count, empty.feature_count, empty.distance, empty.elapsed_time), (0, 0, 0, 0));

    let bad = [EIFFEL, Point { latitude: 0, longitude: 1_800_000_001 }];
    assert_status(
        client.record_route(tokio_stream::iter(bad)).await,
        Code::InvalidArgument,
        &["point 1", "longitude 1800000001"],
    );
}

/// A second, plain implementation of the rule, to cross-check the server's.
fn haversine(a: Point, b: Point) -> f64 {
    let rad = |v: i32| (f64::from(v) / 1e7).to_radians();
    let (p1, p2) = (rad(a.latitude), rad(b.latitude));
    let (dp, dl) = (p2 - p1, rad(b.longitude) - rad(a.longitude));
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6_371_000.0 * 2.0 * h.sqrt().asin()
}

fn note(p: Point, message: &str) -> RouteNote {
    RouteNote { location: Some(p), message: message.into() }
}

async fn chat(
    client: &mut RouteGuideClient<Channel>,
    notes: Vec<RouteNote>,
) -> Result<Vec<String>, tonic::Status> {
    let mut replies = client.route_chat(tokio_stream::iter(notes)).await?.into_inner();
    let mut got = Vec::new();
    while let Some(n) = replies.next().await {
        let n = n?;
        got.push(format!("{}:{}", n.location.map_or(0, |p| p.latitude), n.message));
    }
    Ok(got)
}

#[tokio::test]
async fn route_chat_answers_each_note_with_the_earlier_ones_at_its_place() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let (a, b) = (Point { latitude: 1, longitude: 1 }, Point { latitude: 2, longitude: 2 });
    let got =
        chat(&mut client, vec![note(a, "first"), note(b, "other"), note(a, "second"), note(a, "third")])
            .await
            .expect("ok");
    assert_eq!(got, ["1:first", "1:first", "1:second"]);
    // Notes are kept per call: a new call starts with none.
    assert_eq!(chat(&mut client, vec![note(a, "again")]).await.expect("ok"), Vec::<String>::new());
}

#[tokio::test]
async fn route_chat_replies_as_notes_arrive() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies =
        client.route_chat(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("ok").into_inner();
    tx.send(note(EIFFEL, "one")).await.expect("send");
    tx.send(note(EIFFEL, "two")).await.expect("send");
    // The reply to the second note arrives while the call is still open.
    let reply = replies.next().await.expect("a reply").expect("ok");
    assert_eq!(reply.message, "one");
    drop(tx);
    assert!(replies.next().await.is_none());
}

#[tokio::test]
async fn route_chat_refuses_a_note_without_a_location() {
    let server = common::start().await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let notes = vec![note(EIFFEL, "fine"), RouteNote { location: None, message: "lost".into() }];
    assert_status(chat(&mut client, notes).await, Code::InvalidArgument, &["note 1: location is required"]);
}

#[tokio::test]
async fn a_features_file_replaces_the_builtin_landmarks() {
    let (mut config, dir) = common::config();
    let path = dir.path().join("db.json");
    std::fs::write(
        &path,
        r#"[{"location":{"latitude":407838351,"longitude":-746143763},"name":"Patriots Path, Mendham, NJ 07945, USA"},
            {"location":{"latitude":408122808,"longitude":-743999179},"name":""}]"#,
    )
    .expect("write");
    config.features = Some(path);
    let server = common::start_with(config, dir).await;
    let mut client = RouteGuideClient::new(server.channel().await);
    let f = client
        .get_feature(Point { latitude: 407_838_351, longitude: -746_143_763 })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(f.name, "Patriots Path, Mendham, NJ 07945, USA");
    assert_eq!(client.get_feature(EIFFEL).await.expect("ok").into_inner().name, "");
    let route = [
        Point { latitude: 407_838_351, longitude: -746_143_763 },
        Point { latitude: 408_122_808, longitude: -743_999_179 },
    ];
    let s = client.record_route(tokio_stream::iter(route)).await.expect("ok").into_inner();
    assert_eq!(s.feature_count, 2, "an unnamed entry is still a stored feature, as the seed servers counted");
}

#[test]
fn a_bad_features_file_stops_the_start_naming_the_file() {
    let (mut config, dir) = common::config();
    let path = dir.path().join("db.json");
    std::fs::write(&path, r#"[{"location":{"latitude":999999999,"longitude":0},"name":"x"}]"#)
        .expect("write");
    config.features = Some(path.clone());
    let err = Server::new(config.clone()).unwrap_err();
    assert!(matches!(err, StartError::FeaturesParse { .. }));
    assert!(err.to_string().contains("db.json") && err.to_string().contains("feature 0"), "{err}");
    config.features = Some(dir.path().join("missing.json"));
    let err = Server::new(config).unwrap_err().to_string();
    assert!(
        err.starts_with("features = ") && err.contains("missing.json") && err.contains("cannot read"),
        "{err}"
    );
}
