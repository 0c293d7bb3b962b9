//! Positions: `posXYZ.PositionService` (compat, the entity "default") and
//! `dataport.position.v1.PositionService` over one [`Hub`].

mod hub;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dataport_core::position::{self, DEFAULT_ENTITY, PositionError, Vec3};
use dataport_proto::dataport::position::v1;
use dataport_proto::pos_xyz;
use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::drain::{Drain, EndOnDrain};

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

// ---- posXYZ.PositionService (compat) ----

#[derive(Clone, Debug)]
pub struct PositionCompat {
    hub: Arc<Hub>,
}

pub fn compat(hub: Arc<Hub>) -> pos_xyz::position_service_server::PositionServiceServer<PositionCompat> {
    pos_xyz::position_service_server::PositionServiceServer::new(PositionCompat { hub })
}

#[tonic::async_trait]
impl pos_xyz::position_service_server::PositionService for PositionCompat {
    async fn position_req(
        &self,
        _request: Request<pos_xyz::Msg>,
    ) -> Result<Response<pos_xyz::Position>, Status> {
        let s =
            self.hub.get(DEFAULT_ENTITY).ok_or_else(|| Status::internal("the default entity is missing"))?;
        // The seed contract carries f32; positions are kept as f64.
        let p = s.position;
        let pos = pos_xyz::Pos { x: p.x as f32, y: p.y as f32, z: p.z as f32 };
        Ok(Response::new(pos_xyz::Position { position: Some(pos), status: 0, msg: String::new() }))
    }

    async fn position_pub(
        &self,
        request: Request<pos_xyz::Position>,
    ) -> Result<Response<pos_xyz::Msg>, Status> {
        let pos =
            request.into_inner().position.ok_or_else(|| Status::invalid_argument("position is required"))?;
        let p = Vec3 { x: pos.x.into(), y: pos.y.into(), z: pos.z.into() }.validate().map_err(invalid)?;
        self.hub.publish(DEFAULT_ENTITY, p).map_err(full)?;
        Ok(Response::new(pos_xyz::Msg { status: 0, msg: String::new() }))
    }
}

// ---- dataport.position.v1.PositionService ----

#[derive(Clone, Debug)]
pub struct PositionV1 {
    hub: Arc<Hub>,
}

/// The v1 service; its watches end with UNAVAILABLE when the drain starts.
pub fn v1(
    hub: Arc<Hub>,
    drain: Drain,
) -> EndOnDrain<v1::position_service_server::PositionServiceServer<PositionV1>> {
    EndOnDrain::new(v1::position_service_server::PositionServiceServer::new(PositionV1 { hub }), drain)
}

fn wire(s: Snapshot) -> v1::EntityPosition {
    v1::EntityPosition {
        entity: s.entity.to_string(),
        position: Some(v1::Vector3 { x: s.position.x, y: s.position.y, z: s.position.z }),
        update_time: Some(s.time.into()),
        revision: s.revision,
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl v1::position_service_server::PositionService for PositionV1 {
    async fn publish(
        &self,
        request: Request<v1::PublishRequest>,
    ) -> Result<Response<v1::PublishResponse>, Status> {
        let req = request.into_inner();
        position::validate_entity(&req.entity).map_err(invalid)?;
        let p = req.position.ok_or_else(|| Status::invalid_argument("position is required"))?;
        let p = Vec3 { x: p.x, y: p.y, z: p.z }.validate().map_err(invalid)?;
        let snapshot = self.hub.publish(&req.entity, p).map_err(full)?;
        Ok(Response::new(v1::PublishResponse { position: Some(wire(snapshot)) }))
    }

    async fn get(&self, request: Request<v1::GetRequest>) -> Result<Response<v1::GetResponse>, Status> {
        let entity = request.into_inner().entity;
        position::validate_entity(&entity).map_err(invalid)?;
        let snapshot = self
            .hub
            .get(&entity)
            .ok_or_else(|| Status::not_found(format!("entity {entity:?} has never been published")))?;
        Ok(Response::new(v1::GetResponse { position: Some(wire(snapshot)) }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<v1::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let entities = request.into_inner().entities;
        for entity in &entities {
            position::validate_entity(entity).map_err(invalid)?;
        }
        let watcher = self.hub.watch(entities);
        Ok(Response::new(Box::pin(watch_stream(watcher))))
    }
}

/// Yields each batch the watcher takes, one snapshot at a time. The stream
/// never ends by itself: the client cancels it, or the drain ends it.
fn watch_stream(watcher: Arc<hub::Watcher>) -> impl Stream<Item = Result<v1::WatchResponse, Status>> + Send {
    let batch = Vec::new().into_iter();
    futures_util::stream::unfold((watcher, batch), |(watcher, mut batch)| async move {
        loop {
            if let Some(s) = batch.next() {
                return Some((Ok(v1::WatchResponse { position: Some(wire(s)) }), (watcher, batch)));
            }
            batch = watcher.next_batch().await.into_iter();
        }
    })
}
