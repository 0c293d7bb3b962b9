//! Greetings: the seed `helloworld.Greeter` (compat.rs), over
//! `dataport_core::greeter`. The area has no v1 of its own.

pub mod compat;
