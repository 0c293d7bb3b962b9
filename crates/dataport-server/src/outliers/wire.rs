//! Detect requests read straight from the wire into columns.
//!
//! A Detect request of a million metrics is 24 MB. Decoded into the generated
//! types it becomes a million `Metric`s, each with its own `String` name and
//! `Timestamp`: in a profile of the Detect benchmark that decoding was more
//! than half the server's time, and the rule itself 5%. Detection needs only
//! each point's value and which series it is in, so [`BatchCodec`] parses the
//! protobuf bytes in place: a value column, a series number per point (the
//! name is compared in place with the previous point's and looked up only
//! when it changes), the names once each, and times skipped. It reads exactly
//! the wire format of `pb.OutliersRequest` and `dataport.outliers.v1.DetectRequest`
//! (metrics = 1, method = 2; Metric: time = 1, name = 2, value = 3).
//!
//! [`Lean`] puts that codec in front of a generated service for its Detect
//! method only; every other method goes to the generated code.

use std::collections::HashMap;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use dataport_proto::dataport::outliers::v1 as pb;
use futures_util::future::BoxFuture;
use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::server::NamedService;
use tonic_prost::ProstEncoder;

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

    /// Builds a batch from decoded metrics (the generated types' path).
    pub fn from_points<'a>(points: impl IntoIterator<Item = (&'a str, f64)>) -> MetricBatch {
        let mut builder = Builder::default();
        for (name, value) in points {
            // Names of decoded messages are valid UTF-8 already.
            let _ = builder.push(name.as_bytes(), value);
        }
        builder.batch
    }
}

#[derive(Default)]
struct Builder<'a> {
    batch: MetricBatch,
    by_name: HashMap<&'a [u8], u32>,
    last: Option<(&'a [u8], u32)>,
}

impl<'a> Builder<'a> {
    #[inline(always)]
    fn push(&mut self, name: &'a [u8], value: f64) -> Result<(), Status> {
        let series = match self.last {
            Some((last, s)) if same(last, name) => s,
            _ => match self.by_name.get(name) {
                Some(&s) => s,
                None => {
                    let text = std::str::from_utf8(name).map_err(|_| {
                        malformed(format!("metric {}: name is not UTF-8", self.batch.values.len()))
                    })?;
                    let s = u32::try_from(self.batch.names.len())
                        .map_err(|_| malformed("more than 2^32 series".to_owned()))?;
                    self.batch.names.push(text.to_owned());
                    self.by_name.insert(name, s);
                    s
                }
            },
        };
        self.last = Some((name, series));
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
pub fn parse(mut bytes: &[u8]) -> Result<MetricBatch, Status> {
    let mut builder = Builder::default();
    // Sized for the common shape: about 24 bytes a metric.
    builder.batch.values.reserve(bytes.len() / 20);
    while !bytes.is_empty() {
        let (field, wire) = key(&mut bytes)?;
        match (field, wire) {
            (1, LEN) => {
                let metric = delimited(&mut bytes)?;
                let (name, value) = metric_fields(metric)?;
                builder.push(name, value)?;
            }
            (2, LEN) => {
                let method = delimited(&mut bytes)?;
                builder.batch.method =
                    Some(pb::Method::decode(method).map_err(|e| malformed(format!("method: {e}")))?);
            }
            (_, wire) => skip(wire, &mut bytes)?,
        }
    }
    Ok(builder.batch)
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

/// Decodes a [`MetricBatch`]; encodes the response with prost.
#[derive(Debug)]
pub struct BatchCodec<R>(PhantomData<fn(R)>);

impl<R> Default for BatchCodec<R> {
    fn default() -> Self {
        BatchCodec(PhantomData)
    }
}

impl<R: Message + Send + 'static> Codec for BatchCodec<R> {
    type Encode = R;
    type Decode = MetricBatch;
    type Encoder = ProstEncoder<R>;
    type Decoder = BatchDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BatchDecoder
    }
}

#[derive(Debug)]
pub struct BatchDecoder;

impl Decoder for BatchDecoder {
    type Item = MetricBatch;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<MetricBatch>, Status> {
        // tonic hands over the whole message; it is one contiguous buffer.
        let len = src.remaining();
        let batch =
            if src.chunk().len() == len { parse(src.chunk())? } else { parse(&src.copy_to_bytes(len))? };
        if src.remaining() == len {
            src.advance(len);
        }
        Ok(Some(batch))
    }
}

/// A Detect implementation over a [`MetricBatch`].
pub trait BatchDetect: Clone + Send + Sync + 'static {
    type Response: Message + Send + 'static;
    /// The method's path, e.g. `/pb.Outliers/Detect`.
    const PATH: &'static str;
    fn detect(&self, batch: MetricBatch) -> impl Future<Output = Result<Self::Response, Status>> + Send;
}

/// Serves `D::PATH` through [`BatchCodec`] and everything else through `inner`.
#[derive(Clone, Debug)]
pub struct Lean<S, D> {
    inner: S,
    detect: D,
    max_decoding_message_size: usize,
}

impl<S, D> Lean<S, D> {
    pub fn new(inner: S, detect: D, max_decoding_message_size: usize) -> Self {
        Lean { inner, detect, max_decoding_message_size }
    }
}

impl<S: NamedService, D> NamedService for Lean<S, D> {
    const NAME: &'static str = S::NAME;
}

impl<S, D, B> tower::Service<http::Request<B>> for Lean<S, D>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    D: BatchDetect,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != D::PATH {
            return Box::pin(self.inner.call(req));
        }
        let (detect, limit) = (self.detect.clone(), self.max_decoding_message_size);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(BatchCodec::<D::Response>::default())
                .apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(Unary(Arc::new(detect)), req).await)
        })
    }
}

struct Unary<D>(Arc<D>);

impl<D: BatchDetect> tonic::server::UnaryService<MetricBatch> for Unary<D> {
    type Response = D::Response;
    type Future = BoxFuture<'static, Result<tonic::Response<D::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<MetricBatch>) -> Self::Future {
        let detect = Arc::clone(&self.0);
        Box::pin(async move { detect.detect(request.into_inner()).await.map(tonic::Response::new) })
    }
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
