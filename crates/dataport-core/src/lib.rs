//! Dataport's domain: pure functions over plain types, one module per area.
//!
//! This crate owns the rules every adapter shares (what a greeting says, how a
//! route is measured, what an entity name may be). It must never do I/O, spawn
//! tasks or know about protobuf or tonic: servers, stores and clients convert
//! their own types to these and back.

pub mod files;
pub mod greeter;
pub mod market;
pub mod outliers;
pub mod position;
pub mod route;
