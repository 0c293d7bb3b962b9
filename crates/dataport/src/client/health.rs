//! `dataport health`: the server's health (grpc.health.v1 Check), as a
//! container's or a load balancer's probe asks it: exits 0 only when SERVING.

use std::time::Duration;

use dataport_proto::grpc::health::v1::HealthCheckRequest;
use dataport_proto::grpc::health::v1::health_check_response::ServingStatus;
use dataport_proto::grpc::health::v1::health_client::HealthClient;

use crate::client::Channel;

/// How long a probe waits for the answer.
const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn check(channel: Channel, service: String) -> anyhow::Result<()> {
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest { service: service.clone() });
    let reply = tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the health service within {TIMEOUT:?}"))??;
    let status = reply.into_inner().status();
    println!("{}", status.as_str_name());
    let what = if service.is_empty() { "the server".to_owned() } else { service };
    anyhow::ensure!(status == ServingStatus::Serving, "{what} is {}", status.as_str_name());
    Ok(())
}
