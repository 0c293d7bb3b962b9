//! Dataport's gRPC server: one module per area, each holding the tonic
//! adapters (compat and v1) over the core and store calls, plus the
//! configuration, the layer stack (`stack.rs`: call log, deadlines, drain,
//! and `tonic_fixes.rs`, every correction of tonic), health, reflection and
//! shutdown.
//!
//! Adapters convert and validate wire messages and map every refusal to a
//! `Status` that names the field and the value; the rules themselves live in
//! `dataport-core`, and only `dataport-store` touches the data directory.

pub mod auth;
mod compute;
pub mod config;
mod connections;
mod drain;
mod files;
pub mod fuzzing;
mod greeter;
mod health;
mod inflight;
pub mod logging;
mod market;
mod metrics;
mod outliers;
mod position;
mod reflection;
mod route;
mod router;
mod server;
mod stack;
pub mod tls;
mod tonic_fixes;
mod traces;
mod watch;
mod web;

pub use server::{SERVICES, Server, StartError};

/// What a handler of a unary-response method answers.
type Reply<T> = Result<tonic::Response<T>, tonic::Status>;

/// Runs blocking I/O (the stores, fsync) on tokio's blocking pool, never on
/// the reactor; CPU-bound work goes to [`compute::compute`]. Each area maps
/// its own errors around it. A panic in the work is INTERNAL.
async fn off_reactor<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| tonic::Status::internal(format!("a blocking task failed: {e}")))
}
