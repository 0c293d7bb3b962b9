//! `dataport.files.v1.FilesService` over the file store.

use dataport_proto::dataport::files::v1::{self, files_service_server};
use dataport_store::files::LocalFileStore;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ended::WatchEnd;

/// The service; each Upload can tell a finished stream from a reset one.
pub fn v1(store: LocalFileStore) -> WatchEnd<files_service_server::FilesServiceServer<FilesV1>> {
    WatchEnd(files_service_server::FilesServiceServer::new(FilesV1 { store }))
}

#[derive(Clone, Debug)]
pub struct FilesV1 {
    store: LocalFileStore,
}

#[tonic::async_trait]
impl files_service_server::FilesService for FilesV1 {
    async fn upload(
        &self,
        _request: Request<Streaming<v1::UploadRequest>>,
    ) -> Result<Response<v1::UploadResponse>, Status> {
        let _ = &self.store;
        Err(Status::unimplemented("Upload is not served yet"))
    }

    type DownloadStream = ReceiverStream<Result<v1::DownloadResponse, Status>>;

    async fn download(
        &self,
        _request: Request<v1::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        Err(Status::unimplemented("Download is not served yet"))
    }

    async fn list(&self, _request: Request<v1::ListRequest>) -> Result<Response<v1::ListResponse>, Status> {
        Err(Status::unimplemented("List is not served yet"))
    }

    async fn stat(&self, _request: Request<v1::StatRequest>) -> Result<Response<v1::StatResponse>, Status> {
        Err(Status::unimplemented("Stat is not served yet"))
    }

    async fn delete(
        &self,
        _request: Request<v1::DeleteRequest>,
    ) -> Result<Response<v1::DeleteResponse>, Status> {
        Err(Status::unimplemented("Delete is not served yet"))
    }
}
