//! The `dataport` binary run as a user runs it, one test binary.

mod auth_cli;
mod cli;
mod files_cli;
mod serve;
mod tls_cli;
