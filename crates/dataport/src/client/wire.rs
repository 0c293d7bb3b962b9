//! Calls that move file data, with their messages framed by hand
//! ([`dataport_wire`]) rather than by tonic.
//!
//! tonic copies every message it sends into a buffer of its own, and
//! gathers every message it receives into another before decoding it: for
//! 1 MiB chunks, a copy of every byte each way, and a fresh buffer for
//! nearly every message (the one before is still queued). In profiles of
//! 1 GiB transfers that cost the CLI about a tenth of its time. Here an
//! upload's chunks go to the connection as read from the disk, and a
//! download's chunks arrive as [`Event::Bytes`] pieces of the HTTP/2 data
//! frames; every other message is encoded or decoded as tonic would.

use crate::client::Channel;
use dataport_wire::body::{Received, Side};
use http::header::{CONTENT_TYPE, HeaderValue, TE};
use prost::Message;
use tonic::Status;
use tonic::body::Body;
use tonic::client::GrpcService;

pub use dataport_wire::Event;
pub use dataport_wire::body::{messages, one_message};

/// The response messages of a call of `M`.
pub type Responses<M> = Received<M>;

/// Calls `path` (a `dataport_proto::methods` constant) with the request
/// `body`, reading responses of at most `max_message` bytes and the bytes
/// field `field` of a response in pieces; fails as tonic would if the
/// server refuses the call outright.
pub async fn call<M: Message + Default>(
    channel: &mut Channel,
    path: &'static str,
    body: Body,
    (field, max_message): (Option<u8>, usize),
) -> Result<Responses<M>, Status> {
    let mut call = http::Request::new(body);
    *call.method_mut() = http::Method::POST;
    *call.uri_mut() = http::Uri::from_static(path);
    call.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    call.headers_mut().insert(TE, HeaderValue::from_static("trailers"));
    std::future::poll_fn(|cx| GrpcService::poll_ready(channel, cx))
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    let response = GrpcService::call(channel, call).await.map_err(|e| Status::from_error(e.into()))?;
    // A refusal comes as headers only, with the status in them (and so
    // may an empty stream's OK).
    let status = Status::from_header_map(response.headers());
    if let Some(status) = &status
        && status.code() != tonic::Code::Ok
    {
        return Err(status.clone());
    }
    if response.status() != http::StatusCode::OK {
        return Err(Status::unknown(format!("the server answered HTTP {}", response.status())));
    }
    let side = Side::Response { ended_ok: status.is_some() };
    Ok(Received::new(Body::new(response.into_body()), side, field, max_message))
}
