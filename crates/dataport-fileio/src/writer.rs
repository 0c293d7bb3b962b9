//! [`DurableWriter`]: a file written through a pipeline of three threads
//! besides the caller's, so that receiving, hashing and writing overlap.
//!
//! The caller copies the data into [`BLOCKS`] reused blocks of [`BLOCK`]
//! bytes (memory stays that whatever the file size); a hashing thread adds
//! each full block to the sha256, so it costs no extra pass; a writing
//! thread writes it; and every `sync_every` bytes a flushing thread makes
//! what is written so far durable (`fdatasync`) while the writing goes on.
//! A flush waits for the one before, so at most two intervals are ever
//! unflushed, and the flush at the end is short.
//!
//! Blocks are written with direct I/O where the file system allows it
//! ([`crate::direct`]): the bytes go from the block to the disk, not through
//! the page cache. A block is placed in memory at the same offset modulo
//! [`ALIGN`] as its data has in the file, so that all its whole aligned
//! pages can go direct; the ragged ends of a file (and all writes, on a file
//! system without direct I/O) go through the page cache.
//!
//! The store's uploads and the CLI's downloads write through it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use dataport_core::files::Sha256Digest;
use sha2::{Digest, Sha256};

use crate::direct::{self, ALIGN};

/// Bytes per block: what the caller hands the hashing and writing threads
/// at a time, and the size of a direct write. Measured with 1 GiB uploads
/// from the CLI (bench/run files): the server spent about 1.6, 1.3, 1.1
/// and 1.1 s of CPU per GiB with blocks of 256 KiB, 1, 2 and 4 MiB, and
/// with 4 MiB its peak RSS passed 100 MB.
const BLOCK: usize = 2 << 20;

/// Blocks written at once, each by a thread of its own. A direct write
/// returns only once the disk has the data, so one write at a time leaves
/// the disk idle between writes; measured here (a virtual disk), 2 MiB
/// direct writes ran at 330 MB/s one at a time, 490 four at a time and 640
/// eight at a time in a slow hour, and at 1050, 1240 and 1250 MB/s in a
/// fast one.
const WRITERS: usize = 4;

/// Blocks per writer, being filled, hashed, written or free: a writer holds
/// this many blocks of memory. The caller fills one and the hashing thread
/// holds one while the writing threads hold [`WRITERS`]; two more held the
/// server's peak RSS about 5 MB higher and were no faster.
const BLOCKS: usize = WRITERS + 2;

/// A file being written, hashed and flushed as it goes (see the module
/// docs). Errors of the pipeline's threads surface at the next call; after
/// an error the writer should be dropped. Dropping it stops the threads
/// once they have written what they were handed, and leaves the file as
/// it is.
pub struct DurableWriter {
    file: File,
    path: PathBuf,
    sync_every: u64,
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
    /// Bytes known durable; shared with the flushing thread (and whoever
    /// the caller gives it to).
    durable: Arc<AtomicU64>,
    /// The first error of a pipeline thread.
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl fmt::Debug for DurableWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableWriter")
            .field("path", &self.path)
            .field("written", &self.written)
            .field("durable", &self.durable.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl DurableWriter {
    /// A writer of the empty file `file`, which is at `path`, flushing
    /// every `sync_every` bytes.
    pub fn new(file: File, path: PathBuf, sync_every: u64) -> Self {
        Self::continuing(file, path, sync_every, (0, Sha256::new()), Arc::new(AtomicU64::new(0)))
    }

    /// A writer that continues `file`, at `path`, after the bytes it holds,
    /// all durable already (as a writer that synced left them); `durable`
    /// is kept up to date as flushes finish. The bytes are read once to
    /// rebuild the sha256, since a restart loses the running hash.
    pub fn resume(file: File, path: PathBuf, sync_every: u64, durable: Arc<AtomicU64>) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let mut hasher = Sha256::new();
        let mut buf = vec![0; BLOCK];
        let mut at = 0;
        while at < len {
            let want = usize::try_from(len - at).unwrap_or(BLOCK).min(BLOCK);
            file.read_exact_at(&mut buf[..want], at)?;
            hasher.update(&buf[..want]);
            at += want as u64;
        }
        Ok(Self::continuing(file, path, sync_every, (len, hasher), durable))
    }

    /// A writer that continues `file` after its first `written` bytes,
    /// durable already, which `hasher` has hashed.
    fn continuing(
        file: File,
        path: PathBuf,
        sync_every: u64,
        (written, hasher): (u64, Sha256),
        durable: Arc<AtomicU64>,
    ) -> Self {
        durable.fetch_max(written, Ordering::AcqRel);
        DurableWriter {
            file,
            path,
            sync_every,
            block: None,
            pipeline: None,
            hasher: Some(hasher),
            disk: None,
            spare: Vec::new(),
            written,
            next_handover: written.saturating_add(sync_every),
            durable,
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes known durable.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The file being written.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `data`.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
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
                self.next_handover = self.written.saturating_add(self.sync_every);
                self.send_block()?;
            } else if full {
                self.send_block()?;
            }
        }
        match self.pipeline_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes and flushes everything so far; answers how many bytes are
    /// durable. Writing may go on after.
    pub fn sync(&mut self) -> io::Result<u64> {
        self.drain()?;
        self.file.sync_data()?;
        self.durable.fetch_max(self.written, Ordering::AcqRel);
        Ok(self.written)
    }

    /// Writes everything, and answers the sha256 of the whole file; nothing
    /// may be written after. [`DurableWriter::sync`] then makes it durable
    /// (left to the caller, who may rather discard a file with the wrong
    /// digest).
    pub fn finish(&mut self) -> io::Result<Sha256Digest> {
        self.drain()?;
        let hasher = self.hasher.take().ok_or_else(|| io::Error::other("the writer was finished before"))?;
        Ok(Sha256Digest(hasher.finalize().into()))
    }

    /// Stops the pipeline, dropping the block being filled, and waits for
    /// its threads (which finish the few blocks already handed to them), so
    /// that nothing writes to the file after.
    pub fn stop(&mut self) {
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
    fn broken(&self, otherwise: &str) -> io::Error {
        self.pipeline_error().unwrap_or_else(|| io::Error::other(otherwise.to_owned()))
    }

    /// Starts the hashing and writing threads.
    fn start(&mut self) -> io::Result<()> {
        let hasher = self.hasher.take().ok_or_else(|| self.broken("the writer's hasher went missing"))?;
        let disk = match self.disk.take() {
            Some(disk) => disk,
            None => Disk::open(&self.file, &self.path)?,
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
        })?;
        let sync = (self.sync_every, self.written);
        let (durable, failure) = (Arc::clone(&self.durable), Arc::clone(&self.failure));
        let writing =
            spawn("dataport-write", move || write_blocks(write_rx, free_tx, disk, sync, durable, failure));
        let writing = match writing {
            Ok(thread) => thread,
            Err(e) => {
                drop(to_hash);
                let _ = hashing.join();
                return Err(e);
            }
        };
        self.pipeline = Some(Pipeline { to_hash, free, blocks, hashing, writing });
        Ok(())
    }

    /// A free block for the data from `written` on: a returned one, a new
    /// one while the writer has fewer than [`BLOCKS`], else the next one
    /// the writing thread hands back.
    fn next_block(&mut self) -> io::Result<Block> {
        if self.pipeline.is_none() {
            self.start()?;
        }
        let block = match self.pipeline.as_mut() {
            None => None,
            Some(pipeline) => match pipeline.free.try_recv() {
                Ok(block) => Some(block),
                Err(TryRecvError::Empty) if pipeline.blocks < BLOCKS => {
                    pipeline.blocks += 1;
                    Some(Block::new())
                }
                Err(_) => pipeline.free.recv().ok(),
            },
        };
        let mut block = block.ok_or_else(|| self.broken("the writing thread stopped"))?;
        block.reset(self.written);
        Ok(block)
    }

    /// Hands the block being filled to the pipeline.
    fn send_block(&mut self) -> io::Result<()> {
        let Some(block) = self.block.take() else { return Ok(()) };
        if block.len == 0 {
            self.spare.push(block);
            return Ok(());
        }
        let sent = self.pipeline.as_ref().is_some_and(|pipeline| pipeline.to_hash.send(block).is_ok());
        if sent { Ok(()) } else { Err(self.broken("the hashing thread stopped")) }
    }

    /// Writes everything handed over so far and stops the threads, taking
    /// back the hasher, the disk and the blocks.
    fn drain(&mut self) -> io::Result<()> {
        self.send_block()?;
        let Some(Pipeline { to_hash, free, hashing, writing, .. }) = self.pipeline.take() else {
            return Ok(());
        };
        drop(to_hash);
        let hashed = hashing.join();
        let written = writing.join();
        self.spare.extend(free.try_iter());
        let (Ok(hasher), Ok((disk, blocks))) = (hashed, written) else {
            return Err(io::Error::other("a writer thread panicked"));
        };
        self.hasher = Some(hasher);
        self.disk = Some(disk);
        self.spare.extend(blocks);
        match self.pipeline_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for DurableWriter {
    fn drop(&mut self) {
        self.stop();
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

/// Where blocks are written: the file, and a second descriptor of it
/// opened for direct I/O where the file system allows.
struct Disk {
    file: File,
    direct: Option<File>,
    /// The file system refused an alignment: through the cache from now on.
    cached_only: AtomicBool,
}

impl Disk {
    fn open(file: &File, path: &Path) -> io::Result<Disk> {
        Ok(Disk {
            file: file.try_clone()?,
            direct: direct::open(path, true).ok(),
            cached_only: AtomicBool::new(false),
        })
    }

    fn write(&self, block: &Block) -> io::Result<()> {
        let (data, pos) = (block.data(), block.pos);
        let range = block.direct_range();
        let direct =
            self.direct.as_ref().filter(|_| !range.is_empty() && !self.cached_only.load(Ordering::Relaxed));
        let Some(direct) = direct else {
            return self.file.write_all_at(data, pos);
        };
        self.file.write_all_at(&data[..range.start], pos)?;
        match direct.write_all_at(&data[range.clone()], pos + range.start as u64) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                self.cached_only.store(true, Ordering::Relaxed);
                self.file.write_all_at(&data[range.clone()], pos + range.start as u64)?;
            }
            Err(e) => return Err(e),
        }
        self.file.write_all_at(&data[range.end..], pos + range.end as u64)
    }
}

/// The threads of a writer at work: blocks go to `to_hash`, then to the
/// writing threads, and come back through `free`.
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

/// The writing stage: [`WRITERS`] threads take blocks in turn, write them,
/// and hand them back; once every byte below a point `sync_every` past the
/// last flush is written, a flush of it starts. At the end it waits for the
/// last flush and answers the disk and the blocks it still has.
fn write_blocks(
    blocks: Receiver<Block>,
    free: SyncSender<Block>,
    disk: Disk,
    (sync_every, start): (u64, u64),
    durable: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<io::Error>>>,
) -> (Disk, Vec<Block>) {
    let flusher = Flusher::spawn(&disk.file, durable, Arc::clone(&failure));
    let written =
        Mutex::new(Written { prefix: start, mark: start, sync_every, beyond: BTreeMap::new(), flusher });
    let blocks = Mutex::new(blocks);
    let kept = Mutex::new(Vec::new());
    let stopped = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| {
                while !stopped.load(Ordering::Acquire) {
                    let Ok(block) = blocks.lock().unwrap_or_else(PoisonError::into_inner).recv() else {
                        break;
                    };
                    let done = disk.write(&block).and_then(|()| {
                        let end = block.pos + block.len as u64;
                        written.lock().unwrap_or_else(PoisonError::into_inner).add(block.pos..end, &disk.file)
                    });
                    if let Err(e) = done {
                        record(&failure, e);
                        stopped.store(true, Ordering::Release);
                        kept.lock().unwrap_or_else(PoisonError::into_inner).push(block);
                        break;
                    }
                    // The receiver gone means the writer stopped; keep the block.
                    if let Err(TrySendError::Full(block) | TrySendError::Disconnected(block)) =
                        free.try_send(block)
                    {
                        kept.lock().unwrap_or_else(PoisonError::into_inner).push(block);
                    }
                }
            });
        }
    });
    drop(free);
    written.into_inner().unwrap_or_else(PoisonError::into_inner).flusher.finish();
    let mut kept = kept.into_inner().unwrap_or_else(PoisonError::into_inner);
    kept.extend(blocks.into_inner().unwrap_or_else(PoisonError::into_inner).try_iter());
    (disk, kept)
}

/// What the writing threads have written, for the flushes: every byte below
/// `prefix`, and the ranges `beyond` it written out of turn.
struct Written {
    prefix: u64,
    /// `prefix` at the last flush.
    mark: u64,
    sync_every: u64,
    /// Start to end.
    beyond: BTreeMap<u64, u64>,
    flusher: Flusher,
}

impl Written {
    fn add(&mut self, range: Range<u64>, file: &File) -> io::Result<()> {
        self.beyond.insert(range.start, range.end);
        while let Some(end) = self.beyond.remove(&self.prefix) {
            self.prefix = end;
        }
        if self.prefix - self.mark >= self.sync_every {
            self.mark = self.prefix;
            self.flusher.flush(file, self.prefix)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests;
