//! gRPC messages framed by hand, for the calls that move file data: a
//! message that is a single `bytes` field (a chunk) travels as the HTTP/2
//! data frames it arrived in or was read into, not copied into a buffer of
//! its own as tonic does with every message.
//!
//! Sending: [`frames`] sends such a message as its gRPC prefix and field
//! key, a frame of its own, then the bytes; [`framed`] frames any other
//! message whole. Reading: [`Framing`] is fed the data frames of
//! a stream and tells its messages as [`Event`]s, a lone field of the
//! chosen number in pieces. [`LoneBytes`] says which messages those are.
//! [`unary_response`] answers a call with one message. The server's file
//! methods ([`crate::files`]) and Detect, and the CLI's uploads and
//! downloads use them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use dataport_proto::dataport::files::v1::{self, download_response, upload_request};
use dataport_proto::google::bytestream;
use dataport_proto::{file_srv, file_transfer};
use http::HeaderValue;
use http_body::Frame;
use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use tonic::Status;

/// What a [`Framing`] reads next.
#[derive(Debug, PartialEq)]
pub enum Event<M> {
    /// A message other than a lone bytes field, decoded.
    Message(M),
    /// A message that is the bytes field alone starts; its bytes follow.
    BytesStart,
    /// The next bytes of that field.
    Bytes(Bytes),
}

/// A message that may be a single `bytes` field.
pub trait LoneBytes: Message + Sized {
    /// The field's number; its key must fit one byte (1 to 15).
    const FIELD: u8;
    /// The field's bytes, if the message is that field alone (as encoded);
    /// else the message back.
    fn lone_bytes(self) -> Result<Bytes, Self>;
    /// The message that is the field alone, holding `bytes`.
    fn with_bytes(bytes: Bytes) -> Self;
}

/// [`LoneBytes`] for a message whose field is a member of a oneof (encoded
/// even when empty), or a plain field (not encoded when empty, so an empty
/// one is not lone).
macro_rules! lone_bytes {
    ($message:ty, $field:literal, oneof $oneof:ident: $member:path) => {
        impl LoneBytes for $message {
            const FIELD: u8 = $field;
            fn lone_bytes(self) -> Result<Bytes, Self> {
                match self.$oneof {
                    Some($member(bytes)) => Ok(bytes),
                    $oneof => Err(Self { $oneof }),
                }
            }
            fn with_bytes(bytes: Bytes) -> Self {
                Self { $oneof: Some($member(bytes)) }
            }
        }
    };
    ($message:ty, $field:literal, plain $name:ident) => {
        impl LoneBytes for $message {
            const FIELD: u8 = $field;
            fn lone_bytes(self) -> Result<Bytes, Self> {
                if self.$name.is_empty() { Err(self) } else { Ok(self.$name) }
            }
            fn with_bytes(bytes: Bytes) -> Self {
                Self { $name: bytes }
            }
        }
    };
}

lone_bytes!(v1::DownloadResponse, 2, oneof kind: download_response::Kind::Chunk);
lone_bytes!(v1::UploadRequest, 2, oneof kind: upload_request::Kind::Chunk);
lone_bytes!(file_srv::FileResponse, 1, plain chunk_data);
lone_bytes!(file_srv::UploadRequest, 2, oneof request: file_srv::upload_request::Request::ChunkData);
lone_bytes!(file_transfer::Chunk, 1, plain data);
lone_bytes!(bytestream::ReadResponse, 10, plain data);

/// The gRPC prefix and field key and length of a message that is field
/// `field` alone, of `len` bytes.
fn lone_prefix(field: u8, len: usize) -> Bytes {
    let len = len as u64;
    let message_len = 1 + prost::encoding::encoded_len_varint(len) as u64 + len;
    let mut prefix = BytesMut::with_capacity(5 + 1 + 10);
    prefix.put_u8(0);
    prefix.put_u32(u32::try_from(message_len).unwrap_or(u32::MAX));
    prefix.put_u8(field << 3 | 2);
    prost::encoding::encode_varint(len, &mut prefix);
    prefix.freeze()
}

/// A message over the size limit, refused as tonic refuses one (the
/// server's [`crate::message_limit`] makes it RESOURCE_EXHAUSTED).
fn too_large(len: usize, limit: usize) -> Status {
    Status::out_of_range(format!(
        "Error, decoded message length too large: found {len} bytes, the limit is: {limit} bytes"
    ))
}

/// The data frames that send `message`: the prefix of a lone bytes field
/// and its bytes (uncopied, and none when empty), else the message framed
/// whole.
pub fn frames<M: LoneBytes>(message: M) -> (Bytes, Option<Bytes>) {
    match message.lone_bytes() {
        Ok(bytes) => (lone_prefix(M::FIELD, bytes.len()), Some(bytes).filter(|b| !b.is_empty())),
        Err(message) => (framed(&message), None),
    }
}

/// A message with its gRPC prefix.
pub fn framed(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut frame = BytesMut::with_capacity(5 + len);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    message.encode_raw(&mut frame);
    frame.freeze()
}

/// A gRPC response with `body`: status 200 and the gRPC content type.
pub fn grpc_response(body: tonic::body::Body) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// A gRPC response of one message: headers, the framed message, trailers
/// with grpc-status 0.
pub fn unary_response(reply: &impl Message) -> http::Response<tonic::body::Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    grpc_response(tonic::body::Body::new(OneMessage { data: Some(framed(reply)), trailers: Some(trailers) }))
}

/// A body of one data frame, then trailers.
struct OneMessage {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl http_body::Body for OneMessage {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// The gRPC framing of a stream of `M`, fed data frame by data frame.
#[derive(Debug)]
pub struct Framing<M> {
    state: State,
    /// The field read in pieces, and its key byte.
    key: u8,
    max_message: usize,
    /// Events completed and not yet taken.
    ready: VecDeque<Event<M>>,
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
    /// Reads messages of at most `max_message` bytes, a lone bytes field
    /// numbered `field` (1 to 15; `None` for none) in pieces.
    pub fn new(field: Option<u8>, max_message: usize) -> Self {
        let key = match field {
            // Field numbers up to 15 have one-byte keys; this reader needs no more.
            Some(field) => {
                assert!((1..16).contains(&field), "field {field}: only 1 to 15 are read in pieces");
                field << 3 | 2
            }
            None => 0, // no key is 0
        };
        Framing { state: State::Prefix(Vec::new()), key, max_message, ready: VecDeque::new() }
    }

    /// Whether the stream may end here: no message is partly read.
    pub fn between_messages(&self) -> bool {
        matches!(&self.state, State::Prefix(have) if have.is_empty())
    }

    /// What the frames fed so far have completed, in order.
    pub fn next_event(&mut self) -> Option<Event<M>> {
        self.ready.pop_front()
    }

    /// Reads the data frame `data`.
    pub fn feed(&mut self, mut data: Bytes) -> Result<(), Status> {
        while !data.is_empty() || matches!(self.state, State::Head { len: 0, .. }) {
            match &mut self.state {
                State::Prefix(have) => {
                    let n = (5 - have.len()).min(data.len());
                    have.extend_from_slice(&data.split_to(n));
                    if have.len() == 5 {
                        if have[0] != 0 {
                            return Err(Status::unimplemented(format!(
                                "a message has compression flag {}, and compression was not agreed",
                                have[0]
                            )));
                        }
                        let len = u32::from_be_bytes([have[1], have[2], have[3], have[4]]) as usize;
                        if len > self.max_message {
                            return Err(too_large(len, self.max_message));
                        }
                        self.state = State::Head { len, head: Vec::with_capacity(HEAD) };
                    }
                }
                State::Head { len, head } => {
                    let want = (*len).min(HEAD);
                    let n = (want - head.len()).min(data.len());
                    head.extend_from_slice(&data.split_to(n));
                    if head.len() == want {
                        let (len, head) = (*len, std::mem::take(head));
                        self.headed(len, head)?;
                    }
                }
                State::Field { left } => {
                    let piece = data.split_to((*left).min(data.len()));
                    *left -= piece.len();
                    if *left == 0 {
                        self.state = State::Prefix(Vec::new());
                    }
                    self.ready.push_back(Event::Bytes(piece));
                }
                State::Whole { left, buf } => {
                    let piece = data.split_to((*left).min(data.len()));
                    *left -= piece.len();
                    buf.extend_from_slice(&piece);
                    if *left == 0 {
                        let buf = std::mem::take(buf);
                        self.state = State::Prefix(Vec::new());
                        self.ready.push_back(Event::Message(decode(buf)?));
                    }
                }
            }
        }
        Ok(())
    }

    /// The first bytes of a message of `len` are in: a lone bytes field
    /// of ours goes on in pieces, anything else is gathered.
    fn headed(&mut self, len: usize, head: Vec<u8>) -> Result<(), Status> {
        if let Some((&key, mut rest)) = head.split_first()
            && key == self.key
            && let Ok(field_len) = prost::encoding::decode_varint(&mut rest)
            && usize::try_from(field_len).ok() == Some(len - (head.len() - rest.len()))
        {
            self.ready.push_back(Event::BytesStart);
            if !rest.is_empty() {
                self.ready.push_back(Event::Bytes(Bytes::copy_from_slice(rest)));
            }
            let left = len - head.len();
            self.state = if left == 0 { State::Prefix(Vec::new()) } else { State::Field { left } };
            return Ok(());
        }
        let left = len - head.len();
        let mut buf = BytesMut::with_capacity(len);
        buf.extend_from_slice(&head);
        if left == 0 {
            self.state = State::Prefix(Vec::new());
            self.ready.push_back(Event::Message(decode(buf)?));
        } else {
            self.state = State::Whole { left, buf };
        }
        Ok(())
    }
}

fn decode<M: Message + Default>(buf: BytesMut) -> Result<M, Status> {
    M::decode(buf.freeze()).map_err(|e| Status::internal(format!("a message cannot be decoded: {e}")))
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
            let mut framing = Framing::<pb::DownloadResponse>::new(Some(2), 1 << 20);
            for chunk in wire.chunks(piece) {
                framing.feed(Bytes::copy_from_slice(chunk)).unwrap();
            }
            assert!(framing.between_messages());
            let events: Vec<_> = std::iter::from_fn(|| framing.next_event()).collect();
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
        let mut framing = Framing::<pb::DownloadResponse>::new(Some(2), 1 << 20);
        framing.feed(Bytes::from(wire.clone())).unwrap();
        let want = pb::DownloadResponse { kind: Some(Kind::Chunk(vec![1, 2, 3].into())) };
        assert_eq!(framing.next_event(), Some(Event::Message(want)));
        assert_eq!(framing.next_event(), None);

        let mut small = Framing::<pb::DownloadResponse>::new(Some(2), 4);
        let e = small.feed(Bytes::from(wire.clone())).unwrap_err();
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
        wire[0] = 1;
        let e = Framing::<pb::DownloadResponse>::new(Some(2), 1 << 20).feed(Bytes::from(wire));
        assert!(e.unwrap_err().message().contains("compression flag 1"));
    }
}
