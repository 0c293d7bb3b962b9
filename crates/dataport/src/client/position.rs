//! `dataport position ...`.

use std::time::SystemTime;

use crate::client::Channel;
use dataport_proto::dataport::position::v1::position_service_client::PositionServiceClient;
use dataport_proto::dataport::position::v1::{
    EntityPosition, GetRequest, PublishRequest, Vector3, WatchRequest,
};
use tokio_stream::StreamExt;

#[derive(Debug, clap::Subcommand)]
pub enum PositionCommand {
    /// Show an entity's newest position.
    Get {
        #[arg(long, default_value = "default")]
        entity: String,
    },
    /// Publish a position.
    #[command(allow_negative_numbers = true)]
    Pub {
        x: f64,
        y: f64,
        z: f64,
        #[arg(long, default_value = "default")]
        entity: String,
    },
    /// Print every new position of ENTITY... (of every entity when none are given).
    Watch {
        entities: Vec<String>,
        /// Stop after this many positions.
        #[arg(long)]
        count: Option<u64>,
    },
}

fn show(p: &EntityPosition) -> String {
    let v = p.position.unwrap_or_default();
    // ISO 8601 in UTC, to the millisecond.
    let time = p
        .update_time
        .and_then(|t| SystemTime::try_from(t).ok())
        .map_or_else(String::new, |t| format!(" at {}", humantime::format_rfc3339_millis(t)));
    format!("{} x={} y={} z={} revision={}{}", p.entity, v.x, v.y, v.z, p.revision, time)
}

pub async fn run(channel: Channel, command: PositionCommand) -> anyhow::Result<()> {
    let mut client = PositionServiceClient::new(channel);
    match command {
        PositionCommand::Get { entity } => {
            let p = client.get(GetRequest { entity }).await?.into_inner().position.unwrap_or_default();
            println!("{}", show(&p));
        }
        PositionCommand::Pub { x, y, z, entity } => {
            let request = PublishRequest { entity, position: Some(Vector3 { x, y, z }) };
            let p = client.publish(request).await?.into_inner().position.unwrap_or_default();
            println!("{}", show(&p));
        }
        PositionCommand::Watch { entities, count } => {
            let mut stream = client.watch(WatchRequest { entities }).await?.into_inner();
            let mut seen = 0;
            while count.is_none_or(|c| seen < c) {
                let Some(p) = stream.next().await else { break };
                println!("{}", show(&p?.position.unwrap_or_default()));
                seen += 1;
            }
        }
    }
    Ok(())
}
