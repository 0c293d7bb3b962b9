//! Detect requests read straight from the wire into columns, as they arrive.
//!
//! A Detect request of a million metrics is 24 MB. Decoded into the generated
//! types it becomes a million `Metric`s, each with its own `String` name and
//! `Timestamp`: in a profile of the Detect benchmark that decoding was more
//! than half the server's time, and the rule itself 5%. Detection needs only
//! each point's value and which series it is in, so [`Parser`] reads the
//! protobuf bytes in place: a value column, a series number per point (the
//! name is compared in place with the previous point's and looked up only
//! when it changes), the names once each, and times skipped. It reads exactly
//! the wire format of `pb.OutliersRequest` and `dataport.outliers.v1.DetectRequest`
//! (metrics = 1, method = 2; Metric: time = 1, name = 2, value = 3).
//!
//! [`Detector`] serves the Detect method of a generated service itself: it feeds
//! each HTTP/2 data frame to the parser as it arrives, so parsing overlaps
//! the transfer instead of following it (tonic buffers a whole message before
//! decoding it), then answers with one gRPC message and its trailers. Every
//! other method goes to the generated code.

use std::collections::HashMap;

use dataport_proto::dataport::outliers::v1 as pb;
use std::pin::Pin;

use dataport_wire::body::unary_response;
use dataport_wire::reader::{Piece, Reader, not_agreed};
use dataport_wire::{OffTheWire, Served};
use http_body::Body;
use prost::Message;
use prost::bytes::Bytes;
use tonic::Status;

use crate::inflight::Held;

/// A Detect request as columns.
#[derive(Debug, Default)]
pub struct MetricBatch {
    pub values: Vec<f64>,
    /// Per point, its series: an index into `names`; empty while every point
    /// is in the first series (a request of one series needs no column).
    pub series: Vec<u32>,
    pub names: Vec<String>,
    /// The position of the first value that is NaN or infinite.
    pub first_non_finite: Option<usize>,
    /// `DetectRequest.method` (v1); the compat request has no such field.
    pub method: Option<pb::Method>,
}

impl MetricBatch {
    /// Every point as (series name, value), in request order.
    #[cfg(test)]
    fn points(&self) -> impl Iterator<Item = (&str, f64)> {
        let series = |i: usize| self.series.get(i).map_or(0, |&s| s as usize);
        self.values.iter().enumerate().map(move |(i, &v)| (self.names[series(i)].as_str(), v))
    }
}

#[derive(Default)]
struct Builder {
    batch: MetricBatch,
    by_name: HashMap<Box<[u8]>, u32>,
    /// The previous point's name and series: runs of one name skip the lookup.
    last: Option<(Vec<u8>, u32)>,
}

impl Builder {
    #[inline(always)]
    fn push(&mut self, name: &[u8], value: f64) -> Result<(), Status> {
        let series = match &self.last {
            Some((last, s)) if same(last, name) => *s,
            _ => {
                let s = self.series_of(name)?;
                let last = self.last.get_or_insert_with(|| (Vec::new(), 0));
                last.0.clear();
                last.0.extend_from_slice(name);
                last.1 = s;
                s
            }
        };
        let batch = &mut self.batch;
        if series != 0 || !batch.series.is_empty() {
            // The second series: from now on every point needs its number.
            batch.series.resize(batch.values.len(), 0);
            batch.series.push(series);
        }
        if !value.is_finite() && batch.first_non_finite.is_none() {
            batch.first_non_finite = Some(batch.values.len());
        }
        batch.values.push(value);
        Ok(())
    }

    #[inline(never)]
    fn series_of(&mut self, name: &[u8]) -> Result<u32, Status> {
        if let Some(&s) = self.by_name.get(name) {
            return Ok(s);
        }
        let text = std::str::from_utf8(name)
            .map_err(|_| malformed(format!("metric {}: name is not UTF-8", self.batch.values.len())))?;
        let s = u32::try_from(self.batch.names.len())
            .map_err(|_| malformed("more than 2^32 series".to_owned()))?;
        self.batch.names.push(text.to_owned());
        self.by_name.insert(name.into(), s);
        Ok(s)
    }

    /// One whole top-level field of the request.
    fn field(&mut self, mut bytes: &[u8]) -> Result<(), Status> {
        match key(&mut bytes)? {
            (1, LEN) => {
                let (name, value) = metric_fields(delimited(&mut bytes)?)?;
                self.push(name, value)
            }
            (2, LEN) => {
                let method = delimited(&mut bytes)?;
                self.batch.method =
                    Some(pb::Method::decode(method).map_err(|e| malformed(format!("method: {e}")))?);
                Ok(())
            }
            (_, wire) => skip(wire, &mut bytes),
        }
    }

    /// Takes every whole field at the start of `bytes`; answers how many
    /// bytes that was (the rest is the start of a field still arriving).
    fn fields(&mut self, bytes: &[u8]) -> Result<usize, Status> {
        let mut at = 0;
        loop {
            let rest = &bytes[at..];
            // A metric of under 128 bytes, nearly every field: key and length
            // are one byte each.
            if let [0x0a, len, body @ ..] = rest
                && *len < 0x80
            {
                let Some(metric) = body.get(..usize::from(*len)) else { break };
                let (name, value) = metric_fields(metric)?;
                self.push(name, value)?;
                at += 2 + metric.len();
                continue;
            }
            let Some(n) = field_len(rest)? else { break };
            self.field(&rest[..n])?;
            at += n;
        }
        Ok(at)
    }
}

/// Slice equality without a call to `memcmp` for the short names metrics
/// have (it was 7% of a Detect profile).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.len() > 32 && a == b || a.iter().zip(b).all(|(x, y)| x == y))
}

#[cold]
fn malformed(reason: String) -> Status {
    Status::invalid_argument(format!("the request is not a valid Detect request: {reason}"))
}

/// Parses the bytes of a whole request message.
#[cfg(test)]
fn parse(bytes: &[u8]) -> Result<MetricBatch, Status> {
    let mut builder = Builder::default();
    let used = builder.fields(bytes)?;
    if used != bytes.len() {
        return Err(malformed("a field is cut short".into()));
    }
    Ok(builder.batch)
}

/// Reads the one request message of a call from the data frames of its
/// body, fed in pieces of any size: the gRPC prefixes with the shared
/// [`Reader`], the message's fields as they arrive.
struct Parser {
    reader: Reader,
    builder: Builder,
    /// How many messages have started.
    messages: usize,
    /// The start of a field whose end has not arrived yet.
    carry: Vec<u8>,
}

impl Parser {
    fn new(limit: usize) -> Self {
        Parser { reader: Reader::new(limit), builder: Builder::default(), messages: 0, carry: Vec::new() }
    }

    fn feed(&mut self, data: Bytes) -> Result<(), Status> {
        let Parser { reader, builder, messages, carry } = self;
        reader.feed(data, |piece| match piece {
            Piece::Start(header) => {
                if header.compressed {
                    return Err(not_agreed());
                }
                *messages += 1;
                if *messages > 1 {
                    return Err(malformed("the call carries more than one request message".into()));
                }
                // Sized for the usual shape, about 24 bytes a metric.
                builder.batch.values.reserve(header.len / 24);
                Ok(())
            }
            Piece::Data(data) => fields(builder, carry, &data),
            Piece::End if carry.is_empty() => Ok(()),
            Piece::End => Err(malformed("a field is longer than the message".into())),
        })
    }

    fn finish(self) -> Result<MetricBatch, Status> {
        if self.messages == 0 {
            return Err(malformed("the call carries no request message".into()));
        }
        if !self.reader.between_messages() {
            return Err(malformed("the request message is cut short".into()));
        }
        Ok(self.builder.batch)
    }
}

/// Takes the whole fields of `data`, the first one completing `carry`, and
/// keeps the start of a field still arriving in `carry`.
fn fields(builder: &mut Builder, carry: &mut Vec<u8>, mut data: &[u8]) -> Result<(), Status> {
    // Finish a field split across pieces, a little at a time (its length
    // is known once its first bytes are in).
    while !carry.is_empty() && !data.is_empty() {
        let before = carry.len();
        let take = data.len().min(256);
        carry.extend_from_slice(&data[..take]);
        match field_len(carry)? {
            Some(n) => {
                builder.field(&carry[..n])?;
                carry.clear();
                data = &data[n - before..];
            }
            None => data = &data[take..],
        }
    }
    let used = builder.fields(data)?;
    carry.extend_from_slice(&data[used..]);
    Ok(())
}

/// The length of the field at the start of `bytes` when all of it is there,
/// `None` while some of it is still to come.
fn field_len(bytes: &[u8]) -> Result<Option<usize>, Status> {
    let Some((key, key_len)) = peek_varint(bytes)? else { return Ok(None) };
    let rest = &bytes[key_len..];
    let body = match key & 7 {
        VARINT => match peek_varint(rest)? {
            Some((_, n)) => n,
            None => return Ok(None),
        },
        I64 => 8,
        I32 => 4,
        LEN => match peek_varint(rest)? {
            Some((len, n)) => n.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)),
            None => return Ok(None),
        },
        other => return Err(malformed(format!("wire type {other} is not used by proto3"))),
    };
    Ok((body <= rest.len()).then_some(key_len + body))
}

/// A varint and its length; `None` when `bytes` ends inside it.
#[inline(always)]
fn peek_varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, Status> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 10 { Err(malformed("a varint is longer than 10 bytes".into())) } else { Ok(None) }
}

const VARINT: u64 = 0;
const I64: u64 = 1;
const LEN: u64 = 2;
const I32: u64 = 5;

/// A Metric's name and value (proto3 defaults when absent; the last
/// occurrence wins), skipping its time.
#[inline(always)]
fn metric_fields(bytes: &[u8]) -> Result<(&[u8], f64), Status> {
    // What every encoder writes for a named metric: time (short), name
    // (short), value, in field order. Anything else takes the general path.
    let mut b = bytes;
    if let [0x0a, len, rest @ ..] = b
        && *len < 0x80
        && let Some(after) = rest.get(usize::from(*len)..)
    {
        b = after;
    }
    if let [0x12, len, rest @ ..] = b
        && *len < 0x80
        && let Some((name, [0x19, v0, v1, v2, v3, v4, v5, v6, v7])) = rest.split_at_checked(usize::from(*len))
    {
        return Ok((name, f64::from_le_bytes([*v0, *v1, *v2, *v3, *v4, *v5, *v6, *v7])));
    }
    any_metric_fields(bytes)
}

/// [`metric_fields`] for any field order and encoding.
fn any_metric_fields(mut bytes: &[u8]) -> Result<(&[u8], f64), Status> {
    let (mut name, mut value): (&[u8], f64) = (b"", 0.0);
    while !bytes.is_empty() {
        match key(&mut bytes)? {
            (2, LEN) => name = delimited(&mut bytes)?,
            (3, I64) => {
                let (v, rest) =
                    bytes.split_first_chunk::<8>().ok_or_else(|| malformed("value cut short".into()))?;
                value = f64::from_le_bytes(*v);
                bytes = rest;
            }
            (_, wire) => skip(wire, &mut bytes)?,
        }
    }
    Ok((name, value))
}

#[inline(always)]
fn key(bytes: &mut &[u8]) -> Result<(u64, u64), Status> {
    let key = varint(bytes)?;
    Ok((key >> 3, key & 7))
}

#[inline(always)]
fn varint(bytes: &mut &[u8]) -> Result<u64, Status> {
    // Keys and short lengths, nearly every varint here, are one byte.
    if let Some((&b, rest)) = bytes.split_first()
        && b < 0x80
    {
        *bytes = rest;
        return Ok(u64::from(b));
    }
    long_varint(bytes)
}

#[inline(never)]
fn long_varint(bytes: &mut &[u8]) -> Result<u64, Status> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *bytes = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(malformed("a varint is cut short or too long".into()))
}

#[inline(always)]
fn delimited<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], Status> {
    let len = usize::try_from(varint(bytes)?).unwrap_or(usize::MAX);
    if len > bytes.len() {
        return Err(malformed("a field is longer than the message".into()));
    }
    let (field, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(field)
}

#[inline(always)]
fn skip(wire: u64, bytes: &mut &[u8]) -> Result<(), Status> {
    let n = match wire {
        VARINT => return varint(bytes).map(drop),
        I64 => 8,
        LEN => return delimited(bytes).map(drop),
        I32 => 4,
        other => return Err(malformed(format!("wire type {other} is not used by proto3"))),
    };
    *bytes = bytes.get(n..).ok_or_else(|| malformed("a field is cut short".into()))?;
    Ok(())
}

/// A Detect implementation over a [`MetricBatch`].
pub trait BatchDetect: Clone + Send + Sync + 'static {
    type Response: Message + Send + 'static;
    /// The method's path, from `dataport_proto::methods`.
    const PATH: &'static str;
    fn detect(&self, batch: MetricBatch) -> impl Future<Output = Result<Self::Response, Status>> + Send;
}

/// Detect served off the wire (see [`dataport_wire::route`]): the request fed to a
/// [`Parser`] frame by frame, a request of more than `limit` bytes refused.
#[derive(Clone, Debug)]
pub struct Detector<D> {
    pub detect: D,
    pub cx: super::Context,
}

impl<D: BatchDetect> OffTheWire for Detector<D> {
    const PATHS: &'static [&'static str] = &[D::PATH];

    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let (detect, cx) = (self.detect.clone(), self.cx.clone());
        Box::pin(async move {
            // The room the request's data takes, held until it is judged.
            let mut held = Held::default();
            let answer = match read_batch(request.into_body(), &cx, &mut held).await {
                Ok(batch) => {
                    let points = batch.values.len();
                    let answer = detect.detect(batch).await;
                    if answer.is_ok() {
                        cx.judged.add(points);
                    }
                    answer
                }
                Err(status) => Err(status),
            };
            match answer {
                Ok(reply) => unary_response(&reply),
                Err(status) => status.into_http(),
            }
        })
    }
}

/// Feeds the request body to a [`Parser`] frame by frame, within
/// `max_detect_bytes`, `held` taking room for every byte read. A body that
/// fails is its status (tonic's body gives a reset stream as CANCELLED).
async fn read_batch(
    mut body: tonic::body::Body,
    cx: &super::Context,
    held: &mut Held,
) -> Result<MetricBatch, Status> {
    let mut parser = Parser::new(cx.limits.max_detect_bytes);
    let mut read = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            read += data.len();
            cx.inflight.hold(held, read).await?;
            parser.feed(data)?;
        }
    }
    parser.finish()
}

#[cfg(test)]
mod tests {
    use dataport_proto::pb as compat;

    use super::*;

    fn metric(name: &str, value: f64, seconds: i64) -> compat::Metric {
        compat::Metric { time: Some(prost_types::Timestamp { seconds, nanos: 7 }), name: name.into(), value }
    }

    #[test]
    fn a_request_parses_into_the_same_points_as_prost_decodes() {
        let metrics = vec![
            metric("cpu", 1.5, 1),
            metric("cpu", -2.0, 2),
            metric("mem", 0.0, 3),
            compat::Metric { time: None, name: String::new(), value: 9.0 },
            metric("cpu", 1e300, -4),
            metric("mem", f64::MIN_POSITIVE, 5),
        ];
        let bytes = compat::OutliersRequest { metrics: metrics.clone() }.encode_to_vec();
        let batch = parse(&bytes).unwrap();
        let points: Vec<(&str, f64)> = batch.points().collect();
        let want: Vec<(&str, f64)> = metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(points, want);
        assert_eq!(batch.names, ["cpu", "mem", ""]);
        assert!(batch.method.is_none());
        assert!(parse(&[]).unwrap().values.is_empty());
    }

    #[test]
    fn metrics_in_any_field_order_or_encoding_parse_as_prost_decodes_them() {
        let long = "n".repeat(300); // a two-byte length
        let mut bytes = compat::OutliersRequest {
            metrics: vec![metric(&long, 4.0, 1), metric("a", 5.0, i64::MIN), metric("a", 6.0, 0)],
        }
        .encode_to_vec();
        // value, then name, then a second value (the last wins), then time: hand-written.
        let odd: &[u8] = &[
            0x19, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x12, 0x01, b'b', 0x19, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x0a, 0x00,
        ];
        bytes.extend_from_slice(&[0x0a, odd.len() as u8]);
        bytes.extend_from_slice(odd);
        let decoded = compat::OutliersRequest::decode(bytes.as_slice()).unwrap();
        let want: Vec<(&str, f64)> = decoded.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        let batch = parse(&bytes).unwrap();
        assert_eq!(batch.points().collect::<Vec<_>>(), want);
        assert_eq!(want[3], ("b", 2.0));
        assert_eq!(batch.series, [0, 1, 1, 2]);
    }

    #[test]
    fn a_request_fed_in_pieces_of_any_size_parses_as_a_whole() {
        let metrics: Vec<_> =
            (0..40).map(|i| metric(["a", "bb", "ccc"][i % 3], i as f64, i as i64)).collect();
        let method = pb::Method { kind: Some(pb::method::Kind::Iqr(pb::Iqr { k: 2.0 })) };
        let mut message = compat::OutliersRequest { metrics }.encode_to_vec();
        // The v1 method field, and an unknown field longer than a piece.
        message.extend_from_slice(&[0x12, method.encoded_len() as u8]);
        message.extend_from_slice(&method.encode_to_vec());
        message.extend_from_slice(&[0x3a, 0x90, 0x03]);
        message.extend_from_slice(&[7; 400]);
        let whole = parse(&message).unwrap();
        let mut framed = vec![0];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        for piece in [1, 2, 3, 5, 7, 64, 255, 256, 257, 1000, framed.len()] {
            let mut parser = Parser::new(usize::MAX);
            for chunk in framed.chunks(piece) {
                parser.feed(Bytes::copy_from_slice(chunk)).unwrap();
            }
            let batch = parser.finish().unwrap();
            assert_eq!(
                (&batch.values, &batch.series, &batch.names),
                (&whole.values, &whole.series, &whole.names)
            );
            assert_eq!(batch.method, Some(method), "pieces of {piece}");
        }
    }

    #[test]
    fn framing_errors_are_named() {
        let message = compat::OutliersRequest { metrics: vec![metric("a", 1.0, 1)] }.encode_to_vec();
        let frame = |flag: u8, len: usize| {
            let mut f = vec![flag];
            f.extend_from_slice(&(len as u32).to_be_bytes());
            f.extend_from_slice(&message);
            f
        };
        let fed = |bytes: &[u8], limit: usize| {
            let mut parser = Parser::new(limit);
            parser.feed(Bytes::copy_from_slice(bytes)).and_then(|()| parser.finish())
        };
        let e = fed(&frame(0, message.len()), 10).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("limit of 10 bytes"), "{e:?}");
        // Compression is undone before the parser; a compressed message here was never agreed.
        let e = fed(&frame(1, message.len()), 1000).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal);
        assert!(e.message().contains("no grpc-encoding"), "{e:?}");
        assert!(fed(&frame(0, message.len() + 5), 1000).unwrap_err().message().contains("cut short"));
        let e = fed(&frame(0, message.len() - 1), 1000).unwrap_err();
        assert!(e.message().contains("a field is longer than the message"), "{e:?}");
        let twice = [frame(0, message.len()), frame(0, message.len())].concat();
        assert!(fed(&twice, 1000).unwrap_err().message().contains("more than one"));
        assert!(fed(&[], 1000).unwrap_err().message().contains("no request message"));
        assert_eq!(fed(&frame(0, message.len()), 1000).unwrap().values, [1.0]);
    }

    #[test]
    fn one_series_needs_no_series_column_and_bad_values_are_found_while_parsing() {
        let metrics =
            vec![metric("cpu", 1.0, 1), metric("cpu", f64::NAN, 2), metric("cpu", f64::INFINITY, 3)];
        let batch = parse(&compat::OutliersRequest { metrics }.encode_to_vec()).unwrap();
        assert!(batch.series.is_empty());
        assert_eq!(batch.first_non_finite, Some(1));
    }

    #[test]
    fn the_v1_method_and_unknown_fields_are_read_or_skipped() {
        let method = pb::Method { kind: Some(pb::method::Kind::Iqr(pb::Iqr { k: 3.0 })) };
        let request = pb::DetectRequest {
            metrics: vec![pb::Metric { time: None, name: "a".into(), value: 1.0 }],
            method: Some(method),
        };
        let mut bytes = request.encode_to_vec();
        // Unknown fields of every wire type, at both levels.
        bytes.extend_from_slice(&[0x18, 0x96, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d, 1, 2, 3, 4]);
        let batch = parse(&bytes).unwrap();
        assert_eq!(batch.method, Some(method));
        assert_eq!(batch.values, [1.0]);
    }

    #[test]
    fn malformed_bytes_are_invalid_argument() {
        let good = compat::OutliersRequest { metrics: vec![metric("cpu", 1.0, 1)] }.encode_to_vec();
        for cut in 1..good.len() {
            if let Err(status) = parse(&good[..cut]) {
                assert_eq!(status.code(), tonic::Code::InvalidArgument);
            }
        }
        let e = parse(&[0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe]).unwrap_err();
        assert!(e.message().contains("name is not UTF-8"), "{e:?}");
        assert!(parse(&[0x0b]).is_err(), "groups are not proto3");
        assert!(parse(&[0xff; 11]).is_err());
    }
}
