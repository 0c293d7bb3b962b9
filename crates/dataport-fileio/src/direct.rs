//! Direct I/O (`O_DIRECT`): file data moved between the disk and our own
//! aligned buffers rather than through the page cache, for the bulk of the
//! files a [`crate::DurableWriter`] writes and for reading large files
//! ([`DirectReader`], under [`crate::LocalReader`]).
//!
//! Why: a large transfer through the page cache makes the kernel take a
//! fresh page for every 4 KiB, and on a virtual machine a fresh page is
//! memory the guest must fault in from the host, measured at 0.5-1 GB/s here,
//! slower than the disk, which the host caches (see bench/README.md, files).
//! Direct I/O also saves the copy into or out of the cache. Like nginx's
//! `directio`, it is kept for large files: small ones, often read again,
//! stay cached.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

/// The alignment of direct I/O (memory, file offsets, lengths): the page
/// size, which every Linux file system that does direct I/O accepts.
pub(crate) const ALIGN: usize = 4096;

/// Files at least this large are read with direct I/O.
pub(crate) const READ_MIN: u64 = 16 << 20;

/// Bytes a [`DirectReader`] reads from the disk at a time.
const READ_BLOCK: usize = 2 << 20;

/// Opens `path` for direct reading or writing; an error (`EINVAL`) where
/// the file system does not do direct I/O.
pub(crate) fn open(path: &Path, write: bool) -> io::Result<File> {
    File::options()
        .read(!write)
        .write(write)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)
}

/// The first index of `buf` at an [`ALIGN`]-aligned address, if there is
/// one within the first [`ALIGN`] bytes.
pub(crate) fn aligned_start(buf: &[u8]) -> Option<usize> {
    Some(buf.as_ptr().align_offset(ALIGN)).filter(|&b| b < ALIGN && b <= buf.len())
}

/// Reads a file with direct I/O through one aligned buffer of
/// [`READ_BLOCK`] bytes. A read the file system refuses
/// ([`io::ErrorKind::InvalidInput`]) is the caller's cue to read through
/// the page cache instead, from [`DirectReader::position`].
pub(crate) struct DirectReader {
    file: Arc<File>,
    /// Never resized, so `base` stays aligned.
    buf: Vec<u8>,
    base: usize,
    /// The buffer holds the file's bytes `start..start + len`.
    start: u64,
    len: usize,
    pos: u64,
    /// Reads of the next chunks, started while this one is used.
    ahead: Option<Ahead>,
}

impl fmt::Debug for DirectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectReader").field("pos", &self.pos).finish_non_exhaustive()
    }
}

impl DirectReader {
    /// `None` where the file system does not do direct I/O, or the buffer
    /// cannot be aligned.
    pub fn open(path: &Path) -> Option<Self> {
        let file = open(path, false).ok()?;
        let buf = vec![0; READ_BLOCK + ALIGN];
        let base = aligned_start(&buf)?;
        Some(DirectReader { file: Arc::new(file), buf, base, start: 0, len: 0, pos: 0, ahead: None })
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads the aligned block around `pos` into the buffer.
    fn fill(&mut self) -> io::Result<()> {
        let start = self.pos / ALIGN as u64 * ALIGN as u64;
        let buf = &mut self.buf[self.base..self.base + READ_BLOCK];
        let mut got = 0;
        // Short of the end of the file, reads come in whole pages.
        while got < READ_BLOCK && got % ALIGN == 0 {
            match self.file.read_at(&mut buf[got..], start + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        (self.start, self.len) = (start, got);
        Ok(())
    }
}

impl DirectReader {
    /// The buffered bytes from the position on, reading the block around it
    /// first if need be; empty at the end of the file.
    fn buffered(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.start || self.pos >= self.start + self.len as u64 {
            self.fill()?;
            if self.pos >= self.start + self.len as u64 {
                return Ok(&[]);
            }
        }
        let from = self.base + (self.pos - self.start) as usize;
        Ok(&self.buf[from..self.base + self.len])
    }

    /// Reads up to `max` bytes into a new vector, fewer only at the end of
    /// the file: straight from the disk into the vector where it can (see
    /// [`read_into_new`]), else through the reader's buffer.
    ///
    /// Once a whole chunk has been read so, the next [`AHEAD`] chunks of the
    /// same size are read on threads of their own while this one is used:
    /// a direct read returns only once the disk has answered, so one at a
    /// time leaves the disk idle between reads.
    pub fn read_chunk(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let buffered = self.pos >= self.start && self.pos < self.start + self.len as u64;
        if !buffered {
            let early = self.ahead.as_mut().and_then(|ahead| ahead.take(self.pos, max));
            let chunk = match early {
                Some(read) => read?,
                None => {
                    // Not where the reads ahead are: start them afresh after this one.
                    self.ahead = None;
                    read_into_new(&self.file, self.pos, max)?
                }
            };
            if let Some(chunk) = chunk {
                self.pos += chunk.len() as u64;
                if chunk.len() < max {
                    self.ahead = None; // the end of the file
                } else if self.ahead.is_none() {
                    self.ahead = Ahead::start(&self.file, self.pos, max).ok();
                }
                return Ok(chunk);
            }
            self.ahead = None;
        }
        let mut chunk = Vec::with_capacity(max);
        self.append_to(&mut chunk, max)?;
        Ok(chunk)
    }

    /// Appends bytes to `out` until it holds `max`, or the file ends.
    fn append_to(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<()> {
        while out.len() < max {
            let want = max - out.len();
            let data = self.buffered()?;
            let n = data.len().min(want);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&data[..n]);
            self.pos += n as u64;
        }
        Ok(())
    }
}

/// Reads up to `max` bytes of `file` (opened for direct I/O) at `pos` into a
/// new vector, with nothing in between: no buffer to copy from, and no
/// zeroing first. `None` where direct I/O cannot take the vector: `pos` or
/// `max` not aligned, or memory the allocator did not align (mimalloc, the
/// binary's allocator, page-aligns allocations of these sizes; the system
/// allocator does not).
fn read_into_new(file: &File, pos: u64, max: usize) -> io::Result<Option<Vec<u8>>> {
    if !pos.is_multiple_of(ALIGN as u64) || !max.is_multiple_of(ALIGN) || max == 0 {
        return Ok(None);
    }
    let mut chunk: Vec<u8> = Vec::with_capacity(max);
    if chunk.capacity() != max || chunk.as_ptr().align_offset(ALIGN) != 0 {
        return Ok(None);
    }
    // Direct reads come in whole pages short of the end of the file.
    while chunk.len() < max && chunk.len().is_multiple_of(ALIGN) {
        let at = pos + chunk.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut chunk), at) {
            Ok(0) => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(chunk))
}

/// Chunks read ahead of a [`DirectReader`], this many at once.
const AHEAD: usize = 3;

/// What a read ahead answers: as [`read_into_new`].
type ReadAnswer = io::Result<Option<Vec<u8>>>;

/// Reads of the [`AHEAD`] chunks after the one in use, each on a thread of
/// its own (threads that stop once this is dropped).
struct Ahead {
    chunk: usize,
    /// Where the next read to start begins.
    next: u64,
    /// Reads started, in file order: their position, and their answer.
    pending: VecDeque<(u64, Receiver<ReadAnswer>)>,
    jobs: SyncSender<(u64, usize, SyncSender<ReadAnswer>)>,
}

impl Ahead {
    /// Starts reading `chunk`-byte chunks of `file` from `pos` on.
    fn start(file: &Arc<File>, pos: u64, chunk: usize) -> io::Result<Ahead> {
        let (jobs, queue) = sync_channel::<(u64, usize, SyncSender<ReadAnswer>)>(AHEAD);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..AHEAD {
            let (file, queue) = (Arc::clone(file), Arc::clone(&queue));
            std::thread::Builder::new().name("dataport-read".into()).spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((pos, len, answer)) = job else { return };
                    // The reader may have moved on; then nobody waits for this.
                    let _ = answer.send(read_into_new(&file, pos, len));
                }
            })?;
        }
        let mut ahead = Ahead { chunk, next: pos, pending: VecDeque::new(), jobs };
        ahead.top_up();
        Ok(ahead)
    }

    fn top_up(&mut self) {
        while self.pending.len() < AHEAD {
            let (answer, answered) = sync_channel(1);
            if self.jobs.send((self.next, self.chunk, answer)).is_err() {
                return;
            }
            self.pending.push_back((self.next, answered));
            self.next += self.chunk as u64;
        }
    }

    /// The read of `max` bytes at `pos`, if it is the next one read ahead.
    fn take(&mut self, pos: u64, max: usize) -> Option<ReadAnswer> {
        if max != self.chunk || self.pending.front().is_none_or(|(at, _)| *at != pos) {
            return None;
        }
        let (_, answered) = self.pending.pop_front()?;
        let answer = answered.recv().unwrap_or_else(|_| Err(io::Error::other("a read-ahead thread stopped")));
        self.top_up();
        Some(answer)
    }
}

impl Read for DirectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let data = self.buffered()?;
        let n = out.len().min(data.len());
        out[..n].copy_from_slice(&data[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for DirectReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.file.metadata()?.len().checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
impl DirectReader {
    /// Moves the buffer one byte off its alignment, so the next read into
    /// it is refused (`EINVAL`), as a file system with a larger alignment
    /// than [`ALIGN`] would refuse it.
    pub(crate) fn misalign(&mut self) {
        self.base += 1;
        self.len = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// An empty temporary file that takes direct I/O, and refuses what it
    /// cannot do direct: a misaligned write is `EINVAL`. The tests of the
    /// direct paths need one, and fail rather than pass untested where the
    /// temporary directory's file system has no direct I/O, or takes
    /// `O_DIRECT` and goes through its cache anyway (tmpfs since Linux
    /// 6.6): point `TMPDIR` at an ext4 or XFS directory then.
    pub(crate) fn direct_temp_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let misaligned = open(file.path(), true).and_then(|direct| direct.write_at(b"x", 1));
        assert!(
            misaligned.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::InvalidInput),
            "{}: no direct I/O here (a misaligned direct write answered {misaligned:?}); these tests need a \
             file system that has it, such as ext4 or XFS: set TMPDIR",
            file.path().display()
        );
        file
    }

    #[test]
    fn chunks_read_ahead_come_in_order_and_a_seek_starts_them_afresh() {
        const CHUNK: usize = 16 * ALIGN;
        let mut file = direct_temp_file();
        let data: Vec<u8> = (0..5 * CHUNK + 100).map(|i| (i * 13 % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let mut reader = DirectReader::open(file.path()).expect("direct I/O on this file");
        let first = reader.read_chunk(CHUNK).unwrap();
        assert!(first == data[..CHUNK]);
        assert!(reader.ahead.is_some(), "a whole chunk starts the reads ahead");
        let mut got = first;
        loop {
            let chunk = reader.read_chunk(CHUNK).unwrap();
            if chunk.is_empty() {
                break;
            }
            got.extend_from_slice(&chunk);
        }
        assert!(got == data, "chunks read ahead are the file, in order");
        assert!(reader.ahead.is_none(), "the end of the file stops them");
        reader.seek(SeekFrom::Start(CHUNK as u64)).unwrap();
        assert!(reader.read_chunk(CHUNK).unwrap() == data[CHUNK..2 * CHUNK]);
        assert!(reader.read_chunk(CHUNK).unwrap() == data[2 * CHUNK..3 * CHUNK]);
        reader.seek(SeekFrom::Start(0)).unwrap();
        assert!(
            reader.read_chunk(CHUNK).unwrap() == data[..CHUNK],
            "reads ahead of another place are dropped"
        );
        assert!(reader.read_chunk(CHUNK / 2).unwrap() == data[CHUNK..CHUNK + CHUNK / 2], "another size too");
    }

    #[test]
    fn aligned_reads_go_straight_into_the_vector() {
        let mut file = direct_temp_file();
        let data: Vec<u8> = (0..3 * ALIGN + 5).map(|i| (i * 7 % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let direct = open(file.path(), false).expect("direct I/O on this file");
        let chunk = read_into_new(&direct, 0, 2 * ALIGN).unwrap().expect("aligned memory from the allocator");
        assert!(chunk == data[..2 * ALIGN]);
        let tail = read_into_new(&direct, 2 * ALIGN as u64, 4 * ALIGN).unwrap().expect("aligned");
        assert!(tail == data[2 * ALIGN..], "the end of the file: a short read");
        assert!(read_into_new(&direct, 1, 2 * ALIGN).unwrap().is_none(), "an unaligned position");
        assert!(read_into_new(&direct, 0, ALIGN + 1).unwrap().is_none(), "an unaligned length");
    }

    #[test]
    fn a_file_system_without_direct_io_is_an_error_not_a_reader() {
        // /proc takes no O_DIRECT; nor does tmpfs, where the callers fall
        // back to the page cache.
        let err = open(Path::new("/proc/self/status"), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(DirectReader::open(Path::new("/proc/self/status")).is_none());
    }
}
