//! `google.bytestream.ByteStream` over the file store: resumable uploads
//! addressed by `uploads/{upload_id}/files/{name}[/sha256/{hex}]` and offset
//! reads of `files/{name}`.
//!
//! A Write continues the store's resumable upload `upload_id` through the
//! upload pipeline every upload RPC shares ([`upload`]). Whatever
//! ends the call, the data received stays durable for a later Write: a
//! stream that ends cleanly without `finish_write` is flushed and answers
//! its size, a reset or broken one keeps what the writer had. Only a stream
//! that really ended after `finish_write` commits
//! ([`BodyEnd`](crate::tonic_fixes::BodyEnd)).

use std::io::{Seek, SeekFrom};

use dataport_core::files::{Sha256Digest, validate_name};
use dataport_proto::google::bytestream::{self, byte_stream_server};
use dataport_store::files::{FileInfo, FileStore, Files, UploadState};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::stream::{
    Decoded, Incoming, Piece, Replay, Rules, Source, Target, Written, download, send_chunks, upload,
};
use dataport_wire::{Lean, OffTheWire, Served};

use super::{blocking, lean, shown, status, wire};
use crate::Reply;
use crate::inflight::Inflight;
use crate::logging::Audit;

/// `google.bytestream.ByteStream`.
#[derive(Clone, Debug)]
pub struct ByteStream {
    store: Files,
    inflight: Inflight,
    max_message: usize,
}

/// `google.bytestream.ByteStream`, its reads sent [`Lean`], reading request
/// messages of at most `max_message` bytes.
pub fn byte_stream(
    store: Files,
    inflight: Inflight,
    max_message: usize,
) -> Lean<byte_stream_server::ByteStreamServer<ByteStream>, ByteStream> {
    let generated = |s| byte_stream_server::ByteStreamServer::new(s).max_decoding_message_size(max_message);
    lean(ByteStream { store, inflight, max_message }, generated)
}

/// Read's answer is sent off the wire, its chunks uncopied; Write's messages
/// carry offsets with their data, never a lone bytes field, so it stays
/// tonic's.
impl OffTheWire for ByteStream {
    const PATHS: &'static [&'static str] = &[dataport_proto::methods::google::bytestream::byte_stream::READ];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        wire::download(request, self.max_message, move |request| async move {
            byte_stream_server::ByteStream::read(&this, request).await
        })
    }
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

/// A Write's own rules for its messages: each names the upload or leaves
/// the name empty, carries its offset, and none follows `finish_write`.
struct WriteRules {
    /// The first message's resource_name.
    resource: String,
    finished: bool,
}

impl Rules<bytestream::WriteRequest> for WriteRules {
    fn piece(&mut self, message: bytestream::WriteRequest, index: u64) -> Result<Piece, Status> {
        if self.finished {
            return Err(Status::invalid_argument(format!(
                "message {index} follows the message with finish_write, which must be the last"
            )));
        }
        if !message.resource_name.is_empty() && message.resource_name != self.resource {
            return Err(Status::invalid_argument(format!(
                "message {index}: resource_name {} differs from the first message's {}; \
                 later messages leave it empty or repeat it",
                shown(&message.resource_name),
                shown(&self.resource)
            )));
        }
        let offset = u64::try_from(message.write_offset).map_err(|_| {
            Status::out_of_range(format!(
                "message {index}: write_offset {} is negative",
                message.write_offset
            ))
        })?;
        self.finished = message.finish_write;
        Ok(Piece::Data { offset: Some(offset), data: message.data })
    }

    /// Committed only after `finish_write`; else what was written is made
    /// durable for a later Write.
    fn end(&self) -> Piece {
        if self.finished { Piece::Commit } else { Piece::Pause }
    }
}

/// The status of a Write whose client reset its stream: unlike the other
/// uploads, what was received is kept.
fn write_reset() -> Status {
    Status::cancelled(
        "the Write stream was reset before it ended; the data received is kept \
         for a Write continuing from QueryWriteStatus",
    )
}

#[tonic::async_trait]
impl byte_stream_server::ByteStream for ByteStream {
    type ReadStream = ReceiverStream<Result<bytestream::ReadResponse, Status>>;

    async fn read(&self, request: Request<bytestream::ReadRequest>) -> Reply<Self::ReadStream> {
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
        let mut reader = crate::off_reactor(move || {
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
        .await??;
        Ok(Response::new(download(move |tx| {
            send_chunks(&mut reader, limit, tx, |data| bytestream::ReadResponse { data });
        })))
    }

    async fn write(
        &self,
        request: Request<Streaming<bytestream::WriteRequest>>,
    ) -> Reply<bytestream::WriteResponse> {
        let audit = Audit::of(request.extensions());
        let mut source = Decoded::new(request).reset_as(write_reset);
        let Some(Incoming::Message(first)) = source.next().await? else {
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
        audit.object(&resource.name);
        let rules = WriteRules { resource: first.resource_name.clone(), finished: false };
        let target = Target::Resumable {
            id: resource.id.clone(),
            name: resource.name.clone(),
            expected: resource.expected,
        };
        let source = Replay { first: Some(first), rest: source };
        let committed = match upload((&self.store, &self.inflight), target, (source, 0), rules).await? {
            Written::AlreadyFinished(info) => finished_size(&resource, &info)?,
            Written::Committed(info) => info.size,
            Written::Paused(size) => size,
            Written::Dropped => {
                return Err(Status::internal("the upload stopped before the Write stream ended"));
            }
        };
        Ok(Response::new(bytestream::WriteResponse { committed_size: wire_size(committed) }))
    }

    async fn query_write_status(
        &self,
        request: Request<bytestream::QueryWriteStatusRequest>,
    ) -> Reply<bytestream::QueryWriteStatusResponse> {
        let resource = upload_resource(&request.get_ref().resource_name)?;
        Audit::of(request.extensions()).object(&resource.name);
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
