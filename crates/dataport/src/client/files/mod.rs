//! `dataport upload`, `dataport download` and `dataport files`
//! (dataport.files.v1, and google.bytestream for resumable uploads): one
//! module per command, `upload` (plain, and `resume` for `--resume`),
//! `download` and `manage` (`files ls|stat|rm`), and the `progress` they
//! show.
//!
//! Transfers overlap their stages: a thread reads the file in 1 MiB chunks
//! (adding each to a CRC-32C) while the connection sends them; a download is
//! received on the runtime and handed to a writing thread, which copies it
//! into a [`dataport_fileio::DurableWriter`]: hashed, written with direct
//! I/O and flushed on threads of its own, exactly as the server stores an
//! upload. The stages are joined by bounded queues, so memory stays a few
//! MiB whatever the file size. A chunk read or received is a `Bytes` handed
//! from stage to stage by reference count.

mod download;
mod manage;
mod progress;
mod resume;
mod upload;

pub use download::{DownloadArgs, download};
pub use manage::{FilesCommand, files};
pub use upload::{UploadArgs, upload};

/// Chunks read ahead of the connection, and chunks waiting for the writer
/// or the hasher: each queue holds at most this many.
const QUEUE: usize = 8;

/// The largest message accepted from the server: its chunks are at most
/// its 4 MiB limit, with room to spare for a server that chooses otherwise.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
