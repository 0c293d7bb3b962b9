//! Positions: the seed `posXYZ.PositionService` (compat.rs, the entity
//! "default") and `dataport.position.v1.PositionService` (v1.rs), over
//! [`Positions`]: one [`Hub`] of live positions and watchers (hub.rs), alone
//! or as this replica's copy of the shared database's positions.

pub mod compat;
mod hub;
pub mod v1;

use std::sync::Arc;
use std::time::Duration;

use dataport_core::position::{self, DEFAULT_ENTITY, PositionError, Vec3};
use dataport_store::positions::{News, PgPositions, Stored};
use tonic::Status;

use crate::drain::Drain;
use crate::off_reactor;

pub use hub::{Hub, Snapshot, TooManyEntities};

/// Where positions are kept. Alone, the hub is the truth. With a shared
/// store (`bars_url`), the database is: a publish is acknowledged once it is
/// stored there, a read asks it, and every replica's hub takes each publish
/// from the database's notifications and hands it to its watchers, so a
/// publisher never waits for a watcher on any replica.
#[derive(Clone, Debug)]
pub struct Positions {
    hub: Arc<Hub>,
    shared: Option<Arc<PgPositions>>,
    max_entities: usize,
}

impl Positions {
    pub fn new(hub: Arc<Hub>, shared: Option<Arc<PgPositions>>, max_entities: usize) -> Self {
        Positions { hub, shared, max_entities }
    }

    /// Records `position` (validated) for `entity` and hands it to watchers.
    pub async fn publish(&self, entity: &str, position: Vec3) -> Result<Snapshot, Status> {
        let Some(store) = &self.shared else {
            return self.hub.publish(entity, position).map_err(full);
        };
        let (store, owned, limit) = (Arc::clone(store), entity.to_owned(), self.max_entities);
        match off_reactor(move || store.publish(&owned, position, limit)).await?.map_err(unavailable)? {
            Some(stored) => {
                let snapshot = snapshot(stored);
                // This replica's watchers need not wait for the notification.
                self.hub.apply(snapshot.clone());
                Ok(snapshot)
            }
            None => Err(full(TooManyEntities { entity: entity.to_owned(), limit: self.max_entities })),
        }
    }

    /// The latest position of `entity`; "default" has one before any publish.
    pub async fn get(&self, entity: &str) -> Result<Option<Snapshot>, Status> {
        let Some(store) = &self.shared else {
            return Ok(self.hub.get(entity));
        };
        let (store, owned) = (Arc::clone(store), entity.to_owned());
        match off_reactor(move || store.get(&owned)).await?.map_err(unavailable)? {
            Some(stored) => Ok(Some(snapshot(stored))),
            // Never published anywhere: the hub holds its initial position.
            None if entity == DEFAULT_ENTITY => Ok(self.hub.get(entity)),
            None => Ok(None),
        }
    }

    /// A watcher of `entities` (every entity when empty) on this replica.
    pub fn watch(&self, entities: Vec<String>) -> Arc<hub::Watcher> {
        self.hub.watch(entities)
    }

    /// Feeds the hub every publish made through any replica, and everything
    /// stored when it starts or after the database comes back, until the
    /// drain starts. Without a shared store there is nothing to follow.
    pub fn follow(&self, drain: &Drain) {
        let Some(store) = self.shared.clone() else { return };
        let (tell, mut news) = tokio::sync::mpsc::unbounded_channel();
        // The subscriber runs on the database's thread: it only hands on.
        store.subscribe(Arc::new(move |n| {
            let _ = tell.send(n);
        }));
        let (hub, stop) = (Arc::clone(&self.hub), drain.signaled());
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut next = Some(News::Resync);
            while let Some(n) = next.take() {
                match n {
                    News::Published(stored) => {
                        hub.apply(snapshot(stored));
                    }
                    News::Resync => resync(&hub, &store).await,
                }
                next = tokio::select! {
                    () = &mut stop => None,
                    n = news.recv() => n,
                };
            }
        });
    }
}

/// Takes every stored position into `hub` (those it lacks or holds older).
async fn resync(hub: &Hub, store: &Arc<PgPositions>) {
    let store = Arc::clone(store);
    match off_reactor(move || store.all()).await {
        Ok(Ok(all)) => {
            let taken = all.into_iter().filter(|s| hub.apply(snapshot(s.clone()))).count();
            tracing::info!(taken, "positions: read the shared store's latest positions");
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "positions: cannot read the shared store; watchers wait for news")
        }
        Err(e) => tracing::warn!(error = %e, "positions: cannot read the shared store"),
    }
}

fn snapshot(stored: Stored) -> Snapshot {
    Snapshot {
        entity: Arc::from(stored.entity),
        position: stored.position,
        time: stored.time,
        revision: stored.revision,
    }
}

fn unavailable(e: dataport_store::postgres::DbError) -> Status {
    tracing::warn!(error = %e, "positions: the shared store failed");
    Status::unavailable(format!("{e}; try again"))
}

fn invalid(e: PositionError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn full(e: TooManyEntities) -> Status {
    Status::resource_exhausted(e.to_string())
}

/// Moves "default" around the unit circle until the drain starts.
pub async fn simulate_orbit(positions: Positions, drain: Drain) {
    let mut ticks = drain.every(Duration::from_millis(100));
    let mut step = 0;
    while ticks.next().await {
        step += 1;
        if let Err(e) = positions.publish(DEFAULT_ENTITY, position::orbit(step)).await {
            tracing::error!(error = %e, "orbit could not publish");
        }
    }
}
