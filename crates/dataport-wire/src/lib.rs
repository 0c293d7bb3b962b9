//! gRPC messages on the wire, for the calls where Dataport reads and writes
//! them itself, and for compression on every call.
//!
//! It owns: the one reader of message prefixes ([`reader`]) with one error
//! policy (a message over the configured limit is RESOURCE_EXHAUSTED naming
//! both sizes; a bad flag is a protocol error); the encodings
//! ([`codec`]: gzip, deflate, zstd, decompressed within the limit);
//! [`compression`], the tower layer that undoes a request's encoding before
//! any service and compresses responses; the chunk messages sent and read
//! in pieces ([`framing`]); the bodies that send and read framed messages
//! ([`body`]); [`tally`], which counts the messages a body holds, for the
//! metrics; and [`route`], the router that sends a service's methods
//! served off the wire to it and every other to tonic.
//!
//! It never knows a service's logic, the store or the CLI: the server and
//! the CLI depend on it, it depends on neither.

pub mod body;
pub mod codec;
pub mod compression;
pub mod framing;
pub mod reader;
pub mod route;
pub mod tally;

pub use codec::Encoding;
pub use framing::{Event, Framing, LoneBytes};
pub use route::{Lean, OffTheWire, Served};
pub use tally::Tally;
