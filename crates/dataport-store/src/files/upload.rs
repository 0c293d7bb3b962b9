//! [`LocalUpload`]: one upload streaming into a temporary file.
//!
//! An upload is a pipeline of three threads besides the caller's, so that
//! receiving, hashing and writing overlap: the caller copies the data into
//! [`BLOCKS`] reused blocks of [`BLOCK`] bytes (memory stays that whatever
//! the file size); a hashing thread adds each full block to the sha256, so
//! it costs no extra pass; a writing thread writes it; and every
//! `sync_every` bytes a flushing thread makes what is written so far
//! durable (`fdatasync`) while the upload goes on. A flush waits for the
//! one before, so at most two intervals are ever unflushed, and the flush at
//! commit is short.
//!
//! Blocks are written with direct I/O where the file system allows it
//! ([`super::direct`]): the bytes go from the block to the disk, not through
//! the page cache. A block is placed in memory at the same offset modulo
//! [`ALIGN`] as its data has in the file, so that all its whole aligned
//! pages can go direct; the ragged ends of a file (and all writes, on a file
//! system without direct I/O) go through the page cache.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use dataport_core::files::Sha256Digest;
use sha2::{Digest, Sha256};
use tempfile::{NamedTempFile, TempPath};

use super::direct::{self, ALIGN};
use super::local::Shared;
use super::{FileError, FileInfo, Upload};

/// Bytes per block: what the caller hands the hashing and writing threads
/// at a time, and the size of a direct write. Measured with 1 GiB uploads
/// from the CLI (bench/run files): the server spent about 1.6, 1.3, 1.1
/// and 1.1 s of CPU per GiB with blocks of 256 KiB, 1, 2 and 4 MiB, and
/// with 4 MiB its peak RSS passed 100 MB.
const BLOCK: usize = 2 << 20;

/// Blocks per upload, being filled, hashed, written or free: an upload holds
/// this many blocks of memory. Three stages need three to overlap; a fourth
/// lets the caller fill one while a slow write holds another.
const BLOCKS: usize = 4;

/// A file being uploaded to a [`super::LocalFileStore`]. Dropping it before
/// [`Upload::commit`] deletes a plain upload's data, and makes a resumable
/// upload's data durable for the next call to continue.
pub struct LocalUpload {
    shared: Arc<Shared>,
    name: String,
    expected: Option<Sha256Digest>,
    path: PathBuf,
    file: File,
    /// The block being filled.
    block: Option<Block>,
    /// The running pipeline; `None` before the first write, and after a
    /// sync until the next write.
    pipeline: Option<Pipeline>,
    /// The hasher while no pipeline runs (its thread holds it meanwhile).
    hasher: Option<Sha256>,
    /// The writer's descriptors, opened by the first write, held by the
    /// writing thread while a pipeline runs.
    disk: Option<Disk>,
    /// Free blocks kept while no pipeline runs.
    spare: Vec<Block>,
    written: u64,
    /// `written` at which the block being filled goes to the pipeline even
    /// if not full.
    next_handover: u64,
    /// Bytes known durable; shared with the flushing thread and, for a
    /// resumable upload, with the store.
    durable: Arc<AtomicU64>,
    /// The first error of a pipeline thread.
    failure: Arc<Mutex<Option<io::Error>>>,
    kind: Kind,
    state: State,
}

enum Kind {
    /// Deleted when dropped.
    Plain(Option<TempPath>),
    /// Kept for its claim on the id, released when dropped.
    Resumable { claim: ActiveGuard },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Failed,
    Committed,
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
            .field("path", &self.path)
            .field("written", &self.written)
            .field("durable", &self.durable.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// Up to [`BLOCK`] bytes of the file, from `pos` on, held at the offset
/// modulo [`ALIGN`] they have in the file (see the module docs).
struct Block {
    /// Never resized, so `base` stays aligned.
    buf: Vec<u8>,
    /// The first [`ALIGN`]-aligned index of `buf`; `None` if the memory
    /// cannot be aligned, and then the block is written through the cache.
    base: Option<usize>,
    pos: u64,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let buf = vec![0; BLOCK + 2 * ALIGN];
        let base = direct::aligned_start(&buf);
        Block { buf, base, pos: 0, len: 0 }
    }

    /// Empties the block for the data at `pos` on.
    fn reset(&mut self, pos: u64) {
        self.pos = pos;
        self.len = 0;
    }

    fn lead(&self) -> usize {
        (self.pos % ALIGN as u64) as usize
    }

    fn start(&self) -> usize {
        self.base.unwrap_or(0) + self.lead()
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start()..self.start() + self.len]
    }

    /// Bytes the block can still take; a full block ends on an aligned file
    /// offset, so the next one starts on one.
    fn room(&self) -> usize {
        BLOCK - self.lead() - self.len
    }

    /// Copies as much of `data` as fits; answers how much.
    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        let at = self.start() + self.len;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The part of `data()` that direct I/O can write: whole aligned pages,
    /// also aligned in memory.
    fn direct_range(&self) -> std::ops::Range<usize> {
        if self.base.is_none() {
            return 0..0;
        }
        let head = (ALIGN - self.lead()) % ALIGN;
        if head >= self.len {
            return 0..0;
        }
        let end = head + (self.len - head) / ALIGN * ALIGN;
        head..end
    }
}

/// Where blocks are written: the upload's file, and a second descriptor of
/// it opened for direct I/O where the file system allows.
struct Disk {
    file: File,
    direct: Option<File>,
}

impl Disk {
    fn open(file: &File, path: &Path) -> io::Result<Disk> {
        Ok(Disk { file: file.try_clone()?, direct: direct::open(path, true) })
    }

    fn write(&mut self, block: &Block) -> io::Result<()> {
        let (data, pos) = (block.data(), block.pos);
        let range = block.direct_range();
        let Some(direct) = self.direct.as_ref().filter(|_| !range.is_empty()) else {
            return self.file.write_all_at(data, pos);
        };
        self.file.write_all_at(&data[..range.start], pos)?;
        match direct.write_all_at(&data[range.clone()], pos + range.start as u64) {
            Ok(()) => {}
            // Alignment this file system does not take: through the cache from now on.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                self.direct = None;
                self.file.write_all_at(&data[range.clone()], pos + range.start as u64)?;
            }
            Err(e) => return Err(e),
        }
        self.file.write_all_at(&data[range.end..], pos + range.end as u64)
    }
}

/// The threads of an upload in progress: blocks go to `to_hash`, then to
/// the writing thread, and come back through `free`.
struct Pipeline {
    to_hash: SyncSender<Block>,
    free: Receiver<Block>,
    /// Blocks in the pipeline or in `free`, and the one being filled.
    blocks: usize,
    hashing: JoinHandle<Sha256>,
    writing: JoinHandle<(Disk, Vec<Block>)>,
}

/// Records the first error of a pipeline thread.
fn record(failure: &Mutex<Option<io::Error>>, e: io::Error) {
    failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
}

fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<JoinHandle<T>> {
    std::thread::Builder::new().name(name.into()).spawn(f)
}

/// The writing thread: writes each block, hands it back, and every
/// `sync_every` bytes starts a flush of what is written; at the end waits
/// for the last flush and answers the disk and the blocks it still has.
fn write_blocks(
    blocks: Receiver<Block>,
    free: SyncSender<Block>,
    mut disk: Disk,
    (sync_every, mut mark): (u64, u64),
    durable: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<io::Error>>>,
) -> (Disk, Vec<Block>) {
    let mut flusher = Flusher::spawn(&disk.file, durable, Arc::clone(&failure));
    let mut kept = Vec::new();
    for block in blocks.iter() {
        if let Err(e) = disk.write(&block) {
            record(&failure, e);
            kept.push(block);
            break;
        }
        let end = block.pos + block.len as u64;
        if end - mark >= sync_every {
            mark = end;
            if let Err(e) = flusher.flush(&disk.file, end) {
                record(&failure, e);
                kept.push(block);
                break;
            }
        }
        // The receiver gone means the upload stopped; keep the block.
        if let Err(TrySendError::Full(block) | TrySendError::Disconnected(block)) = free.try_send(block) {
            kept.push(block);
        }
    }
    drop(free);
    flusher.finish();
    kept.extend(blocks.try_iter());
    (disk, kept)
}

/// Flushes on its own thread: each request waits for the flush before it.
struct Flusher {
    thread: Option<(SyncSender<u64>, JoinHandle<()>)>,
    durable: Arc<AtomicU64>,
}

impl Flusher {
    fn spawn(file: &File, durable: Arc<AtomicU64>, failure: Arc<Mutex<Option<io::Error>>>) -> Flusher {
        let thread = file.try_clone().ok().and_then(|file| {
            let (tx, rx) = sync_channel::<u64>(0);
            let durable = Arc::clone(&durable);
            let thread = spawn("dataport-fsync", move || {
                for upto in rx.iter() {
                    match file.sync_data() {
                        Ok(()) => _ = durable.fetch_max(upto, Ordering::AcqRel),
                        Err(e) => return record(&failure, e),
                    }
                }
            });
            thread.ok().map(|thread| (tx, thread))
        });
        Flusher { thread, durable }
    }

    /// Has the first `upto` bytes flushed: on the thread, once the flush
    /// before has finished; here, if there is no thread (or it stopped,
    /// having recorded why).
    fn flush(&mut self, file: &File, upto: u64) -> io::Result<()> {
        if let Some((tx, _)) = &self.thread
            && tx.send(upto).is_ok()
        {
            return Ok(());
        }
        self.thread = None;
        file.sync_data()?;
        self.durable.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Waits for the flush in progress.
    fn finish(self) {
        if let Some((tx, thread)) = self.thread {
            drop(tx);
            let _ = thread.join();
        }
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
        let durable = Arc::new(AtomicU64::new(0));
        LocalUpload::new(shared, name, expected, temp.to_path_buf(), file, Kind::Plain(Some(temp)), durable)
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
        let mut block = Block::new();
        let buf = &mut block.buf[..BLOCK];
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(BLOCK).min(BLOCK);
            file.read_exact(&mut buf[..want]).map_err(io_error)?;
            hasher.update(&buf[..want]);
            left -= want as u64;
        }
        file.seek(SeekFrom::Start(len)).map_err(io_error)?;
        guard.active.durable.store(len, Ordering::Release);
        let durable = Arc::clone(&guard.active.durable);
        let mut upload =
            LocalUpload::new(shared, name, expected, path, file, Kind::Resumable { claim: guard }, durable);
        upload.spare.push(block);
        upload.hasher = Some(hasher);
        upload.written = len;
        upload.next_handover = len.saturating_add(upload.shared.config.sync_every);
        Ok(upload)
    }

    fn new(
        shared: Arc<Shared>,
        name: &str,
        expected: Option<Sha256Digest>,
        path: PathBuf,
        file: File,
        kind: Kind,
        durable: Arc<AtomicU64>,
    ) -> Self {
        let next_handover = shared.config.sync_every;
        LocalUpload {
            shared,
            name: name.to_owned(),
            expected,
            path,
            file,
            block: None,
            pipeline: None,
            hasher: Some(Sha256::new()),
            disk: None,
            spare: Vec::new(),
            written: 0,
            next_handover,
            durable,
            failure: Arc::new(Mutex::new(None)),
            kind,
            state: State::Open,
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

    fn check_open(&self) -> Result<(), FileError> {
        match self.state {
            State::Open => Ok(()),
            State::Failed | State::Committed => Err(FileError::Abandoned { name: self.name.clone() }),
        }
    }

    fn set_durable(&self, upto: u64) {
        self.durable.fetch_max(upto, Ordering::AcqRel);
    }

    /// Gives up after an I/O error: a plain upload's data is deleted, a
    /// resumable one is cut back to what is known durable.
    fn fail(&mut self, source: io::Error) -> FileError {
        self.state = State::Failed;
        self.stop();
        let err = FileError::io(&self.path, source);
        match &mut self.kind {
            Kind::Plain(temp) => drop(temp.take()),
            Kind::Resumable { .. } => {
                let durable = self.durable.load(Ordering::Acquire);
                let _ = self.file.set_len(durable).and_then(|()| self.file.sync_data());
            }
        }
        err
    }

    /// Deletes the upload's data, resumable or not.
    fn discard(&mut self) {
        self.state = State::Failed;
        self.stop();
        match &mut self.kind {
            Kind::Plain(temp) => drop(temp.take()),
            Kind::Resumable { .. } => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    /// Stops the pipeline, dropping the block being filled, and waits for its
    /// threads (which finish the few blocks already handed to them), so
    /// that nothing writes to the file after.
    fn stop(&mut self) {
        self.block = None;
        if let Some(pipeline) = self.pipeline.take() {
            let Pipeline { to_hash, free, hashing, writing, .. } = pipeline;
            drop((to_hash, free));
            let _ = hashing.join();
            let _ = writing.join();
        }
    }

    /// The first error of a pipeline thread, if any, taken.
    fn pipeline_error(&self) -> Option<io::Error> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// A failure of the pipeline: its recorded error, else `otherwise`.
    fn broken(&mut self, otherwise: &str) -> FileError {
        let e = self.pipeline_error().unwrap_or_else(|| io::Error::other(otherwise.to_owned()));
        self.fail(e)
    }

    /// Starts the hashing and writing threads.
    fn start(&mut self) -> Result<(), FileError> {
        let Some(hasher) = self.hasher.take() else {
            return Err(self.broken("the upload's hasher went missing"));
        };
        let disk = match self.disk.take() {
            Some(disk) => disk,
            None => Disk::open(&self.file, &self.path).map_err(|e| self.fail(e))?,
        };
        let (to_hash, hash_rx) = sync_channel::<Block>(BLOCKS);
        let (to_write, write_rx) = sync_channel::<Block>(BLOCKS);
        let (free_tx, free) = sync_channel::<Block>(BLOCKS);
        let blocks = self.spare.len();
        for block in self.spare.drain(..) {
            let _ = free_tx.try_send(block);
        }
        let hashing = spawn("dataport-sha256", move || {
            let mut hasher = hasher;
            for block in hash_rx.iter() {
                hasher.update(block.data());
                if to_write.send(block).is_err() {
                    break;
                }
            }
            hasher
        });
        let hashing = match hashing {
            Ok(thread) => thread,
            Err(e) => return Err(self.fail(e)),
        };
        let sync = (self.shared.config.sync_every, self.durable.load(Ordering::Acquire));
        let (durable, failure) = (Arc::clone(&self.durable), Arc::clone(&self.failure));
        let writing =
            spawn("dataport-write", move || write_blocks(write_rx, free_tx, disk, sync, durable, failure));
        let writing = match writing {
            Ok(thread) => thread,
            Err(e) => {
                drop(to_hash);
                let _ = hashing.join();
                return Err(self.fail(e));
            }
        };
        self.pipeline = Some(Pipeline { to_hash, free, blocks, hashing, writing });
        Ok(())
    }

    /// A free block for the data from `written` on: a returned one, a new
    /// one while the upload has fewer than [`BLOCKS`], else the next one
    /// the writing thread hands back.
    fn next_block(&mut self) -> Result<Block, FileError> {
        if self.pipeline.is_none() {
            self.start()?;
        }
        let block = match self.pipeline.as_mut() {
            None => Err(()),
            Some(pipeline) => match pipeline.free.try_recv() {
                Ok(block) => Ok(block),
                Err(TryRecvError::Empty) if pipeline.blocks < BLOCKS => {
                    pipeline.blocks += 1;
                    Ok(Block::new())
                }
                Err(_) => pipeline.free.recv().map_err(|_| ()),
            },
        };
        match block {
            Ok(mut block) => {
                block.reset(self.written);
                Ok(block)
            }
            Err(()) => Err(self.broken("the upload's writing thread stopped")),
        }
    }

    /// Hands the block being filled to the pipeline.
    fn send_block(&mut self) -> Result<(), FileError> {
        let Some(block) = self.block.take() else { return Ok(()) };
        if block.len == 0 {
            self.spare.push(block);
            return Ok(());
        }
        let sent = self.pipeline.as_ref().is_some_and(|pipeline| pipeline.to_hash.send(block).is_ok());
        if sent { Ok(()) } else { Err(self.broken("the upload's hashing thread stopped")) }
    }

    /// Writes everything handed over so far and stops the threads, taking
    /// back the hasher, the disk and the blocks.
    fn drain(&mut self) -> Result<(), FileError> {
        self.send_block()?;
        let Some(Pipeline { to_hash, free, hashing, writing, .. }) = self.pipeline.take() else {
            return Ok(());
        };
        drop(to_hash);
        let hashed = hashing.join();
        let written = writing.join();
        self.spare.extend(free.try_iter());
        match (hashed, written) {
            (Ok(hasher), Ok((disk, blocks))) => {
                self.hasher = Some(hasher);
                self.disk = Some(disk);
                self.spare.extend(blocks);
            }
            _ => return Err(self.fail(io::Error::other("an upload thread panicked"))),
        }
        match self.pipeline_error() {
            Some(e) => Err(self.fail(e)),
            None => Ok(()),
        }
    }
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
        let mut rest = data;
        while !rest.is_empty() {
            let block = match self.block.take() {
                Some(block) => block,
                None => self.next_block()?,
            };
            let block = self.block.insert(block);
            let n = block.push(rest);
            let full = block.room() == 0;
            rest = &rest[n..];
            self.written += n as u64;
            // A block also goes at every `sync_every` bytes, lest a small
            // interval wait for a block to fill before being flushed.
            if self.written >= self.next_handover {
                self.next_handover = self.written.saturating_add(self.shared.config.sync_every);
                self.send_block()?;
            } else if full {
                self.send_block()?;
            }
        }
        if let Some(e) = self.pipeline_error() {
            return Err(self.fail(e));
        }
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn committed_size(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    fn sync(&mut self) -> Result<u64, FileError> {
        self.check_open()?;
        self.drain()?;
        self.file.sync_data().map_err(|e| self.fail(e))?;
        self.set_durable(self.written);
        Ok(self.written)
    }

    fn expect_sha256(&mut self, expected: Sha256Digest) {
        self.expected = Some(expected);
    }

    fn commit(mut self) -> Result<FileInfo, FileError> {
        self.check_open()?;
        self.close();
        self.drain()?;
        let Some(hasher) = self.hasher.take() else {
            return Err(self.broken("the upload's hasher went missing"));
        };
        let actual = Sha256Digest(hasher.finalize().into());
        if let Some(expected) = self.expected
            && expected != actual
        {
            self.discard();
            return Err(FileError::ChecksumMismatch { expected, actual });
        }
        self.file.sync_data().map_err(|e| self.fail(e))?;
        self.set_durable(self.written);
        let temp = match &mut self.kind {
            Kind::Plain(temp) => temp.take(),
            // From here the resumable data is the commit's: if the commit
            // fails, it is deleted like a plain upload's.
            Kind::Resumable { .. } => {
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
        if self.state == State::Open && matches!(self.kind, Kind::Resumable { .. }) {
            self.close();
            let _ = self.sync();
        }
        self.stop();
    }
}
