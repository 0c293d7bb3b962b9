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

/// Runs blocking work (the store, fsync, drawing, a big computation) on
/// tokio's blocking pool, never on the reactor, at a lower CPU priority
/// ([`yield_to_reactor`]); each area maps its own errors around it. A panic
/// in the work is INTERNAL.
async fn off_reactor<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(move || {
        yield_to_reactor();
        work()
    })
    .await
    .map_err(|e| tonic::Status::internal(format!("a blocking task failed: {e}")))
}

/// Lowers the calling thread's CPU priority to nice 10, once per thread.
/// When the work saturates the CPU (charts, indicators, Detect), the
/// runtime's threads, which accept calls, refuse them past `max_calls` and
/// send the answers, still get it at once: at ten times the chart load one
/// core serves (tests/reliability/overload), refused calls took 4.4 ms at
/// p50 and 16-38 ms at p99 with the work at their priority, 0.5 and 5.6 ms
/// with it lowered.
fn yield_to_reactor() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !LOWERED.get() {
        // Raising one's own nice value is always allowed; should it fail,
        // the work runs as before.
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
        LOWERED.set(true);
    }
}
