use crate::common;

use std::time::Duration;

use common::assert_status;
use dataport_proto::dataport::position::v1::position_service_client::PositionServiceClient as V1Client;
use dataport_proto::dataport::position::v1::{
    EntityPosition, GetRequest, PublishRequest, Vector3, WatchRequest,
};
use dataport_proto::pos_xyz::position_service_client::PositionServiceClient as CompatClient;
use dataport_proto::pos_xyz::{Msg, Pos, Position};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

/// The entity's current position, which must exist.
async fn get(client: &mut V1Client<Channel>, entity: &str) -> EntityPosition {
    let reply = client.get(GetRequest { entity: entity.into() }).await.expect("ok");
    reply.into_inner().position.expect("position")
}

fn publish(entity: &str, x: f64) -> PublishRequest {
    PublishRequest { entity: entity.into(), position: Some(Vector3 { x, y: 0.5, z: -2.0 }) }
}

#[tokio::test]
async fn compat_position_starts_at_one_zero_zero_then_follows_publishes() {
    let server = common::start().await;
    let mut client = CompatClient::new(server.channel().await);
    let p = client.position_req(Msg::default()).await.expect("ok").into_inner();
    assert_eq!((p.position, p.status), (Some(Pos { x: 1.0, y: 0.0, z: 0.0 }), 0));

    let published =
        Position { position: Some(Pos { x: 0.25, y: -3.5, z: 7.0 }), status: 0, msg: "hi".into() };
    let ack = client.position_pub(published).await.expect("ok").into_inner();
    assert_eq!(ack.status, 0);
    let p = client.position_req(Msg::default()).await.expect("ok").into_inner();
    assert_eq!((p.position, p.status), (Some(Pos { x: 0.25, y: -3.5, z: 7.0 }), 0));
}

#[tokio::test]
async fn compat_publish_refuses_missing_or_non_finite_positions() {
    let server = common::start().await;
    let mut client = CompatClient::new(server.channel().await);
    let bad = |x: f32, z: f32| Position { position: Some(Pos { x, y: 0.0, z }), ..Position::default() };
    assert_status(
        client.position_pub(bad(f32::NAN, 0.0)).await,
        Code::InvalidArgument,
        &["position.x", "NaN"],
    );
    assert_status(
        client.position_pub(bad(0.0, f32::INFINITY)).await,
        Code::InvalidArgument,
        &["position.z", "inf"],
    );
    assert_status(
        client.position_pub(Position::default()).await,
        Code::InvalidArgument,
        &["position is required"],
    );
    // Nothing refused was stored.
    let p = client.position_req(Msg::default()).await.expect("ok").into_inner();
    assert_eq!(p.position, Some(Pos { x: 1.0, y: 0.0, z: 0.0 }));
}

#[tokio::test]
async fn v1_publish_and_get_track_revisions_per_entity() {
    let server = common::start().await;
    let mut client = V1Client::new(server.channel().await);
    let first =
        client.publish(publish("drone", 1.0)).await.expect("ok").into_inner().position.expect("position");
    assert_eq!((first.entity.as_str(), first.revision), ("drone", 1));
    assert!(first.update_time.is_some());
    client.publish(publish("drone", 2.0)).await.expect("ok");
    let got = get(&mut client, "drone").await;
    assert_eq!((got.revision, got.position), (2, Some(Vector3 { x: 2.0, y: 0.5, z: -2.0 })));
}

#[tokio::test]
async fn v1_refusals_name_the_field() {
    let server = common::start().await;
    let mut client = V1Client::new(server.channel().await);
    assert_status(client.get(GetRequest { entity: "ghost".into() }).await, Code::NotFound, &["\"ghost\""]);
    assert_status(
        client.get(GetRequest { entity: String::new() }).await,
        Code::InvalidArgument,
        &["entity must not be empty"],
    );
    assert_status(
        client.publish(publish("", 1.0)).await,
        Code::InvalidArgument,
        &["entity must not be empty"],
    );
    assert_status(
        client.publish(publish(&"x".repeat(129), 1.0)).await,
        Code::InvalidArgument,
        &["129 bytes", "128"],
    );
    assert_status(
        client.publish(publish("a\u{7}b", 1.0)).await,
        Code::InvalidArgument,
        &["control character"],
    );
    assert_status(
        client.publish(publish("drone", f64::NEG_INFINITY)).await,
        Code::InvalidArgument,
        &["position.x", "-inf"],
    );
    let no_position = PublishRequest { entity: "drone".into(), position: None };
    assert_status(client.publish(no_position).await, Code::InvalidArgument, &["position is required"]);
    assert_status(
        client.watch(WatchRequest { entities: vec!["ok".into(), String::new()] }).await,
        Code::InvalidArgument,
        &["entity"],
    );
    assert_status(client.get(GetRequest { entity: "drone".into() }).await, Code::NotFound, &["drone"]);
}

#[tokio::test]
async fn entities_past_the_limit_are_resource_exhausted() {
    let (mut config, dir) = common::config();
    config.max_entities = 2; // "default" and one more
    let server = common::start_with(config, dir).await;
    let mut client = V1Client::new(server.channel().await);
    client.publish(publish("one", 1.0)).await.expect("room for one");
    assert_status(
        client.publish(publish("two", 1.0)).await,
        Code::ResourceExhausted,
        &["at most 2 entities"],
    );
    client.publish(publish("one", 2.0)).await.expect("known entities still update");
}

#[tokio::test]
async fn compat_service_is_the_default_entity() {
    let server = common::start().await;
    let channel = server.channel().await;
    let (mut compat, mut v1) = (CompatClient::new(channel.clone()), V1Client::new(channel));
    let initial = get(&mut v1, "default").await;
    assert_eq!((initial.revision, initial.position), (0, Some(Vector3 { x: 1.0, y: 0.0, z: 0.0 })));

    compat
        .position_pub(Position { position: Some(Pos { x: 4.0, y: 5.0, z: 6.0 }), ..Position::default() })
        .await
        .expect("ok");
    let seen = get(&mut v1, "default").await;
    assert_eq!((seen.revision, seen.position), (1, Some(Vector3 { x: 4.0, y: 5.0, z: 6.0 })));

    v1.publish(publish("default", 0.125)).await.expect("ok");
    let p = compat.position_req(Msg::default()).await.expect("ok").into_inner();
    assert_eq!(p.position, Some(Pos { x: 0.125, y: 0.5, z: -2.0 }));
}

#[tokio::test]
async fn watch_streams_new_positions_of_the_entities_asked_for() {
    let server = common::start().await;
    let channel = server.channel().await;
    let mut publisher = V1Client::new(channel.clone());
    let mut watcher = V1Client::new(channel);
    // The watcher is registered once the call's response headers arrive.
    let mut one = watcher.watch(WatchRequest { entities: vec!["a".into()] }).await.expect("ok").into_inner();
    let mut all = watcher.watch(WatchRequest::default()).await.expect("ok").into_inner();
    publisher.publish(publish("b", 1.0)).await.expect("ok");
    publisher.publish(publish("a", 2.0)).await.expect("ok");

    let got = one.next().await.expect("a position").expect("ok").position.expect("position");
    assert_eq!((got.entity.as_str(), got.revision), ("a", 1));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let p = all.next().await.expect("a position").expect("ok").position.expect("position");
        seen.push(p.entity);
    }
    seen.sort();
    assert_eq!(seen, ["a", "b"]);
}

#[tokio::test]
async fn a_slow_watcher_gets_the_newest_position_and_never_blocks_publishers() {
    let server = common::start().await;
    let channel = server.channel().await;
    let mut publisher = V1Client::new(channel.clone());
    let mut watch = V1Client::new(channel)
        .watch(WatchRequest { entities: vec!["fast".into()] })
        .await
        .expect("ok")
        .into_inner();
    // The watcher reads nothing while 2,000 positions are published; every
    // publish still completes promptly.
    let publishing = async {
        for i in 0..2000 {
            publisher.publish(publish("fast", f64::from(i))).await.expect("ok");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), publishing)
        .await
        .expect("publishers are not blocked by a slow watcher");
    // It skips to the newest: the last publish arrives, whole.
    let last = loop {
        let p = watch.next().await.expect("a position").expect("ok").position.expect("position");
        if p.revision >= 2000 {
            break p;
        }
    };
    assert_eq!((last.revision, last.position.map(|v| v.x)), (2000, Some(1999.0)));
}

#[tokio::test]
async fn draining_ends_watches_with_unavailable() {
    let mut server = common::start().await;
    let mut watch =
        V1Client::new(server.channel().await).watch(WatchRequest::default()).await.expect("ok").into_inner();
    server.signal_shutdown();
    let end =
        tokio::time::timeout(Duration::from_secs(5), watch.next()).await.expect("the watch ends promptly");
    let status = end.expect("a final status").expect_err("an error status");
    assert_eq!(status.code(), Code::Unavailable);
    server.stop().await;
}
