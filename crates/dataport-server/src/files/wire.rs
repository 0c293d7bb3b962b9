//! File data served off the wire, without tonic's copies.
//!
//! tonic encodes each response message into a buffer of its own, and
//! gathers each request message into another before decoding it: for a
//! 1 MiB chunk, a copy of every byte, and often a fresh buffer (the one
//! before is still queued). In profiles of 1 GiB transfers that was a
//! tenth to a seventh of the machine's time. [`Lean`](dataport_wire::Lean) serves the
//! methods that carry file data itself, with [`dataport_wire`]'s framing:
//!
//! - a download decodes its request, calls the service's own handler, and
//!   sends each chunk as two HTTP/2 data frames, the few bytes of gRPC
//!   prefix and field key and then the chunk as read from the disk, which
//!   the connection writes to the socket without copying;
//! - an upload hands the service's own upload code a [`Wire`] source, from
//!   which a chunk arrives as pieces of the data frames it came in, copied
//!   once, into the store's blocks.
//!
//! Every check and error stays in the service's code: a download calls the
//! service's own handler (the generated trait's method), an upload the
//! upload code every upload RPC shares; the generated upload methods, which
//! the router shadows, answer INTERNAL. Every other method goes to the
//! generated code. Each service's `OffTheWire` sits beside it and calls
//! [`download`] or [`upload`] here.

use dataport_wire::body::{Received, Side, response_stream, unary_response};
use dataport_wire::{Event, LoneBytes, Served};
use prost::Message;
use prost::bytes::Bytes;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::stream::{Incoming, Source};
use crate::tonic_fixes::BodyEnd;

/// A download: its request read whole, the handler's messages sent with
/// their chunks uncopied.
pub(super) fn download<Req, M, F>(
    request: http::Request<tonic::body::Body>,
    max_message: usize,
    handler: impl FnOnce(tonic::Request<Req>) -> F + Send + 'static,
) -> Served
where
    Req: Message + Default + Send + 'static,
    M: LoneBytes + Send + 'static,
    F: Future<Output = Result<tonic::Response<ReceiverStream<Result<M, Status>>>, Status>> + Send,
{
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let answer = match Received::<Req>::new(body, Side::Request, None, max_message).single().await {
            Ok(message) => {
                handler(tonic::Request::from_http(http::Request::from_parts(parts, message))).await
            }
            Err(status) => Err(status),
        };
        match answer {
            Ok(response) => response_stream(response.into_inner()),
            Err(status) => status.into_http(),
        }
    })
}

/// An upload: the handler reads its messages from the [`Wire`], and its
/// answer is sent as one message.
pub(super) fn upload<T, R, F>(
    request: http::Request<tonic::body::Body>,
    max_message: usize,
    handler: impl FnOnce(Wire<T>) -> F + Send + 'static,
) -> Served
where
    T: LoneBytes + Send + 'static,
    R: Message + 'static,
    F: Future<Output = Result<R, Status>> + Send,
{
    Box::pin(async move {
        let end = request.extensions().get::<BodyEnd>().cloned();
        let source = Wire {
            messages: Received::new(request.into_body(), Side::Request, Some(T::FIELD), max_message),
            end,
        };
        match handler(source).await {
            Ok(reply) => unary_response(&reply),
            Err(status) => status.into_http(),
        }
    })
}

/// An upload's messages read off the wire: a chunk as the pieces of the
/// data frames it arrived in.
pub(super) struct Wire<T> {
    messages: Received<T>,
    /// Tells a stream the client reset from a body refused on the way
    /// (a message that decompresses past the limit, say).
    end: Option<BodyEnd>,
}

impl<T: LoneBytes + Send + 'static> Source<T> for Wire<T> {
    async fn next(&mut self) -> Result<Option<Incoming<T>>, Status> {
        match self.messages.next().await {
            Ok(Some(Event::Message(message))) => Ok(Some(Incoming::Message(message))),
            Ok(Some(Event::BytesStart)) => Ok(Some(Incoming::Message(T::with_bytes(Bytes::new())))),
            Ok(Some(Event::Bytes(bytes))) => Ok(Some(Incoming::More(bytes))),
            Ok(None) => Ok(None),
            // The client reset the stream, or the connection broke.
            Err(status)
                if status.code() == tonic::Code::Cancelled
                    || self.end.as_ref().is_some_and(BodyEnd::failed) =>
            {
                Err(super::stream::reset())
            }
            Err(status) => Err(status),
        }
    }
}
