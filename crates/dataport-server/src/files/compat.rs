//! The seed `FileSrv` service (UploadFile: a header, then chunks;
//! DownloadFile) and `FileTransfer.FileService` (Upload), over the local
//! file store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dataport_core::files::stored_name;
use dataport_proto::file_srv::{self, upload_request};
use dataport_proto::file_transfer;
use dataport_store::files::{FileInfo, FileStore, LocalFileStore};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::blocking;
use super::stream::{DOWNLOAD_QUEUE, Decoded, Source, send_chunks, store_stream};
use crate::ended::BodyEnd;
use dataport_wire::Lean;

/// The service; each upload tells a finished stream from a reset one by its
/// [`BodyEnd`].
/// [`FileSrvCompat`] serves; file data is moved [`Lean`].
pub fn compat(
    store: LocalFileStore,
) -> Lean<file_srv::file_srv_server::FileSrvServer<FileSrvCompat>, FileSrvCompat> {
    let service = FileSrvCompat { store };
    Lean::new(file_srv::file_srv_server::FileSrvServer::new(service.clone()), service)
}

#[derive(Clone, Debug)]
pub struct FileSrvCompat {
    store: LocalFileStore,
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

impl FileSrvCompat {
    /// UploadFile, its messages from `source`.
    pub(super) async fn upload(
        &self,
        mut source: impl Source<file_srv::UploadRequest>,
    ) -> Result<file_srv::StringResponse, Status> {
        let name = match source.message().await? {
            None => {
                return Err(Status::invalid_argument(
                    "empty stream: UploadFile needs a header message first, then chunk_data messages",
                ));
            }
            Some(file_srv::UploadRequest { request: Some(upload_request::Request::Header(header)) }) => {
                header_name(&header)?
            }
            Some(file_srv::UploadRequest { request: Some(upload_request::Request::ChunkData(_)) }) => {
                return Err(Status::invalid_argument(
                    "message 1 is chunk_data; the first message must be a header naming the file",
                ));
            }
            Some(file_srv::UploadRequest { request: None }) => {
                return Err(Status::invalid_argument(
                    "message 1 has neither header nor chunk_data; the first message must be a header",
                ));
            }
        };

        let info = store_stream(&self.store, (name, None), (source, 1), |message, index| match message {
            file_srv::UploadRequest { request: Some(upload_request::Request::ChunkData(data)) } => Ok(data),
            file_srv::UploadRequest { request: Some(upload_request::Request::Header(_)) } => {
                Err(Status::invalid_argument(format!(
                    "message {index} is a second header; an upload has one header, then chunk_data"
                )))
            }
            file_srv::UploadRequest { request: None } => {
                Err(Status::invalid_argument(format!("message {index} has neither header nor chunk_data")))
            }
        })
        .await?;
        Ok(file_srv::StringResponse { code: 0, message: stored_message(&info) })
    }
}

/// Reached only if [`Lean`] is bypassed: the same calls from tonic's
/// decoded messages.
#[tonic::async_trait]
impl file_srv::file_srv_server::FileSrv for FileSrvCompat {
    async fn upload_file(
        &self,
        request: Request<Streaming<file_srv::UploadRequest>>,
    ) -> Result<Response<file_srv::StringResponse>, Status> {
        let end = request.extensions().get::<BodyEnd>().cloned();
        self.upload(Decoded { stream: request.into_inner(), end }).await.map(Response::new)
    }

    type DownloadFileStream = ReceiverStream<Result<file_srv::FileResponse, Status>>;

    async fn download_file(
        &self,
        request: Request<file_srv::FileHeader>,
    ) -> Result<Response<Self::DownloadFileStream>, Status> {
        let name = header_name(request.get_ref())?;
        let store = self.store.clone();
        let (_, mut reader) = blocking(move || store.open(&name)).await?;
        let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
        tokio::task::spawn_blocking(move || {
            send_chunks(&mut reader, u64::MAX, &tx, |chunk_data| file_srv::FileResponse { chunk_data });
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The seed `FileTransfer.FileService`: Upload stores a stream of chunks
/// under a name the server makes up, and answers it.
#[derive(Clone, Debug)]
pub struct FileTransferCompat {
    store: LocalFileStore,
}

/// Uploads are read [`Lean`].
pub fn file_transfer(
    store: LocalFileStore,
) -> Lean<file_transfer::file_service_server::FileServiceServer<FileTransferCompat>, FileTransferCompat> {
    let service = FileTransferCompat { store };
    Lean::new(file_transfer::file_service_server::FileServiceServer::new(service.clone()), service)
}

/// A name no other upload of this server has: the time in nanoseconds since
/// 1970 and a per-process counter, so also unique across restarts.
fn generated_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("upload-{nanos}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl FileTransferCompat {
    /// Upload, its messages from `source`.
    pub(super) async fn upload(
        &self,
        source: impl Source<file_transfer::Chunk>,
    ) -> Result<file_transfer::Response, Status> {
        let info =
            store_stream(&self.store, (generated_name(), None), (source, 0), |chunk, _| Ok(chunk.data))
                .await?;
        Ok(file_transfer::Response { message: stored_message(&info) })
    }
}

/// Reached only if [`Lean`] is bypassed.
#[tonic::async_trait]
impl file_transfer::file_service_server::FileService for FileTransferCompat {
    async fn upload(
        &self,
        request: Request<Streaming<file_transfer::Chunk>>,
    ) -> Result<Response<file_transfer::Response>, Status> {
        let end = request.extensions().get::<BodyEnd>().cloned();
        FileTransferCompat::upload(self, Decoded { stream: request.into_inner(), end })
            .await
            .map(Response::new)
    }
}
