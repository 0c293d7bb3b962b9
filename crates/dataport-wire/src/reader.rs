//! The one reader of gRPC message prefixes.
//!
//! A gRPC stream is a sequence of messages, each a 5-byte prefix (a
//! compressed flag, a big-endian length) and that many bytes, cut into
//! HTTP/2 data frames anywhere. [`Reader`] is fed those frames and tells
//! each message as [`Piece`]s: its [`Header`], its bytes as they arrive
//! (slices of the frames, never copied), and its end. Every error is
//! decided here, once: a length over the limit, a flag that is neither 0
//! nor 1.

use prost::bytes::Bytes;
use tonic::Status;

/// A message's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The compressed flag: the message is in the call's `grpc-encoding`.
    pub compressed: bool,
    /// The length of the message as sent (compressed, if it is).
    pub len: usize,
}

/// What a [`Reader`] tells of a stream, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A message starts.
    Start(Header),
    /// The next bytes of that message (never empty).
    Data(Bytes),
    /// The message is complete.
    End,
}

/// Splits a stream of data frames into messages of at most `limit` bytes.
#[derive(Debug)]
pub struct Reader {
    limit: usize,
    /// The prefix bytes gathered so far, while between messages.
    prefix: [u8; 5],
    have: usize,
    /// Bytes of the current message still to come, inside one.
    left: Option<usize>,
}

impl Reader {
    /// A reader that refuses messages longer than `limit`.
    pub fn new(limit: usize) -> Self {
        Reader { limit, prefix: [0; 5], have: 0, left: None }
    }

    /// The largest message this reader accepts.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether the stream may end here: no message is partly read.
    pub fn between_messages(&self) -> bool {
        self.left.is_none() && self.have == 0
    }

    /// Reads the data frame `data`, handing every piece it completes to
    /// `each`, in order; the first error, the reader's or `each`'s, ends it.
    pub fn feed(
        &mut self,
        mut data: Bytes,
        mut each: impl FnMut(Piece) -> Result<(), Status>,
    ) -> Result<(), Status> {
        loop {
            match self.left {
                None => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let n = (5 - self.have).min(data.len());
                    self.prefix[self.have..self.have + n].copy_from_slice(&data.split_to(n));
                    self.have += n;
                    if self.have < 5 {
                        return Ok(());
                    }
                    self.have = 0;
                    let header = self.header()?;
                    each(Piece::Start(header))?;
                    self.left = Some(header.len);
                }
                Some(0) => {
                    self.left = None;
                    each(Piece::End)?;
                }
                Some(left) => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let piece = data.split_to(left.min(data.len()));
                    self.left = Some(left - piece.len());
                    each(Piece::Data(piece))?;
                }
            }
        }
    }

    fn header(&self) -> Result<Header, Status> {
        let [flag, a, b, c, d] = self.prefix;
        let compressed = match flag {
            0 => false,
            1 => true,
            f => {
                return Err(Status::internal(format!(
                    "protocol error: a message has compression flag {f} (valid flags are 0 and 1)"
                )));
            }
        };
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if len > self.limit {
            return Err(too_large(len, self.limit));
        }
        Ok(Header { compressed, len })
    }
}

/// A message over the limit: RESOURCE_EXHAUSTED, as gRPC specifies, naming
/// both sizes.
pub fn too_large(len: usize, limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "the request message is {len} bytes, over this service's limit of {limit} bytes"
    ))
}

/// A compressed message where none was agreed: the call named no
/// `grpc-encoding`, or the compression was undone before this reader.
pub fn not_agreed() -> Status {
    Status::internal("protocol error: a message has the compressed flag, but the call named no grpc-encoding")
}

/// The gRPC prefix of an uncompressed message of `len` bytes.
pub fn prefix(compressed: bool, len: usize) -> [u8; 5] {
    let [a, b, c, d] = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [u8::from(compressed), a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(messages: &[(bool, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (compressed, m) in messages {
            out.extend_from_slice(&prefix(*compressed, m.len()));
            out.extend_from_slice(m);
        }
        out
    }

    /// The messages read, each as (header, its bytes joined).
    fn read(wire: &[u8], piece: usize, limit: usize) -> Result<Vec<(Header, Vec<u8>)>, Status> {
        let mut reader = Reader::new(limit);
        let mut out: Vec<(Header, Vec<u8>)> = Vec::new();
        let mut open = false;
        for chunk in wire.chunks(piece.max(1)) {
            reader.feed(Bytes::copy_from_slice(chunk), |p| {
                match p {
                    Piece::Start(h) => {
                        assert!(!open, "a start inside a message");
                        open = true;
                        out.push((h, Vec::new()));
                    }
                    Piece::Data(d) => {
                        assert!(open && !d.is_empty());
                        out.last_mut().expect("a start first").1.extend_from_slice(&d);
                    }
                    Piece::End => {
                        assert!(open);
                        open = false;
                    }
                }
                Ok(())
            })?;
        }
        assert_eq!(reader.between_messages(), !open);
        Ok(out)
    }

    #[test]
    fn messages_cut_anywhere_read_whole_and_in_order() {
        let big: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let messages: [(bool, &[u8]); 4] = [(false, b"hello"), (false, b""), (true, &big), (false, b"x")];
        let wire = wire(&messages);
        for piece in [1, 2, 4, 5, 6, 7, 100, wire.len()] {
            let got = read(&wire, piece, 1000).unwrap();
            let want: Vec<_> =
                messages.iter().map(|(c, m)| (Header { compressed: *c, len: m.len() }, m.to_vec())).collect();
            assert_eq!(got, want, "pieces of {piece}");
        }
    }

    #[test]
    fn a_message_over_the_limit_is_resource_exhausted_naming_both_sizes() {
        let e = read(&wire(&[(false, &[0; 11])]), 3, 10).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert_eq!(e.message(), "the request message is 11 bytes, over this service's limit of 10 bytes");
        assert!(read(&wire(&[(false, &[0; 10])]), 3, 10).is_ok());
    }

    #[test]
    fn a_flag_other_than_0_or_1_is_a_protocol_error() {
        let mut bytes = wire(&[(false, b"abc")]);
        bytes[0] = 2;
        let e = read(&bytes, 64, 10).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal);
        assert!(e.message().contains("compression flag 2"), "{e:?}");
    }

    #[test]
    fn a_stream_cut_inside_a_message_is_not_between_messages() {
        let bytes = wire(&[(false, b"abcdef")]);
        for cut in 1..bytes.len() {
            let mut reader = Reader::new(100);
            reader.feed(Bytes::copy_from_slice(&bytes[..cut]), |_| Ok(())).unwrap();
            assert!(!reader.between_messages(), "cut at {cut}");
        }
    }

    #[test]
    fn an_error_of_the_consumer_stops_the_reader() {
        let mut reader = Reader::new(100);
        let e = reader.feed(Bytes::from(wire(&[(true, b"z")])), |p| match p {
            Piece::Start(h) if h.compressed => Err(not_agreed()),
            _ => Ok(()),
        });
        assert_eq!(e.unwrap_err().code(), tonic::Code::Internal);
    }
}
