//! A server-streaming call read straight off the wire, for the file data of
//! `dataport download`.
//!
//! tonic gathers each response message into a buffer of its own before
//! decoding it: for 1 MiB chunks that is a copy of every byte, and a fresh
//! buffer for nearly every message (the one before is still queued for the
//! writer), which in a profile of a 1 GiB download cost the CLI about a
//! tenth of its time. [`ServerStream`] hands on the HTTP/2 data frames
//! themselves instead: a message that is a single `bytes` field of the
//! asked-for number arrives as [`Event::Bytes`] pieces of those frames, not
//! copied; every other message is gathered and decoded as tonic would.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CONTENT_TYPE, HeaderValue, TE};
use http_body::Body as _;
use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use tonic::Status;
use tonic::body::Body;
use tonic::client::GrpcService;
use tonic::transport::Channel;

/// What a [`ServerStream`] reads next.
#[derive(Debug, PartialEq)]
pub enum Event<M> {
    /// A message other than a lone bytes field, decoded.
    Message(M),
    /// A message that is the bytes field alone starts; its bytes follow.
    BytesStart,
    /// The next bytes of that field.
    Bytes(Bytes),
}

/// The response messages of a server-streaming call of `M`, whose field
/// `field` (of type `bytes`) is read in pieces.
pub struct ServerStream<M> {
    body: Body,
    framing: Framing<M>,
    /// Events of the data frame last read, not yet taken.
    ready: VecDeque<Event<M>>,
    ended: bool,
    /// The headers ended the call with OK already.
    ended_ok: bool,
}

impl<M: Message + Default> ServerStream<M> {
    /// Calls `path` (e.g. `/dataport.files.v1.FilesService/Download`) with
    /// `request`; fails as tonic would if the server refuses the call
    /// outright.
    pub async fn call(
        channel: &mut Channel,
        path: &'static str,
        request: &impl Message,
        (field, max_message): (u32, usize),
    ) -> Result<Self, Status> {
        let mut frame = BytesMut::with_capacity(5 + request.encoded_len());
        frame.put_u8(0);
        frame.put_u32(
            u32::try_from(request.encoded_len()).map_err(|_| Status::internal("request too large"))?,
        );
        request.encode_raw(&mut frame);
        let mut call = http::Request::new(Body::new(OneFrame(Some(frame.freeze()))));
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
        Ok(ServerStream {
            body: response.into_body(),
            framing: Framing::new(field, max_message),
            ready: Default::default(),
            ended: false,
            ended_ok: status.is_some(),
        })
    }

    /// The next event; `None` once the server ended the call with OK, an
    /// error if it ended it otherwise or the stream broke.
    pub async fn next(&mut self) -> Result<Option<Event<M>>, Status> {
        loop {
            if let Some(event) = self.ready.pop_front() {
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
                    Ok(data) => self.framing.feed(data, &mut self.ready)?,
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

/// A request body of one data frame.
struct OneFrame(Option<Bytes>);

impl http_body::Body for OneFrame {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// The gRPC framing of a response, fed data frame by data frame.
#[derive(Debug)]
struct Framing<M> {
    state: State,
    /// The field read in pieces, and its key byte.
    key: u8,
    max_message: usize,
    _message: PhantomData<M>,
}

#[derive(Debug)]
enum State {
    /// Gathering a message's 5-byte prefix.
    Prefix(Vec<u8>),
    /// Gathering the first bytes of a message of `len` bytes: enough to
    /// tell a lone bytes field of the chosen number.
    Head { len: usize, head: Vec<u8> },
    /// Inside the lone bytes field: `left` bytes to go.
    Field { left: usize },
    /// Gathering a message to decode.
    Whole { left: usize, buf: BytesMut },
}

/// A key and a length take at most this many bytes (1 + a 10-byte varint).
const HEAD: usize = 11;

impl<M: Message + Default> Framing<M> {
    fn new(field: u32, max_message: usize) -> Self {
        // Field numbers up to 15 have one-byte keys; this reader needs no more.
        assert!((1..16).contains(&field), "field {field}: only 1 to 15 are read in pieces");
        Framing {
            state: State::Prefix(Vec::new()),
            key: (field << 3 | 2) as u8,
            max_message,
            _message: PhantomData,
        }
    }

    fn between_messages(&self) -> bool {
        matches!(&self.state, State::Prefix(have) if have.is_empty())
    }

    fn feed(&mut self, mut data: Bytes, out: &mut VecDeque<Event<M>>) -> Result<(), Status> {
        while data.has_remaining() || matches!(self.state, State::Head { len: 0, .. }) {
            match &mut self.state {
                State::Prefix(have) => {
                    let n = (5 - have.len()).min(data.len());
                    have.extend_from_slice(&data.split_to(n));
                    if have.len() == 5 {
                        if have[0] != 0 {
                            return Err(Status::internal(format!(
                                "the server sent a message with compression flag {}, which was not asked for",
                                have[0]
                            )));
                        }
                        let len = u32::from_be_bytes([have[1], have[2], have[3], have[4]]) as usize;
                        self.state = State::Head { len, head: Vec::with_capacity(HEAD) };
                    }
                }
                State::Head { len, head } => {
                    let want = (*len).min(HEAD);
                    let n = (want - head.len()).min(data.len());
                    head.extend_from_slice(&data.split_to(n));
                    if head.len() == want {
                        let (len, head) = (*len, std::mem::take(head));
                        self.headed(len, head, out)?;
                    }
                }
                State::Field { left } => {
                    let piece = data.split_to((*left).min(data.len()));
                    *left -= piece.len();
                    if *left == 0 {
                        self.state = State::Prefix(Vec::new());
                    }
                    out.push_back(Event::Bytes(piece));
                }
                State::Whole { left, buf } => {
                    let piece = data.split_to((*left).min(data.len()));
                    *left -= piece.len();
                    buf.extend_from_slice(&piece);
                    if *left == 0 {
                        let buf = std::mem::take(buf);
                        self.state = State::Prefix(Vec::new());
                        out.push_back(Event::Message(decode(buf)?));
                    }
                }
            }
        }
        Ok(())
    }

    /// The first bytes of a message of `len` are in: a lone bytes field
    /// of ours goes on in pieces, anything else is gathered.
    fn headed(&mut self, len: usize, head: Vec<u8>, out: &mut VecDeque<Event<M>>) -> Result<(), Status> {
        if let Some((&key, mut rest)) = head.split_first()
            && key == self.key
            && let Ok(field_len) = prost::encoding::decode_varint(&mut rest)
            && usize::try_from(field_len).ok() == Some(len - (head.len() - rest.len()))
        {
            out.push_back(Event::BytesStart);
            if !rest.is_empty() {
                out.push_back(Event::Bytes(Bytes::copy_from_slice(rest)));
            }
            let left = len - head.len();
            self.state = if left == 0 { State::Prefix(Vec::new()) } else { State::Field { left } };
            return Ok(());
        }
        if len > self.max_message {
            return Err(Status::out_of_range(format!(
                "the server sent a message of {len} bytes; the limit is {} bytes",
                self.max_message
            )));
        }
        let left = len - head.len();
        let mut buf = BytesMut::with_capacity(len);
        buf.extend_from_slice(&head);
        if left == 0 {
            self.state = State::Prefix(Vec::new());
            out.push_back(Event::Message(decode(buf)?));
        } else {
            self.state = State::Whole { left, buf };
        }
        Ok(())
    }
}

fn decode<M: Message + Default>(buf: BytesMut) -> Result<M, Status> {
    M::decode(buf.freeze())
        .map_err(|e| Status::internal(format!("the server sent a message this client cannot decode: {e}")))
}

#[cfg(test)]
mod tests {
    use dataport_proto::dataport::files::v1 as pb;
    use pb::download_response::Kind;

    use super::*;

    fn framed(messages: &[pb::DownloadResponse]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            out.push(0);
            out.extend_from_slice(&(m.encoded_len() as u32).to_be_bytes());
            out.extend_from_slice(&m.encode_to_vec());
        }
        out
    }

    /// What the events say, with the pieces of each field joined.
    fn replay(events: Vec<Event<pb::DownloadResponse>>) -> Vec<pb::DownloadResponse> {
        let mut out: Vec<pb::DownloadResponse> = Vec::new();
        for event in events {
            match event {
                Event::Message(m) => out.push(m),
                Event::BytesStart => out.push(pb::DownloadResponse { kind: Some(Kind::Chunk(Bytes::new())) }),
                Event::Bytes(b) => match out.last_mut() {
                    Some(pb::DownloadResponse { kind: Some(Kind::Chunk(chunk)) }) => {
                        *chunk = [chunk.as_ref(), b.as_ref()].concat().into();
                    }
                    _ => panic!("bytes outside a field"),
                },
            }
        }
        out
    }

    #[test]
    fn messages_cut_anywhere_read_as_tonic_decodes_them() {
        let file =
            pb::File { name: "a.bin".into(), size: 300, sha256: "ab".repeat(32), ..Default::default() };
        let messages = vec![
            pb::DownloadResponse { kind: Some(Kind::File(file)) },
            pb::DownloadResponse { kind: Some(Kind::Chunk((0..200u8).collect::<Vec<_>>().into())) },
            pb::DownloadResponse { kind: Some(Kind::Chunk(Bytes::new())) },
            pb::DownloadResponse { kind: Some(Kind::Chunk(vec![7; 100].into())) },
            pb::DownloadResponse { kind: None },
        ];
        let wire = framed(&messages);
        for piece in [1, 2, 3, 5, 6, 11, 12, 64, 205, wire.len()] {
            let mut framing = Framing::<pb::DownloadResponse>::new(2, 1 << 20);
            let mut events = VecDeque::new();
            for chunk in wire.chunks(piece) {
                framing.feed(Bytes::copy_from_slice(chunk), &mut events).unwrap();
            }
            assert!(framing.between_messages());
            let events: Vec<_> = events.into();
            assert_eq!(
                events.iter().filter(|e| matches!(e, Event::BytesStart)).count(),
                3,
                "pieces of {piece}"
            );
            assert_eq!(replay(events), messages, "pieces of {piece}");
        }
    }

    #[test]
    fn a_field_with_other_fields_is_decoded_whole_and_limits_hold() {
        // The bytes field, then an unknown field: not a lone field, so decoded.
        let mut message =
            pb::DownloadResponse { kind: Some(Kind::Chunk(vec![1, 2, 3].into())) }.encode_to_vec();
        message.extend_from_slice(&[0x18, 0x01]);
        let mut wire = vec![0];
        wire.extend_from_slice(&(message.len() as u32).to_be_bytes());
        wire.extend_from_slice(&message);
        let mut framing = Framing::<pb::DownloadResponse>::new(2, 1 << 20);
        let mut events = VecDeque::new();
        framing.feed(Bytes::from(wire.clone()), &mut events).unwrap();
        let want = pb::DownloadResponse { kind: Some(Kind::Chunk(vec![1, 2, 3].into())) };
        assert_eq!(Vec::from(events), vec![Event::Message(want)]);

        let mut small = Framing::<pb::DownloadResponse>::new(2, 4);
        let e = small.feed(Bytes::from(wire.clone()), &mut Default::default()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
        wire[0] = 1;
        let e =
            Framing::<pb::DownloadResponse>::new(2, 1 << 20).feed(Bytes::from(wire), &mut Default::default());
        assert!(e.unwrap_err().message().contains("compression flag 1"));
    }
}
