//! `dataport.files.v1.FilesService` over the file store.
//!
//! Upload goes through the pipeline every upload RPC shares
//! ([`store_stream`]): a header, chunks, an optional trailer, committed only
//! when the stream really ended and the data has every checksum the client
//! gave. Download opens every file before it sends anything and streams
//! from the open readers, so a file replaced or deleted meanwhile still
//! arrives whole as it was. List pages through the store's name-ordered
//! listing with a token naming the last file answered.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};

use dataport_core::files::{Sha256Digest, validate_name};
use dataport_proto::dataport::files::v1::{self, download_response, files_service_server, upload_request};
use dataport_store::files::{FileError, FileInfo, FileStore, Files, FilesReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use dataport_proto::methods;
use dataport_wire::route::shadowed;
use dataport_wire::{Lean, OffTheWire, Served};

use super::stream::{Expect, NewFile, Piece, Rules, Source, download, first, send_chunks, store_stream};
use super::{blocking, lean, shown, wire};
use crate::Reply;
use crate::inflight::Inflight;
use crate::logging::Audit;

/// Files a List page holds when the request says 0.
const DEFAULT_PAGE_SIZE: usize = 1000;
/// The most files a List page holds, whatever the request says.
const MAX_PAGE_SIZE: usize = 10_000;
/// The most distinct files one Download may name: each stays open until it
/// is sent, and open files are a limited resource of the whole server.
const MAX_DOWNLOAD_FILES: usize = 1000;

/// `dataport.files.v1.FilesService`.
#[derive(Clone, Debug)]
pub struct FilesService {
    store: Files,
    inflight: Inflight,
    max_message: usize,
}

/// `dataport.files.v1.FilesService`, its uploads and downloads moved
/// [`Lean`], reading request messages of at most `max_message` bytes.
pub fn files_service(
    store: Files,
    inflight: Inflight,
    max_message: usize,
) -> Lean<files_service_server::FilesServiceServer<FilesService>, FilesService> {
    let generated =
        |s| files_service_server::FilesServiceServer::new(s).max_decoding_message_size(max_message);
    lean(FilesService { store, inflight, max_message }, generated)
}

const UPLOAD: &str = methods::dataport::files::v1::files_service::UPLOAD;
const DOWNLOAD: &str = methods::dataport::files::v1::files_service::DOWNLOAD;

impl OffTheWire for FilesService {
    const PATHS: &'static [&'static str] = &[DOWNLOAD, UPLOAD];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        if request.uri().path() == UPLOAD {
            let audit = Audit::of(request.extensions());
            return wire::upload(request, self.max_message, move |source| async move {
                this.upload(source, audit).await
            });
        }
        wire::download(request, self.max_message, move |request| async move {
            files_service_server::FilesService::download(&this, request).await
        })
    }
}

/// A stored file as the wire shows it.
fn file(info: &FileInfo) -> v1::File {
    v1::File {
        name: info.name.clone(),
        size: info.size,
        sha256: info.sha256.to_hex(),
        create_time: Some(info.created.into()),
        update_time: Some(info.modified.into()),
    }
}

/// Checks the file name in `field`; the refusal names the field and the name.
fn checked_name(field: &str, name: &str) -> Result<(), Status> {
    validate_name(name).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// The digest in `field`; `None` when it is empty (nothing to check).
fn digest(field: &str, text: &str) -> Result<Option<Sha256Digest>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| Status::invalid_argument(format!("{field} = {}: {e}", shown(text))))
}

/// What an upload message is, for refusals.
fn kind_name(kind: &Option<upload_request::Kind>) -> &'static str {
    match kind {
        Some(upload_request::Kind::Header(_)) => "a header",
        Some(upload_request::Kind::Chunk(_)) => "a chunk",
        Some(upload_request::Kind::Trailer(_)) => "a trailer",
        None => "empty (no header, chunk or trailer)",
    }
}

/// What an upload's messages after the header add to it, checked in order:
/// chunks, then at most one trailer, which ends the upload.
struct UploadRest {
    header_sha256: Option<Sha256Digest>,
    trailer_seen: bool,
}

impl Rules<v1::UploadRequest> for UploadRest {
    fn piece(&mut self, message: v1::UploadRequest, index: u64) -> Result<Piece, Status> {
        if self.trailer_seen {
            return Err(Status::invalid_argument(format!(
                "message {index} is {} after the trailer; the trailer is the last message",
                kind_name(&message.kind)
            )));
        }
        match message.kind {
            Some(upload_request::Kind::Chunk(data)) => Ok(Piece::from(data)),
            Some(upload_request::Kind::Trailer(trailer)) => {
                self.trailer_seen = true;
                let field = format!("message {index}: trailer.sha256");
                let sha256 = match (digest(&field, &trailer.sha256)?, self.header_sha256) {
                    (Some(given), Some(header)) if given != header => {
                        return Err(Status::invalid_argument(format!(
                            "{field} = {given} differs from header.sha256 = {header}; give one digest, or the same in both"
                        )));
                    }
                    (given, _) => given,
                };
                let crc32c = trailer.crc32c.map(|crc| (format!("message {index}: trailer.crc32c"), crc));
                Ok(Piece::Expect(Expect { sha256, crc32c }))
            }
            Some(upload_request::Kind::Header(_)) => Err(Status::invalid_argument(format!(
                "message {index} is a second header; an upload has one header, then chunks, then optionally a trailer"
            ))),
            None => Err(Status::invalid_argument(format!(
                "message {index} is {}; after the header come chunks, then optionally a trailer",
                kind_name(&None)
            ))),
        }
    }
}

/// The distinct names a Download asks for, each checked, and the order to
/// send them in (indices into the first). Each distinct name is opened once;
/// a name given twice is read twice from the same open file.
fn distinct_names(names: &[String]) -> Result<(Vec<String>, Vec<usize>), Status> {
    if names.is_empty() {
        return Err(Status::invalid_argument("names is empty; name at least one file to download"));
    }
    let mut distinct: Vec<String> = Vec::new();
    let mut slots: HashMap<&str, usize> = HashMap::new();
    let mut order = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        checked_name(&format!("names[{i}]"), name)?;
        let slot = *slots.entry(name).or_insert_with(|| {
            distinct.push(name.clone());
            distinct.len() - 1
        });
        order.push(slot);
    }
    if distinct.len() > MAX_DOWNLOAD_FILES {
        return Err(Status::invalid_argument(format!(
            "names holds {} distinct files; one Download sends at most {MAX_DOWNLOAD_FILES}",
            distinct.len()
        )));
    }
    Ok((distinct, order))
}

/// Sends one file of a Download from its start, on the calling (blocking)
/// thread: its [`v1::File`], then its chunks. False when the download
/// should stop (the client went away, or an error was sent).
fn send_file(
    info: &FileInfo,
    reader: &mut FilesReader,
    tx: &mpsc::Sender<Result<v1::DownloadResponse, Status>>,
) -> bool {
    if let Err(e) = reader.seek(SeekFrom::Start(0)) {
        tracing::error!(name = info.name, error = %e, "rewinding a stored file failed");
        let _ = tx.blocking_send(Err(Status::internal(format!("reading {:?} failed: {e}", info.name))));
        return false;
    }
    let start = v1::DownloadResponse { kind: Some(download_response::Kind::File(file(info))) };
    // A closed channel means the client went away.
    if tx.blocking_send(Ok(start)).is_err() {
        return false;
    }
    let chunk = |data| v1::DownloadResponse { kind: Some(download_response::Kind::Chunk(data)) };
    match send_chunks(reader, u64::MAX, tx, chunk) {
        None => false,
        Some(sent) if sent != info.size => {
            // Objects never change once written: a broken invariant.
            tracing::error!(name = info.name, size = info.size, sent, "stored file has the wrong size");
            let _ = tx.blocking_send(Err(Status::data_loss(format!(
                "{:?} holds {sent} bytes, but was stored with {}",
                info.name, info.size
            ))));
            false
        }
        Some(_) => true,
    }
}

/// The token that continues a listing after `name`: its UTF-8 in hex.
fn token_for(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The name a page token continues after.
fn token_name(token: &str) -> Result<String, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "page_token = {} is not a token from a previous ListResponse; leave it empty for the first page",
            shown(token)
        ))
    };
    let digit = |b: &u8| char::from(*b).to_digit(16);
    let bytes = token
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some((digit(high)? << 4 | digit(low)?) as u8),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let name = String::from_utf8(bytes).map_err(|_| bad())?;
    validate_name(&name).map_err(|_| bad())?;
    Ok(name)
}

/// The page size a request asks for, within the limits.
fn page_size(requested: i32) -> Result<usize, Status> {
    match usize::try_from(requested) {
        Err(_) => Err(Status::invalid_argument(format!(
            "page_size = {requested} is negative; give 0 for the default of {DEFAULT_PAGE_SIZE}, or up to {MAX_PAGE_SIZE}"
        ))),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

impl FilesService {
    /// The file a store `call` answers for the file `name` (the request's
    /// `name` field, checked first).
    async fn named(
        &self,
        name: String,
        call: fn(&Files, &str) -> Result<FileInfo, FileError>,
    ) -> Result<v1::File, Status> {
        checked_name("name", &name)?;
        let store = self.store.clone();
        Ok(file(&blocking(move || call(&store, &name)).await?))
    }

    /// Upload, its messages from `source`.
    pub(super) async fn upload(
        &self,
        mut source: impl Source<v1::UploadRequest>,
        audit: Audit,
    ) -> Result<v1::UploadResponse, Status> {
        let empty =
            "empty stream: Upload needs a header message first, then chunks, then optionally a trailer";
        let header = match first(&mut source, empty).await?.kind {
            Some(upload_request::Kind::Header(header)) => header,
            kind => {
                return Err(Status::invalid_argument(format!(
                    "message 1 is {}; the first message must be a header naming the file",
                    kind_name(&kind)
                )));
            }
        };
        checked_name("header.name", &header.name)?;
        audit.object(&header.name);
        let header_sha256 = digest("header.sha256", &header.sha256)?;
        let rest = UploadRest { header_sha256, trailer_seen: false };
        let new = NewFile { name: header.name, expected: header_sha256, keep_existing: header.keep_existing };
        let info = store_stream((&self.store, &self.inflight), new, (source, 1), rest).await?;
        Ok(v1::UploadResponse { file: Some(file(&info)) })
    }
}

/// Upload is served off the wire; Download is answered here, its chunks
/// sent off the wire.
#[tonic::async_trait]
impl files_service_server::FilesService for FilesService {
    async fn upload(&self, _: Request<Streaming<v1::UploadRequest>>) -> Reply<v1::UploadResponse> {
        Err(shadowed(UPLOAD))
    }

    type DownloadStream = ReceiverStream<Result<v1::DownloadResponse, Status>>;

    async fn download(&self, request: Request<v1::DownloadRequest>) -> Reply<Self::DownloadStream> {
        let (distinct, order) = distinct_names(&request.into_inner().names)?;
        let store = self.store.clone();
        let mut opened = blocking(move || {
            distinct.iter().map(|name| store.open(name)).collect::<Result<Vec<_>, FileError>>()
        })
        .await?;
        Ok(Response::new(download(move |tx| {
            for slot in order {
                let (info, reader) = &mut opened[slot];
                if !send_file(info, reader, tx) {
                    return;
                }
            }
        })))
    }

    async fn list(&self, request: Request<v1::ListRequest>) -> Reply<v1::ListResponse> {
        let v1::ListRequest { prefix, page_size: requested, page_token } = request.into_inner();
        let size = page_size(requested)?;
        let after = if page_token.is_empty() { None } else { Some(token_name(&page_token)?) };
        let store = self.store.clone();
        // One more than the page tells whether another page follows.
        let mut files = blocking(move || store.list_page(&prefix, after.as_deref(), size + 1)).await?;
        let more = files.len() > size;
        files.truncate(size);
        let next_page_token = match files.last() {
            Some(last) if more => token_for(&last.name),
            _ => String::new(),
        };
        Ok(Response::new(v1::ListResponse { files: files.iter().map(file).collect(), next_page_token }))
    }

    async fn stat(&self, request: Request<v1::StatRequest>) -> Reply<v1::StatResponse> {
        let file = self.named(request.into_inner().name, |store, name| store.stat(name)).await?;
        Ok(Response::new(v1::StatResponse { file: Some(file) }))
    }

    async fn delete(&self, request: Request<v1::DeleteRequest>) -> Reply<v1::DeleteResponse> {
        let audit = Audit::of(request.extensions());
        let name = request.into_inner().name;
        audit.object(&name);
        let file = self.named(name, |store, name| store.delete(name)).await?;
        Ok(Response::new(v1::DeleteResponse { file: Some(file) }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use tonic::Code;

    use super::*;

    fn info(name: &str) -> FileInfo {
        FileInfo {
            name: name.into(),
            size: 3,
            sha256: Sha256Digest([0xab; 32]),
            created: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            modified: UNIX_EPOCH + Duration::new(1_700_000_001, 6),
        }
    }

    #[test]
    fn a_file_shows_its_digest_in_hex_and_its_times_as_timestamps() {
        let f = file(&info("a.txt"));
        assert_eq!((f.name.as_str(), f.size), ("a.txt", 3));
        assert_eq!(f.sha256, "ab".repeat(32));
        assert_eq!(f.create_time, Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 5 }));
        assert_eq!(f.update_time, Some(prost_types::Timestamp { seconds: 1_700_000_001, nanos: 6 }));
        let back: SystemTime = f.update_time.unwrap().try_into().unwrap();
        assert_eq!(back, info("x").modified);
    }

    #[test]
    fn page_tokens_round_trip_every_valid_name() {
        for name in ["a", "report.pdf", "日本 .txt", &"é".repeat(127)] {
            assert_eq!(token_name(&token_for(name)).unwrap(), name);
        }
        assert_eq!(token_for("ab"), "6162");
    }

    #[test]
    fn malformed_page_tokens_are_refused_naming_the_field() {
        for token in ["6", "zz", "+6", "6162é", "2f", "00", "c3", "é1"] {
            let e = token_name(token).unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{token}");
            assert!(e.message().starts_with("page_token = "), "{}", e.message());
        }
    }

    #[test]
    fn page_sizes_take_the_default_and_the_cap() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(10_000).unwrap(), 10_000);
        assert_eq!(page_size(i32::MAX).unwrap(), MAX_PAGE_SIZE);
        let e = page_size(-1).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("page_size = -1"), "{}", e.message());
    }

    #[test]
    fn bad_digests_are_refused_naming_the_field_and_the_value() {
        assert_eq!(digest("header.sha256", "").unwrap(), None);
        let hex = "0f".repeat(32);
        assert_eq!(digest("header.sha256", &hex).unwrap(), Some(Sha256Digest([0x0f; 32])));
        let e = digest("header.sha256", "xyz").unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with("header.sha256 = \"xyz\": "), "{}", e.message());
        let long = "g".repeat(10_000);
        let e = digest("header.sha256", &long).unwrap_err();
        assert!(e.message().len() < 300, "a refusal quotes only the start: {}", e.message());
    }
}
