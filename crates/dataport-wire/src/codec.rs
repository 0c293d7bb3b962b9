//! The message encodings gRPC clients send: gzip, deflate (zlib, as grpcio,
//! grpc-go and tonic mean it) and zstd.

use std::io::Read;

use prost::bytes::Bytes;
use tonic::Status;

/// A `grpc-encoding` this server reads and may answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Deflate,
    Zstd,
}

/// What `grpc-accept-encoding` advertises: every encoding read.
pub const ACCEPTED: &str = "gzip,deflate,zstd";

/// The largest zstd window a message within `limit` bytes may ask for: one
/// that holds `limit` bytes, and never less than 8 MiB (2^23), since a
/// streaming encoder that does not know the message's size declares its
/// level's window whatever the size (2 MiB at level 3, 8 MiB at 19).
fn window_log(limit: usize) -> u32 {
    let bits = usize::BITS - limit.saturating_sub(1).leading_zeros();
    bits.clamp(23, 31)
}

impl Encoding {
    /// The encoding `name` names; `Ok(None)` for `identity` (none).
    /// Anything else is UNIMPLEMENTED, listing what is accepted.
    pub fn from_name(name: &[u8]) -> Result<Option<Encoding>, Status> {
        match name {
            b"identity" => Ok(None),
            b"gzip" => Ok(Some(Encoding::Gzip)),
            b"deflate" => Ok(Some(Encoding::Deflate)),
            b"zstd" => Ok(Some(Encoding::Zstd)),
            other => Err(Status::unimplemented(format!(
                "grpc-encoding {:?} is not supported: send identity, gzip, deflate or zstd",
                String::from_utf8_lossy(other)
            ))),
        }
    }

    /// The encoding's name in `grpc-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }

    /// Whether a `grpc-accept-encoding` value lists this encoding.
    pub fn listed_in(self, accept: &[u8]) -> bool {
        accept.split(|&b| b == b',').any(|name| name.trim_ascii() == self.name().as_bytes())
    }

    /// Decompresses one message, refusing it once it passes `limit` bytes:
    /// at most `limit` + 1 bytes are ever produced, whatever the input
    /// claims, so a decompression bomb costs bounded memory.
    pub fn decompress(self, compressed: &[u8], limit: usize) -> Result<Bytes, Status> {
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
        let read = match self {
            Encoding::Gzip => flate2::read::GzDecoder::new(compressed).take(cap).read_to_end(&mut out),
            Encoding::Deflate => flate2::read::ZlibDecoder::new(compressed).take(cap).read_to_end(&mut out),
            // A frame declares the window its decoder needs: left alone, a
            // 13-byte frame made it take 128 MiB (fuzz target `decompress`).
            // A message within the limit needs no window larger than it.
            Encoding::Zstd => zstd::stream::read::Decoder::with_buffer(compressed)
                .and_then(|mut d| d.window_log_max(window_log(limit)).map(|()| d))
                .and_then(|d| d.take(cap).read_to_end(&mut out)),
        };
        // INTERNAL, as grpc-go and tonic answer a message that does not
        // decompress; a zstd frame asking for a window past the limit is
        // over it.
        match read {
            Err(e) if self == Encoding::Zstd && e.to_string().contains("too much memory") => {
                return Err(Status::resource_exhausted(format!(
                    "the request message's zstd frame needs a window over this service's limit of {limit} bytes"
                )));
            }
            Err(e) => {
                return Err(Status::internal(format!(
                    "a message does not decompress as {}: {e}",
                    self.name()
                )));
            }
            Ok(_) => {}
        }
        if out.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "the request message is over this service's limit of {limit} bytes once decompressed"
            )));
        }
        Ok(out.into())
    }

    /// Compresses one message.
    pub fn compress(self, message: &[u8]) -> Bytes {
        use std::io::Write;
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        // Writing into a Vec cannot fail, and neither can the encoders over it.
        let written = match self {
            Encoding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
                e.write_all(message).and_then(|()| e.finish().map(drop))
            }
            Encoding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(&mut out, flate2::Compression::new(6));
                e.write_all(message).and_then(|()| e.finish().map(drop))
            }
            Encoding::Zstd => zstd::stream::copy_encode(message, &mut out, 3),
        };
        if let Err(e) = written {
            unreachable!("compressing into memory cannot fail: {e}");
        }
        out.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd];

    #[test]
    fn every_encoding_round_trips() {
        let message: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for e in ALL {
            let packed = e.compress(&message);
            assert!(packed.len() < message.len() / 4, "{e:?}");
            assert_eq!(e.decompress(&packed, message.len()).unwrap(), message, "{e:?}");
        }
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit_without_inflating_it() {
        // 1 GiB of zeros packs into about a megabyte; only limit + 1 bytes
        // are ever produced.
        let zeros = vec![0u8; 64 << 20];
        for e in ALL {
            let packed = e.compress(&zeros);
            let err = e.decompress(&packed, 4 << 20).unwrap_err();
            assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{e:?}");
            assert!(err.message().contains("limit of 4194304 bytes"), "{err:?}");
        }
    }

    #[test]
    fn a_zstd_frame_asking_for_a_window_past_the_limit_is_refused() {
        // One byte of content in a frame that declares a 128 MiB window
        // (found by the fuzz target `decompress`): its decoder would take it.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0x09, 0x00, 0x00, b'a'];
        let err = Encoding::Zstd.decompress(&frame, 16).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        assert!(err.message().contains("window over this service's limit of 16 bytes"), "{err:?}");
        assert_eq!(Encoding::Zstd.decompress(&frame, 256 << 20).unwrap(), &b"a"[..]);
        assert_eq!(
            (window_log(16), window_log(8 << 20), window_log((8 << 20) + 1), window_log(64 << 20)),
            (23, 23, 24, 26)
        );
    }

    #[test]
    fn garbage_is_internal_naming_the_encoding() {
        for e in ALL {
            let err = e.decompress(b"not compressed at all", 100).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Internal);
            assert!(err.message().contains(e.name()), "{err:?}");
        }
    }

    #[test]
    fn names_parse_and_unknown_ones_list_what_is_accepted() {
        assert_eq!(Encoding::from_name(b"identity").unwrap(), None);
        for e in ALL {
            assert_eq!(Encoding::from_name(e.name().as_bytes()).unwrap(), Some(e));
            assert!(e.listed_in(ACCEPTED.as_bytes()));
            assert!(e.listed_in(format!("identity, {}", e.name()).as_bytes()));
        }
        assert!(!Encoding::Zstd.listed_in(b"identity,gzip"));
        let err = Encoding::from_name(b"snappy").unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
        assert!(err.message().contains("\"snappy\"") && err.message().contains("gzip, deflate or zstd"));
    }
}
