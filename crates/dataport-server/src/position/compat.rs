//! The seed `posXYZ.PositionService`: the entity "default" only.

use dataport_core::position::{DEFAULT_ENTITY, Vec3};
use dataport_proto::pos_xyz::{self, position_service_server};
use tonic::{Request, Response, Status};

use super::{Positions, invalid};
use crate::Reply;
use crate::logging::Audit;

/// `posXYZ.PositionService`.
#[derive(Clone, Debug)]
pub struct PositionService {
    positions: Positions,
}

/// `posXYZ.PositionService` over `positions`.
pub fn position_service(
    positions: Positions,
    max_message: usize,
) -> position_service_server::PositionServiceServer<PositionService> {
    position_service_server::PositionServiceServer::new(PositionService { positions })
        .max_decoding_message_size(max_message)
}

#[tonic::async_trait]
impl position_service_server::PositionService for PositionService {
    async fn position_req(&self, _request: Request<pos_xyz::Msg>) -> Reply<pos_xyz::Position> {
        let s = self
            .positions
            .get(DEFAULT_ENTITY)
            .await?
            .ok_or_else(|| Status::internal("the default entity is missing"))?;
        // The seed contract carries f32; positions are kept as f64.
        let p = s.position;
        let pos = pos_xyz::Pos { x: p.x as f32, y: p.y as f32, z: p.z as f32 };
        Ok(Response::new(pos_xyz::Position { position: Some(pos), status: 0, msg: String::new() }))
    }

    async fn position_pub(&self, request: Request<pos_xyz::Position>) -> Reply<pos_xyz::Msg> {
        Audit::of(request.extensions()).object(DEFAULT_ENTITY);
        let pos =
            request.into_inner().position.ok_or_else(|| Status::invalid_argument("position is required"))?;
        let p = Vec3 { x: pos.x.into(), y: pos.y.into(), z: pos.z.into() }.validate().map_err(invalid)?;
        self.positions.publish(DEFAULT_ENTITY, p).await?;
        Ok(Response::new(pos_xyz::Msg { status: 0, msg: String::new() }))
    }
}
