//! Dataport's gRPC server: one module per area, each holding the tonic
//! adapters (compat and v1) over the core and store calls, plus the
//! configuration, the call log, health, reflection and shutdown.
//!
//! Adapters convert and validate wire messages and map every refusal to a
//! `Status` that names the field and the value; the rules themselves live in
//! `dataport-core`, and only `dataport-store` touches the data directory.

pub mod config;
mod deadline;
mod drain;
mod ended;
mod files;
mod greeter;
mod health;
pub mod logging;
mod market;
mod message_limit;
mod outliers;
mod position;
mod route;
mod server;

pub use server::{SERVICES, ServeError, Server, StartError};
