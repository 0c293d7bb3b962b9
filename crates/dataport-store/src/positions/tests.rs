use std::sync::mpsc;
use std::time::Instant;

use super::*;

#[test]
fn a_payload_carries_the_position_exactly_and_names_with_spaces() {
    let stored = Stored::from_payload("0.1 -1e-300 3 1700000000123456 7 drone 7 north").unwrap();
    assert_eq!(stored.position, Vec3 { x: 0.1, y: -1e-300, z: 3.0 });
    assert_eq!(stored.time, UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
    assert_eq!((stored.revision, stored.entity.as_str()), (7, "drone 7 north"));
    assert_eq!(Stored::from_payload("1 2 3"), None);
    assert_eq!(Stored::from_payload("1 2 x 4 5 e"), None);
}

/// Two replicas' views of one new database.
fn replicas() -> (PgPositions, PgPositions) {
    let url = crate::postgres::test_database();
    let open = || PgPositions::open(Database::connect(&url, 2).unwrap()).unwrap();
    (open(), open())
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn a_publish_through_one_replica_is_read_and_heard_on_another() {
    let (one, two) = replicas();
    let (heard, hearing) = mpsc::channel();
    two.subscribe(Arc::new(move |news| {
        let _ = heard.send((news, Instant::now()));
    }));
    let p = Vec3 { x: 0.1, y: -2.5e-7, z: 1e300 };
    let sent = Instant::now();
    let first = one.publish("drone 7", p, 10).unwrap().unwrap();
    assert_eq!((first.revision, first.position), (1, p));
    // Read on the other replica as soon as the publish is acknowledged.
    assert_eq!(two.get("drone 7").unwrap(), Some(first.clone()));
    let (news, at) = hearing.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(news, News::Published(first));
    let late = at.duration_since(sent);
    assert!(late < Duration::from_millis(100), "the other replica heard the publish after {late:?}");
    let second = one.publish("drone 7", Vec3::default(), 10).unwrap().unwrap();
    assert_eq!(second.revision, 2);
    assert_eq!(two.all().unwrap(), [second]);
    assert_eq!(two.get("nobody").unwrap(), None);
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn new_entities_past_the_limit_are_refused_and_known_ones_update() {
    let (one, two) = replicas();
    one.publish("a", Vec3::default(), 2).unwrap().unwrap();
    two.publish("b", Vec3::default(), 2).unwrap().unwrap();
    assert_eq!(one.publish("c", Vec3::default(), 2).unwrap(), None);
    assert_eq!(two.publish("a", Vec3::default(), 2).unwrap().unwrap().revision, 2);
    assert_eq!(one.all().unwrap().len(), 2);
}
