//! The server's integration tests, one binary: each module starts its own
//! servers in process and calls them with tonic clients.

mod common;

mod auth;
mod bytestream;
mod compression;
mod connections;
mod files;
mod files_v1;
mod greeter;
mod health_reflection;
mod inflight;
mod market;
mod market_v1;
mod metrics;
mod outliers;
mod position;
mod route;
mod shared;
mod tls;
mod traces;
mod web;
