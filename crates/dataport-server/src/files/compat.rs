//! The seed `FileSrv` (UploadFile: a header, then chunks; DownloadFile) and
//! `FileTransfer.FileService` (Upload), over the local file store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dataport_core::files::stored_name;
use dataport_proto::file_srv::upload_request::Request as Kind;
use dataport_proto::file_srv::{self, StringResponse, UploadRequest, file_srv_server};
use dataport_proto::file_transfer::{self, Chunk, file_service_server};
use dataport_store::files::{FileInfo, FileStore, Files};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use dataport_proto::methods;
use dataport_wire::route::shadowed;
use dataport_wire::{Lean, OffTheWire, Served};

use super::stream::{NewFile, Piece, Source, download, first, send_chunks, store_stream};
use super::{blocking, lean, wire};
use crate::Reply;
use crate::inflight::Inflight;
use crate::logging::Audit;

/// `FileSrv`.
#[derive(Clone, Debug)]
pub struct FileSrv {
    store: Files,
    inflight: Inflight,
    max_message: usize,
}

/// `FileSrv`, its file data moved [`Lean`], reading request messages of
/// at most `max_message` bytes.
pub fn file_srv(
    store: Files,
    inflight: Inflight,
    max_message: usize,
) -> Lean<file_srv_server::FileSrvServer<FileSrv>, FileSrv> {
    let generated = |s| file_srv_server::FileSrvServer::new(s).max_decoding_message_size(max_message);
    lean(FileSrv { store, inflight, max_message }, generated)
}

const UPLOAD_FILE: &str = methods::file_srv::UPLOAD_FILE;
const DOWNLOAD_FILE: &str = methods::file_srv::DOWNLOAD_FILE;

impl OffTheWire for FileSrv {
    const PATHS: &'static [&'static str] = &[DOWNLOAD_FILE, UPLOAD_FILE];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        if request.uri().path() == UPLOAD_FILE {
            let audit = Audit::of(request.extensions());
            return wire::upload(request, self.max_message, move |source| async move {
                this.upload(source, audit).await
            });
        }
        wire::download(request, self.max_message, move |request| async move {
            file_srv_server::FileSrv::download_file(&this, request).await
        })
    }
}

/// What an upload answers once it is durable.
pub(super) fn stored_message(info: &FileInfo) -> String {
    format!("stored {:?}: {} bytes, sha256 {}", info.name, info.size, info.sha256)
}

/// The stored name a header asks for.
fn header_name(header: &file_srv::FileHeader) -> Result<String, Status> {
    stored_name(&header.filename, &header.extension)
        .map_err(|e| Status::invalid_argument(format!("header: {e} (filename + extension)")))
}

impl FileSrv {
    /// UploadFile, its messages from `source`.
    pub(super) async fn upload(
        &self,
        mut source: impl Source<UploadRequest>,
        audit: Audit,
    ) -> Result<StringResponse, Status> {
        let empty = "empty stream: UploadFile needs a header message first, then chunk_data messages";
        let name = match first(&mut source, empty).await?.request {
            Some(Kind::Header(header)) => header_name(&header)?,
            Some(Kind::ChunkData(_)) => {
                return Err(Status::invalid_argument(
                    "message 1 is chunk_data; the first message must be a header naming the file",
                ));
            }
            None => {
                return Err(Status::invalid_argument(
                    "message 1 has neither header nor chunk_data; the first message must be a header",
                ));
            }
        };
        let chunk = |message: UploadRequest, index| match message.request {
            Some(Kind::ChunkData(data)) => Ok(Piece::from(data)),
            Some(Kind::Header(_)) => Err(Status::invalid_argument(format!(
                "message {index} is a second header; an upload has one header, then chunk_data"
            ))),
            None => {
                Err(Status::invalid_argument(format!("message {index} has neither header nor chunk_data")))
            }
        };
        audit.object(&name);
        let info =
            store_stream((&self.store, &self.inflight), NewFile::named(name), (source, 1), chunk).await?;
        Ok(StringResponse { code: 0, message: stored_message(&info) })
    }
}

/// UploadFile is served off the wire; DownloadFile is answered here, its
/// chunks sent off the wire.
#[tonic::async_trait]
impl file_srv_server::FileSrv for FileSrv {
    async fn upload_file(&self, _: Request<Streaming<UploadRequest>>) -> Reply<StringResponse> {
        Err(shadowed(UPLOAD_FILE))
    }

    type DownloadFileStream = ReceiverStream<Result<file_srv::FileResponse, Status>>;

    async fn download_file(&self, request: Request<file_srv::FileHeader>) -> Reply<Self::DownloadFileStream> {
        let name = header_name(request.get_ref())?;
        let store = self.store.clone();
        let (_, mut reader) = blocking(move || store.open(&name)).await?;
        Ok(Response::new(download(move |tx| {
            send_chunks(&mut reader, u64::MAX, tx, |chunk_data| file_srv::FileResponse { chunk_data });
        })))
    }
}

/// `FileTransfer.FileService` (named after its package: `FileService`
/// alone reads as dataport.files.v1's `FilesService`): Upload stores a
/// stream of chunks under a name the server makes up, and answers it.
#[derive(Clone, Debug)]
pub struct FileTransfer {
    store: Files,
    inflight: Inflight,
    max_message: usize,
}

/// `FileTransfer.FileService`, its uploads read [`Lean`], messages of at
/// most `max_message` bytes.
pub fn file_transfer(
    store: Files,
    inflight: Inflight,
    max_message: usize,
) -> Lean<file_service_server::FileServiceServer<FileTransfer>, FileTransfer> {
    let generated = |s| file_service_server::FileServiceServer::new(s).max_decoding_message_size(max_message);
    lean(FileTransfer { store, inflight, max_message }, generated)
}

const UPLOAD: &str = methods::file_transfer::file_service::UPLOAD;

impl OffTheWire for FileTransfer {
    const PATHS: &'static [&'static str] = &[UPLOAD];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        let audit = Audit::of(request.extensions());
        wire::upload(request, self.max_message, move |source| async move { this.upload(source, audit).await })
    }
}

/// A name no other upload of this server has: the time in nanoseconds since
/// 1970 and a per-process counter, so also unique across restarts.
fn generated_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("upload-{nanos}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl FileTransfer {
    /// Upload, its messages from `source`.
    pub(super) async fn upload(
        &self,
        source: impl Source<Chunk>,
        audit: Audit,
    ) -> Result<file_transfer::Response, Status> {
        let chunk = |chunk: Chunk, _| Ok(Piece::from(chunk.data));
        let name = generated_name();
        audit.object(&name);
        let info =
            store_stream((&self.store, &self.inflight), NewFile::named(name), (source, 0), chunk).await?;
        Ok(file_transfer::Response { message: stored_message(&info) })
    }
}

/// Upload is served off the wire.
#[tonic::async_trait]
impl file_service_server::FileService for FileTransfer {
    async fn upload(&self, _: Request<Streaming<Chunk>>) -> Reply<file_transfer::Response> {
        Err(shadowed(UPLOAD))
    }
}
