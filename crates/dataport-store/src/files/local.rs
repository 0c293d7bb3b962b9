//! [`LocalFileStore`]: files under `<data dir>/files/`.
//!
//! ```text
//! files/index.sqlite3        name -> object, size, sha256, times; finished
//!                            resumable upload ids (index.rs)
//! files/objects/<object>     file contents, never changed once written
//! files/.tmp/<random>        plain uploads in progress (deleted at open)
//! files/.tmp/resumable/<id>  resumable uploads in progress
//! ```
//!
//! Names never become paths: an object is named by the store, so no client
//! string reaches the file system except a resumable upload id, which is
//! checked like a file name.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use dataport_core::files::{Sha256Digest, validate_name};
use dataport_fileio::LocalReader;

use super::index::{Index, Locked};
use super::upload::{Active, ActiveGuard, LocalUpload};
use super::{FileError, FileInfo, FileStore, FileStoreConfig, UploadState, Usage};

/// How long a question about a resumable upload waits for its writer to
/// finish (to flush what a cut call sent, or to commit) before it answers
/// with what is known so far.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// Files on the local disk. Cheap to clone: clones share one store.
#[derive(Clone, Debug)]
pub struct LocalFileStore {
    shared: Arc<Shared>,
    /// What opening it cleaned up.
    cleaned: Cleanup,
}

/// What a store removed when it opened: the leftovers of a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Plain uploads that were in progress.
    pub temp_files: usize,
    /// Objects no name refers to (a commit cut short, or replaced).
    pub orphan_objects: usize,
    /// Resumable uploads idle past `resumable_max_age`, and finished ones
    /// remembered that long.
    pub stale_resumable: usize,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub config: FileStoreConfig,
    root: PathBuf,
    objects: PathBuf,
    pub tmp: PathBuf,
    resumable: PathBuf,
    index: Index,
    /// Object names are `<open time>-<counter>`, unique without asking the
    /// disk; a clash (a clock set back) only makes the commit try the next.
    epoch: u128,
    next_object: AtomicU64,
    /// Resumable uploads being written.
    active: Mutex<HashMap<String, Arc<Active>>>,
    /// Notified whenever an upload leaves `active`.
    pub released: Condvar,
    /// Uploads open (plain or resumable), for [`FileStore::usage`].
    pub uploading: AtomicU64,
}

fn create_dir(path: &Path) -> Result<(), FileError> {
    std::fs::create_dir_all(path).map_err(|e| FileError::io(path, e))
}

/// Makes the entries of `dir` (created, renamed, removed) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| FileError::io(dir, e))
}

/// Removes a file or a directory tree; one already gone is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl LocalFileStore {
    /// The directory inside the data directory.
    pub const DIR: &str = "files";

    /// Opens the store in `data_dir` with the default configuration.
    pub fn open(data_dir: &Path) -> Result<Self, FileError> {
        Self::open_with(data_dir, FileStoreConfig::default())
    }

    /// Marks the writer of `id` as finishing, as a writer whose call ended does.
    #[cfg(test)]
    pub(super) fn mark_closing(&self, id: &str) {
        self.shared.active()[id].closing.store(true, Ordering::Release);
    }

    /// Opens (creating if missing) the store in `data_dir` and cleans up after
    /// a crash: plain uploads in progress, resumable ones past
    /// `config.resumable_max_age`, and objects no name refers to (written by
    /// a commit that did not finish, or replaced by one that did) are
    /// deleted. The data directory's lock must be held.
    pub fn open_with(data_dir: &Path, config: FileStoreConfig) -> Result<Self, FileError> {
        let root = data_dir.join(Self::DIR);
        let (objects, tmp) = (root.join("objects"), root.join(".tmp"));
        let resumable = tmp.join("resumable");
        for dir in [&root, &objects, &tmp, &resumable] {
            create_dir(dir)?;
        }
        sync_dir(&root)?;
        sync_dir(&tmp)?;
        let index = Index::open(root.join("index.sqlite3"))?;
        let epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let shared = Shared {
            config,
            root,
            objects,
            tmp,
            resumable,
            index,
            epoch,
            next_object: AtomicU64::new(0),
            active: Mutex::new(HashMap::new()),
            released: Condvar::new(),
            uploading: AtomicU64::new(0),
        };
        let temp_files = shared.remove_plain_temp_files()?;
        let orphan_objects = shared.remove_orphan_objects()?;
        let mut store = LocalFileStore { shared: Arc::new(shared), cleaned: Cleanup::default() };
        let stale_resumable = store.remove_stale_resumable()?;
        store.cleaned = Cleanup { temp_files, orphan_objects, stale_resumable };
        Ok(store)
    }

    /// What opening the store removed.
    pub fn cleaned(&self) -> Cleanup {
        self.cleaned
    }

    /// The directory holding everything of this store.
    pub fn path(&self) -> &Path {
        &self.shared.root
    }

    /// Deletes resumable uploads not written to for longer than
    /// `resumable_max_age` (none if it is `None`), except those being
    /// written now, and forgets the uploads finished longer ago than that;
    /// answers how many. A server calls it now and then.
    pub fn remove_stale_resumable(&self) -> Result<usize, FileError> {
        let Some(max_age) = self.shared.config.resumable_max_age else { return Ok(0) };
        let dir = &self.shared.resumable;
        let now = SystemTime::now();
        let mut removed = match now.checked_sub(max_age) {
            Some(cutoff) => self.shared.index.lock().forget_finished_before(cutoff)?,
            None => 0,
        };
        for entry in std::fs::read_dir(dir).map_err(|e| FileError::io(dir, e))? {
            let entry = entry.map_err(|e| FileError::io(dir, e))?;
            let path = entry.path();
            let modified =
                entry.metadata().and_then(|m| m.modified()).map_err(|e| FileError::io(&path, e))?;
            let stale = now.duration_since(modified).is_ok_and(|age| age > max_age);
            // Held while removing, so nobody claims the upload meanwhile.
            let active = self.shared.active();
            if stale && !active.contains_key(&*entry.file_name().to_string_lossy()) {
                remove_any(&path).map_err(|e| FileError::io(&path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Shared {
    pub fn active(&self) -> MutexGuard<'_, HashMap<String, Arc<Active>>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Shared::active`], once no writer of `id` is finishing (waiting at
    /// most [`SETTLE_WAIT`]): what it makes durable or commits is then on
    /// disk and in the index.
    pub fn active_settled(&self, id: &str) -> MutexGuard<'_, HashMap<String, Arc<Active>>> {
        let closing = |active: &mut HashMap<String, Arc<Active>>| {
            active.get(id).is_some_and(|entry| entry.closing.load(Ordering::Acquire))
        };
        self.released
            .wait_timeout_while(self.active(), SETTLE_WAIT, closing)
            .map_or_else(|poisoned| poisoned.into_inner().0, |(active, _)| active)
    }

    pub fn resumable_path(&self, id: &str) -> PathBuf {
        self.resumable.join(id)
    }

    /// Everything in `.tmp` but the resumable uploads not finished: no
    /// upload is in progress while the store opens, so these are left by a
    /// crash. Answers how many.
    fn remove_plain_temp_files(&self) -> Result<usize, FileError> {
        let dir = &self.tmp;
        let mut removed = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| FileError::io(dir, e))? {
            let path = entry.map_err(|e| FileError::io(dir, e))?.path();
            if path != self.resumable {
                remove_any(&path).map_err(|e| FileError::io(&path, e))?;
                removed += 1;
            }
        }
        // The data of resumable uploads the index records as finished: a
        // crash came between a commit and its removal (see `commit`).
        let index = self.index.lock();
        let dir = &self.resumable;
        for entry in std::fs::read_dir(dir).map_err(|e| FileError::io(dir, e))? {
            let entry = entry.map_err(|e| FileError::io(dir, e))?;
            if index.finished(&entry.file_name().to_string_lossy())?.is_some() {
                let path = entry.path();
                remove_any(&path).map_err(|e| FileError::io(&path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Answers how many.
    fn remove_orphan_objects(&self) -> Result<usize, FileError> {
        let index = self.index.lock();
        let named = index.objects()?;
        let dir = &self.objects;
        let mut removed = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| FileError::io(dir, e))? {
            let entry = entry.map_err(|e| FileError::io(dir, e))?;
            if !named.contains(&*entry.file_name().to_string_lossy()) {
                let path = entry.path();
                remove_any(&path).map_err(|e| FileError::io(&path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn object_path(&self, object: &str) -> PathBuf {
        self.objects.join(object)
    }

    /// Makes the durable file at `temp` the content of `info.name`: moves it
    /// into `objects/` under a new name (never over another object), makes
    /// that durable, then switches the name to it in one index transaction.
    /// The commit point is that transaction: a crash before it leaves an
    /// object no name refers to, deleted at the next open.
    ///
    /// The data of a resumable upload is committed from its own file,
    /// `.tmp/resumable/<id>`, linked into `objects/` rather than moved, and
    /// removed only after the transaction, which also records its id as
    /// finished: a crash at any point keeps what the upload acknowledged.
    /// Without `replace`, a stored file of the name is kept
    /// ([`FileError::Exists`]), decided in that transaction too.
    pub fn commit(
        &self,
        temp: tempfile::TempPath,
        info: FileInfo,
        replace: bool,
    ) -> Result<FileInfo, FileError> {
        let finished = (temp.parent() == Some(self.resumable.as_path()))
            .then(|| temp.file_name().map(|id| id.to_string_lossy().into_owned()))
            .flatten();
        let mut temp = Some(temp);
        let mut attempts = 0;
        let (object, path) = loop {
            let object = format!("{:x}-{:x}", self.epoch, self.next_object.fetch_add(1, Ordering::Relaxed));
            let path = self.object_path(&object);
            let placed = match temp.take() {
                // A resumable upload's data stays in its own file too until
                // the index names the object: a crash before that leaves it
                // resumable, its acknowledged bytes whole (the object, which
                // nothing names yet, is removed at the next open).
                Some(data) if finished.is_some() => {
                    let linked = std::fs::hard_link(&data, &path);
                    temp = Some(data);
                    linked
                }
                Some(data) => data.persist_noclobber(&path).map_err(|e| {
                    temp = Some(e.path);
                    e.error
                }),
                None => return Err(FileError::io(&path, io::Error::other("the upload's data is gone"))),
            };
            match placed {
                Ok(()) => break (object, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
                Err(e) => return Err(FileError::io(&path, e)),
            }
        };
        let placed = sync_dir(&self.objects).and_then(|()| {
            let mut index = self.index.lock();
            let (row, old) = index.put(&object, &info, finished.as_deref(), replace)?;
            self.remove_replaced(&index, old);
            Ok(row.info)
        });
        if placed.is_err() {
            // Not committed: nothing refers to the object.
            let _ = std::fs::remove_file(&path);
        }
        // A resumable upload's own file goes now (as its TempPath drops):
        // committed, the index names its copy; not, it is discarded like a
        // plain upload's data. Should the process die first, the next open
        // removes the file of an upload the index records as finished.
        drop(temp);
        placed
    }

    /// Deletes the object a commit or a delete replaced. Done under the index
    /// lock so that no reader can have looked the name up and not opened it
    /// yet; if it fails, the next open deletes the orphan.
    fn remove_replaced(&self, _held: &Locked<'_>, old: Option<String>) {
        if let Some(old) = old {
            let _ = std::fs::remove_file(self.object_path(&old));
        }
    }
}

impl FileStore for LocalFileStore {
    type Upload = LocalUpload;
    type Reader = LocalReader;

    fn begin_upload(&self, name: &str, expected: Option<Sha256Digest>) -> Result<LocalUpload, FileError> {
        validate_name(name)?;
        let temp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&self.shared.tmp)
            .map_err(|e| FileError::io(&self.shared.tmp, e))?;
        Ok(LocalUpload::plain(Arc::clone(&self.shared), name, expected, temp))
    }

    fn resumable(
        &self,
        id: &str,
        name: &str,
        expected: Option<Sha256Digest>,
    ) -> Result<LocalUpload, FileError> {
        validate_name(id)?;
        validate_name(name)?;
        let guard = ActiveGuard::claim(&self.shared, id)?;
        // Checked once claimed: a commit of `id` holds the claim until its
        // finished record is written.
        if let Some(info) = self.shared.index.lock().finished(id)? {
            return Err(FileError::UploadFinished { id: id.to_owned(), info: Box::new(info) });
        }
        LocalUpload::resume(Arc::clone(&self.shared), name, expected, guard)
    }

    fn resumable_size(&self, id: &str) -> Result<Option<u64>, FileError> {
        validate_name(id)?;
        if let Some(entry) = self.shared.active_settled(id).get(id) {
            return Ok(Some(entry.durable.load(Ordering::Acquire)));
        }
        let path = self.shared.resumable_path(id);
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FileError::io(&path, e)),
        }
    }

    fn upload_state(&self, id: &str) -> Result<Option<UploadState>, FileError> {
        validate_name(id)?;
        // Held throughout, so no writer claims or releases `id` meanwhile: a
        // commit moves the data away before it records the id as finished,
        // but it holds its claim until then.
        let active = self.shared.active_settled(id);
        if let Some(entry) = active.get(id) {
            return Ok(Some(UploadState::InProgress { durable: entry.durable.load(Ordering::Acquire) }));
        }
        let path = self.shared.resumable_path(id);
        match std::fs::metadata(&path) {
            Ok(meta) => return Ok(Some(UploadState::InProgress { durable: meta.len() })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(FileError::io(&path, e)),
        }
        Ok(self.shared.index.lock().finished(id)?.map(UploadState::Finished))
    }

    fn discard_resumable(&self, id: &str) -> Result<bool, FileError> {
        validate_name(id)?;
        let _guard = ActiveGuard::claim(&self.shared, id)?;
        let forgotten = self.shared.index.lock().forget_finished(id)?;
        let path = self.shared.resumable_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(forgotten),
            Err(e) => Err(FileError::io(&path, e)),
        }
    }

    fn open(&self, name: &str) -> Result<(FileInfo, LocalReader), FileError> {
        validate_name(name)?;
        let index = self.shared.index.lock();
        let row = index.get(name)?.ok_or_else(|| FileError::NotFound { name: name.to_owned() })?;
        let path = self.shared.object_path(&row.object);
        let file = File::open(&path).map_err(|e| FileError::io(&path, e))?;
        drop(index);
        let reader = LocalReader::new(file, &path, row.info.size);
        Ok((row.info, reader))
    }

    fn stat(&self, name: &str) -> Result<FileInfo, FileError> {
        validate_name(name)?;
        let row = self.shared.index.lock().get(name)?;
        row.map(|row| row.info).ok_or_else(|| FileError::NotFound { name: name.to_owned() })
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<FileInfo>, FileError> {
        let rows = self.shared.index.lock().page(prefix, after.unwrap_or(""), limit)?;
        Ok(rows.into_iter().map(|row| row.info).collect())
    }

    fn delete(&self, name: &str) -> Result<FileInfo, FileError> {
        validate_name(name)?;
        let mut index = self.shared.index.lock();
        let row = index.remove(name)?.ok_or_else(|| FileError::NotFound { name: name.to_owned() })?;
        self.shared.remove_replaced(&index, Some(row.object));
        Ok(row.info)
    }

    fn usage(&self) -> Result<Usage, FileError> {
        let (files, bytes) = self.shared.index.lock().totals()?;
        let dir = &self.shared.resumable;
        let resumable = std::fs::read_dir(dir).map_err(|e| FileError::io(dir, e))?.count() as u64;
        let uploading = self.shared.uploading.load(Ordering::Relaxed);
        Ok(Usage { files, bytes, uploading, resumable })
    }
}
