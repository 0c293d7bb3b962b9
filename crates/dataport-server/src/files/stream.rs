//! Moving file data between a call's messages and the blocking file store,
//! shared by every files service: uploads through a bounded channel to a
//! writer thread, downloads from a reader thread through a bounded channel,
//! so memory stays bounded whatever the file size.

use dataport_core::files::Sha256Digest;
use dataport_store::files::{FileInfo, FileStore, LocalFileStore, LocalReader, Upload};
use prost::bytes::Bytes;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::status;
use crate::ended::BodyEnd;
use dataport_wire::LoneBytes;

/// Chunks (or pieces of them) received but not yet written, per upload:
/// with the largest message accepted (4 MiB), at most 16 MiB are held. The
/// store buffers a few MiB of its own, so a deeper queue buys nothing:
/// 1 GiB uploads in 1 MiB messages ran as fast with 2, 4 and 8 (bench/run
/// files), and 8 raised the server's peak RSS by about 10 MB over 2.
pub(super) const UPLOAD_QUEUE: usize = 4;

/// Bytes per DownloadFile message. 1 MiB: measured with 1 GiB downloads
/// over loopback (bench/run files), the server spent 0.85 s of CPU per GiB
/// at 1 MiB against 1.29 s at 256 KiB and 1.47 s at 64 KiB (fewer messages
/// to frame, hop through the channel and wake the connection for), at the
/// same or lower peak RSS; still a quarter of the 4 MiB a default gRPC
/// client accepts. With [`DOWNLOAD_QUEUE`] and the store's three chunks
/// read ahead, a download holds about 8 MiB.
const DOWNLOAD_CHUNK: usize = 1024 * 1024;

/// Chunks read ahead of the client, per download.
pub(super) const DOWNLOAD_QUEUE: usize = 4;

/// What one request message adds to an upload.
pub(super) enum Part {
    Data(Bytes),
    /// Checks the whole upload must pass, known only once the data was sent
    /// (a dataport.files.v1 trailer).
    Expect(Expect),
}

/// The checksums a client gives after its data.
#[derive(Debug, Default)]
pub(super) struct Expect {
    pub sha256: Option<Sha256Digest>,
    /// `(field, crc)`: the CRC-32C, and the field that gave it, for the refusal.
    pub crc32c: Option<(String, u32)>,
}

impl From<Bytes> for Part {
    fn from(data: Bytes) -> Self {
        Part::Data(data)
    }
}

/// What the upload thread receives.
enum Piece {
    Part(Part),
    /// The client's stream ended cleanly: commit. A channel closed without
    /// it means the call failed, and the upload is dropped.
    End,
}

/// Writes `name` from `rx` on the calling (blocking) thread; `None` when the
/// call ended without [`Piece::End`] and the upload was discarded. The data's
/// CRC-32C is computed on the way (a few percent of the sha256 the store
/// computes), since a client may give one only after the data.
fn write_upload(
    store: &LocalFileStore,
    name: &str,
    expected: Option<Sha256Digest>,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<Option<FileInfo>, Status> {
    let mut upload = store.begin_upload(name, expected).map_err(status)?;
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    let mut expected_crc = None;
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Part(Part::Data(data)) => {
                crc.update(&data);
                upload.write(&data).map_err(status)?;
            }
            Piece::Part(Part::Expect(expect)) => {
                if let Some(digest) = expect.sha256 {
                    upload.expect_sha256(digest);
                }
                expected_crc = expect.crc32c.or(expected_crc);
            }
            Piece::End => {
                // Dropping the upload discards it.
                let crc = crc.finalize() as u32;
                if let Some((field, given)) = expected_crc
                    && given != crc
                {
                    return Err(Status::data_loss(format!(
                        "{field} = {given:#010x}, but the data received has CRC-32C {crc:#010x}; nothing was stored"
                    )));
                }
                return upload.commit().map(Some).map_err(status);
            }
        }
    }
    Ok(None)
}

/// What an upload reads next: a message, or more bytes of the chunk that
/// the message before began (a chunk read off the wire comes in pieces).
pub(super) enum Incoming<T> {
    Message(T),
    More(Bytes),
}

/// Where an upload's messages come from: tonic's decoded stream
/// ([`Decoded`]) or the wire itself ([`super::wire::Wire`]). Either ends
/// with `Ok(None)` only when the client finished its stream; a reset one
/// is an error.
pub(super) trait Source<T>: Send {
    fn next(&mut self) -> impl Future<Output = Result<Option<Incoming<T>>, Status>> + Send;

    /// The next whole message (the first of a stream, say); a chunk comes
    /// as its first piece, the rest as [`Incoming::More`] after.
    fn message(&mut self) -> impl Future<Output = Result<Option<T>, Status>> + Send
    where
        T: LoneBytes,
    {
        async {
            match self.next().await? {
                None => Ok(None),
                Some(Incoming::Message(message)) => Ok(Some(message)),
                Some(Incoming::More(bytes)) => Ok(Some(T::with_bytes(bytes))),
            }
        }
    }
}

/// The status of an upload whose client reset its stream.
pub(super) fn reset() -> Status {
    Status::cancelled("the upload stream was reset before it ended; nothing was stored")
}

/// tonic's stream, and its request's [`BodyEnd`]: tonic ends a reset stream
/// as if it had finished, so only what the client really finished sending
/// ends cleanly.
pub(super) struct Decoded<T> {
    pub stream: Streaming<T>,
    pub end: Option<BodyEnd>,
}

impl<T: Send + 'static> Source<T> for Decoded<T> {
    async fn next(&mut self) -> Result<Option<Incoming<T>>, Status> {
        match self.stream.message().await? {
            None if self.end.as_ref().is_some_and(BodyEnd::failed) => Err(reset()),
            None => Ok(None),
            Some(message) => Ok(Some(Incoming::Message(message))),
        }
    }
}

/// Writes the rest of `source` into a new upload of `name` on a blocking
/// thread, each message turned into bytes (or a [`Part`]) by `chunk` (given
/// the message and its number in the call), and commits it only when the
/// stream really ended and the data has the `expected` sha256. On any
/// error, or if this future is dropped (the call is cancelled), the writer
/// discards the upload.
pub(super) async fn store_stream<T: Send + 'static, P: Into<Part>>(
    store: &LocalFileStore,
    (name, expected): (String, Option<Sha256Digest>),
    (mut source, mut index): (impl Source<T>, u64),
    mut chunk: impl FnMut(T, u64) -> Result<P, Status> + Send,
) -> Result<FileInfo, Status> {
    let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
    let writer = {
        let (store, name) = (store.clone(), name.clone());
        tokio::task::spawn_blocking(move || write_upload(&store, &name, expected, rx))
    };
    let ended = loop {
        let piece = match source.next().await {
            Ok(None) => Piece::End,
            Ok(Some(Incoming::More(bytes))) => Piece::Part(Part::Data(bytes)),
            Ok(Some(Incoming::Message(message))) => {
                index += 1;
                match chunk(message, index) {
                    Ok(part) => Piece::Part(part.into()),
                    Err(e) => break Err(e),
                }
            }
            Err(e) => break Err(e),
        };
        let end = matches!(piece, Piece::End);
        // A closed channel means the writer stopped early: its error is the answer.
        if tx.send(piece).await.is_err() || end {
            break Ok(());
        }
    };
    drop(tx);
    let written = writer.await.map_err(|e| Status::internal(format!("upload task failed: {e}")))?;
    match (ended, written) {
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => {
            tracing::debug!(name, error = %e, "upload discarded");
            Err(e)
        }
        (Ok(()), Ok(Some(info))) => Ok(info),
        (Ok(()), Ok(None)) => {
            Err(Status::internal("the upload ended without a commit although the stream ended cleanly"))
        }
    }
}

/// Sends `reader` from its position on, at most `limit` bytes, into `tx`
/// on the calling (blocking) thread, in messages of [`DOWNLOAD_CHUNK`] bytes
/// made by `message`, and answers how many bytes it sent; `None` when the
/// client went away or reading failed (then INTERNAL is sent, and the
/// download should stop).
pub(super) fn send_chunks<M>(
    reader: &mut LocalReader,
    limit: u64,
    tx: &mpsc::Sender<Result<M, Status>>,
    message: impl Fn(Bytes) -> M,
) -> Option<u64> {
    let mut sent = 0;
    while sent < limit {
        let want = usize::try_from(limit - sent).map_or(DOWNLOAD_CHUNK, |left| left.min(DOWNLOAD_CHUNK));
        let chunk = match reader.read_chunk(want) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::error!(error = %e, "reading a stored file failed");
                let _ = tx.blocking_send(Err(Status::internal(format!("reading the file failed: {e}"))));
                return None;
            }
        };
        let len = chunk.len();
        if len == 0 {
            break;
        }
        sent += len as u64;
        // A closed channel means the client went away.
        if tx.blocking_send(Ok(message(chunk.into()))).is_err() {
            return None;
        }
        if len < want {
            break;
        }
    }
    Some(sent)
}
