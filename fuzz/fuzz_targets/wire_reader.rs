//! The gRPC message-prefix reader (`dataport_wire::reader::Reader`), fed a
//! stream cut into frames at arbitrary points, with a small limit. What it
//! tells must match a plain reading of the whole stream: the same messages,
//! headers and bytes, whatever the cuts; an error exactly where the stream
//! first breaks a rule (a flag other than 0 or 1: INTERNAL; a length over
//! the limit: RESOURCE_EXHAUSTED naming both); `between_messages` exactly
//! when no message is partly read; and an error of the consumer stops it.
#![no_main]

use dataport_wire::reader::{Header, Piece, Reader, too_large};
use libfuzzer_sys::fuzz_target;
use prost::bytes::Bytes;
use tonic::{Code, Status};

/// An input is `[limit] [refuse_at] [n] [n cuts] [stream...]`, so that the
/// corpus can be written by hand.
#[derive(Debug)]
struct Input {
    /// The largest message accepted.
    limit: u8,
    /// The frames' sizes, used in turn (0 is an empty frame).
    cuts: Vec<u8>,
    /// The consumer refuses the piece with this index, if any (255: none).
    refuse_at: Option<u8>,
    stream: Vec<u8>,
}

impl Input {
    fn from(data: &[u8]) -> Option<Input> {
        let (&[limit, refuse_at, n], rest) = data.split_first_chunk()?;
        let (cuts, stream) = rest.split_at_checked(usize::from(n))?;
        let refuse_at = (refuse_at != 255).then_some(refuse_at);
        Some(Input { limit, cuts: cuts.to_vec(), refuse_at, stream: stream.to_vec() })
    }
}

/// The stream read whole, by hand.
#[derive(Debug, Default)]
struct Plain {
    /// Every message started, with the bytes of it present.
    messages: Vec<(Header, Vec<u8>)>,
    /// Whether the last message is whole.
    last_whole: bool,
    /// Prefix bytes at the end that start no message yet.
    dangling_prefix: usize,
    /// The first rule broken.
    error: Option<Status>,
}

fn plain(stream: &[u8], limit: usize) -> Plain {
    let mut out = Plain { last_whole: true, ..Plain::default() };
    let mut at = 0;
    while at < stream.len() {
        let Some(prefix) = stream.get(at..at + 5) else {
            out.dangling_prefix = stream.len() - at;
            break;
        };
        let compressed = match prefix[0] {
            0 => false,
            1 => true,
            _ => {
                out.error = Some(Status::internal(format!("compression flag {}", prefix[0])));
                break;
            }
        };
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if len > limit {
            out.error = Some(too_large(len, limit));
            break;
        }
        let body = &stream[at + 5..];
        let present = body.len().min(len);
        out.messages.push((Header { compressed, len }, body[..present].to_vec()));
        out.last_whole = present == len;
        at += 5 + present;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::from(data) else { return };
    let limit = usize::from(input.limit);
    let want = plain(&input.stream, limit);
    let refuse_at = input.refuse_at.map(usize::from);

    let mut reader = Reader::new(limit);
    assert_eq!(reader.limit(), limit);
    let mut got: Vec<(Header, Vec<u8>)> = Vec::new();
    let (mut open, mut pieces) = (false, 0usize);
    let mut error = None;
    let stream = Bytes::from(input.stream);
    let mut rest = stream.clone();
    let mut cuts = input.cuts.iter().copied().cycle();
    let whole = input.cuts.iter().all(|&c| c == 0);
    while error.is_none() {
        let size = if whole { rest.len() } else { cuts.next().map_or(rest.len(), usize::from) };
        let frame = rest.split_to(size.min(rest.len()));
        let result = reader.feed(frame, |piece| {
            let index = pieces;
            pieces += 1;
            match piece {
                Piece::Start(header) => {
                    assert!(!open, "a start inside a message");
                    open = true;
                    got.push((header, Vec::new()));
                }
                Piece::Data(data) => {
                    assert!(open, "data outside a message");
                    assert!(!data.is_empty(), "an empty data piece");
                    let message = got.last_mut().expect("a start came first");
                    message.1.extend_from_slice(&data);
                    assert!(message.1.len() <= message.0.len, "more bytes than the header says");
                }
                Piece::End => {
                    assert!(open, "an end outside a message");
                    let (header, bytes) = got.last().expect("a start came first");
                    assert_eq!(bytes.len(), header.len, "a message ended short");
                    open = false;
                }
            }
            if refuse_at == Some(index) { Err(Status::cancelled("the consumer refuses")) } else { Ok(()) }
        });
        if let Err(status) = result {
            error = Some(status);
        } else if rest.is_empty() {
            break;
        }
    }

    if let Some(refused) = refuse_at.filter(|&at| at < pieces) {
        // The consumer's error ended it, at the piece it refused.
        let status = error.expect("the consumer's error is returned");
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
        assert_eq!(pieces, refused + 1, "pieces were told after the consumer's error");
        // What came before agrees with the plain reading.
        for (index, (header, bytes)) in got.iter().enumerate() {
            let Some((want_header, want_bytes)) = want.messages.get(index) else {
                panic!("message {index} told, but the stream read whole has {}", want.messages.len());
            };
            assert_eq!(header, want_header);
            assert!(want_bytes.starts_with(bytes), "message {index}'s bytes differ");
        }
        return;
    }
    match (&want.error, &error) {
        (None, None) => {}
        (Some(want), Some(got)) => {
            assert_eq!(got.code(), want.code(), "{got:?}");
            match want.code() {
                Code::ResourceExhausted => assert_eq!(got.message(), want.message()),
                _ => assert!(got.message().contains(want.message()), "{got:?}"),
            }
        }
        (want, got) => panic!("error {got:?}, expected {want:?}"),
    }
    assert_eq!(got, want.messages, "the messages told differ from the stream read whole");
    assert_eq!(open, !want.last_whole, "a message left open or closed wrongly");
    if want.error.is_none() {
        assert_eq!(
            reader.between_messages(),
            want.last_whole && want.dangling_prefix == 0,
            "between_messages at the end of {} bytes",
            stream.len()
        );
    }
});
