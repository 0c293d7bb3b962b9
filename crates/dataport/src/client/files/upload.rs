//! `dataport upload`: the checks before anything is sent, the plain upload
//! (FilesService.Upload), and the reading thread and request stream that
//! the resumable one ([`super::resume`]) shares.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::client::Channel;
use anyhow::{Context, anyhow, bail};
use dataport_core::files::{Sha256Digest, validate_name};
use dataport_fileio::LocalReader;
use dataport_proto::dataport::files::v1 as pb;
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;
use dataport_proto::google::bytestream::byte_stream_client::ByteStreamClient;
use futures_util::Stream;
use indicatif::ProgressBar;
use prost::bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tonic::{Code, Status};

use super::progress::Progress;
use super::resume::upload_resumable;
use super::{MAX_MESSAGE, QUEUE};
use crate::client::wire;

/// Bytes per message sent, well under the server's 4 MiB message limit.
/// Measured uploading 1 GiB over loopback: 256 and 512 KiB cost the client
/// a third more CPU time than 1 MiB, and 2 MiB cost the server twice as much.
const CHUNK: usize = 1024 * 1024;

/// The Upload method.
const UPLOAD: &str = dataport_proto::methods::dataport::files::v1::files_service::UPLOAD;

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The files to upload; each is stored under its base name (one path
    /// component of at most 255 bytes, no control characters or `\`), and
    /// replaces any stored file of that name. `-` reads stdin (with --name).
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
    /// Never replace a stored file: if one of the name is stored when the
    /// upload completes, nothing is stored (the server decides, so of two
    /// such uploads of one name exactly one is stored).
    #[arg(short = 'n', long, conflicts_with = "resume")]
    no_clobber: bool,
}

/// A local file to upload, checked before anything is sent.
pub(super) struct Source {
    pub path: PathBuf,
    pub name: String,
    /// Reads a large file with direct I/O, as the server reads stored
    /// files: its chunks go from the disk into the messages, not through
    /// the page cache, which was a quarter of an upload's client time.
    pub file: LocalReader,
    pub size: u64,
}

pub async fn upload(channel: Channel, args: UploadArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    let mut raw = channel.clone();
    if args.files.iter().any(|f| f.as_os_str() == "-") {
        let name = stdin_name(&args)?;
        let mut stdin = std::io::stdin();
        let read = move || read_full(&mut stdin);
        let (size, digest) =
            upload_plain(&mut raw, args.header(&name), read, None, Path::new("stdin"), &progress).await?;
        progress.line(&format!("stored {name} ({size} bytes, sha256 {digest})"));
        return Ok(());
    }
    let sources = sources(&args)?;
    let mut files = FilesServiceClient::new(channel.clone()).max_encoding_message_size(MAX_MESSAGE);
    let mut bytestream = ByteStreamClient::new(channel).max_encoding_message_size(MAX_MESSAGE);
    for source in sources {
        let name = source.name.clone();
        let (size, digest) = match args.resume {
            false => {
                let Source { path, name, mut file, size } = source;
                let read = move || read_chunk(&mut file);
                upload_plain(&mut raw, args.header(&name), read, Some(size), &path, &progress).await?
            }
            true => upload_resumable(&mut bytestream, &mut files, source, &progress).await?,
        };
        progress.line(&format!("stored {name} ({size} bytes, sha256 {digest})"));
    }
    Ok(())
}

impl UploadArgs {
    /// The header of a plain upload of `name`.
    fn header(&self, name: &str) -> pb::UploadHeader {
        pb::UploadHeader { name: name.to_owned(), sha256: String::new(), keep_existing: self.no_clobber }
    }
}

/// The name stdin is stored under: `-` must be the one FILE, with --name.
fn stdin_name(args: &UploadArgs) -> anyhow::Result<String> {
    if args.files.len() != 1 {
        bail!("- reads stdin as one file; give it alone, not with {} others", args.files.len() - 1);
    }
    if args.resume {
        bail!("--resume reads a file again to continue it; stdin cannot be read again");
    }
    let name = args.name.clone().context("- reads stdin: give the name to store it under with --name")?;
    validate_name(&name).map_err(|e| anyhow!("--name: {e}"))?;
    Ok(name)
}

/// Reads up to [`CHUNK`] bytes from a pipe, which hands over less at a time;
/// fewer only at the end.
fn read_full(input: &mut impl std::io::Read) -> std::io::Result<Bytes> {
    use std::io::Read as _;
    let mut chunk = Vec::with_capacity(CHUNK);
    input.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(Bytes::from(chunk))
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
/// `read` answers the next chunk of the data (empty at its end); `size` is
/// the data's, if known before, and `path` what it is read from; `header`
/// names the file and says whether it keeps a stored one.
async fn upload_plain(
    channel: &mut Channel,
    header: pb::UploadHeader,
    mut read: impl FnMut() -> std::io::Result<Bytes> + Send + 'static,
    size: Option<u64>,
    path: &Path,
    progress: &Progress,
) -> anyhow::Result<(u64, Sha256Digest)> {
    use pb::upload_request::Kind;
    let bar = match size {
        Some(size) => progress.bar(size, &header.name),
        None => ProgressBar::hidden(),
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let (read_tx, read_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let header = pb::UploadRequest { kind: Some(Kind::Header(header)) };
        let read = (|| {
            tx.blocking_send(header).map_err(|_| Failed::Closed)?;
            let (mut size, mut crc) = (0u64, crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi));
            loop {
                let chunk = read().map_err(Failed::Read)?;
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
        let answer = wire::call::<pb::UploadResponse>(channel, UPLOAD, requests, (None, MAX_MESSAGE));
        answer.await?.single().await.map_err(|s| anyhow::Error::from(explain(s)))
    };
    let (reply, size) = tokio::try_join!(call, reading(read_rx, path))?;
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

/// Reads up to [`CHUNK`] bytes; fewer only at the end of the file.
pub(super) fn read_chunk(file: &mut LocalReader) -> std::io::Result<Bytes> {
    file.read_chunk(CHUNK).map(Bytes::from)
}

/// How a reading thread stopped early.
pub(super) enum Failed {
    /// The call ended first; its status says why.
    Closed,
    Read(std::io::Error),
    /// The file grew past what an offset can say.
    Changed,
}

/// What the reading thread of an upload answered: its result, or, when the
/// call ended first, never (the call's own outcome decides).
pub(super) async fn reading<T>(done: oneshot::Receiver<Result<T, Failed>>, path: &Path) -> anyhow::Result<T> {
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
pub(super) fn fed_by<T: Send + 'static>(
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
pub(super) fn explain(status: Status) -> Status {
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
