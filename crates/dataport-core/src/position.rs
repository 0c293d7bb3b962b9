//! Positions of named entities: the rules for names and coordinates, and the
//! demo orbit.

/// The entity the seed `posXYZ.PositionService` reads and writes.
pub const DEFAULT_ENTITY: &str = "default";
/// Where "default" stands before anyone publishes.
pub const INITIAL_POSITION: Vec3 = Vec3 { x: 1.0, y: 0.0, z: 0.0 };
/// The longest entity name, in bytes.
pub const MAX_ENTITY_LEN: usize = 128;
/// How far the demo orbit turns per step, in degrees.
pub const ORBIT_STEP_DEG: f64 = 5.0;

/// A point in three dimensions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// Why an entity name or a position was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PositionError {
    #[error("entity must not be empty")]
    EmptyEntity,
    #[error("entity {name:?} is {len} bytes; the limit is {MAX_ENTITY_LEN}")]
    LongEntity { name: String, len: usize },
    #[error("entity {0:?} contains a control character")]
    ControlInEntity(String),
    #[error("position.{axis} must be finite, got {value}")]
    NotFinite { axis: &'static str, value: f64 },
}

/// Checks an entity name: 1 to [`MAX_ENTITY_LEN`] bytes, no control characters.
pub fn validate_entity(name: &str) -> Result<(), PositionError> {
    if name.is_empty() {
        return Err(PositionError::EmptyEntity);
    }
    if name.len() > MAX_ENTITY_LEN {
        let shown: String = name.chars().take(32).collect();
        return Err(PositionError::LongEntity { name: format!("{shown}..."), len: name.len() });
    }
    if name.chars().any(char::is_control) {
        return Err(PositionError::ControlInEntity(name.to_owned()));
    }
    Ok(())
}

impl Vec3 {
    /// Checks that every coordinate is finite.
    pub fn validate(self) -> Result<Self, PositionError> {
        for (axis, value) in [("x", self.x), ("y", self.y), ("z", self.z)] {
            if !value.is_finite() {
                return Err(PositionError::NotFinite { axis, value });
            }
        }
        Ok(self)
    }
}

/// The demo orbit's position after `step` steps: a circle of radius 1 around
/// the origin in the z = 0 plane, starting at [`INITIAL_POSITION`].
pub fn orbit(step: u64) -> Vec3 {
    // Reduce first so the angle stays exact however long the demo runs.
    let turns = 360.0 / ORBIT_STEP_DEG;
    let angle = ((step % turns as u64) as f64 * ORBIT_STEP_DEG).to_radians();
    Vec3 { x: angle.cos(), y: angle.sin(), z: 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names_follow_the_rules() {
        assert!(validate_entity("drone-7").is_ok());
        assert!(validate_entity(&"é".repeat(64)).is_ok());
        assert_eq!(validate_entity(""), Err(PositionError::EmptyEntity));
        assert!(matches!(validate_entity(&"a".repeat(129)), Err(PositionError::LongEntity { len: 129, .. })));
        assert_eq!(validate_entity("a\nb"), Err(PositionError::ControlInEntity("a\nb".into())));
    }

    #[test]
    fn non_finite_coordinates_are_named() {
        let e = Vec3 { x: 0.0, y: f64::NAN, z: 0.0 }.validate().unwrap_err();
        assert_eq!(e.to_string(), "position.y must be finite, got NaN");
        let e = Vec3 { x: 0.0, y: 0.0, z: f64::NEG_INFINITY }.validate().unwrap_err();
        assert_eq!(e.to_string(), "position.z must be finite, got -inf");
    }

    #[test]
    fn orbit_turns_five_degrees_a_step_on_the_unit_circle() {
        assert_eq!(orbit(0), INITIAL_POSITION);
        let p = orbit(18);
        assert!(p.x.abs() < 1e-12 && (p.y - 1.0).abs() < 1e-12);
        assert_eq!(orbit(72), orbit(0));
        for step in 0..200 {
            let p = orbit(step);
            assert!((p.x.hypot(p.y) - 1.0).abs() < 1e-12 && p.z == 0.0);
        }
    }
}
