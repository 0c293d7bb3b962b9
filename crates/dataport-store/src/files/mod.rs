//! Stored files: the storage interface ([`FileStore`], [`Upload`]) and its
//! implementations: on the local disk, [`LocalFileStore`], and in an S3
//! bucket shared by replicas, [`S3FileStore`].
//!
//! An upload streams into a temporary file while its sha256 is computed, and
//! becomes visible only when it is committed: checked, flushed to disk and
//! recorded in one step. Until then, and if it is dropped or fails, nobody
//! sees it and nothing of it stays behind.

mod any;
mod check;
mod index;
mod local;
mod s3;
mod upload;

use std::io::{Read, Seek};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use dataport_core::files::{NameError, Sha256Digest};

pub use any::{Files, FilesReader, FilesUpload};
pub use check::{FileCheck, check};
/// How a [`LocalFileStore`] reads its files (large ones with direct I/O).
pub use dataport_fileio::LocalReader;
pub use local::{Cleanup, LocalFileStore};
pub use s3::{S3FileStore, S3Options, S3Reader, S3Upload, Swept};
pub use upload::LocalUpload;

/// What the store knows about one stored file, kept with it so that listing
/// never reads file contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
    pub sha256: Sha256Digest,
    /// When a file was first stored under this name (kept when it is
    /// replaced).
    pub created: SystemTime,
    /// When the current content was committed.
    pub modified: SystemTime,
}

/// Limits and timings of a file store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStoreConfig {
    /// The largest file an upload may write, in bytes.
    pub max_file_size: u64,
    /// A resumable upload not written to for this long is deleted when the
    /// store opens and by [`LocalFileStore::remove_stale_resumable`]; `None`
    /// keeps them until they are finished or discarded.
    pub resumable_max_age: Option<Duration>,
    /// How many bytes an upload writes between flushes to disk. Each flush
    /// runs beside the upload, so the flush at commit has little left to do.
    pub sync_every: u64,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        FileStoreConfig {
            max_file_size: 16 << 30,
            resumable_max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            sync_every: 16 << 20,
        }
    }
}

/// Why a file operation failed: one variant per cause a caller may answer
/// differently.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("no file named {name:?}")]
    NotFound { name: String },
    #[error("file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("sha256 mismatch: expected {expected}, received data has {actual}; nothing was stored")]
    ChecksumMismatch { expected: Sha256Digest, actual: Sha256Digest },
    #[error("disk full writing {path}")]
    DiskFull { path: PathBuf },
    #[error("write at offset {got}, but the upload has {expected} bytes; continue at {expected}")]
    BadOffset { expected: u64, got: u64 },
    #[error("upload {id:?} is already being written by another call")]
    InUse { id: String },
    /// A resumable upload that was finished is not written again (its id
    /// is remembered as long as an unfinished upload's data is kept).
    #[error("upload {id:?} was already finished: committed as {:?}, {} bytes", .info.name, .info.size)]
    UploadFinished { id: String, info: Box<FileInfo> },
    /// An upload told to keep an existing file ([`Upload::keep_existing`])
    /// found its name stored at commit.
    #[error(
        "a file named {name:?} is already stored, and this upload does not replace one; nothing was stored"
    )]
    Exists { name: String },
    #[error("upload of {name:?} was abandoned after an earlier error; start it again")]
    Abandoned { name: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("file index {path}: {source}")]
    Index { path: PathBuf, source: rusqlite::Error },
    #[error("file index {path}: schema migration failed: {source}")]
    Migration { path: PathBuf, source: rusqlite_migration::Error },
    #[error("file index {path}: {name:?} has a stored sha256 {sha256:?} that is not 64 hex digits")]
    Corrupt { path: PathBuf, name: String, sha256: String },
    /// The object store did not answer (or answered that it cannot serve
    /// now): the server says UNAVAILABLE, and the call may be retried.
    /// `url` is `s3://bucket/prefix`, never a credential.
    #[error("file store {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The object store refused a request or answered what the store cannot
    /// read (bad credentials, a missing bucket, a damaged record).
    #[error("file store {url}: {reason}")]
    Store { url: String, reason: String },
    /// `files_url` is not an `s3://BUCKET/PREFIX` the store can use.
    #[error("files_url {url:?}: {reason}")]
    Url { url: String, reason: String },
}

impl FileError {
    /// An I/O error on `path`, with a full disk (or an exhausted quota) told
    /// apart so that callers can answer it as such.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let path = path.into();
        match source.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => FileError::DiskFull { path },
            _ => FileError::Io { path, source },
        }
    }
}

/// Where an upload of either store is in its own life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Open,
    Failed,
    Committed,
}

impl Stage {
    /// Whether the upload of `name` still takes bytes: not once it failed
    /// or was committed.
    fn check(self, name: &str) -> Result<(), FileError> {
        match self {
            Stage::Open => Ok(()),
            Stage::Failed | Stage::Committed => Err(FileError::Abandoned { name: name.to_owned() }),
        }
    }
}

/// Where a resumable upload stands ([`FileStore::upload_state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadState {
    /// Started and not finished: a Write continues at `durable`, the bytes
    /// durably stored.
    InProgress { durable: u64 },
    /// Finished: committed as this file (as it was then; the name may have
    /// been replaced or deleted since).
    Finished(FileInfo),
}

/// Files stored by name. Every name is checked with
/// [`dataport_core::files::validate_name`] before anything else happens, and
/// refused with [`FileError::BadName`].
///
/// Implementations must make each commit atomic and durable: once
/// [`Upload::commit`] returns, the file is visible with its [`FileInfo`] and
/// survives a crash; before, nothing of it is visible. Replacing a name is
/// atomic too: a reader sees the old file or the new one, never a mix, and a
/// reader that opened the old one keeps reading it whole.
///
/// The calls block: async callers run them on a blocking pool.
pub trait FileStore: Send + Sync {
    type Upload: Upload;
    type Reader: Read + Seek + Send;

    /// Starts an upload that becomes `name` when committed; with `expected`,
    /// the commit is refused unless the data has that sha256. Dropping the
    /// upload before committing discards it.
    fn begin_upload(&self, name: &str, expected: Option<Sha256Digest>) -> Result<Self::Upload, FileError>;

    /// Starts or continues the resumable upload `id` (a valid file name),
    /// which becomes `name` when committed. Its data survives the upload
    /// being dropped and the process restarting, and continues at
    /// [`Upload::committed_size`]; one call at a time may write it
    /// ([`FileError::InUse`]). Once committed, the id stays finished
    /// ([`FileError::UploadFinished`]) until it is discarded or as old as
    /// an unfinished upload would be deleted at.
    fn resumable(
        &self,
        id: &str,
        name: &str,
        expected: Option<Sha256Digest>,
    ) -> Result<Self::Upload, FileError>;

    /// How many bytes of the resumable upload `id` are durably stored;
    /// `None` if there is no such upload (never started, committed or
    /// discarded).
    fn resumable_size(&self, id: &str) -> Result<Option<u64>, FileError>;

    /// Whether the resumable upload `id` is in progress (and how much of it
    /// is durable) or finished; `None` if it was never started, or was
    /// discarded or removed as stale.
    fn upload_state(&self, id: &str) -> Result<Option<UploadState>, FileError>;

    /// Deletes the resumable upload `id`, or forgets that it was finished so
    /// the id can start a new upload; false if there was neither.
    fn discard_resumable(&self, id: &str) -> Result<bool, FileError>;

    /// Opens `name` for reading, with what the store knows about it.
    fn open(&self, name: &str) -> Result<(FileInfo, Self::Reader), FileError>;

    fn stat(&self, name: &str) -> Result<FileInfo, FileError>;

    /// At most `limit` stored files whose names start with `prefix` and
    /// sort after `after` (as bytes), in name order: a page of a listing
    /// that costs the page, not the whole store.
    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<FileInfo>, FileError>;

    /// Every stored file, by name.
    fn list(&self) -> Result<Vec<FileInfo>, FileError> {
        self.list_page("", None, usize::MAX)
    }

    /// Deletes `name` and answers what it was. Readers that have it open
    /// keep reading it.
    fn delete(&self, name: &str) -> Result<FileInfo, FileError>;

    /// What the store holds, for the metrics.
    fn usage(&self) -> Result<Usage, FileError>;

    /// Whether the store answers, for health: a store on the local disk
    /// always does; one over the network says whether its last request got
    /// through.
    fn reachable(&self) -> bool {
        true
    }
}

/// What a file store holds ([`FileStore::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Stored files, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Uploads being written now.
    pub uploading: u64,
    /// Resumable uploads not finished: being written, or waiting for their
    /// client to resume them.
    pub resumable: u64,
}

/// An upload in progress. Bytes are appended in order; nothing is visible
/// until [`Upload::commit`] succeeds.
///
/// After any error but [`FileError::BadOffset`] the upload is abandoned:
/// further calls answer [`FileError::Abandoned`] (a plain upload's data is
/// already gone; a resumable upload keeps what was durable before the error,
/// except after [`FileError::TooLarge`] or [`FileError::ChecksumMismatch`],
/// which discard it).
pub trait Upload: Send {
    /// Appends `data`.
    fn write(&mut self, data: &[u8]) -> Result<(), FileError>;

    /// Appends `data`, which the caller says starts at `offset`; anything but
    /// the current end is [`FileError::BadOffset`] naming the end.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), FileError> {
        if offset != self.written() {
            return Err(FileError::BadOffset { expected: self.written(), got: offset });
        }
        self.write(data)
    }

    /// How many bytes have been written so far.
    fn written(&self) -> u64;

    /// How many of them are durably on disk.
    fn committed_size(&self) -> u64;

    /// Makes everything written so far durable and answers its size.
    fn sync(&mut self) -> Result<u64, FileError>;

    /// Requires the data to have the sha256 `expected` at commit, in place of
    /// any digest given when the upload began: for a client that knows the
    /// digest only once it has sent the data.
    fn expect_sha256(&mut self, expected: Sha256Digest);

    /// Makes the commit refuse ([`FileError::Exists`]) if a file of the
    /// upload's name is stored by then. Checked in the commit's own
    /// transaction: of two such uploads of one name, one is stored.
    fn keep_existing(&mut self);

    /// Checks the sha256, makes the file durable and visible under its name
    /// (replacing any file of that name, unless told to keep it), and
    /// answers what was stored.
    fn commit(self) -> Result<FileInfo, FileError>
    where
        Self: Sized;
}

#[cfg(test)]
mod tests;
