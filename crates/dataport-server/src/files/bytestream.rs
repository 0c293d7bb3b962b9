//! `google.bytestream.ByteStream` over the file store: resumable uploads
//! addressed by `uploads/{upload_id}/files/{name}` and offset reads of
//! `files/{name}`.

use dataport_proto::google::bytestream::{self, byte_stream_server};
use dataport_store::files::LocalFileStore;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ended::WatchEnd;

/// The service; each Write can tell a finished stream from a reset one.
pub fn bytestream(store: LocalFileStore) -> WatchEnd<byte_stream_server::ByteStreamServer<ByteStreamFiles>> {
    WatchEnd(byte_stream_server::ByteStreamServer::new(ByteStreamFiles { store }))
}

#[derive(Clone, Debug)]
pub struct ByteStreamFiles {
    store: LocalFileStore,
}

#[tonic::async_trait]
impl byte_stream_server::ByteStream for ByteStreamFiles {
    type ReadStream = ReceiverStream<Result<bytestream::ReadResponse, Status>>;

    async fn read(
        &self,
        _request: Request<bytestream::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let _ = &self.store;
        Err(Status::unimplemented("ByteStream.Read is not served yet"))
    }

    async fn write(
        &self,
        _request: Request<Streaming<bytestream::WriteRequest>>,
    ) -> Result<Response<bytestream::WriteResponse>, Status> {
        Err(Status::unimplemented("ByteStream.Write is not served yet"))
    }

    async fn query_write_status(
        &self,
        _request: Request<bytestream::QueryWriteStatusRequest>,
    ) -> Result<Response<bytestream::QueryWriteStatusResponse>, Status> {
        Err(Status::unimplemented("ByteStream.QueryWriteStatus is not served yet"))
    }
}
