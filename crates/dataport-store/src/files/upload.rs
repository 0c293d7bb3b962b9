//! [`LocalUpload`]: one upload streaming into a temporary file through a
//! [`DurableWriter`] (hashing, direct I/O and background flushes
//! overlapping the receiving), committed by the store only when the stream
//! ends cleanly.

use std::fmt;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use dataport_core::files::Sha256Digest;
use dataport_fileio::DurableWriter;
use tempfile::{NamedTempFile, TempPath};

use super::local::Shared;
use super::{FileError, FileInfo, Stage, Upload};

/// A file being uploaded to a [`super::LocalFileStore`]. Dropping it before
/// [`Upload::commit`] deletes a plain upload's data, and makes a resumable
/// upload's data durable for the next call to continue.
pub struct LocalUpload {
    shared: Arc<Shared>,
    name: String,
    expected: Option<Sha256Digest>,
    /// Whether the commit may replace a stored file of the name.
    replace: bool,
    writer: DurableWriter,
    kind: Kind,
    state: Stage,
}

enum Kind {
    /// Deleted when dropped.
    Plain(Option<TempPath>),
    /// Kept for its claim on the id, released when dropped.
    Resumable { claim: ActiveGuard },
}

/// A resumable upload being written, as others see it.
#[derive(Debug, Default)]
pub(super) struct Active {
    /// Bytes known durable.
    pub durable: Arc<AtomicU64>,
    /// The writer is finishing: making what it has durable (its call ended)
    /// or committing. Whoever asks about the upload meanwhile waits for
    /// that to end (see `Shared::active_settled`), so a client that resumes
    /// right after a cut learns what the cut call stored, not the moment
    /// before.
    pub closing: AtomicBool,
}

/// Marks a resumable upload id as being written, so a second writer is
/// refused, and publishes how much of it is durable.
pub(super) struct ActiveGuard {
    shared: Arc<Shared>,
    id: String,
    active: Arc<Active>,
}

impl ActiveGuard {
    pub fn claim(shared: &Arc<Shared>, id: &str) -> Result<Self, FileError> {
        let mut active = shared.active_settled(id);
        if active.contains_key(id) {
            return Err(FileError::InUse { id: id.to_owned() });
        }
        let entry = Arc::new(Active::default());
        active.insert(id.to_owned(), Arc::clone(&entry));
        Ok(ActiveGuard { shared: Arc::clone(shared), id: id.to_owned(), active: entry })
    }

    fn close(&self) {
        self.active.closing.store(true, Ordering::Release);
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.shared.active().remove(&self.id);
        self.shared.released.notify_all();
    }
}

impl fmt::Debug for LocalUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUpload")
            .field("name", &self.name)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

impl LocalUpload {
    pub(super) fn plain(
        shared: Arc<Shared>,
        name: &str,
        expected: Option<Sha256Digest>,
        temp: NamedTempFile,
    ) -> Self {
        let (file, temp) = temp.into_parts();
        let writer = DurableWriter::new(file, temp.to_path_buf(), shared.config.sync_every);
        LocalUpload::new(shared, name, expected, writer, Kind::Plain(Some(temp)))
    }

    /// Opens (or creates) the data of a resumable upload and reads it once to
    /// rebuild its sha256, since a restart loses the running hash.
    pub(super) fn resume(
        shared: Arc<Shared>,
        name: &str,
        expected: Option<Sha256Digest>,
        guard: ActiveGuard,
    ) -> Result<Self, FileError> {
        let path = shared.resumable_path(&guard.id);
        let io_error = |e| FileError::io(&path, e);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        if len > shared.config.max_file_size {
            std::fs::remove_file(&path).map_err(io_error)?;
            return Err(FileError::TooLarge { limit: shared.config.max_file_size });
        }
        let durable = Arc::clone(&guard.active.durable);
        let writer =
            DurableWriter::resume(file, path.clone(), shared.config.sync_every, durable).map_err(io_error)?;
        Ok(LocalUpload::new(shared, name, expected, writer, Kind::Resumable { claim: guard }))
    }

    fn new(
        shared: Arc<Shared>,
        name: &str,
        expected: Option<Sha256Digest>,
        writer: DurableWriter,
        kind: Kind,
    ) -> Self {
        shared.uploading.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LocalUpload {
            shared,
            name: name.to_owned(),
            expected,
            replace: true,
            writer,
            kind,
            state: Stage::Open,
        }
    }

    /// Marks a resumable upload as finishing (see [`Active::closing`]).
    fn close(&self) {
        if let Kind::Resumable { claim } = &self.kind {
            claim.close();
        }
    }

    /// The name the upload becomes when committed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Gives up after an I/O error: a plain upload's data is deleted, a
    /// resumable one is cut back to what is known durable.
    fn fail(&mut self, source: io::Error) -> FileError {
        self.state = Stage::Failed;
        self.writer.stop();
        let err = FileError::io(self.writer.path(), source);
        match &mut self.kind {
            Kind::Plain(temp) => drop(temp.take()),
            Kind::Resumable { .. } => {
                let file = self.writer.file();
                let _ = file.set_len(self.writer.durable()).and_then(|()| file.sync_data());
            }
        }
        err
    }

    /// Deletes the upload's data, resumable or not.
    fn discard(&mut self) {
        self.state = Stage::Failed;
        self.writer.stop();
        match &mut self.kind {
            Kind::Plain(temp) => drop(temp.take()),
            Kind::Resumable { .. } => {
                let _ = std::fs::remove_file(self.writer.path());
            }
        }
    }
}

impl Upload for LocalUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), FileError> {
        self.state.check(&self.name)?;
        let limit = self.shared.config.max_file_size;
        if self.writer.written().saturating_add(data.len() as u64) > limit {
            self.discard();
            return Err(FileError::TooLarge { limit });
        }
        self.writer.write(data).map_err(|e| self.fail(e))
    }

    fn written(&self) -> u64 {
        self.writer.written()
    }

    fn committed_size(&self) -> u64 {
        self.writer.durable()
    }

    fn sync(&mut self) -> Result<u64, FileError> {
        self.state.check(&self.name)?;
        self.writer.sync().map_err(|e| self.fail(e))
    }

    fn expect_sha256(&mut self, expected: Sha256Digest) {
        self.expected = Some(expected);
    }

    fn keep_existing(&mut self) {
        self.replace = false;
    }

    fn commit(mut self) -> Result<FileInfo, FileError> {
        self.state.check(&self.name)?;
        self.close();
        let actual = self.writer.finish().map_err(|e| self.fail(e))?;
        if let Some(expected) = self.expected
            && expected != actual
        {
            self.discard();
            return Err(FileError::ChecksumMismatch { expected, actual });
        }
        let size = self.writer.sync().map_err(|e| self.fail(e))?;
        let temp = match &mut self.kind {
            Kind::Plain(temp) => temp.take(),
            // From here the resumable data is the commit's: if the commit
            // fails, it is deleted like a plain upload's.
            Kind::Resumable { .. } => {
                let path = self.writer.path();
                Some(TempPath::try_from_path(path).map_err(|e| FileError::io(path, e))?)
            }
        };
        self.state = Stage::Committed;
        let Some(temp) = temp else { return Err(FileError::Abandoned { name: self.name.clone() }) };
        let now = SystemTime::now();
        let info = FileInfo { name: self.name.clone(), size, sha256: actual, created: now, modified: now };
        self.shared.commit(temp, info, self.replace)
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        // A plain upload's TempPath deletes its data as it drops; a resumable
        // upload keeps what it has, durably, for the next call.
        if self.state == Stage::Open && matches!(self.kind, Kind::Resumable { .. }) {
            self.close();
            let _ = self.sync();
        }
        self.writer.stop();
        self.shared.uploading.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
