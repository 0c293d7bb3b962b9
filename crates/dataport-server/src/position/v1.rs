//! `dataport.position.v1.PositionService`: any entity, and watches.

use std::pin::Pin;
use std::sync::Arc;

use dataport_core::position::{self, Vec3};
use dataport_proto::dataport::position::v1::{self as pb, position_service_server};
use futures_util::Stream;
use tonic::{Request, Response, Status};

use super::hub::Watcher;
use super::{Positions, Snapshot, invalid};
use crate::Reply;
use crate::drain::{Drain, EndOnDrain};
use crate::logging::Audit;

/// `dataport.position.v1.PositionService`.
#[derive(Clone, Debug)]
pub struct PositionService {
    positions: Positions,
}

/// `dataport.position.v1.PositionService` over `positions`; its watches end
/// with UNAVAILABLE when the drain starts.
pub fn position_service(
    positions: Positions,
    drain: Drain,
    max_message: usize,
) -> EndOnDrain<position_service_server::PositionServiceServer<PositionService>> {
    let server = position_service_server::PositionServiceServer::new(PositionService { positions });
    EndOnDrain::new(server.max_decoding_message_size(max_message), drain)
}

fn wire(s: Snapshot) -> pb::EntityPosition {
    pb::EntityPosition {
        entity: s.entity.to_string(),
        position: Some(pb::Vector3 { x: s.position.x, y: s.position.y, z: s.position.z }),
        update_time: Some(s.time.into()),
        revision: s.revision,
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl position_service_server::PositionService for PositionService {
    async fn publish(&self, request: Request<pb::PublishRequest>) -> Reply<pb::PublishResponse> {
        let audit = Audit::of(request.extensions());
        let req = request.into_inner();
        position::validate_entity(&req.entity).map_err(invalid)?;
        audit.object(&req.entity);
        let p = req.position.ok_or_else(|| Status::invalid_argument("position is required"))?;
        let p = Vec3 { x: p.x, y: p.y, z: p.z }.validate().map_err(invalid)?;
        let snapshot = self.positions.publish(&req.entity, p).await?;
        Ok(Response::new(pb::PublishResponse { position: Some(wire(snapshot)) }))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Reply<pb::GetResponse> {
        let entity = request.into_inner().entity;
        position::validate_entity(&entity).map_err(invalid)?;
        let snapshot = self
            .positions
            .get(&entity)
            .await?
            .ok_or_else(|| Status::not_found(format!("entity {entity:?} has never been published")))?;
        Ok(Response::new(pb::GetResponse { position: Some(wire(snapshot)) }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Reply<Self::WatchStream> {
        let entities = request.into_inner().entities;
        for entity in &entities {
            position::validate_entity(entity).map_err(invalid)?;
        }
        let watcher = self.positions.watch(entities);
        Ok(Response::new(Box::pin(watch_stream(watcher))))
    }
}

/// Yields each batch the watcher takes, one snapshot at a time. The stream
/// never ends by itself: the client cancels it, or the drain ends it.
fn watch_stream(watcher: Arc<Watcher>) -> impl Stream<Item = Result<pb::WatchResponse, Status>> + Send {
    let batch = Vec::new().into_iter();
    futures_util::stream::unfold((watcher, batch), |(watcher, mut batch)| async move {
        loop {
            if let Some(s) = batch.next() {
                return Some((Ok(pb::WatchResponse { position: Some(wire(s)) }), (watcher, batch)));
            }
            batch = watcher.next_batch().await.into_iter();
        }
    })
}
