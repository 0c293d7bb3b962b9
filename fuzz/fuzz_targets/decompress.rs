//! The message encodings (`dataport_wire::codec`: gzip, deflate, zstd) on
//! any input with a small limit. A message decompresses to at most `limit`
//! bytes or is refused: RESOURCE_EXHAUSTED past the limit, INTERNAL naming
//! the encoding when it does not decompress; the limit changes only whether
//! a message fits, never what it decompresses to; what `compress` makes
//! decompresses to what it was given.
#![no_main]

use dataport_wire::Encoding;
use libfuzzer_sys::fuzz_target;
use tonic::Code;

const ENCODINGS: [Encoding; 3] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd];

/// The largest limit tried; a second decompression under it shows what the
/// message holds.
const BIG: usize = 1 << 16;

// An input is `[encoding] [limit, 2 bytes big-endian] [message...]`, so
// that the corpus can be written by hand: encoding 0 gzip, 1 deflate,
// 2 zstd (modulo 3); the limit modulo 4097.
fuzz_target!(|input: &[u8]| {
    let Some((&[encoding, hi, lo], data)) = input.split_first_chunk() else { return };
    let encoding = ENCODINGS[usize::from(encoding) % ENCODINGS.len()];
    let limit = usize::from(u16::from_be_bytes([hi, lo])) % 4097;

    let small = encoding.decompress(data, limit);
    match &small {
        Ok(out) => {
            assert!(out.len() <= limit, "{encoding:?} gave {} bytes past the limit {limit}", out.len())
        }
        Err(status) => refusal(encoding, status, limit),
    }
    let big = encoding.decompress(data, BIG);
    match (&small, &big) {
        (Ok(small), Ok(big)) => assert_eq!(small, big, "{encoding:?}: the limit changed the message"),
        (Ok(_), Err(status)) => panic!("{encoding:?}: fits {limit} bytes but not {BIG}: {status:?}"),
        (Err(status), Ok(big)) => {
            assert!(
                big.len() > limit,
                "{encoding:?}: {} bytes fit {BIG} but were refused under {limit}",
                big.len()
            );
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        }
        (Err(_), Err(status)) => refusal(encoding, status, BIG),
    }

    // Round trip of what the encoder makes, at the limit and one byte under it.
    let packed = encoding.compress(data);
    let back = encoding.decompress(&packed, data.len());
    assert_eq!(back.as_deref().ok(), Some(data), "{encoding:?} round trip: {back:?}");
    if let Some(under) = data.len().checked_sub(1) {
        let refused = encoding.decompress(&packed, under).expect_err("one byte over the limit");
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    }
});

/// A refusal is one of the two, each saying why.
fn refusal(encoding: Encoding, status: &tonic::Status, limit: usize) {
    match status.code() {
        Code::ResourceExhausted => {
            assert!(status.message().contains(&format!("limit of {limit} bytes")), "{status:?}")
        }
        Code::Internal => assert!(status.message().contains(encoding.name()), "{status:?}"),
        _ => panic!("{encoding:?}: unexpected refusal {status:?}"),
    }
}
