//! Doors for the fuzz targets in `fuzz/` to rules that live inside this
//! crate. Not an API: hidden from the docs, and free to change with the code
//! it reaches.
//!
//! The ByteStream resource names (`uploads/{upload_id}/files/{name}` with an
//! optional `/sha256/{hex}`, and `files/{name}`) are parsed by the service's
//! private functions, so a target reaches them as a client does: a call
//! through the service as served (its router and generated server, over a
//! store in a scratch directory), whose final status comes back. Only the
//! public entry points are used, so nothing private had to be opened up.

#![doc(hidden)]

use std::path::Path;

use dataport_proto::google::bytestream::{self, byte_stream_server::ByteStreamServer};
use dataport_proto::methods::google::bytestream::byte_stream::{QUERY_WRITE_STATUS, READ};
use dataport_store::files::{Files, LocalFileStore};
use dataport_wire::Lean;
use http_body_util::BodyExt;
use prost::Message;
use prost::bytes::Bytes;
use tonic::Status;
use tower::{Service, ServiceExt};

use crate::files::bytestream::{ByteStream, byte_stream};
use crate::inflight::Inflight;

/// The largest request message and the in-flight room of the probe's service.
const LIMIT: usize = 1 << 20;

/// `google.bytestream.ByteStream` over a store, and a runtime to call it on.
#[doc(hidden)]
#[derive(Debug)]
pub struct ByteStreamProbe {
    runtime: tokio::runtime::Runtime,
    service: Lean<ByteStreamServer<ByteStream>, ByteStream>,
}

impl ByteStreamProbe {
    /// The service over the file store in `data_dir` (created if missing).
    pub fn new(data_dir: &Path) -> Result<ByteStreamProbe, String> {
        let store = LocalFileStore::open(data_dir).map_err(|e| e.to_string())?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        Ok(ByteStreamProbe {
            runtime,
            service: byte_stream(Files::Local(store), Inflight::new(LIMIT), LIMIT),
        })
    }

    /// The status a QueryWriteStatus of `resource_name` ends with.
    pub fn query_write_status(&mut self, resource_name: &str) -> Status {
        let message = bytestream::QueryWriteStatusRequest { resource_name: resource_name.to_owned() };
        self.call(QUERY_WRITE_STATUS, &message.encode_to_vec())
    }

    /// The status a Read of `resource_name` from offset 0 ends with.
    pub fn read(&mut self, resource_name: &str) -> Status {
        let message = bytestream::ReadRequest {
            resource_name: resource_name.to_owned(),
            read_offset: 0,
            read_limit: 0,
        };
        self.call(READ, &message.encode_to_vec())
    }

    /// Calls `path` with the one request `message`; the status is the
    /// response's (trailers-only) headers' or its trailers'.
    fn call(&mut self, path: &'static str, message: &[u8]) -> Status {
        let mut body = Vec::with_capacity(5 + message.len());
        body.extend_from_slice(&dataport_wire::reader::prefix(false, message.len()));
        body.extend_from_slice(message);
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(body))));
        let request = match request {
            Ok(request) => request,
            Err(e) => return Status::internal(format!("building the request failed: {e}")),
        };
        let service = &mut self.service;
        self.runtime.block_on(async move {
            let response = match ServiceExt::<http::Request<tonic::body::Body>>::ready(service).await {
                Ok(ready) => match ready.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(never) => match never {},
            };
            if let Some(status) = Status::from_header_map(response.headers()) {
                return status;
            }
            match response.into_body().collect().await {
                Ok(collected) => collected
                    .trailers()
                    .and_then(Status::from_header_map)
                    .unwrap_or_else(|| Status::internal("the response ended with no grpc-status")),
                Err(e) => Status::internal(format!("the response body failed: {e}")),
            }
        })
    }
}
