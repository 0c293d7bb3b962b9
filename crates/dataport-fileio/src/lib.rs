//! Dataport's fast file I/O: how bytes move between memory and a file on the
//! local disk, for the store (uploads written, stored files read) and the
//! CLI (files uploaded read, files downloaded written) alike.
//! [`DurableWriter`] writes a file through a pipeline of threads (the data
//! copied into aligned blocks, a hashing thread, direct-I/O writing threads,
//! `fdatasync` in the background) and answers its sha256; [`LocalReader`]
//! reads one in chunks, a large file with direct I/O and reads ahead. Direct
//! I/O (`O_DIRECT`) is used where the file system takes it, and the page
//! cache wherever it does not; the data is the same either way.
//!
//! It must never know about gRPC, the file index, or the layout of the data
//! directory: callers open and name the files, and decide what a file
//! becomes once written (the store commits its uploads, the CLI renames its
//! downloads into place). Errors are `std::io::Error`; callers add the path.

mod direct;
mod reader;
mod writer;

pub use reader::LocalReader;
pub use writer::DurableWriter;

#[cfg(test)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
