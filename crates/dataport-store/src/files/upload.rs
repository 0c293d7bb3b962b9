//! [`LocalUpload`]: one upload streaming into a temporary file.
//!
//! Memory is one buffer of [`BUFFER`] bytes whatever the file size. Data is
//! hashed as it is written (on a second thread for large writes), so the
//! sha256 costs no extra pass. Every `sync_every` bytes the data written so
//! far is flushed to disk on a helper thread while the upload keeps
//! receiving (an `fdatasync` of a duplicate descriptor), and the next flush
//! waits for the previous one; so the disk works during the upload, at most
//! two intervals are ever unflushed, and the flush at commit is short.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::SystemTime;

use dataport_core::files::Sha256Digest;
use sha2::{Digest, Sha256};
use tempfile::{NamedTempFile, TempPath};

use super::local::Shared;
use super::{FileError, FileInfo, Upload};

/// Bytes gathered before a `write(2)`: big enough that small client chunks
/// do not cost a system call each.
const BUFFER: usize = 256 << 10;

/// The smallest write worth hashing on a second thread: a thread costs tens
/// of microseconds, hashing this much about a hundred.
const PARALLEL_MIN: usize = 128 << 10;

/// A file being uploaded to a [`super::LocalFileStore`]. Dropping it before
/// [`Upload::commit`] deletes a plain upload's data, and makes a resumable
/// upload's data durable for the next call to continue.
pub struct LocalUpload {
    shared: Arc<Shared>,
    name: String,
    expected: Option<Sha256Digest>,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    hasher: Sha256,
    written: u64,
    durable: u64,
    /// `written` when the last background flush started.
    flush_mark: u64,
    pending: Option<PendingSync>,
    kind: Kind,
    state: State,
}

enum Kind {
    /// Deleted when dropped.
    Plain(Option<TempPath>),
    Resumable(ActiveGuard),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Failed,
    Committed,
}

/// A flush running on a helper thread, of the first `upto` bytes.
struct PendingSync {
    upto: u64,
    thread: JoinHandle<io::Result<()>>,
}

/// Marks a resumable upload id as being written, so a second writer is
/// refused, and publishes how much of it is durable.
pub(super) struct ActiveGuard {
    shared: Arc<Shared>,
    id: String,
    durable: Arc<AtomicU64>,
}

impl ActiveGuard {
    pub fn claim(shared: &Arc<Shared>, id: &str) -> Result<Self, FileError> {
        let mut active = shared.active();
        if active.contains_key(id) {
            return Err(FileError::InUse { id: id.to_owned() });
        }
        let durable = Arc::new(AtomicU64::new(0));
        active.insert(id.to_owned(), Arc::clone(&durable));
        Ok(ActiveGuard { shared: Arc::clone(shared), id: id.to_owned(), durable })
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.shared.active().remove(&self.id);
    }
}

impl fmt::Debug for LocalUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUpload")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("written", &self.written)
            .field("durable", &self.durable)
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
        LocalUpload::new(shared, name, expected, temp.to_path_buf(), file, Kind::Plain(Some(temp)))
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
        let mut file = File::options()
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
        let mut hasher = Sha256::new();
        let mut buf = vec![0; BUFFER];
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(BUFFER).min(BUFFER);
            file.read_exact(&mut buf[..want]).map_err(io_error)?;
            hasher.update(&buf[..want]);
            left -= want as u64;
        }
        file.seek(SeekFrom::Start(len)).map_err(io_error)?;
        guard.durable.store(len, Ordering::Release);
        let mut upload = LocalUpload::new(shared, name, expected, path, file, Kind::Resumable(guard));
        upload.buf = buf;
        upload.buf.clear();
        upload.hasher = hasher;
        (upload.written, upload.durable, upload.flush_mark) = (len, len, len);
        Ok(upload)
    }

    fn new(
        shared: Arc<Shared>,
        name: &str,
        expected: Option<Sha256Digest>,
        path: PathBuf,
        file: File,
        kind: Kind,
    ) -> Self {
        LocalUpload {
            shared,
            name: name.to_owned(),
            expected,
            path,
            file,
            buf: Vec::with_capacity(BUFFER),
            hasher: Sha256::new(),
            written: 0,
            durable: 0,
            flush_mark: 0,
            pending: None,
            kind,
            state: State::Open,
        }
    }

    /// The name the upload becomes when committed.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn check_open(&self) -> Result<(), FileError> {
        match self.state {
            State::Open => Ok(()),
            State::Failed | State::Committed => Err(FileError::Abandoned { name: self.name.clone() }),
        }
    }

    fn set_durable(&mut self, upto: u64) {
        self.durable = upto;
        if let Kind::Resumable(guard) = &self.kind {
            guard.durable.store(upto, Ordering::Release);
        }
    }

    /// Gives up after an I/O error: a plain upload's data is deleted, a
    /// resumable one is cut back to what is known durable.
    fn fail(&mut self, source: io::Error) -> FileError {
        self.state = State::Failed;
        let err = FileError::io(&self.path, source);
        match &mut self.kind {
            Kind::Plain(temp) => drop(temp.take()),
            Kind::Resumable(_) => {
                let _ = self.file.set_len(self.durable).and_then(|()| self.file.sync_data());
            }
        }
        err
    }

    /// Deletes the upload's data, resumable or not.
    fn discard(&mut self) {
        self.state = State::Failed;
        match &mut self.kind {
            Kind::Plain(temp) => drop(temp.take()),
            Kind::Resumable(_) => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    fn flush_buffer(&mut self) -> Result<(), FileError> {
        if !self.buf.is_empty() {
            let result = put(&mut self.file, &mut self.hasher, &self.buf);
            self.buf.clear();
            result.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Waits for the flush in progress, if any.
    fn wait_pending(&mut self) -> Result<(), FileError> {
        let Some(pending) = self.pending.take() else { return Ok(()) };
        match pending.thread.join() {
            Ok(Ok(())) => {
                self.set_durable(pending.upto);
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(e)),
            Err(_) => Err(self.fail(io::Error::other("the fsync thread panicked"))),
        }
    }

    /// Starts flushing what is written so far, beside the upload.
    fn flush_ahead(&mut self) -> Result<(), FileError> {
        self.flush_buffer()?;
        self.wait_pending()?;
        let upto = self.written;
        self.flush_mark = upto;
        let clone = self.file.try_clone().map_err(|e| self.fail(e))?;
        let spawned =
            std::thread::Builder::new().name("dataport-fsync".into()).spawn(move || clone.sync_data());
        match spawned {
            Ok(thread) => self.pending = Some(PendingSync { upto, thread }),
            // No thread to spare: flush here instead.
            Err(_) => {
                self.file.sync_data().map_err(|e| self.fail(e))?;
                self.set_durable(upto);
            }
        }
        Ok(())
    }
}

/// Writes `data` to `file` and adds it to `hasher`, side by side on two
/// threads when it is big enough to be worth a thread: either alone keeps a
/// core busy at about 1 GB/s, together they would halve the upload rate.
fn put(file: &mut File, hasher: &mut Sha256, data: &[u8]) -> io::Result<()> {
    if data.len() < PARALLEL_MIN {
        hasher.update(data);
        return file.write_all(data);
    }
    let (written, hashed) = std::thread::scope(|scope| {
        let hashing = std::thread::Builder::new().name("dataport-sha256".into()).spawn_scoped(scope, || {
            hasher.update(data);
            true
        });
        let written = file.write_all(data);
        let hashed = match hashing {
            Ok(thread) => thread.join().map_err(|_| io::Error::other("the sha256 thread panicked"))?,
            // No thread to spare: hash below instead.
            Err(_) => false,
        };
        Ok::<_, io::Error>((written, hashed))
    })?;
    if !hashed {
        hasher.update(data);
    }
    written
}

impl Upload for LocalUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), FileError> {
        self.check_open()?;
        let limit = self.shared.config.max_file_size;
        let end = self.written.saturating_add(data.len() as u64);
        if end > limit {
            self.discard();
            return Err(FileError::TooLarge { limit });
        }
        if self.buf.len() + data.len() > BUFFER {
            self.flush_buffer()?;
        }
        if data.len() >= BUFFER {
            put(&mut self.file, &mut self.hasher, data).map_err(|e| self.fail(e))?;
        } else {
            self.buf.extend_from_slice(data);
        }
        self.written = end;
        if self.pending.as_ref().is_some_and(|p| p.thread.is_finished()) {
            self.wait_pending()?;
        }
        if self.written - self.flush_mark >= self.shared.config.sync_every {
            self.flush_ahead()?;
        }
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn committed_size(&self) -> u64 {
        self.durable
    }

    fn sync(&mut self) -> Result<u64, FileError> {
        self.check_open()?;
        self.flush_buffer()?;
        self.wait_pending()?;
        self.file.sync_data().map_err(|e| self.fail(e))?;
        self.set_durable(self.written);
        Ok(self.written)
    }

    fn commit(mut self) -> Result<FileInfo, FileError> {
        self.check_open()?;
        self.flush_buffer()?;
        let actual = Sha256Digest(std::mem::take(&mut self.hasher).finalize().into());
        if let Some(expected) = self.expected
            && expected != actual
        {
            self.discard();
            return Err(FileError::ChecksumMismatch { expected, actual });
        }
        self.wait_pending()?;
        self.file.sync_data().map_err(|e| self.fail(e))?;
        self.set_durable(self.written);
        let temp = match &mut self.kind {
            Kind::Plain(temp) => temp.take(),
            // From here the resumable data is the commit's: if the commit
            // fails, it is deleted like a plain upload's.
            Kind::Resumable(_) => {
                Some(TempPath::try_from_path(&self.path).map_err(|e| FileError::io(&self.path, e))?)
            }
        };
        self.state = State::Committed;
        let Some(temp) = temp else { return Err(FileError::Abandoned { name: self.name.clone() }) };
        let now = SystemTime::now();
        let info = FileInfo {
            name: self.name.clone(),
            size: self.written,
            sha256: actual,
            created: now,
            modified: now,
        };
        self.shared.commit(temp, info)
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        // A plain upload's TempPath deletes its data as it drops; a resumable
        // upload keeps what it has, durably, for the next call.
        if self.state == State::Open && matches!(self.kind, Kind::Resumable(_)) {
            let _ = self.sync();
        }
    }
}
