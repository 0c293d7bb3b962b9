//! Positions: the seed `posXYZ.PositionService` (compat.rs, the entity
//! "default") and `dataport.position.v1.PositionService` (v1.rs), over one
//! [`Hub`] of live positions and watchers (hub.rs).

pub mod compat;
mod hub;
pub mod v1;

use std::sync::Arc;
use std::time::Duration;

use dataport_core::position::{self, DEFAULT_ENTITY, PositionError};
use tonic::Status;

use crate::drain::Drain;

pub use hub::{Hub, Snapshot, TooManyEntities};

fn invalid(e: PositionError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn full(e: TooManyEntities) -> Status {
    Status::resource_exhausted(e.to_string())
}

/// Moves "default" around the unit circle until the drain starts.
pub async fn simulate_orbit(hub: Arc<Hub>, drain: Drain) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let drained = drain.signaled();
    tokio::pin!(drained);
    for step in 1.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut drained => return,
        }
        if let Err(e) = hub.publish(DEFAULT_ENTITY, position::orbit(step)) {
            tracing::error!(error = %e, "orbit could not publish");
        }
    }
}
