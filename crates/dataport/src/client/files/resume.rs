//! `dataport upload --resume`: the file hashed first, then written through
//! ByteStream.Write from where the server's upload of that name and
//! content stands.

use std::io::{Seek, SeekFrom};
use std::sync::mpsc as sync_mpsc;

use crate::client::Channel;
use anyhow::{Context, bail};
use dataport_core::files::Sha256Digest;
use dataport_fileio::LocalReader;
use dataport_proto::dataport::files::v1 as pb;
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;
use dataport_proto::google::bytestream::{self as bs, byte_stream_client::ByteStreamClient};
use indicatif::ProgressBar;
use prost::bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tonic::Code;

use super::QUEUE;
use super::progress::Progress;
use super::upload::{Failed, Source, explain, fed_by, read_chunk, reading};

/// ByteStream.Write, continuing an earlier upload of the same name and
/// content from what the server holds of it.
pub(super) async fn upload_resumable(
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
