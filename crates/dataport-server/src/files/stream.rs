//! Moving file data between a call's messages and the blocking file store,
//! shared by every files service.
//!
//! Every upload RPC goes through [`upload`]: its messages come from a
//! [`Source`] (tonic's [`Decoded`] stream or the wire), the RPC's own
//! [`Rules`] turn each into a [`Piece`] (or refuse it), and one writer on
//! the blocking pool, fed through a bounded channel, writes the pieces in
//! order. Downloads go the other way, from a reader thread through a
//! bounded channel ([`download`]). Memory stays bounded whatever the file
//! size.

use dataport_core::files::Sha256Digest;
use dataport_store::files::{FileError, FileInfo, FileStore, Files, FilesReader, Upload};
use prost::bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};

use super::status;
use crate::inflight::{Held, Inflight};
use crate::tonic_fixes::BodyEnd;
use dataport_wire::LoneBytes;

/// Chunks (or pieces of them) received but not yet written, per upload:
/// with the largest message accepted (4 MiB), at most 16 MiB are held. The
/// store buffers a few MiB of its own, so a deeper queue buys nothing:
/// 1 GiB uploads in 1 MiB messages ran as fast with 2, 4 and 8 (bench/run
/// files), and 8 raised the server's peak RSS by about 10 MB over 2.
const UPLOAD_QUEUE: usize = 4;

/// Bytes per DownloadFile message. 1 MiB: measured with 1 GiB downloads
/// over loopback (bench/run files), the server spent 0.85 s of CPU per GiB
/// at 1 MiB against 1.29 s at 256 KiB and 1.47 s at 64 KiB (fewer messages
/// to frame, hop through the channel and wake the connection for), at the
/// same or lower peak RSS; still a quarter of the 4 MiB a default gRPC
/// client accepts. With [`DOWNLOAD_QUEUE`] and the store's three chunks
/// read ahead, a download holds about 8 MiB.
const DOWNLOAD_CHUNK: usize = 1024 * 1024;

/// Chunks read ahead of the client, per download.
const DOWNLOAD_QUEUE: usize = 4;

/// What one request message adds to an upload, whichever RPC carried it:
/// what the writer receives.
pub(super) enum Piece {
    /// Bytes to append; `offset`, when the client gives one (ByteStream's
    /// `write_offset`), is where it says they start, checked by the store.
    Data { offset: Option<u64>, data: Bytes },
    /// Checks the whole upload must pass, known only once the data was sent
    /// (a dataport.files.v1 trailer).
    Expect(Expect),
    /// The client's stream really ended: commit.
    Commit,
    /// The stream really ended, unfinished (a ByteStream Write without
    /// `finish_write`): make what was written durable.
    Pause,
}

impl From<Bytes> for Piece {
    fn from(data: Bytes) -> Self {
        Piece::Data { offset: None, data }
    }
}

/// The checksums a client gives after its data.
#[derive(Debug, Default)]
pub(super) struct Expect {
    pub sha256: Option<Sha256Digest>,
    /// `(field, crc)`: the CRC-32C, and the field that gave it, for the refusal.
    pub crc32c: Option<(String, u32)>,
}

/// A new file an upload stores.
#[derive(Clone, Debug)]
pub(super) struct NewFile {
    pub name: String,
    /// The sha256 its data must have.
    pub expected: Option<Sha256Digest>,
    /// Whether it keeps a stored file of its name (refused at commit) rather
    /// than replacing it.
    pub keep_existing: bool,
}

impl NewFile {
    /// `name`, replacing a stored file of that name, its data not checked.
    pub fn named(name: String) -> Self {
        NewFile { name, expected: None, keep_existing: false }
    }
}

/// The upload a writer opens.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// A new upload, discarded unless committed. Its CRC-32C is computed on
    /// the way (a few percent of the sha256 the store computes), since a
    /// client may give one only after the data.
    New(NewFile),
    /// The resumable upload `id`, which becomes `name`: what was written
    /// stays durable whatever ends the call.
    Resumable { id: String, name: String, expected: Option<Sha256Digest> },
}

impl Target {
    /// Notes an upload that stopped on `error` of the call's own.
    fn stopped(&self, error: &Status) {
        match self {
            Target::New(file) => tracing::debug!(name = file.name, %error, "upload discarded"),
            Target::Resumable { id, .. } => tracing::debug!(id, %error, "write stopped; its data is kept"),
        }
    }

    /// The status of a write that failed, `kept` bytes of the upload being
    /// durable: a resumable upload on a full disk says what it keeps.
    fn refused(&self, error: FileError, kept: u64) -> Status {
        let full = matches!(error, FileError::DiskFull { .. });
        // Logs a full disk, whatever the upload.
        let status = status(error);
        match self {
            Target::Resumable { .. } if full => Status::resource_exhausted(format!(
                "the server's disk is full; the upload keeps its first {kept} bytes \
                 for a Write continuing from QueryWriteStatus"
            )),
            _ => status,
        }
    }
}

/// How the writer stopped.
pub(super) enum Written {
    Committed(FileInfo),
    /// After [`Piece::Pause`]: the size made durable.
    Paused(u64),
    /// The resumable upload had been finished before this call: nothing
    /// was written.
    AlreadyFinished(Box<FileInfo>),
    /// The channel closed without an end: the call failed, and the upload
    /// was dropped (a new one is discarded, a resumable one keeps its
    /// durable data).
    Dropped,
}

/// Opens `target` and writes `rx` into it on the calling (blocking) thread.
/// Each piece comes with the room its data holds, given back once written.
fn write(store: &Files, target: &Target, mut rx: mpsc::Receiver<(Piece, Held)>) -> Result<Written, Status> {
    let opened = match target {
        Target::New(file) => store.begin_upload(&file.name, file.expected).map(|mut upload| {
            if file.keep_existing {
                upload.keep_existing();
            }
            upload
        }),
        Target::Resumable { id, name, expected } => store.resumable(id, name, *expected),
    };
    let mut upload = match opened {
        Ok(upload) => upload,
        Err(FileError::UploadFinished { info, .. }) => return Ok(Written::AlreadyFinished(info)),
        Err(e) => return Err(status(e)),
    };
    let mut crc =
        matches!(target, Target::New(_)).then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi));
    let mut expected_crc = None;
    while let Some((piece, _room)) = rx.blocking_recv() {
        match piece {
            Piece::Data { offset, data } => {
                if let Some(crc) = &mut crc {
                    crc.update(&data);
                }
                match offset {
                    None => upload.write(&data),
                    Some(offset) => upload.write_at(offset, &data),
                }
                .map_err(|e| target.refused(e, upload.committed_size()))?;
            }
            Piece::Expect(expect) => {
                if let Some(digest) = expect.sha256 {
                    upload.expect_sha256(digest);
                }
                expected_crc = expect.crc32c.or(expected_crc);
            }
            Piece::Commit => {
                if let (Some((field, given)), Some(crc)) = (expected_crc, crc) {
                    let crc = crc.finalize() as u32;
                    if given != crc {
                        // Dropping the upload discards it.
                        return Err(Status::data_loss(format!(
                            "{field} = {given:#010x}, but the data received has CRC-32C {crc:#010x}; nothing was stored"
                        )));
                    }
                }
                return upload.commit().map(Written::Committed).map_err(status);
            }
            Piece::Pause => return upload.sync().map(Written::Paused).map_err(status),
        }
    }
    Ok(Written::Dropped)
}

/// What an upload RPC makes of its messages: its own checks and refusals.
pub(super) trait Rules<T>: Send {
    /// What message `index` (counted over the whole call, from 1) adds.
    fn piece(&mut self, message: T, index: u64) -> Result<Piece, Status>;

    /// What the client really ending its stream means.
    fn end(&self) -> Piece {
        Piece::Commit
    }
}

impl<T, F: FnMut(T, u64) -> Result<Piece, Status> + Send> Rules<T> for F {
    fn piece(&mut self, message: T, index: u64) -> Result<Piece, Status> {
        self(message, index)
    }
}

/// Writes the rest of `source` (`read` messages of it already read) into
/// `target` on a blocking thread, each message made a [`Piece`] by
/// `rules`. A new upload is committed only when the stream really ended
/// and the data has every checksum given. On any error, or if this future
/// is dropped (the call is cancelled), the writer drops the upload.
pub(super) async fn upload<T: Send + 'static>(
    (store, inflight): (&Files, &Inflight),
    target: Target,
    (source, read): (impl Source<T>, u64),
    mut rules: impl Rules<T>,
) -> Result<Written, Status> {
    let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
    let writer = {
        let (store, target) = (store.clone(), target.clone());
        tokio::task::spawn_blocking(move || write(&store, &target, rx))
    };
    let fed = feed(&tx, inflight, source, read, &mut rules).await;
    drop(tx);
    let written = writer.await.map_err(|e| Status::internal(format!("upload task failed: {e}")))?;
    match (fed, written) {
        // Per the ByteStream spec, whatever this call sent.
        (_, Ok(finished @ Written::AlreadyFinished(_))) => Ok(finished),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => {
            target.stopped(&e);
            Err(e)
        }
        (Ok(()), Ok(written)) => Ok(written),
    }
}

/// [`upload`] of a new file, which answers what was stored.
pub(super) async fn store_stream<T: Send + 'static>(
    store: (&Files, &Inflight),
    file: NewFile,
    source: (impl Source<T>, u64),
    rules: impl Rules<T>,
) -> Result<FileInfo, Status> {
    match upload(store, Target::New(file), source, rules).await? {
        Written::Committed(info) => Ok(info),
        Written::Paused(_) | Written::AlreadyFinished(_) | Written::Dropped => {
            Err(Status::internal("the upload ended without a commit although the stream ended cleanly"))
        }
    }
}

/// Feeds `source` to the writer through `tx` until the stream ends, fails
/// or breaks a rule, or the writer stops (then its answer is the call's).
/// Each piece of data takes its room in `inflight` first.
async fn feed<T>(
    tx: &mpsc::Sender<(Piece, Held)>,
    inflight: &Inflight,
    mut source: impl Source<T>,
    mut index: u64,
    rules: &mut impl Rules<T>,
) -> Result<(), Status> {
    let stopped = tx.closed();
    tokio::pin!(stopped);
    loop {
        let next = tokio::select! {
            biased;
            // An error, or a resumable upload finished before.
            () = &mut stopped => return Ok(()),
            next = source.next() => next?,
        };
        let piece = match next {
            None => rules.end(),
            Some(Incoming::More(bytes)) => Piece::from(bytes),
            Some(Incoming::Message(message)) => {
                index += 1;
                rules.piece(message, index)?
            }
        };
        let last = matches!(piece, Piece::Commit | Piece::Pause);
        let room = match &piece {
            Piece::Data { data, .. } => inflight.piece(data.len()).await?,
            _ => Held::default(),
        };
        if tx.send((piece, room)).await.is_err() || last {
            return Ok(());
        }
    }
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

/// The first message of an upload; `empty` says why an empty stream is
/// refused.
pub(super) async fn first<T: LoneBytes>(source: &mut impl Source<T>, empty: &str) -> Result<T, Status> {
    source.message().await?.ok_or_else(|| Status::invalid_argument(empty))
}

/// The status of an upload whose client reset its stream.
pub(super) fn reset() -> Status {
    Status::cancelled("the upload stream was reset before it ended; nothing was stored")
}

/// tonic's stream, and its request's [`BodyEnd`]: tonic ends a reset stream
/// as if it had finished, so only what the client really finished sending
/// ends cleanly.
pub(super) struct Decoded<T> {
    stream: Streaming<T>,
    end: Option<BodyEnd>,
    /// What a reset stream fails with.
    reset: fn() -> Status,
}

impl<T> Decoded<T> {
    /// The messages of `request`; a reset stream fails with [`reset`].
    pub fn new(request: Request<Streaming<T>>) -> Self {
        let end = request.extensions().get::<BodyEnd>().cloned();
        Decoded { stream: request.into_inner(), end, reset }
    }

    /// A reset stream fails with `reset` instead.
    pub fn reset_as(self, reset: fn() -> Status) -> Self {
        Decoded { reset, ..self }
    }
}

impl<T: Send + 'static> Source<T> for Decoded<T> {
    async fn next(&mut self) -> Result<Option<Incoming<T>>, Status> {
        match self.stream.message().await? {
            None if self.end.as_ref().is_some_and(BodyEnd::failed) => Err((self.reset)()),
            None => Ok(None),
            Some(message) => Ok(Some(Incoming::Message(message))),
        }
    }
}

/// A source whose first message, already read, is put back in front.
pub(super) struct Replay<T, S> {
    pub first: Option<T>,
    pub rest: S,
}

impl<T: Send, S: Source<T>> Source<T> for Replay<T, S> {
    async fn next(&mut self) -> Result<Option<Incoming<T>>, Status> {
        match self.first.take() {
            Some(first) => Ok(Some(Incoming::Message(first))),
            None => self.rest.next().await,
        }
    }
}

/// A download's response stream: `send` runs on a blocking thread and
/// sends into a channel of [`DOWNLOAD_QUEUE`] messages.
pub(super) fn download<M: Send + 'static>(
    send: impl FnOnce(&mpsc::Sender<Result<M, Status>>) + Send + 'static,
) -> ReceiverStream<Result<M, Status>> {
    let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
    tokio::task::spawn_blocking(move || send(&tx));
    ReceiverStream::new(rx)
}

/// Sends `reader` from its position on, at most `limit` bytes, into `tx`
/// on the calling (blocking) thread, in messages of [`DOWNLOAD_CHUNK`] bytes
/// made by `message`, and answers how many bytes it sent; `None` when the
/// client went away or reading failed (then INTERNAL is sent, and the
/// download should stop).
pub(super) fn send_chunks<M>(
    reader: &mut FilesReader,
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use dataport_store::files::{FileStoreConfig, LocalFileStore};
    use tonic::Code;

    use super::*;

    /// A source that answers its script, then waits forever: a client that
    /// keeps its stream open and sends nothing more.
    struct Script(VecDeque<Option<Incoming<Bytes>>>);

    impl Source<Bytes> for Script {
        async fn next(&mut self) -> Result<Option<Incoming<Bytes>>, Status> {
            match self.0.pop_front() {
                Some(next) => Ok(next),
                None => std::future::pending().await,
            }
        }
    }

    fn data(bytes: &'static [u8]) -> Option<Incoming<Bytes>> {
        Some(Incoming::Message(Bytes::from_static(bytes)))
    }

    fn store(dir: &tempfile::TempDir, max_file_size: u64) -> Files {
        let config = FileStoreConfig { max_file_size, ..FileStoreConfig::default() };
        Files::Local(LocalFileStore::open_with(dir.path(), config).unwrap())
    }

    fn room() -> Inflight {
        Inflight::new(64 << 20)
    }

    fn chunk(data: Bytes, _: u64) -> Result<Piece, Status> {
        Ok(Piece::from(data))
    }

    #[tokio::test]
    async fn a_writer_error_is_answered_without_waiting_for_more_messages() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, 10);
        let source = Script(VecDeque::from([data(b"more than ten bytes")]));
        let room = room();
        let upload = store_stream((&store, &room), NewFile::named("f".into()), (source, 0), chunk);
        let status = tokio::time::timeout(Duration::from_secs(10), upload).await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn a_full_disk_says_what_a_resumable_upload_keeps() {
        let full = || FileError::DiskFull { path: "/data/files/.tmp/x".into() };
        let resumable = Target::Resumable { id: "u".into(), name: "f".into(), expected: None };
        let status = resumable.refused(full(), 4096);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("disk is full; the upload keeps its first 4096 bytes"),
            "{status:?}"
        );
        let plain = Target::New(NewFile::named("f".into())).refused(full(), 4096);
        assert_eq!(plain.message(), "the server's disk is full; nothing was stored");
    }

    /// ByteStream's way: each message at the offset after the one before,
    /// made durable when the stream ends.
    struct AtOffset(u64);

    impl Rules<Bytes> for AtOffset {
        fn piece(&mut self, data: Bytes, _: u64) -> Result<Piece, Status> {
            let offset = self.0;
            self.0 += data.len() as u64;
            Ok(Piece::Data { offset: Some(offset), data })
        }

        fn end(&self) -> Piece {
            Piece::Pause
        }
    }

    #[tokio::test]
    async fn a_resumable_upload_ended_unfinished_is_paused_and_continued_after_a_replay() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, 1 << 20);
        let target = Target::Resumable { id: "u".into(), name: "f".into(), expected: None };
        let source = Script(VecDeque::from([data(b"abc"), None]));
        let paused = upload((&store, &room()), target.clone(), (source, 0), AtOffset(0)).await.unwrap();
        assert!(matches!(paused, Written::Paused(3)));

        let resumed = Replay { first: Some(Bytes::from_static(b"de")), rest: Script(VecDeque::from([None])) };
        let resumed = upload((&store, &room()), target, (resumed, 0), AtOffset(3)).await.unwrap();
        assert!(matches!(resumed, Written::Paused(5)));
        assert_eq!(store.resumable_size("u").unwrap(), Some(5));
    }

    #[tokio::test]
    async fn a_crc32c_given_after_the_data_is_checked_before_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, 1 << 20);
        // CRC-32C("abc") is 0x364b3fb7 (Castagnoli's polynomial, RFC 3720).
        for (crc, stored) in [(0x364b_3fb7, true), (0x364b_3fb8, false)] {
            let source = Script(VecDeque::from([data(b"abc"), data(b""), None]));
            let rules = move |data: Bytes, index| match index {
                1 => Ok(Piece::from(data)),
                _ => Ok(Piece::Expect(Expect { sha256: None, crc32c: Some(("trailer.crc32c".into(), crc)) })),
            };
            let result =
                store_stream((&store, &room()), NewFile::named("f".into()), (source, 0), rules).await;
            assert_eq!(result.is_ok(), stored, "{result:?}");
            if let Err(status) = result {
                assert_eq!(status.code(), Code::DataLoss);
                assert!(status.message().starts_with("trailer.crc32c = 0x364b3fb8"), "{}", status.message());
            }
        }
        assert_eq!(store.list().unwrap().len(), 1);
    }
}
