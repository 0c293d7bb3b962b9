//! `grpc.health.v1.Health` as gRPC publishes it today: Check, List and
//! Watch, over a fixed set of services ("" for the whole server, and every
//! service Dataport serves), each with a watch channel of its status.
//!
//! Watch of a service the server does not know answers SERVICE_UNKNOWN and
//! keeps the call open, as the protocol says (the service may yet appear;
//! ours never do, so the call lasts until the client ends it or the drain
//! does). Check of one is NOT_FOUND.

use std::collections::HashMap;
use std::sync::Arc;

use dataport_proto::grpc::health::v1::health_check_response::ServingStatus;
use dataport_proto::grpc::health::v1::health_server::{self, HealthServer};
use dataport_proto::grpc::health::v1::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};

/// Sets the statuses the service answers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reporter {
    statuses: Arc<HashMap<String, watch::Sender<ServingStatus>>>,
}

impl Reporter {
    /// Reports on "" and each of `services`, all NOT_SERVING until set.
    pub fn new<'a>(services: impl IntoIterator<Item = &'a str>) -> Reporter {
        let statuses = std::iter::once("")
            .chain(services)
            .map(|name| (name.to_owned(), watch::channel(ServingStatus::NotServing).0))
            .collect();
        Reporter { statuses: Arc::new(statuses) }
    }

    /// Sets every service's status at once.
    pub fn set_all(&self, status: ServingStatus) {
        for sender in self.statuses.values() {
            sender.send_replace(status);
        }
    }

    /// The service answering what this reporter sets.
    pub fn service(&self) -> HealthServer<Health> {
        HealthServer::new(Health { reporter: self.clone() })
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status as i32 }
}

/// See the module docs.
#[derive(Debug)]
pub struct Health {
    reporter: Reporter,
}

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match self.reporter.statuses.get(&service) {
            Some(sender) => Ok(Response::new(response(*sender.borrow()))),
            None => Err(Status::not_found(format!("service {service:?} is not served here"))),
        }
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        let statuses = self
            .reporter
            .statuses
            .iter()
            .map(|(name, sender)| (name.clone(), response(*sender.borrow())))
            .collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let stream = match self.reporter.statuses.get(&service) {
            Some(sender) => WatchStream::new(sender.subscribe()).map(|status| Ok(response(status))).boxed(),
            None => {
                stream::iter([Ok(response(ServingStatus::ServiceUnknown))]).chain(stream::pending()).boxed()
            }
        };
        Ok(Response::new(stream))
    }
}
