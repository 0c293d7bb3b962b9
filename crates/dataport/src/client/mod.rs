//! Client commands: one module per area, each calling the server over a
//! shared channel and printing plain text.

pub mod files;
pub mod greeter;
pub mod market;
pub mod outliers;
pub mod position;
pub mod route;
mod rows;
mod wire;

use std::process::ExitCode;

use dataport_server::logging::code_name;
use tonic::transport::{Channel, Endpoint};

/// Connects to `server`, runs `command`, and turns its outcome into an exit
/// code: failures print the gRPC status code and message on stderr.
pub fn main<F, Fut>(server: &str, command: F) -> ExitCode
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let channel = connect(server).await?;
        command(channel).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("error: {}: {}", code_name(status.code() as i32), status.message()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    let url = if server.contains("://") { server.to_owned() } else { format!("http://{server}") };
    // The same HTTP/2 frames and windows the server uses, so large messages
    // (file chunks, Detect batches) cross in few frames and window updates.
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("--server {server:?}: {e}"))?
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size(1 << 20);
    endpoint.connect().await.map_err(|e| {
        let cause = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
        anyhow::anyhow!("cannot reach the server at {url}: {cause} (is `dataport serve` running? set --server or DATAPORT_SERVER)")
    })
}
