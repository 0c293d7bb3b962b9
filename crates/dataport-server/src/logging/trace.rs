//! The W3C trace context a client sends (`traceparent`), so that a call's
//! line names the trace it belongs to and can be found beside the client's
//! and the other services' records of the same request, and its span (with
//! `otlp_endpoint`) continues the client's.

use http::{HeaderMap, HeaderName};

/// A trace id as the call line writes it: 32 lowercase hex digits, not all
/// zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId([u8; 32]);

impl TraceId {
    pub fn as_str(&self) -> &str {
        // Only lowercase hex digits get in.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// `id` in hex; none for the invalid id 0.
    pub fn from_u128(id: u128) -> Option<TraceId> {
        let mut hex = [0; 32];
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[((id >> (124 - 4 * i)) & 0xf) as usize];
        }
        (id != 0).then_some(TraceId(hex))
    }

    pub fn to_u128(self) -> u128 {
        u128::from_str_radix(self.as_str(), 16).unwrap_or_default()
    }
}

/// What a valid `traceparent` says: the trace, the caller's span in it, and
/// whether the caller sampled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace: TraceId,
    pub parent: u64,
    pub flags: u8,
}

impl TraceParent {
    /// The `traceparent` of `headers`, when it is valid by the W3C rules
    /// (version 00, or a later one read as 00 reads it; never ff); an invalid
    /// one is ignored, as the spec asks.
    pub fn of(headers: &HeaderMap) -> Option<TraceParent> {
        const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
        parse(headers.get(TRACEPARENT)?.as_bytes())
    }
}

/// `VERSION-TRACEID-PARENTID-FLAGS`: 2, 32, 16 and 2 lowercase hex digits.
fn parse(value: &[u8]) -> Option<TraceParent> {
    let hex = |part: &[u8]| part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |part: &[u8]| part.iter().any(|&b| b != b'0');
    let (version, rest) = value.split_at_checked(2)?;
    if !hex(version) || version == b"ff" {
        return None;
    }
    // Version 00 is exactly 55 bytes; a later version may add fields after a dash.
    if rest.len() < 53 || (version == b"00" && rest.len() != 53) || (rest.len() > 53 && rest[53] != b'-') {
        return None;
    }
    let (trace, parent, flags) = (&rest[1..33], &rest[34..50], &rest[51..53]);
    let dashes = rest[0] == b'-' && rest[33] == b'-' && rest[50] == b'-';
    if !(dashes && hex(trace) && hex(parent) && hex(flags) && nonzero(trace) && nonzero(parent)) {
        return None;
    }
    let number = |digits: &[u8]| u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok();
    Some(TraceParent {
        trace: TraceId(trace.try_into().ok()?),
        parent: number(parent)?,
        flags: u8::try_from(number(flags)?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        let parent = parse(format!("00-{TRACE}-00f067aa0ba902b7-01").as_bytes()).unwrap();
        assert_eq!(parent.trace.as_str(), TRACE);
        assert_eq!((parent.parent, parent.flags), (0x00f0_67aa_0ba9_02b7, 1));
        assert_eq!(TraceId::from_u128(parent.trace.to_u128()), Some(parent.trace));
        // A later version may carry more after the four fields.
        let later = format!("01-{TRACE}-00f067aa0ba902b7-00-what-comes-next");
        assert_eq!(parse(later.as_bytes()).unwrap().trace.as_str(), TRACE);
        assert_eq!(TraceId::from_u128(0), None);
    }

    #[test]
    fn an_invalid_traceparent_is_ignored() {
        for bad in [
            format!("ff-{TRACE}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{TRACE}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-00f067aa0ba902b7-01-extra"),
            format!("00-{TRACE}-00f067aa0ba902b7"),
            format!("00_{TRACE}-00f067aa0ba902b7-01"),
            String::new(),
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
    }
}
