//! RouteGuide geometry: points in degrees x 1e7, rectangles, great-circle
//! distance, the feature database and the per-call tallies of RecordRoute and
//! RouteChat.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Coordinates on the wire are degrees multiplied by this factor.
pub const COORD_FACTOR: f64 = 1e7;
/// The mean Earth radius the distance is measured on, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;
/// The largest latitude magnitude, in degrees x 1e7.
pub const MAX_LATITUDE: i32 = 900_000_000;
/// The largest longitude magnitude, in degrees x 1e7.
pub const MAX_LONGITUDE: i32 = 1_800_000_000;

/// A point on the Earth, in degrees x 1e7.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Point {
    pub latitude: i32,
    pub longitude: i32,
}

/// A coordinate outside the Earth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoordError {
    #[error("latitude {0} is outside -{MAX_LATITUDE}..={MAX_LATITUDE} (degrees x 1e7)")]
    Latitude(i32),
    #[error("longitude {0} is outside -{MAX_LONGITUDE}..={MAX_LONGITUDE} (degrees x 1e7)")]
    Longitude(i32),
}

impl Point {
    pub const fn new(latitude: i32, longitude: i32) -> Self {
        Point { latitude, longitude }
    }

    /// Checks that the point lies on the Earth.
    pub fn validate(self) -> Result<Self, CoordError> {
        if !(-MAX_LATITUDE..=MAX_LATITUDE).contains(&self.latitude) {
            return Err(CoordError::Latitude(self.latitude));
        }
        if !(-MAX_LONGITUDE..=MAX_LONGITUDE).contains(&self.longitude) {
            return Err(CoordError::Longitude(self.longitude));
        }
        Ok(self)
    }

    pub fn latitude_deg(self) -> f64 {
        f64::from(self.latitude) / COORD_FACTOR
    }

    pub fn longitude_deg(self) -> f64 {
        f64::from(self.longitude) / COORD_FACTOR
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.7}, {:.7}", self.latitude_deg(), self.longitude_deg())
    }
}

/// The great-circle distance between two points in metres, by the haversine
/// formula on a sphere of radius [`EARTH_RADIUS_M`].
pub fn distance_m(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.latitude_deg().to_radians(), b.latitude_deg().to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.longitude_deg() - a.longitude_deg()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().atan2((1.0 - h).sqrt())
}

/// A closed latitude/longitude box, built from any two opposite corners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    lat: (i32, i32),
    lon: (i32, i32),
}

impl Rect {
    pub fn from_corners(a: Point, b: Point) -> Self {
        Rect {
            lat: (a.latitude.min(b.latitude), a.latitude.max(b.latitude)),
            lon: (a.longitude.min(b.longitude), a.longitude.max(b.longitude)),
        }
    }

    /// True when `p` is inside the box or on its edge.
    pub fn contains(&self, p: Point) -> bool {
        (self.lat.0..=self.lat.1).contains(&p.latitude) && (self.lon.0..=self.lon.1).contains(&p.longitude)
    }
}

/// A named place. An empty name means "no feature here".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    #[serde(default)]
    pub name: String,
    pub location: Point,
}

/// Why a features file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    #[error(
        "not a JSON list of {{\"location\": {{\"latitude\": N, \"longitude\": N}}, \"name\": \"...\"}}: {0}"
    )]
    Json(#[from] serde_json::Error),
    #[error("feature {index} ({name:?}): {error}")]
    Coordinate { index: usize, name: String, error: CoordError },
}

/// The features RouteGuide serves, indexed by location.
#[derive(Clone, Debug, Default)]
pub struct FeatureDb {
    features: Vec<Feature>,
    by_point: HashMap<Point, usize>,
}

/// Landmarks of our own choosing, served when no features file is given.
const BUILTIN_FEATURES: &str = include_str!("builtin_features.json");

impl FeatureDb {
    /// Indexes `features`; where two share a location, the first one wins.
    pub fn new(features: Vec<Feature>) -> Self {
        let mut by_point = HashMap::with_capacity(features.len());
        for (i, f) in features.iter().enumerate() {
            by_point.entry(f.location).or_insert(i);
        }
        FeatureDb { features, by_point }
    }

    /// Parses the JSON shape of grpc's `route_guide_db.json` and checks every
    /// coordinate.
    pub fn from_json(json: &str) -> Result<Self, FeaturesError> {
        let features: Vec<Feature> = serde_json::from_str(json)?;
        for (index, f) in features.iter().enumerate() {
            f.location.validate().map_err(|error| FeaturesError::Coordinate {
                index,
                name: f.name.clone(),
                error,
            })?;
        }
        Ok(FeatureDb::new(features))
    }

    /// The built-in landmarks.
    pub fn builtin() -> Self {
        match FeatureDb::from_json(BUILTIN_FEATURES) {
            Ok(db) => db,
            Err(e) => panic!("builtin_features.json is compiled in and must parse: {e}"),
        }
    }

    /// The feature stored at exactly `p`, named or not.
    pub fn at(&self, p: Point) -> Option<&Feature> {
        self.by_point.get(&p).map(|&i| &self.features[i])
    }

    /// Every feature inside `rect`, in file order.
    pub fn within(&self, rect: Rect) -> impl Iterator<Item = &Feature> + '_ {
        self.features.iter().filter(move |f| rect.contains(f.location))
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }
}

/// What RecordRoute reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteSummary {
    pub point_count: i32,
    pub feature_count: i32,
    pub distance_m: i32,
    pub elapsed_secs: i32,
}

/// RecordRoute's running totals.
///
/// A point counts as a feature when the database holds an entry at exactly
/// that location, as the seed servers counted. Distances are summed as floats
/// and truncated once, at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteTally {
    points: u64,
    features: u64,
    distance_m: f64,
    last: Option<Point>,
}

impl RouteTally {
    pub fn add(&mut self, p: Point, db: &FeatureDb) {
        self.points += 1;
        if db.at(p).is_some() {
            self.features += 1;
        }
        if let Some(last) = self.last {
            self.distance_m += distance_m(last, p);
        }
        self.last = Some(p);
    }

    /// The totals so far; counts past `i32::MAX` saturate.
    pub fn summary(&self, elapsed_secs: u64) -> RouteSummary {
        let sat = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        RouteSummary {
            point_count: sat(self.points),
            feature_count: sat(self.features),
            // `as` truncates toward zero and saturates, which is the rule.
            distance_m: self.distance_m as i32,
            elapsed_secs: sat(elapsed_secs),
        }
    }
}

/// RouteChat's memory of one call: the notes seen so far, by location.
#[derive(Debug)]
pub struct ChatLog {
    notes: HashMap<Point, Vec<String>>,
    bytes: usize,
    max_bytes: usize,
}

/// A call's notes outgrew [`ChatLog`]'s budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route chat keeps at most {max_bytes} bytes of notes per call")]
pub struct ChatFull {
    pub max_bytes: usize,
}

impl ChatLog {
    /// A log that refuses notes once their messages total more than `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        ChatLog { notes: HashMap::new(), bytes: 0, max_bytes }
    }

    /// The notes seen earlier at `p`, in arrival order.
    pub fn earlier(&self, p: Point) -> &[String] {
        self.notes.get(&p).map_or(&[], Vec::as_slice)
    }

    pub fn remember(&mut self, p: Point, message: String) -> Result<(), ChatFull> {
        let bytes = self.bytes.saturating_add(message.len());
        if bytes > self.max_bytes {
            return Err(ChatFull { max_bytes: self.max_bytes });
        }
        self.bytes = bytes;
        self.notes.entry(p).or_default().push(message);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
