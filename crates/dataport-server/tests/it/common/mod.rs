//! What the server's integration tests share: the harness (a real server on
//! a port bound before it starts) comes from dataport-testkit.

#![allow(dead_code, unused_imports)] // each test binary uses its own subset

pub mod files;

pub use dataport_testkit::{TestServer, assert_status, config, start, start_with, until};
