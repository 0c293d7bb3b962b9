//! `dataport download`: one Download call per thousand names, received
//! off the wire on the runtime and written, hashed and flushed on a thread
//! of its own; a file appears only once complete, checked and durable.
//! Where files go is [`Target`]: a directory, one named file, or stdout.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::client::Channel;
use anyhow::{Context, anyhow, bail};
use dataport_core::files::{Sha256Digest, validate_name};
use dataport_fileio::DurableWriter;
use dataport_proto::dataport::files::v1 as pb;
use indicatif::ProgressBar;
use prost::bytes::Bytes;
use tempfile::TempPath;
use tokio::sync::{mpsc, oneshot};

use super::progress::Progress;
use super::{MAX_MESSAGE, QUEUE};
use crate::client::wire::{self, Event, Responses};

/// A download has the disk flush this much written data in the background,
/// so that the final fsync before the rename is short.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;

/// The Download method, and the number of its response's `chunk` field.
const DOWNLOAD: &str = dataport_proto::methods::dataport::files::v1::files_service::DOWNLOAD;
const CHUNK_FIELD: u8 = <pb::DownloadResponse as dataport_wire::LoneBytes>::FIELD;

#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The stored files to download, in one call.
    #[arg(required = true)]
    names: Vec<String>,
    /// Where to write: FILE (one name only), DIR/ (ending in `/`, or an
    /// existing directory; created if missing) for each file as DIR/NAME,
    /// or `-` for stdout (one name only). Default: the current directory.
    /// A file appears only once it is complete, its sha256 checked and
    /// flushed to disk, and replaces any file there (see --no-clobber).
    #[arg(short = 'o', long = "output", value_name = "FILE|DIR/|-")]
    output: Option<PathBuf>,
    /// The directory to write the files to, as `-o DIR/`.
    #[arg(long = "output-dir", value_name = "DIR", conflicts_with = "output")]
    dir: Option<PathBuf>,
    /// Never replace a local file: if a file to be written exists, nothing
    /// is downloaded (and one that appears meanwhile is kept, the download
    /// discarded).
    #[arg(short = 'n', long)]
    no_clobber: bool,
}

/// Where a download writes.
#[derive(Clone, Debug)]
enum Target {
    /// Each file as DIR/NAME.
    Dir(PathBuf),
    /// The one file asked for, as this path.
    File(PathBuf),
    /// The one file asked for, to stdout.
    Stdout,
}

impl Target {
    fn of(args: &DownloadArgs) -> anyhow::Result<Target> {
        let count = args.names.len();
        let Some(output) = &args.output else {
            return Ok(Target::Dir(args.dir.clone().unwrap_or_else(|| PathBuf::from("."))));
        };
        if output.as_os_str() == "-" {
            if count != 1 {
                bail!("-o - writes one file to stdout, but {count} names were given");
            }
            return Ok(Target::Stdout);
        }
        if output.as_os_str().as_encoded_bytes().ends_with(b"/") || output.is_dir() {
            return Ok(Target::Dir(output.clone()));
        }
        if count != 1 {
            bail!(
                "-o {} names one file, but {count} names were given; end it with / to write them into a directory",
                output.display()
            );
        }
        Ok(Target::File(output.clone()))
    }

    /// The directory the file named `name` is written in, and its path
    /// there; none for stdout.
    fn place(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        match self {
            Target::Dir(dir) => Some((dir.clone(), dir.join(name))),
            Target::File(path) => {
                let dir = match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                    _ => PathBuf::from("."),
                };
                Some((dir, path.clone()))
            }
            Target::Stdout => None,
        }
    }

    /// With `--no-clobber`: refuses, before anything is asked for, a name
    /// whose file exists.
    fn check_absent(&self, names: &[String]) -> anyhow::Result<()> {
        for (_, path) in names.iter().filter_map(|name| self.place(name)) {
            if path.symlink_metadata().is_ok() {
                bail!("{} exists, and --no-clobber keeps it; nothing was downloaded", path.display());
            }
        }
        Ok(())
    }
}

/// The most names in one Download call: the server holds each file open
/// until it is sent, and refuses more. More are downloaded in several calls.
const MAX_NAMES_PER_CALL: usize = 1000;

pub async fn download(mut channel: Channel, args: DownloadArgs) -> anyhow::Result<()> {
    for name in &args.names {
        validate_name(name)?;
    }
    let target = Target::of(&args)?;
    if args.no_clobber {
        target.check_absent(&args.names)?;
    }
    let target = Written { target, no_clobber: args.no_clobber };
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
        download_call(&mut channel, names, &target, &progress, interrupted.as_mut()).await?;
    }
    Ok(())
}

/// One Download call: the files are received here, straight off the wire
/// (see [`crate::client::wire`]), and written and hashed on threads of their own.
async fn download_call(
    channel: &mut Channel,
    names: &[String],
    target: &Written,
    progress: &Progress,
    interrupted: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<()> {
    // The server checks every name before it answers, so a missing one
    // fails here, before anything is created.
    let request = pb::DownloadRequest { names: names.to_vec() };
    let body = wire::one_message(&request);
    let mut stream = wire::call(channel, DOWNLOAD, body, (Some(CHUNK_FIELD), MAX_MESSAGE)).await?;
    if let Some((dir, _)) = names.first().and_then(|name| target.target.place(name)) {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    let (writer_target, writer_progress) = (target.clone(), progress.clone());
    std::thread::spawn(move || {
        let _ = done_tx.send(write_files(&writer_target, rx, &writer_progress));
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

/// Where and how a download writes: its [`Target`], and whether files
/// there may be replaced.
#[derive(Clone, Debug)]
struct Written {
    target: Target,
    no_clobber: bool,
}

/// A file being written: a temporary file in the target's directory,
/// renamed over its path only once complete, checked and durable (dropped
/// before that, it is removed); or the bytes as they come, to stdout.
struct Incoming {
    file: pb::File,
    digest: Sha256Digest,
    bar: ProgressBar,
    out: Out,
}

enum Out {
    /// Hashes, writes (direct I/O where it can) and flushes as the data
    /// comes; dropped before `temp`, so its threads are done with the file,
    /// which becomes `path` in `dir`.
    Durable {
        writer: Box<DurableWriter>,
        temp: TempPath,
        dir: PathBuf,
        path: PathBuf,
    },
    Stdout {
        hasher: sha2::Sha256,
        written: u64,
    },
}

impl Out {
    fn written(&self) -> u64 {
        match self {
            Out::Durable { writer, .. } => writer.written(),
            Out::Stdout { written, .. } => *written,
        }
    }
}

fn write_files(target: &Written, mut rx: mpsc::Receiver<Job>, progress: &Progress) -> anyhow::Result<()> {
    let mut current: Option<Incoming> = None;
    let mut stdout = std::io::stdout().lock();
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::Start { file, digest, bar } => {
                let out = match target.target.place(&file.name) {
                    None => Out::Stdout { hasher: sha2::Digest::new(), written: 0 },
                    Some((dir, path)) => {
                        let (handle, temp) = temp_file(&dir)?.into_parts();
                        let writer = Box::new(DurableWriter::new(handle, temp.to_path_buf(), SYNC_EVERY));
                        Out::Durable { writer, temp, dir, path }
                    }
                };
                current = Some(Incoming { file, digest, bar, out });
            }
            Job::Data(data) => {
                let Some(incoming) = current.as_mut() else { bail!("data before a file") };
                let len = data.len() as u64;
                if incoming.out.written() + len > incoming.file.size {
                    bail!(
                        "the server sent more than the {} bytes of {:?}",
                        incoming.file.size,
                        incoming.file.name
                    );
                }
                match &mut incoming.out {
                    Out::Durable { writer, dir, .. } => {
                        writer.write(&data).with_context(|| format!("cannot write to {}", dir.display()))?;
                    }
                    Out::Stdout { hasher, written } => {
                        stdout.write_all(&data).context("cannot write to stdout")?;
                        sha2::Digest::update(hasher, &data);
                        *written += len;
                    }
                }
                incoming.bar.inc(len);
            }
            Job::End => {
                let Some(incoming) = current.take() else { bail!("the end of no file") };
                if let Some((path, size, digest)) = finish(incoming, target, &mut stdout)? {
                    progress.line(&format!("wrote {} ({size} bytes, sha256 {digest})", path.display()));
                }
            }
        }
    }
    if let Some(incoming) = current {
        bail!("the download ended before {:?} was complete", incoming.file.name);
    }
    Ok(())
}

/// Checks a received file; one on disk is then flushed and renamed into
/// place, and answered.
fn finish(
    incoming: Incoming,
    target: &Written,
    stdout: &mut std::io::StdoutLock<'_>,
) -> anyhow::Result<Option<(PathBuf, u64, Sha256Digest)>> {
    let Incoming { file, digest, bar, out } = incoming;
    let written = out.written();
    if written != file.size {
        bail!("the server sent {written} bytes of {:?}, which has {}", file.name, file.size);
    }
    let (mut writer, temp, dir, path) = match out {
        Out::Stdout { hasher, .. } => {
            stdout.flush().context("cannot write to stdout")?;
            let actual = Sha256Digest::from(<[u8; 32]>::from(sha2::Digest::finalize(hasher)));
            if actual != digest {
                bail!(
                    "{:?} arrived damaged: its sha256 is {actual}, the server's is {digest}; \
                     the bytes written to stdout are not the stored file",
                    file.name
                );
            }
            bar.finish_and_clear();
            return Ok(None);
        }
        Out::Durable { writer, temp, dir, path } => (writer, temp, dir, path),
    };
    let actual = writer.finish().with_context(|| format!("cannot write {}", path.display()))?;
    if actual != digest {
        bail!(
            "{:?} arrived damaged: its sha256 is {actual}, the server's is {digest}; nothing was written",
            file.name
        );
    }
    writer.sync().with_context(|| format!("cannot flush {}", path.display()))?;
    drop(writer);
    if target.no_clobber {
        temp.persist_noclobber(&path).map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow!(
                "{} appeared while {:?} was downloaded, and --no-clobber keeps it; the download was discarded",
                path.display(),
                file.name
            ),
            _ => anyhow::Error::from(e.error).context(format!("cannot write {}", path.display())),
        })?;
    } else {
        temp.persist(&path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // The rename is durable once the directory is.
    File::open(&dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot flush {}", dir.display()))?;
    bar.finish_and_clear();
    Ok(Some((path, written, digest)))
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
