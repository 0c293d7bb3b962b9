use proptest::prelude::*;

use super::*;

const EIFFEL: Point = Point::new(488_583_701, 22_944_813);
const BERLIN_GATE: Point = Point::new(525_162_746, 133_777_041);
const COLOSSEUM: Point = Point::new(418_902_102, 124_922_309);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn distance_matches_the_haversine_reference() {
    // Golden values from an independent Python haversine (math module, R = 6371000,
    // coordinates / 1e7), e.g. d((488583701, 22944813), (525162746, 133777041)).
    assert!(close(distance_m(EIFFEL, BERLIN_GATE), 879_088.517_626_552_7));
    assert!(close(
        distance_m(Point::new(409_146_138, -746_188_906), Point::new(413_628_156, -749_015_468)),
        55_173.225_407_747_93
    ));
    assert!(close(distance_m(Point::new(0, 0), Point::new(0, MAX_LONGITUDE)), 20_015_086.796_020_57));
    assert_eq!(distance_m(EIFFEL, EIFFEL), 0.0);
}

#[test]
fn route_sums_floats_and_truncates_once() {
    let db = FeatureDb::builtin();
    let mut tally = RouteTally::default();
    for p in [EIFFEL, BERLIN_GATE, COLOSSEUM] {
        tally.add(p, &db);
    }
    // 879088.5176 + 1183432.0594 = 2062520.5770 (Python reference above).
    let s = tally.summary(7);
    assert_eq!(s, RouteSummary { point_count: 3, feature_count: 3, distance_m: 2_062_520, elapsed_secs: 7 });
}

#[test]
fn route_counts_only_points_that_hold_a_feature() {
    let db = FeatureDb::builtin();
    let mut tally = RouteTally::default();
    tally.add(Point::new(1, 1), &db);
    tally.add(EIFFEL, &db);
    tally.add(EIFFEL, &db);
    let s = tally.summary(0);
    assert_eq!((s.point_count, s.feature_count), (3, 2));
}

#[test]
fn empty_route_is_all_zero() {
    assert_eq!(RouteTally::default().summary(0), RouteSummary::default());
}

#[test]
fn rect_is_inclusive_and_corner_order_free() {
    let a = Point::new(10, 20);
    let b = Point::new(30, 40);
    for r in [
        Rect::from_corners(a, b),
        Rect::from_corners(b, a),
        Rect::from_corners(Point::new(10, 40), Point::new(30, 20)),
    ] {
        assert!(
            r.contains(a)
                && r.contains(b)
                && r.contains(Point::new(10, 40))
                && r.contains(Point::new(20, 30))
        );
        assert!(!r.contains(Point::new(9, 30)) && !r.contains(Point::new(20, 41)));
    }
}

#[test]
fn builtin_features_are_named_and_distinct() {
    let db = FeatureDb::builtin();
    assert_eq!(db.len(), 24);
    assert_eq!(db.at(EIFFEL).map(|f| f.name.as_str()), Some("Eiffel Tower, Paris, France"));
    assert!(db.at(Point::new(EIFFEL.latitude + 1, EIFFEL.longitude)).is_none());
    let europe =
        Rect::from_corners(Point::new(350_000_000, -100_000_000), Point::new(600_000_000, 400_000_000));
    assert_eq!(db.within(europe).count(), 9);
}

#[test]
fn features_json_in_grpc_shape_parses_with_unnamed_entries() {
    let db = FeatureDb::from_json(
        r#"[{"location":{"latitude":407838351,"longitude":-746143763},"name":"Patriots Path, Mendham, NJ 07945, USA"},
            {"location":{"latitude":408122808,"longitude":-743999179},"name":""}]"#,
    )
    .expect("valid");
    assert_eq!(db.len(), 2);
    assert_eq!(db.at(Point::new(408_122_808, -743_999_179)).map(|f| f.name.as_str()), Some(""));
}

#[test]
fn features_json_errors_say_what_is_wrong() {
    let e = FeatureDb::from_json("{}").unwrap_err();
    assert!(e.to_string().contains("not a JSON list"), "{e}");
    let e = FeatureDb::from_json(r#"[{"location":{"latitude":1,"longitude":2},"name":"a"},{"location":{"latitude":900000001,"longitude":0},"name":"b"}]"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "feature 1 (\"b\"): latitude 900000001 is outside -900000000..=900000000 (degrees x 1e7)"
    );
    let e = FeatureDb::from_json(r#"[{"name":"no location"}]"#).unwrap_err();
    assert!(e.to_string().contains("location"), "{e}");
}

#[test]
fn first_feature_at_a_location_wins() {
    let f = |n: &str| Feature { name: n.into(), location: EIFFEL };
    let db = FeatureDb::new(vec![f("first"), f("second")]);
    assert_eq!(db.at(EIFFEL).map(|f| f.name.as_str()), Some("first"));
    assert_eq!(db.within(Rect::from_corners(EIFFEL, EIFFEL)).count(), 2);
}

#[test]
fn chat_log_returns_earlier_notes_in_order_and_enforces_its_budget() {
    let mut log = ChatLog::new(11);
    assert!(log.earlier(EIFFEL).is_empty());
    log.remember(EIFFEL, "one".into()).expect("fits");
    log.remember(BERLIN_GATE, "two".into()).expect("fits");
    log.remember(EIFFEL, "three".into()).expect("fits");
    assert_eq!(log.earlier(EIFFEL), ["one", "three"]);
    assert_eq!(log.remember(EIFFEL, "x".into()), Err(ChatFull { max_bytes: 11 }));
    assert_eq!(log.earlier(EIFFEL).len(), 2);
}

#[test]
fn coordinates_outside_the_earth_are_refused() {
    assert_eq!(Point::new(MAX_LATITUDE + 1, 0).validate(), Err(CoordError::Latitude(MAX_LATITUDE + 1)));
    assert_eq!(Point::new(0, -MAX_LONGITUDE - 1).validate(), Err(CoordError::Longitude(-MAX_LONGITUDE - 1)));
    assert!(Point::new(-MAX_LATITUDE, MAX_LONGITUDE).validate().is_ok());
}

proptest! {
    #[test]
    fn distance_is_symmetric_bounded_and_non_negative(
        a in (-MAX_LATITUDE..=MAX_LATITUDE, -MAX_LONGITUDE..=MAX_LONGITUDE),
        b in (-MAX_LATITUDE..=MAX_LATITUDE, -MAX_LONGITUDE..=MAX_LONGITUDE),
    ) {
        let (a, b) = (Point::new(a.0, a.1), Point::new(b.0, b.1));
        let d = distance_m(a, b);
        prop_assert!((0.0..=std::f64::consts::PI * EARTH_RADIUS_M + 1e-6).contains(&d));
        prop_assert!((d - distance_m(b, a)).abs() < 1e-6);
    }

    #[test]
    fn rect_contains_exactly_the_points_between_its_corners(
        a in any::<(i32, i32)>(), b in any::<(i32, i32)>(), p in any::<(i32, i32)>(),
    ) {
        let r = Rect::from_corners(Point::new(a.0, a.1), Point::new(b.0, b.1));
        let between = |x: i32, u: i32, v: i32| u.min(v) <= x && x <= u.max(v);
        prop_assert_eq!(r.contains(Point::new(p.0, p.1)), between(p.0, a.0, b.0) && between(p.1, a.1, b.1));
    }
}
