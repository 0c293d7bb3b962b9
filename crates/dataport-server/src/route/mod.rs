//! Routes: the seed `routeguide.RouteGuide` (compat.rs), over
//! `dataport_core::route` and the feature database. The area has no v1 of
//! its own.

pub mod compat;
