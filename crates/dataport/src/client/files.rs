//! `dataport upload`, `dataport download` and `dataport files`
//! (dataport.files.v1, and google.bytestream for resumable uploads).
//!
//! Transfers overlap their stages: a thread reads the file in 1 MiB chunks
//! (adding each to a CRC-32C) while the connection sends them; a download is
//! received on the runtime and handed to a writing thread, which copies it
//! into a [`DurableWriter`] (dataport-fileio): hashed, written with direct I/O and
//! flushed on threads of its own, exactly as the server stores an upload.
//! The stages are joined by bounded queues, so memory stays a few MiB
//! whatever the file size. A chunk read or received is a `Bytes` handed
//! from stage to stage by reference count.

use std::fs::File;
use std::io::{IsTerminal, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc as sync_mpsc;
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use dataport_core::files::{Sha256Digest, validate_name};
use dataport_fileio::{DurableWriter, LocalReader};
use dataport_proto::dataport::files::v1 as pb;
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;
use dataport_proto::google::bytestream::{self as bs, byte_stream_client::ByteStreamClient};
use futures_util::Stream;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use prost::bytes::Bytes;
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::rows::{Cell, Format, Printer};
use super::wire::{self, Event, Responses};

/// Bytes per message sent, well under the server's 4 MiB message limit.
/// Measured uploading 1 GiB over loopback: 256 and 512 KiB cost the client
/// a third more CPU time than 1 MiB, and 2 MiB cost the server twice as much.
const CHUNK: usize = 1024 * 1024;

/// Chunks read ahead of the connection, and chunks waiting for the writer
/// or the hasher: each queue holds at most this many.
const QUEUE: usize = 8;

/// A download has the disk flush this much written data in the background,
/// so that the final fsync before the rename is short.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;

/// The largest message accepted from the server: its chunks are at most
/// its 4 MiB limit, with room to spare for a server that chooses otherwise.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The Upload and Download methods, and the number of the download
/// response's `chunk` field.
const UPLOAD: &str = "/dataport.files.v1.FilesService/Upload";
const DOWNLOAD: &str = "/dataport.files.v1.FilesService/Download";
const CHUNK_FIELD: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The files to upload; each is stored under its base name (one path
    /// component of at most 255 bytes, no control characters or `\`), and
    /// replaces any stored file of that name.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Store the file under NAME instead of its base name (one FILE only).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Upload through google.bytestream so that an upload cut off (by the
    /// network, Ctrl-C or a server restart) continues where it stopped when
    /// the same command runs again. The file is hashed first (one extra
    /// read of it): the server checks the sha256 before it stores the file,
    /// and the upload is known by its name and content.
    #[arg(long)]
    resume: bool,
}

#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The stored files to download, in one call.
    #[arg(required = true)]
    names: Vec<String>,
    /// The directory to write them to (created if missing), each as
    /// DIR/NAME, replacing any file of that name. A file appears only once
    /// it is complete, its sha256 checked and flushed to disk.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum FilesCommand {
    /// List the stored files, by name.
    Ls {
        /// Only names starting with PREFIX.
        prefix: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show stored files.
    Stat {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Delete stored files.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

// ---------------------------------------------------------------- upload

/// A local file to upload, checked before anything is sent.
struct Source {
    path: PathBuf,
    name: String,
    /// Reads a large file with direct I/O, as the server reads stored
    /// files: its chunks go from the disk into the messages, not through
    /// the page cache, which was a quarter of an upload's client time.
    file: LocalReader,
    size: u64,
}

pub async fn upload(channel: Channel, args: UploadArgs) -> anyhow::Result<()> {
    let sources = sources(&args)?;
    let progress = Progress::new();
    let mut raw = channel.clone();
    let mut files = FilesServiceClient::new(channel.clone()).max_encoding_message_size(MAX_MESSAGE);
    let mut bytestream = ByteStreamClient::new(channel).max_encoding_message_size(MAX_MESSAGE);
    for source in sources {
        let name = source.name.clone();
        let (size, digest) = match args.resume {
            false => upload_plain(&mut raw, source, &progress).await?,
            true => upload_resumable(&mut bytestream, &mut files, source, &progress).await?,
        };
        progress.line(&format!("stored {name} ({size} bytes, sha256 {digest})"));
    }
    Ok(())
}

/// Opens every file and checks every name before anything is sent, so that
/// a bad one in the list uploads nothing.
fn sources(args: &UploadArgs) -> anyhow::Result<Vec<Source>> {
    if args.name.is_some() && args.files.len() != 1 {
        bail!("--name stores one file under a name; give it with one FILE, not {}", args.files.len());
    }
    let mut sources: Vec<Source> = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = match &args.name {
            Some(name) => name.clone(),
            None => base_name(path)?,
        };
        validate_name(&name).map_err(|e| match args.name {
            Some(_) => anyhow!("--name: {e}"),
            None => {
                anyhow!("cannot upload {}: {e}; use --name to store it under another name", path.display())
            }
        })?;
        if let Some(other) = sources.iter().find(|s| s.name == name) {
            bail!("{} and {} would both be stored as {name:?}", other.path.display(), path.display());
        }
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let meta = file.metadata().with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            bail!("cannot upload {}: not a regular file", path.display());
        }
        let file = LocalReader::new(file, path, meta.len());
        sources.push(Source { path: path.clone(), name, file, size: meta.len() });
    }
    Ok(sources)
}

/// The last component of `path`, which must be one (not `..`) and UTF-8.
fn base_name(path: &Path) -> anyhow::Result<String> {
    let base = path
        .file_name()
        .with_context(|| format!("cannot upload {}: it names no file; use --name", path.display()))?;
    base.to_str().map(str::to_owned).with_context(|| {
        format!(
            "cannot upload {}: its name is not UTF-8; use --name to store it under another name",
            path.display()
        )
    })
}

/// FilesService.Upload: a header, the chunks as they are read, and a trailer
/// with the CRC-32C computed on the way, which the server checks before it
/// stores the file. The server computes the sha256 it stores (and answers);
/// a CRC-32C checks the data end to end at a few percent of a second
/// sha256's cost, which on two cores was a third of the upload's CPU time.
async fn upload_plain(
    channel: &mut Channel,
    source: Source,
    progress: &Progress,
) -> anyhow::Result<(u64, Sha256Digest)> {
    use pb::upload_request::Kind;
    let bar = progress.bar(source.size, &source.name);
    let (tx, rx) = mpsc::channel(QUEUE);
    let (read_tx, read_rx) = oneshot::channel();
    let Source { path, name, mut file, .. } = source;
    std::thread::spawn(move || {
        let header =
            pb::UploadRequest { kind: Some(Kind::Header(pb::UploadHeader { name, sha256: String::new() })) };
        let read = (|| {
            tx.blocking_send(header).map_err(|_| Failed::Closed)?;
            let (mut size, mut crc) = (0u64, crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi));
            loop {
                let chunk = read_chunk(&mut file).map_err(Failed::Read)?;
                if chunk.is_empty() {
                    break;
                }
                size += chunk.len() as u64;
                crc.update(&chunk);
                tx.blocking_send(pb::UploadRequest { kind: Some(Kind::Chunk(chunk)) })
                    .map_err(|_| Failed::Closed)?;
            }
            let trailer = pb::UploadTrailer { sha256: String::new(), crc32c: Some(crc.finalize() as u32) };
            tx.blocking_send(pb::UploadRequest { kind: Some(Kind::Trailer(trailer)) })
                .map_err(|_| Failed::Closed)?;
            Ok(size)
        })();
        let _ = read_tx.send(read);
    });
    let is_last = |m: &pb::UploadRequest| matches!(m.kind, Some(Kind::Trailer(_)));
    let sent = |m: &pb::UploadRequest| match &m.kind {
        Some(Kind::Chunk(c)) => c.len() as u64,
        _ => 0,
    };
    let requests = wire::messages(Box::pin(fed_by(rx, is_last, sent, bar.clone())));
    let call = async {
        let answer = Responses::<pb::UploadResponse>::call(channel, UPLOAD, requests, (None, MAX_MESSAGE));
        answer.await?.single().await.map_err(|s| anyhow::Error::from(explain(s)))
    };
    let (reply, size) = tokio::try_join!(call, reading(read_rx, &path))?;
    bar.finish_and_clear();
    let stored = reply.file.context("the server answered no file")?;
    if stored.size != size {
        bail!("the server stored {} bytes, but {size} bytes were sent", stored.size);
    }
    let digest = stored
        .sha256
        .parse()
        .with_context(|| format!("the server answered a bad sha256 {:?}", stored.sha256))?;
    Ok((size, digest))
}

/// ByteStream.Write, continuing an earlier upload of the same name and
/// content from what the server holds of it.
async fn upload_resumable(
    client: &mut ByteStreamClient<Channel>,
    files: &mut FilesServiceClient<Channel>,
    source: Source,
    progress: &Progress,
) -> anyhow::Result<(u64, Sha256Digest)> {
    let Source { path, name, file, size } = source;
    let bar = progress.bar(size, &format!("hashing {name}"));
    let (file, digest) =
        hash_file(file, bar).await.with_context(|| format!("cannot read {}", path.display()))?;
    let Some((resource, start)) = resume_point(client, files, &name, &digest).await? else {
        progress.note(&format!("{name}: already stored with this content"));
        return Ok((size, digest));
    };
    let start = u64::try_from(start).ok().filter(|&start| start <= size).with_context(|| {
        format!("the server holds {start} bytes of {name}, but {} has {size}", path.display())
    })?;
    if start > 0 {
        progress.note(&format!("{name}: continuing at byte {start} of {size}"));
    }

    let bar = progress.bar(size, &name);
    bar.set_position(start);
    let (tx, rx) = mpsc::channel(QUEUE);
    let (read_tx, read_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let read = (|| {
            let mut file = file;
            file.seek(SeekFrom::Start(start)).map_err(Failed::Read)?;
            let mut offset = start;
            let mut resource_name = resource;
            loop {
                let data = read_chunk(&mut file).map_err(Failed::Read)?;
                let finish_write = data.is_empty();
                let len = data.len() as u64;
                let write_offset = i64::try_from(offset).map_err(|_| Failed::Changed)?;
                let message = bs::WriteRequest {
                    resource_name: std::mem::take(&mut resource_name),
                    write_offset,
                    finish_write,
                    data,
                };
                tx.blocking_send(message).map_err(|_| Failed::Closed)?;
                offset += len;
                if finish_write {
                    return Ok(offset);
                }
            }
        })();
        let _ = read_tx.send(read);
    });
    let requests = fed_by(rx, |m: &bs::WriteRequest| m.finish_write, |m| m.data.len() as u64, bar.clone());
    let call = async { client.write(requests).await.map_err(|s| anyhow::Error::from(explain(s))) };
    let (reply, sent_to) = tokio::try_join!(call, reading(read_rx, &path))?;
    bar.finish_and_clear();
    if sent_to != size {
        bail!("{} changed while it was uploaded: {size} bytes, then {sent_to}", path.display());
    }
    let committed = reply.into_inner().committed_size;
    if u64::try_from(committed).ok() != Some(size) {
        bail!("the server committed {committed} bytes of {name}, which has {size}");
    }
    Ok((size, digest))
}

/// The most finished uploads of one name and content to step over (each
/// one a time the file was uploaded, then deleted or replaced).
const MAX_GENERATIONS: u32 = 1000;

/// Where a resumable upload of `name` with this content stands: the
/// resource to write and the offset to continue from, or `None` when the
/// server already holds `name` with this content.
///
/// An upload id, once finished, stays finished; so the ids of one name and
/// content form a sequence (see [`upload_id`]), and the upload is the first
/// id that is not finished. A finished one ends the search only if the file
/// it stored is still there: a file deleted or replaced since is uploaded
/// again under the next id.
async fn resume_point(
    client: &mut ByteStreamClient<Channel>,
    files: &mut FilesServiceClient<Channel>,
    name: &str,
    digest: &Sha256Digest,
) -> anyhow::Result<Option<(String, i64)>> {
    let mut stored = None;
    for generation in 0..MAX_GENERATIONS {
        let resource =
            format!("uploads/{}/files/{name}/sha256/{digest}", upload_id(name, digest, generation));
        let query = bs::QueryWriteStatusRequest { resource_name: resource.clone() };
        match client.query_write_status(query).await {
            Ok(status) if status.get_ref().complete => {
                let holds = match stored {
                    Some(holds) => holds,
                    None => *stored.insert(holds_content(files, name, digest).await?),
                };
                if holds {
                    return Ok(None);
                }
            }
            Ok(status) => return Ok(Some((resource, status.into_inner().committed_size))),
            Err(status) if status.code() == Code::NotFound => return Ok(Some((resource, 0))),
            Err(status) => return Err(status.into()),
        }
    }
    bail!("{name} was uploaded with this content {MAX_GENERATIONS} times; upload it without --resume")
}

/// Whether the server holds `name` with this content.
async fn holds_content(
    files: &mut FilesServiceClient<Channel>,
    name: &str,
    digest: &Sha256Digest,
) -> anyhow::Result<bool> {
    match files.stat(pb::StatRequest { name: name.to_owned() }).await {
        Ok(reply) => Ok(reply.into_inner().file.is_some_and(|f| f.sha256 == digest.to_hex())),
        Err(status) if status.code() == Code::NotFound => Ok(false),
        Err(status) => Err(status.into()),
    }
}

/// The id of the `generation`th resumable upload of `name` with this
/// content: the same command on the same content continues the same
/// upload, from any machine, and a changed file starts afresh. 32 hex
/// digits, so a valid file name.
fn upload_id(name: &str, digest: &Sha256Digest, generation: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("dataport upload\n{name}\n{digest}\n{generation}"));
    let id: [u8; 32] = hasher.finalize().into();
    Sha256Digest(id).to_hex()[..32].to_owned()
}

/// Reads the whole file once to hash it, and hands the file back.
async fn hash_file(file: LocalReader, bar: ProgressBar) -> anyhow::Result<(LocalReader, Sha256Digest)> {
    let (done_tx, done_rx) = oneshot::channel();
    let counted = bar.clone();
    std::thread::spawn(move || {
        let hashed = (|| {
            let mut file = file;
            let hasher = Hasher::spawn();
            loop {
                let chunk = read_chunk(&mut file)?;
                if chunk.is_empty() {
                    break;
                }
                counted.inc(chunk.len() as u64);
                hasher.update(chunk);
            }
            let digest = hasher.finish();
            file.rewind()?;
            std::io::Result::Ok((file, digest))
        })();
        let _ = done_tx.send(hashed);
    });
    let hashed = done_rx.await.context("the hashing thread stopped")?;
    bar.finish_and_clear();
    Ok(hashed?)
}

/// Reads up to [`CHUNK`] bytes; fewer only at the end of the file.
fn read_chunk(file: &mut LocalReader) -> std::io::Result<Bytes> {
    file.read_chunk(CHUNK).map(Bytes::from)
}

/// How a reading thread stopped early.
enum Failed {
    /// The call ended first; its status says why.
    Closed,
    Read(std::io::Error),
    /// The file grew past what an offset can say.
    Changed,
}

/// What the reading thread of an upload answered: its result, or, when the
/// call ended first, never (the call's own outcome decides).
async fn reading<T>(done: oneshot::Receiver<Result<T, Failed>>, path: &Path) -> anyhow::Result<T> {
    match done.await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(Failed::Read(e))) => {
            Err(anyhow::Error::from(e).context(format!("cannot read {}", path.display())))
        }
        Ok(Err(Failed::Changed)) => bail!("{} changed while it was read", path.display()),
        Ok(Err(Failed::Closed)) => std::future::pending().await,
        Err(_) => bail!("the reading thread stopped"),
    }
}

/// The request stream of an upload: the messages the reading thread queues,
/// counted on `bar` as the connection takes them. It ends only after the
/// message `is_last` says ends the upload: if the thread stops before (a
/// read error), the stream waits instead, so the call is cancelled by
/// dropping it and the server never mistakes a cut-off file for a whole one.
fn fed_by<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
    is_last: fn(&T) -> bool,
    size: fn(&T) -> u64,
    bar: ProgressBar,
) -> impl Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold((rx, false), move |(mut rx, ended)| {
        let bar = bar.clone();
        async move {
            if ended {
                return None;
            }
            match rx.recv().await {
                Some(message) => {
                    bar.inc(size(&message));
                    let ended = is_last(&message);
                    Some((message, (rx, ended)))
                }
                None => std::future::pending().await,
            }
        }
    })
}

/// Adds to a DATA_LOSS status what it means for the user.
fn explain(status: Status) -> Status {
    match status.code() {
        Code::DataLoss => Status::new(
            Code::DataLoss,
            format!(
                "{} (the data the server received does not have the file's checksum: the file changed \
                 while it was read, or was damaged on the way; nothing was stored)",
                status.message()
            ),
        ),
        _ => status,
    }
}

/// A sha256 computed on its own thread, so that hashing overlaps reading,
/// sending and writing. Chunks are shared, not copied.
struct Hasher {
    tx: sync_mpsc::SyncSender<HashJob>,
    digests: sync_mpsc::Receiver<Sha256Digest>,
}

enum HashJob {
    Data(Bytes),
    Finish,
}

impl Hasher {
    fn spawn() -> Self {
        let (tx, rx) = sync_mpsc::sync_channel(QUEUE);
        let (digest_tx, digests) = sync_mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let mut sha = Sha256::new();
            while let Ok(job) = rx.recv() {
                match job {
                    HashJob::Data(data) => sha.update(&data),
                    HashJob::Finish => {
                        let digest: [u8; 32] = std::mem::take(&mut sha).finalize().into();
                        if digest_tx.send(Sha256Digest(digest)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Hasher { tx, digests }
    }

    fn update(&self, data: Bytes) {
        // The thread stops only when this Hasher is dropped.
        let _ = self.tx.send(HashJob::Data(data));
    }

    /// The digest of everything since the last `finish`; the hasher starts
    /// afresh.
    fn finish(&self) -> Sha256Digest {
        let _ = self.tx.send(HashJob::Finish);
        // A panic in sha2 is the only way to get no digest.
        self.digests.recv().unwrap_or_else(|_| panic!("the hashing thread died"))
    }
}

// -------------------------------------------------------------- download

/// The most names in one Download call: the server holds each file open
/// until it is sent, and refuses more. More are downloaded in several calls.
const MAX_NAMES_PER_CALL: usize = 1000;

pub async fn download(mut channel: Channel, args: DownloadArgs) -> anyhow::Result<()> {
    for name in &args.names {
        validate_name(name)?;
    }
    let progress = Progress::new();
    // Ctrl-C stops the download cleanly rather than the process; polled once
    // here, the handler is in place before anything is written.
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await; // no handler: Ctrl-C ends the process
        }
    };
    tokio::pin!(interrupted);
    if futures_util::FutureExt::now_or_never(&mut interrupted).is_some() {
        bail!("interrupted");
    }
    for names in args.names.chunks(MAX_NAMES_PER_CALL) {
        download_call(&mut channel, names, &args.dir, &progress, interrupted.as_mut()).await?;
    }
    Ok(())
}

/// One Download call: the files are received here, straight off the wire
/// (see [`super::wire`]), and written and hashed on threads of their own.
async fn download_call(
    channel: &mut Channel,
    names: &[String],
    dir: &Path,
    progress: &Progress,
    interrupted: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<()> {
    // The server checks every name before it answers, so a missing one
    // fails here, before anything is created.
    let request = pb::DownloadRequest { names: names.to_vec() };
    let body = wire::one_message(&request);
    let mut stream = Responses::call(channel, DOWNLOAD, body, (Some(CHUNK_FIELD), MAX_MESSAGE)).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    let (writer_dir, writer_progress) = (dir.to_owned(), progress.clone());
    std::thread::spawn(move || {
        let _ = done_tx.send(write_files(&writer_dir, rx, &writer_progress));
    });
    let received = tokio::select! {
        received = receive(&mut stream, names, &tx, progress) => received,
        () = interrupted => Err(anyhow!("interrupted")),
    };
    // The writer removes its temporary file when the queue closes early;
    // wait for it, so that nothing half-written outlives the command.
    drop(tx);
    drop(stream);
    let written = done_rx.await.unwrap_or_else(|_| Err(anyhow!("the writing thread stopped")));
    match (received, written) {
        (Err(e), _) if !e.is::<WriterStopped>() => Err(e),
        (_, Err(e)) | (Err(e), Ok(())) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// The writing thread stopped; its own result says why.
#[derive(Debug)]
struct WriterStopped;

impl std::fmt::Display for WriterStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the writing thread stopped")
    }
}

impl std::error::Error for WriterStopped {}

/// What the receiving side hands the writing thread.
enum Job {
    /// A file starts; its chunks follow.
    Start {
        file: pb::File,
        digest: Sha256Digest,
        bar: ProgressBar,
    },
    Data(Bytes),
    /// The file's chunks are all there.
    End,
}

/// Receives the files in the order asked for, checking that the server
/// sends what was asked.
async fn receive(
    stream: &mut Responses<pb::DownloadResponse>,
    names: &[String],
    tx: &mpsc::Sender<Job>,
    progress: &Progress,
) -> anyhow::Result<()> {
    use pb::download_response::Kind;
    let send = |job| async { tx.send(job).await.map_err(|_| anyhow::Error::from(WriterStopped)) };
    let mut expected = names.iter();
    let mut open = false;
    while let Some(event) = stream.next().await? {
        let kind = match event {
            Event::Bytes(data) => {
                send(Job::Data(data)).await?;
                continue;
            }
            Event::BytesStart => Some(Kind::Chunk(Bytes::new())),
            Event::Message(message) => message.kind,
        };
        match kind {
            Some(Kind::File(file)) => {
                if std::mem::take(&mut open) {
                    send(Job::End).await?;
                }
                match expected.next() {
                    Some(name) if *name == file.name => {}
                    Some(name) => bail!("the server sent {:?} where {name:?} was due", file.name),
                    None => bail!("the server sent {:?}, which was not asked for", file.name),
                }
                let digest: Sha256Digest = file.sha256.parse().with_context(|| {
                    format!("the server gave {:?} a bad sha256 {:?}", file.name, file.sha256)
                })?;
                let bar = progress.bar(file.size, &file.name);
                send(Job::Start { file, digest, bar }).await?;
                open = true;
            }
            Some(Kind::Chunk(data)) if open => {
                if !data.is_empty() {
                    send(Job::Data(data)).await?;
                }
            }
            Some(Kind::Chunk(_)) => bail!("the server sent data before naming its file"),
            None => bail!("the server sent a message of a kind this client does not know"),
        }
    }
    if open {
        send(Job::End).await?;
    }
    if let Some(missing) = expected.next() {
        bail!("the server ended the download without sending {missing:?}");
    }
    Ok(())
}

/// A file being written: a temporary file in the target directory, renamed
/// over DIR/NAME only once complete, checked and durable. Dropped before
/// that, it is removed.
struct Incoming {
    file: pb::File,
    digest: Sha256Digest,
    bar: ProgressBar,
    /// Hashes, writes (direct I/O where it can) and flushes as the data
    /// comes; dropped before `temp`, so its threads are done with the file.
    writer: DurableWriter,
    temp: TempPath,
}

fn write_files(dir: &Path, mut rx: mpsc::Receiver<Job>, progress: &Progress) -> anyhow::Result<()> {
    let mut current: Option<Incoming> = None;
    let cannot_write = || format!("cannot write to {}", dir.display());
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::Start { file, digest, bar } => {
                let (handle, temp) = temp_file(dir)?.into_parts();
                let writer = DurableWriter::new(handle, temp.to_path_buf(), SYNC_EVERY);
                current = Some(Incoming { file, digest, bar, writer, temp });
            }
            Job::Data(data) => {
                let Some(incoming) = current.as_mut() else { bail!("data before a file") };
                let len = data.len() as u64;
                if incoming.writer.written() + len > incoming.file.size {
                    bail!(
                        "the server sent more than the {} bytes of {:?}",
                        incoming.file.size,
                        incoming.file.name
                    );
                }
                incoming.writer.write(&data).with_context(cannot_write)?;
                incoming.bar.inc(len);
            }
            Job::End => {
                let Some(incoming) = current.take() else { bail!("the end of no file") };
                let (path, size, digest) = finish(incoming, dir)?;
                progress.line(&format!("wrote {} ({size} bytes, sha256 {digest})", path.display()));
            }
        }
    }
    if let Some(incoming) = current {
        bail!("the download ended before {:?} was complete", incoming.file.name);
    }
    Ok(())
}

/// Checks a received file, flushes it and renames it into place.
fn finish(incoming: Incoming, dir: &Path) -> anyhow::Result<(PathBuf, u64, Sha256Digest)> {
    let Incoming { file, digest, bar, mut writer, temp } = incoming;
    let written = writer.written();
    if written != file.size {
        bail!("the server sent {written} bytes of {:?}, which has {}", file.name, file.size);
    }
    let path = dir.join(&file.name);
    let actual = writer.finish().with_context(|| format!("cannot write {}", path.display()))?;
    if actual != digest {
        bail!(
            "{:?} arrived damaged: its sha256 is {actual}, the server's is {digest}; nothing was written",
            file.name
        );
    }
    writer.sync().with_context(|| format!("cannot flush {}", path.display()))?;
    drop(writer);
    temp.persist(&path).with_context(|| format!("cannot write {}", path.display()))?;
    // The rename is durable once the directory is.
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot flush {}", dir.display()))?;
    bar.finish_and_clear();
    Ok((path, written, digest))
}

/// A hidden temporary file in `dir`, readable as a new file would be.
fn temp_file(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".dataport-").suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Subject to the umask, as for any file a program creates.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).with_context(|| format!("cannot create a file in {}", dir.display()))
}

// ----------------------------------------------------------------- files

/// The name last: the other columns have one width each, so a table's rows
/// line up whatever the names.
const HEADER: [&str; 5] = ["size", "created", "updated", "sha256", "name"];

pub async fn files(channel: Channel, command: FilesCommand) -> anyhow::Result<()> {
    let mut client = FilesServiceClient::new(channel);
    match command {
        FilesCommand::Ls { prefix, format } => {
            let mut printer = Printer::new(std::io::stdout().lock(), format, &HEADER);
            let mut page_token = String::new();
            loop {
                let request =
                    pb::ListRequest { prefix: prefix.clone().unwrap_or_default(), page_size: 0, page_token };
                let reply = client.list(request).await?.into_inner();
                for file in &reply.files {
                    printer.row(&row(file))?;
                }
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            printer.finish()?;
        }
        FilesCommand::Stat { names, format } => {
            check_names(&names)?;
            let mut printer = Printer::new(std::io::stdout().lock(), format, &HEADER);
            for name in names {
                let reply = client.stat(pb::StatRequest { name }).await?.into_inner();
                printer.row(&row(&reply.file.unwrap_or_default()))?;
                printer.flush()?;
            }
            printer.finish()?;
        }
        FilesCommand::Rm { names } => {
            check_names(&names)?;
            for name in names {
                let file = client.delete(pb::DeleteRequest { name: name.clone() }).await?.into_inner().file;
                match file {
                    Some(f) => println!("deleted {} ({} bytes, sha256 {})", f.name, f.size, f.sha256),
                    None => println!("deleted {name}"),
                }
            }
        }
    }
    Ok(())
}

fn check_names(names: &[String]) -> anyhow::Result<()> {
    names.iter().try_for_each(|n| validate_name(n)).map_err(Into::into)
}

fn row(file: &pb::File) -> Vec<Cell> {
    let time = |t: &Option<prost_types::Timestamp>| {
        t.and_then(|t| SystemTime::try_from(t).ok())
            .map_or(Cell::Empty, |t| Cell::Text(humantime::format_rfc3339_seconds(t).to_string()))
    };
    vec![
        Cell::Integer(file.size),
        time(&file.create_time),
        time(&file.update_time),
        Cell::Text(file.sha256.clone()),
        Cell::Text(file.name.clone()),
    ]
}

// -------------------------------------------------------------- progress

/// Progress bars on stderr when it is a terminal; summary lines on stdout
/// always, so that scripts can read them.
#[derive(Clone)]
struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    fn new() -> Self {
        Progress { bars: std::io::stderr().is_terminal().then(MultiProgress::new) }
    }

    /// A bar counting `len` bytes, labelled `label`; hidden when stderr is
    /// not a terminal.
    fn bar(&self, len: u64, label: &str) -> ProgressBar {
        let Some(bars) = &self.bars else { return ProgressBar::hidden() };
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bars.add(ProgressBar::new(len).with_style(style).with_message(label.to_owned()))
    }

    /// A result line on stdout, printed clear of the bars.
    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => bars.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    /// A remark on stderr, for a person watching only.
    fn note(&self, text: &str) {
        if let Some(bars) = &self.bars {
            let _ = bars.println(text);
        }
    }
}
