//! [`S3Reader`]: a stored file read from S3 as one streamed GET from the
//! current offset; a seek drops the stream and the next read starts
//! another at the new offset.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::sync::mpsc;

use super::Inner;

/// How many received chunks wait for the reader: the memory a reader holds
/// is a few of hyper's reads.
const AHEAD: usize = 4;

/// Reads one data object, which never changes: a file replaced or deleted
/// after it was opened keeps being read whole, for as long as
/// [`super::S3Options::delete_grace`].
pub struct S3Reader {
    inner: Arc<Inner>,
    path: Path,
    size: u64,
    pos: u64,
    /// Received and not yet read.
    chunk: Bytes,
    stream: Option<mpsc::Receiver<Result<Bytes, object_store::Error>>>,
}

impl fmt::Debug for S3Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Reader")
            .field("path", &self.path.as_ref())
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl S3Reader {
    pub(super) fn new(inner: Arc<Inner>, path: Path, size: u64) -> Self {
        S3Reader { inner, path, size, pos: 0, chunk: Bytes::new(), stream: None }
    }

    /// The file's size.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// A GET from the current offset, its body sent down a bounded channel.
    fn start(&mut self) -> io::Result<&mut mpsc::Receiver<Result<Bytes, object_store::Error>>> {
        let handle = self.inner.handle().ok_or_else(|| io::Error::other("the file store has stopped"))?;
        let (tx, rx) = mpsc::channel(AHEAD);
        let (s3, path, from) = (self.inner.s3(), self.path.clone(), self.pos);
        handle.spawn(async move {
            use futures_util::StreamExt;
            let options = GetOptions { range: Some(GetRange::Offset(from)), ..Default::default() };
            match s3.get_opts(&path, options).await {
                Ok(got) => {
                    let mut body = got.into_stream();
                    while let Some(item) = body.next().await {
                        // The reader went away (dropped, or seeking).
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        });
        Ok(self.stream.insert(rx))
    }
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if buf.is_empty() {
                return Ok(0);
            }
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&self.chunk[..n]);
                let _ = self.chunk.split_to(n);
                self.pos += n as u64;
                return Ok(n);
            }
            if self.pos >= self.size {
                return Ok(0);
            }
            let stream = match self.stream.as_mut() {
                Some(stream) => stream,
                None => self.start()?,
            };
            match stream.blocking_recv() {
                Some(Ok(bytes)) => self.chunk = bytes,
                Some(Err(e)) => {
                    self.stream = None;
                    return Err(io::Error::other(self.inner.error(e)));
                }
                None => {
                    self.stream = None;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: the object ended at {} of {} bytes", self.path, self.pos, self.size),
                    ));
                }
            }
        }
    }
}

impl Seek for S3Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        let Some(target) = target else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file"));
        };
        if target != self.pos {
            self.stream = None;
            self.chunk = Bytes::new();
            self.pos = target;
        }
        Ok(target)
    }
}
