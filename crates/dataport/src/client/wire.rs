//! Calls that move file data, with their messages framed by hand
//! ([`dataport_server::framing`]) rather than by tonic.
//!
//! tonic copies every message it sends into a buffer of its own, and
//! gathers every message it receives into another before decoding it: for
//! 1 MiB chunks, a copy of every byte each way, and a fresh buffer for
//! nearly every message (the one before is still queued). In profiles of
//! 1 GiB transfers that cost the CLI about a tenth of its time. Here an
//! upload's chunks go to the connection as read from the disk, and a
//! download's chunks arrive as [`Event::Bytes`] pieces of the HTTP/2 data
//! frames; every other message is encoded or decoded as tonic would.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use dataport_server::framing::{Framing, LoneBytes, framed, frames};
use futures_util::Stream;
use http::header::{CONTENT_TYPE, HeaderValue, TE};
use http_body::Body as _;
use prost::Message;
use prost::bytes::Bytes;
use tonic::Status;
use tonic::body::Body;
use tonic::client::GrpcService;
use tonic::transport::Channel;

pub use dataport_server::framing::Event;

/// A request body of one message.
pub fn one_message(request: &impl Message) -> Body {
    Body::new(Messages { stream: futures_util::stream::iter([Frame::Whole(framed(request))]), pending: None })
}

/// A request body of the messages `stream` yields, each lone bytes field
/// sent uncopied.
pub fn messages<M: LoneBytes + Send + 'static>(
    stream: impl Stream<Item = M> + Send + Unpin + 'static,
) -> Body {
    use futures_util::StreamExt;
    Body::new(Messages { stream: stream.map(|m| Frame::Lone(frames(m))), pending: None })
}

/// What a request body sends next.
enum Frame {
    Whole(Bytes),
    /// A message's first frame, and the bytes that follow it, if any.
    Lone((Bytes, Option<Bytes>)),
}

/// A request body: the frames of a stream of messages.
struct Messages<S> {
    stream: S,
    pending: Option<Bytes>,
}

impl<S: Stream<Item = Frame> + Unpin> http_body::Body for Messages<S> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        if let Some(data) = self.pending.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        let first = match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Frame::Whole(data)) => data,
            Some(Frame::Lone((first, rest))) => {
                self.pending = rest;
                first
            }
        };
        Poll::Ready(Some(Ok(http_body::Frame::data(first))))
    }
}

/// The response messages of a call of `M`.
pub struct Responses<M> {
    body: Body,
    framing: Framing<M>,
    ended: bool,
    /// The headers ended the call with OK already.
    ended_ok: bool,
}

impl<M: Message + Default> Responses<M> {
    /// Calls `path` (e.g. `/dataport.files.v1.FilesService/Download`) with
    /// the request `body`, reading responses of at most `max_message` bytes
    /// and the bytes field `field` of a response in pieces; fails as tonic
    /// would if the server refuses the call outright.
    pub async fn call(
        channel: &mut Channel,
        path: &'static str,
        body: Body,
        (field, max_message): (Option<u8>, usize),
    ) -> Result<Self, Status> {
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
        Ok(Responses {
            body: response.into_body(),
            framing: Framing::new(field, max_message),
            ended: false,
            ended_ok: status.is_some(),
        })
    }

    /// The one answer of a call with a single response.
    pub async fn single(mut self) -> Result<M, Status> {
        let answer = match self.next().await? {
            Some(Event::Message(message)) => message,
            Some(_) | None => return Err(Status::internal("the server ended the call without an answer")),
        };
        match self.next().await? {
            None => Ok(answer),
            Some(_) => Err(Status::internal("the server answered more than once")),
        }
    }

    /// The next event; `None` once the server ended the call with OK, an
    /// error if it ended it otherwise or the stream broke.
    pub async fn next(&mut self) -> Result<Option<Event<M>>, Status> {
        loop {
            if let Some(event) = self.framing.next_event() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None if self.ended_ok && self.framing.between_messages() => self.ended = true,
                None => {
                    self.ended = true;
                    return Err(Status::internal("the server ended the call without a status"));
                }
                Some(Err(status)) => return Err(status),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.framing.feed(data)?,
                    Err(frame) => {
                        self.ended = true;
                        let status = frame
                            .into_trailers()
                            .ok()
                            .and_then(|trailers| Status::from_header_map(&trailers))
                            .unwrap_or_else(|| {
                                Status::internal("the server ended the call without a status")
                            });
                        if status.code() != tonic::Code::Ok {
                            return Err(status);
                        }
                        if !self.framing.between_messages() {
                            return Err(Status::internal("the server's last message was cut short"));
                        }
                    }
                },
            }
        }
    }
}
