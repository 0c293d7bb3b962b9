//! Chunk messages framed by hand: a message that is a single `bytes` field
//! travels as the HTTP/2 data frames it arrived in or was read into, not
//! copied into a buffer of its own as tonic does with every message.
//!
//! Sending: [`frames`] sends such a message as its gRPC prefix and field
//! key, a frame of its own, then the bytes; [`framed`] frames any other
//! message whole. Reading: [`Framing`] is fed the data frames of a stream
//! and tells its messages as [`Event`]s, a lone field of the chosen number
//! in pieces. [`LoneBytes`] says which messages those are.

use std::collections::VecDeque;

use dataport_proto::dataport::files::v1::{self, download_response, upload_request};
use dataport_proto::google::bytestream;
use dataport_proto::{file_srv, file_transfer};
use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use tonic::Status;

use crate::reader::{Piece, Reader, not_agreed, prefix};

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
pub trait LoneBytes: Message + Default + Sized {
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
    frame.put_slice(&prefix(false, len));
    message.encode_raw(&mut frame);
    frame.freeze()
}

/// The gRPC prefix and field key and length of a message that is field
/// `field` alone, of `len` bytes.
fn lone_prefix(field: u8, len: usize) -> Bytes {
    let len = len as u64;
    let message_len = 1 + prost::encoding::encoded_len_varint(len) as usize + len as usize;
    let mut out = BytesMut::with_capacity(5 + 1 + 10);
    out.put_slice(&prefix(false, message_len));
    out.put_u8(field << 3 | 2);
    prost::encoding::encode_varint(len, &mut out);
    out.freeze()
}

/// The gRPC framing of a stream of `M`, fed data frame by data frame.
#[derive(Debug)]
pub struct Framing<M> {
    reader: Reader,
    /// The key byte of the field read in pieces (0, no key, for none).
    key: u8,
    message: Inside,
    /// Events completed and not yet taken.
    ready: VecDeque<Event<M>>,
}

/// Where the reader is inside the current message.
#[derive(Debug)]
enum Inside {
    /// Between messages.
    None,
    /// Gathering the first bytes of a message of `len` bytes: enough to
    /// tell a lone bytes field of the chosen number.
    Head { len: usize, head: Vec<u8> },
    /// Inside the lone bytes field.
    Field,
    /// Gathering a message to decode.
    Whole(BytesMut),
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
            None => 0,
        };
        Framing { reader: Reader::new(max_message), key, message: Inside::None, ready: VecDeque::new() }
    }

    /// Whether the stream may end here: no message is partly read.
    pub fn between_messages(&self) -> bool {
        self.reader.between_messages()
    }

    /// What the frames fed so far have completed, in order.
    pub fn next_event(&mut self) -> Option<Event<M>> {
        self.ready.pop_front()
    }

    /// Reads the data frame `data`.
    pub fn feed(&mut self, data: Bytes) -> Result<(), Status> {
        let Framing { reader, key, message, ready } = self;
        reader.feed(data, |piece| match piece {
            Piece::Start(header) if header.compressed => Err(not_agreed()),
            Piece::Start(header) => {
                *message = Inside::Head { len: header.len, head: Vec::with_capacity(HEAD) };
                Ok(())
            }
            Piece::Data(data) => take(*key, message, ready, data),
            Piece::End => match std::mem::replace(message, Inside::None) {
                Inside::Head { head, .. } => decode(&head, ready),
                Inside::Whole(buf) => decode(&buf, ready),
                Inside::Field | Inside::None => Ok(()),
            },
        })
    }
}

/// The next bytes of the current message.
fn take<M: Message + Default>(
    key: u8,
    message: &mut Inside,
    ready: &mut VecDeque<Event<M>>,
    mut data: Bytes,
) -> Result<(), Status> {
    match message {
        Inside::Head { len, head } => {
            let want = (*len).min(HEAD);
            let n = (want - head.len()).min(data.len());
            head.extend_from_slice(&data.split_to(n));
            if head.len() < want {
                return Ok(());
            }
            *message = headed(key, *len, head, ready);
            if !data.is_empty() {
                return take(key, message, ready, data);
            }
            Ok(())
        }
        Inside::Field => {
            ready.push_back(Event::Bytes(data));
            Ok(())
        }
        Inside::Whole(buf) => {
            buf.extend_from_slice(&data);
            Ok(())
        }
        Inside::None => unreachable!("the reader hands data only inside a message"),
    }
}

/// The first bytes of a message of `len` are in: a lone bytes field of ours
/// goes on in pieces, anything else is gathered.
fn headed<M>(key: u8, len: usize, head: &mut Vec<u8>, ready: &mut VecDeque<Event<M>>) -> Inside {
    if let Some((&first, mut rest)) = head.split_first()
        && first == key
        && let Ok(field_len) = prost::encoding::decode_varint(&mut rest)
        && usize::try_from(field_len).ok() == Some(len - (head.len() - rest.len()))
    {
        ready.push_back(Event::BytesStart);
        if !rest.is_empty() {
            ready.push_back(Event::Bytes(Bytes::copy_from_slice(rest)));
        }
        return Inside::Field;
    }
    if head.len() == len {
        // The whole message is in; it is decoded at its end.
        return Inside::Head { len, head: std::mem::take(head) };
    }
    let mut buf = BytesMut::with_capacity(len);
    buf.extend_from_slice(head);
    Inside::Whole(buf)
}

fn decode<M: Message + Default>(bytes: &[u8], ready: &mut VecDeque<Event<M>>) -> Result<(), Status> {
    let message =
        M::decode(bytes).map_err(|e| Status::internal(format!("a message cannot be decoded: {e}")))?;
    ready.push_back(Event::Message(message));
    Ok(())
}

#[cfg(test)]
mod tests {
    use dataport_proto::dataport::files::v1 as pb;
    use pb::download_response::Kind;

    use super::*;

    fn framed_all(messages: &[pb::DownloadResponse]) -> Vec<u8> {
        messages.iter().flat_map(|m| framed(m).to_vec()).collect()
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
            pb::DownloadResponse { kind: Some(Kind::Chunk(vec![1; 3].into())) },
        ];
        let wire = framed_all(&messages);
        for piece in [1, 2, 3, 5, 6, 11, 12, 64, 205, wire.len()] {
            let mut framing = Framing::<pb::DownloadResponse>::new(Some(2), 1 << 20);
            for chunk in wire.chunks(piece) {
                framing.feed(Bytes::copy_from_slice(chunk)).unwrap();
            }
            assert!(framing.between_messages());
            let events: Vec<_> = std::iter::from_fn(|| framing.next_event()).collect();
            assert_eq!(
                events.iter().filter(|e| matches!(e, Event::BytesStart)).count(),
                4,
                "pieces of {piece}"
            );
            assert_eq!(replay(events), messages, "pieces of {piece}");
        }
    }

    #[test]
    fn sent_frames_are_what_tonic_encodes() {
        let chunk = |b: Vec<u8>| pb::DownloadResponse { kind: Some(Kind::Chunk(b.into())) };
        for message in [chunk(vec![9; 300]), chunk(Vec::new()), chunk((0..=255).collect())] {
            let (first, rest) = frames(message.clone());
            let sent = [first.to_vec(), rest.map(|b| b.to_vec()).unwrap_or_default()].concat();
            assert_eq!(sent, framed(&message).to_vec());
        }
        let plain = file_srv::FileResponse { chunk_data: Bytes::new() };
        assert_eq!(frames(plain.clone()), (framed(&plain), None));
    }

    #[test]
    fn a_field_with_other_fields_is_decoded_whole_and_limits_hold() {
        // The bytes field, then an unknown field: not a lone field, so decoded.
        let mut message =
            pb::DownloadResponse { kind: Some(Kind::Chunk(vec![1, 2, 3].into())) }.encode_to_vec();
        message.extend_from_slice(&[0x18, 0x01]);
        let mut wire = prefix(false, message.len()).to_vec();
        wire.extend_from_slice(&message);
        let mut framing = Framing::<pb::DownloadResponse>::new(Some(2), 1 << 20);
        framing.feed(Bytes::from(wire.clone())).unwrap();
        let want = pb::DownloadResponse { kind: Some(Kind::Chunk(vec![1, 2, 3].into())) };
        assert_eq!(framing.next_event(), Some(Event::Message(want)));
        assert_eq!(framing.next_event(), None);

        let mut small = Framing::<pb::DownloadResponse>::new(Some(2), 4);
        let e = small.feed(Bytes::from(wire.clone())).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        wire[0] = 1;
        let e = Framing::<pb::DownloadResponse>::new(Some(2), 1 << 20).feed(Bytes::from(wire)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal, "{e:?}");
        assert!(e.message().contains("no grpc-encoding"), "{e:?}");
    }

    #[test]
    fn a_message_that_does_not_decode_is_internal() {
        let mut wire = prefix(false, 2).to_vec();
        wire.extend_from_slice(&[0x0a, 0x05]);
        let e = Framing::<pb::DownloadResponse>::new(None, 100).feed(Bytes::from(wire)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal);
    }
}
