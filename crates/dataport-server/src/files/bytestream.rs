//! `google.bytestream.ByteStream` over the file store: resumable uploads
//! addressed by `uploads/{upload_id}/files/{name}[/sha256/{hex}]` and offset
//! reads of `files/{name}`.
//!
//! A Write continues the store's resumable upload `upload_id` on a blocking
//! thread fed by a bounded channel (as the compat uploads are). Whatever
//! ends the call, the data received stays durable for a later Write: a
//! stream that ends cleanly without `finish_write` is flushed and answers
//! its size, a reset or broken one keeps what the writer had. Only a stream
//! that really ended after `finish_write` commits ([`BodyEnd`]).

use std::io::{Seek, SeekFrom};

use dataport_core::files::{Sha256Digest, validate_name};
use dataport_proto::google::bytestream::{self, byte_stream_server};
use dataport_store::files::{FileError, FileInfo, FileStore, LocalFileStore, Upload, UploadState};
use prost::bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::stream::{DOWNLOAD_QUEUE, UPLOAD_QUEUE, send_chunks};
use super::{blocking, shown, status};
use crate::ended::BodyEnd;
use dataport_wire::Lean;

/// The service; each Write tells a finished stream from a reset one by its
/// [`BodyEnd`].
/// Reads are sent [`Lean`].
pub fn bytestream(
    store: LocalFileStore,
) -> Lean<byte_stream_server::ByteStreamServer<ByteStreamFiles>, ByteStreamFiles> {
    let service = ByteStreamFiles { store };
    Lean::new(byte_stream_server::ByteStreamServer::new(service.clone()), service)
}

#[derive(Clone, Debug)]
pub struct ByteStreamFiles {
    store: LocalFileStore,
}

const READ_FORM: &str = "files/{name}";
const UPLOAD_FORM: &str = "uploads/{upload_id}/files/{name}, optionally followed by /sha256/{64 hex digits}";

/// What a Write or QueryWriteStatus resource name names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UploadResource {
    id: String,
    name: String,
    expected: Option<Sha256Digest>,
}

fn bad_resource(resource: &str, problem: &str, form: &str) -> Status {
    Status::invalid_argument(format!("resource_name {}: {problem}; expected {form}", shown(resource)))
}

/// Parses `uploads/{upload_id}/files/{name}[/sha256/{64 hex digits}]`. A
/// valid id or name has no `/`, so splitting on it is unambiguous.
fn upload_resource(resource: &str) -> Result<UploadResource, Status> {
    let bad = |problem: &str| bad_resource(resource, problem, UPLOAD_FORM);
    // At most 7 pieces, so a hostile name of a million slashes costs nothing.
    let parts: Vec<&str> = resource.splitn(7, '/').collect();
    let (id, name, digest) = match parts.as_slice() {
        ["uploads", id, "files", name] => (*id, *name, None),
        ["uploads", id, "files", name, "sha256", digest] => (*id, *name, Some(*digest)),
        _ if resource.is_empty() => return Err(bad("empty")),
        _ => return Err(bad("not of that form")),
    };
    validate_name(id).map_err(|e| bad(&format!("upload_id: {e}")))?;
    validate_name(name).map_err(|e| bad(&format!("name: {e}")))?;
    let expected = digest.map(str::parse).transpose().map_err(|e| bad(&format!("sha256: {e}")))?;
    Ok(UploadResource { id: id.to_owned(), name: name.to_owned(), expected })
}

/// Parses `files/{name}`.
fn read_resource(resource: &str) -> Result<String, Status> {
    let bad = |problem: &str| bad_resource(resource, problem, READ_FORM);
    match resource.split_once('/') {
        Some(("files", name)) => {
            validate_name(name).map_err(|e| bad(&format!("name: {e}")))?;
            Ok(name.to_owned())
        }
        _ if resource.is_empty() => Err(bad("empty")),
        _ => Err(bad("not of that form")),
    }
}

/// The size a finished upload answers, if `resource` is what it finished as;
/// an id reused for another file is refused rather than answered as done.
fn finished_size(resource: &UploadResource, info: &FileInfo) -> Result<u64, Status> {
    let reused = |what: String| {
        Status::already_exists(format!(
            "upload {:?} was already finished as {:?} ({} bytes, sha256 {}), {what}; \
             use a new upload_id for another upload",
            resource.id, info.name, info.size, info.sha256
        ))
    };
    if info.name != resource.name {
        return Err(reused(format!("not as {:?}", resource.name)));
    }
    match resource.expected {
        Some(expected) if expected != info.sha256 => Err(reused(format!("not with sha256 {expected}"))),
        _ => Ok(info.size),
    }
}

/// An offset or size as the wire carries it.
fn wire_size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the upload thread receives.
enum Piece {
    /// The data of one message, which the client says starts at `offset`.
    Data { offset: u64, data: Bytes },
    /// The stream really ended after `finish_write`: commit.
    Finish,
    /// The stream really ended without it: make what was written durable.
    Pause,
}

/// How the upload thread stopped.
enum Written {
    Committed(FileInfo),
    /// The upload had been finished before this call: nothing was written.
    AlreadyFinished(Box<FileInfo>),
    Paused(u64),
    /// The channel closed without an end: the call failed, and the upload
    /// was dropped, which keeps its data durable.
    Dropped,
}

/// Continues the upload `resource` from `rx` on the calling (blocking)
/// thread.
fn write_resumable(
    store: &LocalFileStore,
    resource: &UploadResource,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<Written, FileError> {
    let mut upload = match store.resumable(&resource.id, &resource.name, resource.expected) {
        Ok(upload) => upload,
        Err(FileError::UploadFinished { info, .. }) => return Ok(Written::AlreadyFinished(info)),
        Err(e) => return Err(e),
    };
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Data { offset, data } => upload.write_at(offset, &data)?,
            Piece::Finish => return upload.commit().map(Written::Committed),
            Piece::Pause => return upload.sync().map(Written::Paused),
        }
    }
    Ok(Written::Dropped)
}

/// Feeds `stream` (whose first message, `first`, named `resource`) to the
/// upload thread through `tx` until the stream ends, fails or breaks a
/// rule, or the thread stops (then its answer is the call's).
async fn feed(
    tx: &mpsc::Sender<Piece>,
    mut stream: Streaming<bytestream::WriteRequest>,
    first: bytestream::WriteRequest,
    end: Option<BodyEnd>,
) -> Result<(), Status> {
    let resource = first.resource_name.clone();
    let (mut next, mut index, mut finished) = (Some(first), 1u64, false);
    loop {
        let piece = match next.take() {
            Some(_) if finished => {
                return Err(Status::invalid_argument(format!(
                    "message {index} follows the message with finish_write, which must be the last"
                )));
            }
            Some(message) => {
                if !message.resource_name.is_empty() && message.resource_name != resource {
                    return Err(Status::invalid_argument(format!(
                        "message {index}: resource_name {} differs from the first message's {}; \
                         later messages leave it empty or repeat it",
                        shown(&message.resource_name),
                        shown(&resource)
                    )));
                }
                let offset = u64::try_from(message.write_offset).map_err(|_| {
                    Status::out_of_range(format!(
                        "message {index}: write_offset {} is negative",
                        message.write_offset
                    ))
                })?;
                finished = message.finish_write;
                Piece::Data { offset, data: message.data }
            }
            // tonic ends a reset stream as if it had finished: commit only
            // what the client really finished sending.
            None if end.as_ref().is_some_and(BodyEnd::failed) => {
                return Err(Status::cancelled(
                    "the Write stream was reset before it ended; the data received is kept \
                     for a Write continuing from QueryWriteStatus",
                ));
            }
            None if finished => Piece::Finish,
            None => Piece::Pause,
        };
        let last = !matches!(piece, Piece::Data { .. });
        if tx.send(piece).await.is_err() || last {
            return Ok(());
        }
        index += 1;
        next = tokio::select! {
            biased;
            // The thread stopped (an error, or the upload was finished before).
            () = tx.closed() => return Ok(()),
            message = stream.message() => message?,
        };
    }
}

#[tonic::async_trait]
impl byte_stream_server::ByteStream for ByteStreamFiles {
    type ReadStream = ReceiverStream<Result<bytestream::ReadResponse, Status>>;

    async fn read(
        &self,
        request: Request<bytestream::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let bytestream::ReadRequest { resource_name, read_offset, read_limit } = request.into_inner();
        let name = read_resource(&resource_name)?;
        let offset = u64::try_from(read_offset).map_err(|_| {
            Status::out_of_range(format!("read_offset {read_offset} is negative; offsets start at 0"))
        })?;
        let limit = match u64::try_from(read_limit) {
            Ok(0) => u64::MAX,
            Ok(limit) => limit,
            Err(_) => {
                return Err(Status::out_of_range(format!(
                    "read_limit {read_limit} is negative; 0 reads to the end"
                )));
            }
        };
        let store = self.store.clone();
        let mut reader = tokio::task::spawn_blocking(move || {
            let (info, mut reader) = store.open(&name).map_err(status)?;
            if offset > info.size {
                return Err(Status::out_of_range(format!(
                    "read_offset {offset} is past the end of {name:?}, which has {} bytes",
                    info.size
                )));
            }
            reader.seek(SeekFrom::Start(offset)).map_err(|e| {
                tracing::error!(name, error = %e, "seeking in a stored file failed");
                Status::internal(format!("seeking in the file failed: {e}"))
            })?;
            Ok(reader)
        })
        .await
        .map_err(|e| Status::internal(format!("read task failed: {e}")))??;
        let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
        tokio::task::spawn_blocking(move || {
            send_chunks(&mut reader, limit, &tx, |data| bytestream::ReadResponse { data });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn write(
        &self,
        request: Request<Streaming<bytestream::WriteRequest>>,
    ) -> Result<Response<bytestream::WriteResponse>, Status> {
        let end = request.extensions().get::<BodyEnd>().cloned();
        let mut stream = request.into_inner();
        let Some(first) = stream.message().await? else {
            return Err(Status::invalid_argument(format!(
                "empty stream: the first WriteRequest names the upload in resource_name ({UPLOAD_FORM})"
            )));
        };
        if first.resource_name.is_empty() {
            return Err(Status::invalid_argument(format!(
                "message 1: resource_name is empty; the first WriteRequest names the upload ({UPLOAD_FORM})"
            )));
        }
        let resource = upload_resource(&first.resource_name)?;

        let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
        let writer = {
            let (store, resource) = (self.store.clone(), resource.clone());
            tokio::task::spawn_blocking(move || write_resumable(&store, &resource, rx))
        };
        let fed = feed(&tx, stream, first, end).await;
        drop(tx);
        let written = writer.await.map_err(|e| Status::internal(format!("upload task failed: {e}")))?;
        let committed = match (fed, written) {
            // Per the ByteStream spec, whatever this call sent.
            (_, Ok(Written::AlreadyFinished(info))) => finished_size(&resource, &info)?,
            (_, Err(e)) => return Err(status(e)),
            (Err(e), Ok(_)) => {
                tracing::debug!(id = resource.id, error = %e, "write stopped; its data is kept");
                return Err(e);
            }
            (Ok(()), Ok(Written::Committed(info))) => info.size,
            (Ok(()), Ok(Written::Paused(size))) => size,
            (Ok(()), Ok(Written::Dropped)) => {
                return Err(Status::internal("the upload stopped before the Write stream ended"));
            }
        };
        Ok(Response::new(bytestream::WriteResponse { committed_size: wire_size(committed) }))
    }

    async fn query_write_status(
        &self,
        request: Request<bytestream::QueryWriteStatusRequest>,
    ) -> Result<Response<bytestream::QueryWriteStatusResponse>, Status> {
        let resource = upload_resource(&request.get_ref().resource_name)?;
        let (store, id) = (self.store.clone(), resource.id.clone());
        let state = blocking(move || store.upload_state(&id)).await?;
        let (committed, complete) = match state {
            Some(UploadState::InProgress { durable }) => (durable, false),
            Some(UploadState::Finished(info)) => (finished_size(&resource, &info)?, true),
            None => {
                return Err(Status::not_found(format!(
                    "no upload {:?} in progress or finished; start a Write at offset 0",
                    resource.id
                )));
            }
        };
        Ok(Response::new(bytestream::QueryWriteStatusResponse {
            committed_size: wire_size(committed),
            complete,
        }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn refused(result: Result<impl std::fmt::Debug, Status>, parts: &[&str]) {
        let status = result.expect_err("should be refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        for part in parts {
            assert!(status.message().contains(part), "{:?} should mention {part:?}", status.message());
        }
    }

    #[test]
    fn upload_names_give_the_id_the_name_and_the_digest() {
        assert_eq!(
            upload_resource("uploads/u-1/files/report.pdf").unwrap(),
            UploadResource { id: "u-1".into(), name: "report.pdf".into(), expected: None }
        );
        let with_digest = upload_resource(&format!("uploads/u/files/f/sha256/{HEX}")).unwrap();
        assert_eq!(with_digest.expected, Some(HEX.parse().unwrap()));
        let upper = upload_resource(&format!("uploads/u/files/f/sha256/{}", HEX.to_uppercase())).unwrap();
        assert_eq!(upper.expected, with_digest.expected);
        // Words of the form are fine as names.
        let odd = upload_resource("uploads/files/files/sha256").unwrap();
        assert_eq!((odd.id.as_str(), odd.name.as_str()), ("files", "sha256"));
    }

    #[test]
    fn bad_upload_names_are_refused_naming_the_field_the_value_and_the_form() {
        let form = "uploads/{upload_id}/files/{name}";
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("uploads/u/files", "not of that form"),
            ("uploads/u/files/", "name: file name must not be empty"),
            ("uploads//files/f", "upload_id: file name must not be empty"),
            ("uploads/../files/f", "upload_id: file name \"..\""),
            ("uploads/u/files/..", "name: file name \"..\""),
            ("uploads/u/files/a/b", "not of that form"),
            ("uploads/u/files/f/", "not of that form"),
            ("/uploads/u/files/f", "not of that form"),
            ("Uploads/u/files/f", "not of that form"),
            ("files/f", "not of that form"),
            ("uploads/u/file/f", "not of that form"),
            ("uploads/u/files/f/sha256", "not of that form"),
            ("uploads/u/files/f/sha256/abc", "sha256: a sha256 digest is 64 hex digits, got 3"),
            ("uploads/u/files/f/md5/abc", "not of that form"),
            ("uploads/u/files/f/sha256/abc/x", "not of that form"),
            ("uploads/u\0/files/f", "upload_id: file name \"u\\0\" contains a NUL byte"),
            ("uploads/u/files/a\nb", "control character"),
            ("uploads/u/files/a\\b", "path separator"),
        ];
        for &(resource, problem) in cases {
            refused(upload_resource(resource), &["resource_name", problem, form]);
        }
        let bad_hex = format!("uploads/u/files/f/sha256/{}", "g".repeat(64));
        refused(upload_resource(&bad_hex), &["sha256:", "'g' at position 0"]);
        let long = format!("uploads/u/files/{}", "n".repeat(256));
        refused(upload_resource(&long), &["name: file name", "256 bytes", "..."]);
    }

    #[test]
    fn a_huge_resource_name_is_refused_cheaply_and_shown_short() {
        let huge = "/".repeat(1 << 20);
        let status = upload_resource(&huge).unwrap_err();
        assert!(status.message().len() < 400, "{}", status.message().len());
        assert!(status.message().contains("\"//////"), "{}", status.message());
    }

    #[test]
    fn read_names_give_the_file_name() {
        assert_eq!(read_resource("files/report.pdf").unwrap(), "report.pdf");
        for (resource, problem) in [
            ("", "empty"),
            ("files/", "must not be empty"),
            ("files/a/b", "path separator"),
            ("files/..", "names a directory"),
            ("file/a", "not of that form"),
            ("report.pdf", "not of that form"),
            ("uploads/u/files/f", "not of that form"),
        ] {
            refused(read_resource(resource), &["resource_name", problem, "expected files/{name}"]);
        }
    }

    #[test]
    fn a_finished_upload_answers_only_for_its_own_name_and_digest() {
        let info = FileInfo {
            name: "f".into(),
            size: 42,
            sha256: HEX.parse().unwrap(),
            created: std::time::UNIX_EPOCH,
            modified: std::time::UNIX_EPOCH,
        };
        let resource = |r: &str| upload_resource(r).unwrap();
        assert_eq!(finished_size(&resource("uploads/u/files/f"), &info).unwrap(), 42);
        assert_eq!(finished_size(&resource(&format!("uploads/u/files/f/sha256/{HEX}")), &info).unwrap(), 42);
        let other = finished_size(&resource("uploads/u/files/g"), &info).unwrap_err();
        assert_eq!(other.code(), Code::AlreadyExists);
        assert!(other.message().contains("not as \"g\""), "{}", other.message());
        let digest = format!("uploads/u/files/f/sha256/{}", "0".repeat(64));
        let other = finished_size(&resource(&digest), &info).unwrap_err();
        assert_eq!(other.code(), Code::AlreadyExists);
        assert!(other.message().contains("new upload_id"), "{}", other.message());
    }
}
