//! Bodies of calls framed by hand: [`MessageBody`] sends a stream of
//! messages (a server's response, with trailers; a client's request,
//! without), [`Received`] reads one (a server's request, a client's
//! response).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use http::HeaderValue;
use http_body::{Body, Frame};
use prost::Message;
use prost::bytes::Bytes;
use tonic::Status;

use crate::framing::{Event, Framing, LoneBytes, framed, frames};

/// A message's data frames: its first (the whole message, or the prefix of
/// a lone bytes field) and, for a lone field, its bytes.
pub type Frames = (Bytes, Option<Bytes>);

/// A body that sends each message of `stream` as its [`Frames`], then, for
/// a response, trailers with the status: OK at the stream's end, or the
/// error the stream yields.
#[derive(Debug)]
pub struct MessageBody<S> {
    stream: S,
    /// The bytes of the field whose prefix was just sent.
    pending: Option<Bytes>,
    /// Whether the body ends with trailers (a response) or not (a request).
    trailers: bool,
    done: bool,
}

impl<S: Stream<Item = Result<Frames, Status>> + Unpin> Body for MessageBody<S> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(data) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let status = match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
            Some(Ok((first, rest))) => {
                self.pending = rest;
                return Poll::Ready(Some(Ok(Frame::data(first))));
            }
            Some(Err(status)) => status,
            None => Status::ok(""),
        };
        self.done = true;
        if !self.trailers {
            return Poll::Ready((status.code() != tonic::Code::Ok).then_some(Err(status)));
        }
        let mut trailers = http::HeaderMap::new();
        if status.code() == tonic::Code::Ok {
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
        } else {
            status.add_header(&mut trailers)?;
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_none()
    }
}

/// A gRPC response with `body`: status 200 and the gRPC content type.
pub fn grpc_response(body: tonic::body::Body) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// A gRPC response of one message, then trailers with grpc-status 0.
pub fn unary_response(reply: &impl Message) -> http::Response<tonic::body::Body> {
    let once = futures_util::stream::iter([Ok((framed(reply), None))]);
    grpc_response(tonic::body::Body::new(MessageBody {
        stream: once,
        pending: None,
        trailers: true,
        done: false,
    }))
}

/// A gRPC response of the messages `stream` yields, each lone bytes field
/// sent uncopied, ended by the status.
pub fn response_stream<M, S>(stream: S) -> http::Response<tonic::body::Body>
where
    M: LoneBytes + Send + 'static,
    S: Stream<Item = Result<M, Status>> + Send + Unpin + 'static,
{
    use futures_util::StreamExt;
    let stream = stream.map(|m| m.map(frames));
    grpc_response(tonic::body::Body::new(MessageBody { stream, pending: None, trailers: true, done: false }))
}

/// A request body of one message.
pub fn one_message(request: &impl Message) -> tonic::body::Body {
    let once = futures_util::stream::iter([Ok((framed(request), None))]);
    tonic::body::Body::new(MessageBody { stream: once, pending: None, trailers: false, done: false })
}

/// A request body of the messages `stream` yields, each lone bytes field
/// sent uncopied.
pub fn messages<M: LoneBytes + Send + 'static>(
    stream: impl Stream<Item = M> + Send + Unpin + 'static,
) -> tonic::body::Body {
    use futures_util::StreamExt;
    let stream = stream.map(|m| Ok(frames(m)));
    tonic::body::Body::new(MessageBody { stream, pending: None, trailers: false, done: false })
}

/// Which end of a call a [`Received`] body comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A request read by a server: it ends with the stream, no trailers.
    Request,
    /// A response read by a client: it ends with trailers holding the
    /// status, or with the headers already holding it (`ended_ok`).
    Response { ended_ok: bool },
}

/// The messages of a body, read as [`Event`]s.
#[derive(Debug)]
pub struct Received<M> {
    body: tonic::body::Body,
    framing: Framing<M>,
    side: Side,
    ended: bool,
}

impl<M: Message + Default> Received<M> {
    /// Reads `body` from `side`, messages of at most `max_message` bytes,
    /// the bytes field `field` (if any) in pieces.
    pub fn new(body: tonic::body::Body, side: Side, field: Option<u8>, max_message: usize) -> Self {
        Received { body, framing: Framing::new(field, max_message), side, ended: false }
    }

    /// The next event; `None` at a clean end. A request that ends inside a
    /// message is INVALID_ARGUMENT; a response that ends with an error is
    /// that error. A body that fails is its error (tonic's body reports a
    /// reset as a status).
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
                None => {
                    self.ended = true;
                    self.check_end(matches!(self.side, Side::Response { ended_ok: false }))?;
                }
                Some(Err(status)) => return Err(status),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.framing.feed(data)?,
                    Err(frame) => {
                        self.ended = true;
                        let status = frame.into_trailers().ok().and_then(|t| Status::from_header_map(&t));
                        match status {
                            Some(s) if s.code() == tonic::Code::Ok => self.check_end(false)?,
                            Some(s) => return Err(s),
                            None => self.check_end(true)?,
                        }
                    }
                },
            }
        }
    }

    /// The stream ended here: fine between messages, unless `no_status`
    /// (a response must end with one).
    fn check_end(&self, no_status: bool) -> Result<(), Status> {
        if no_status {
            return Err(Status::internal("the server ended the call without a status"));
        }
        if self.framing.between_messages() {
            return Ok(());
        }
        Err(match self.side {
            Side::Request => Status::invalid_argument("the request stream ended inside a message"),
            Side::Response { .. } => Status::internal("the server's last message was cut short"),
        })
    }

    /// The one message of a call that carries exactly one: none, or a
    /// second, is INVALID_ARGUMENT from a client, INTERNAL from a server.
    pub async fn single(mut self) -> Result<M, Status> {
        let side = self.side;
        let wrong = |what: &str| match side {
            Side::Request => {
                Status::invalid_argument(format!("{what}; the method takes one request message"))
            }
            Side::Response { .. } => Status::internal(format!("{what}; the method has one answer")),
        };
        let first = match self.next().await? {
            Some(Event::Message(message)) => message,
            Some(_) => return Err(wrong("a message read in pieces")),
            None => return Err(wrong("no message")),
        };
        match self.next().await? {
            None => Ok(first),
            Some(_) => Err(wrong("more than one message")),
        }
    }
}

#[cfg(test)]
mod tests {
    use dataport_proto::dataport::files::v1::{self, download_response};
    use dataport_proto::{file_srv, google::bytestream};
    use http_body_util::BodyExt;

    use super::*;

    /// The bytes and trailers a response sends.
    async fn sent(response: http::Response<tonic::body::Body>) -> (Vec<u8>, Option<http::HeaderMap>) {
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes().to_vec(), trailers)
    }

    fn framed_all<M: Message>(messages: &[M]) -> Vec<u8> {
        messages.iter().flat_map(|m| framed(m).to_vec()).collect()
    }

    fn stream<M: Send + 'static>(
        items: Vec<Result<M, Status>>,
    ) -> impl Stream<Item = Result<M, Status>> + Send + Unpin + 'static {
        futures_util::stream::iter(items)
    }

    #[tokio::test]
    async fn messages_are_sent_as_tonic_encodes_them() {
        let chunk =
            |b: Vec<u8>| v1::DownloadResponse { kind: Some(download_response::Kind::Chunk(b.into())) };
        let file = v1::DownloadResponse {
            kind: Some(download_response::Kind::File(v1::File {
                name: "a".into(),
                size: 300,
                ..Default::default()
            })),
        };
        let messages = vec![file, chunk(vec![9; 300]), chunk(Vec::new()), chunk((0..=255).collect())];
        let (data, trailers) =
            sent(response_stream(stream(messages.iter().cloned().map(Ok).collect()))).await;
        assert_eq!(data, framed_all(&messages));
        assert_eq!(trailers.unwrap().get("grpc-status").unwrap(), "0");

        let plain = |b: Vec<u8>| file_srv::FileResponse { chunk_data: b.into() };
        let messages = vec![plain(vec![1; 200]), plain(Vec::new()), plain(vec![2; 20_000])];
        let (data, _) = sent(response_stream(stream(messages.iter().cloned().map(Ok).collect()))).await;
        assert_eq!(data, framed_all(&messages));

        let read = |b: Vec<u8>| bytestream::ReadResponse { data: b.into() };
        let messages = vec![read(vec![3; 5]), read(Vec::new())];
        let (data, _) = sent(response_stream(stream(messages.iter().cloned().map(Ok).collect()))).await;
        assert_eq!(data, framed_all(&messages));

        let (data, trailers) = sent(unary_response(&messages[0])).await;
        assert_eq!(data, framed_all(&messages[..1]));
        assert_eq!(trailers.unwrap().get("grpc-status").unwrap(), "0");
    }

    #[tokio::test]
    async fn an_error_in_the_stream_ends_it_with_that_status() {
        let first = file_srv::FileResponse { chunk_data: vec![1; 10].into() };
        let (data, trailers) =
            sent(response_stream(stream(vec![Ok(first.clone()), Err(Status::internal("disk"))]))).await;
        assert_eq!(data, framed_all(&[first]));
        let status = Status::from_header_map(&trailers.unwrap()).unwrap();
        assert_eq!((status.code(), status.message()), (tonic::Code::Internal, "disk"));
    }

    fn request(bytes: Vec<u8>) -> Received<file_srv::FileHeader> {
        let body = tonic::body::Body::new(http_body_util::Full::new(Bytes::from(bytes)));
        Received::new(body, Side::Request, None, 1 << 20)
    }

    #[tokio::test]
    async fn requests_are_read_whole_and_bad_framing_is_refused() {
        let header = file_srv::FileHeader { filename: "a".into(), extension: ".b".into() };
        let good = framed(&header).to_vec();
        assert_eq!(request(good.clone()).single().await.unwrap(), header);
        let e = request(Vec::new()).single().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("no message"), "{e:?}");
        let mut compressed = good.clone();
        compressed[0] = 1;
        let e = request(compressed).single().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal);
        let e = request(good[..good.len() - 1].to_vec()).single().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("ended inside a message"), "{e:?}");
        let e = request([good.clone(), good].concat()).single().await.unwrap_err();
        assert!(e.message().contains("more than one message"), "{e:?}");
    }

    #[tokio::test]
    async fn a_request_body_sends_no_trailers_and_a_client_reads_what_a_server_sent() {
        let header = file_srv::FileHeader { filename: "x".into(), extension: ".y".into() };
        let collected = one_message(&header).collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes().to_vec(), framed(&header).to_vec());

        let messages = [
            file_srv::FileResponse { chunk_data: vec![5; 70_000].into() },
            file_srv::FileResponse { chunk_data: vec![6; 3].into() },
        ];
        let response = response_stream(stream(messages.iter().cloned().map(Ok).collect()));
        let mut received = Received::<file_srv::FileResponse>::new(
            response.into_body(),
            Side::Response { ended_ok: false },
            Some(1),
            1 << 20,
        );
        let mut bytes = Vec::new();
        while let Some(event) = received.next().await.unwrap() {
            if let Event::Bytes(b) = event {
                bytes.extend_from_slice(&b);
            }
        }
        assert_eq!(bytes, [vec![5; 70_000], vec![6; 3]].concat());

        let failed = response_stream(stream::<file_srv::FileResponse>(vec![Err(Status::not_found("gone"))]));
        let mut received = Received::<file_srv::FileResponse>::new(
            failed.into_body(),
            Side::Response { ended_ok: false },
            Some(1),
            1 << 20,
        );
        assert_eq!(received.next().await.unwrap_err().code(), tonic::Code::NotFound);
    }
}
