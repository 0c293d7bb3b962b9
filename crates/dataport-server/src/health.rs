//! `grpc.health.v1.Health`: tonic-health's statuses and Check, with Watch of
//! an unknown service as the health protocol has it.
//!
//! tonic-health ends such a Watch at once with NOT_FOUND. The protocol (and
//! grpcio's servicer, which the seed services ran) answers SERVICE_UNKNOWN
//! and keeps the call open, as the service may yet appear; ours never do,
//! so the call stays open until the client ends it or the drain does.

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_server::{self, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

/// The service, answering the statuses `reporter` sets.
pub fn service(reporter: &HealthReporter) -> HealthServer<Health> {
    HealthServer::new(Health(HealthService::from_health_reporter(reporter.clone())))
}

/// See the module docs.
#[derive(Debug)]
pub struct Health(HealthService);

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        health_server::Health::check(&self.0, request).await
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        match health_server::Health::watch(&self.0, request).await {
            Ok(statuses) => Ok(statuses.map(StreamExt::boxed)),
            Err(status) if status.code() == Code::NotFound => {
                let unknown = HealthCheckResponse { status: WireStatus::ServiceUnknown as i32 };
                Ok(Response::new(stream::iter([Ok(unknown)]).chain(stream::pending()).boxed()))
            }
            Err(status) => Err(status),
        }
    }
}
