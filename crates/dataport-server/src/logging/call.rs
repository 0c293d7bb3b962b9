//! The tower layer that writes one line per call.
//!
//! The line for a call is written when the call ends: for a unary or
//! streaming response, when its trailers (which carry `grpc-status`) leave the
//! server; for an error answered in the headers, at once; for a call the client
//! abandons, when the server drops it (logged as CANCELLED).
//!
//! Once [`super::init`] has installed the log sink, call lines skip tracing's
//! generic formatter: [`CallLines`] formats them straight into a thread-local
//! buffer, in exactly the shape tracing-subscriber gives every other line,
//! and hands the bytes to the sink. This is what keeps a line per call within
//! a few percent of a server that logs nothing. Without the sink (tests,
//! embedders with their own subscriber) they are ordinary tracing events.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};
use tonic::transport::server::TcpConnectInfo;

use super::sink::Sink;
use crate::config::LogFormat;
use crate::ended::BodyEnd;

/// The canonical name of a gRPC status code.
pub fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

/// The target every call line is logged under.
pub const TARGET: &str = "dataport::call";

/// Writes call lines straight to the sink.
#[derive(Debug)]
pub(super) struct CallLines {
    pub(super) sink: Sink,
    pub(super) format: LogFormat,
}

/// One finished call, as its line reports it.
struct Line<'a> {
    method: &'a str,
    code: &'static str,
    duration_us: u64,
    peer: Option<SocketAddr>,
    message: Option<&'a str>,
}

thread_local! {
    static LINE: RefCell<LineBuf> = RefCell::new(LineBuf::default());
}

impl CallLines {
    fn write(&self, line: &Line<'_>) {
        LINE.with_borrow_mut(|out| {
            out.buf.clear();
            match self.format {
                LogFormat::Text => text(out, line),
                LogFormat::Json => json(out, line),
            }
            self.sink.append(|pending| pending.extend_from_slice(&out.buf));
        });
    }
}

/// A line being built, plus what the last line on this thread already
/// worked out: the formatted second, the peer, and a method known to need no
/// JSON escaping (consecutive calls on a thread mostly share all three).
/// Everything appends bytes directly: `core::fmt` would cost more than the
/// rest of the call.
struct LineBuf {
    buf: Vec<u8>,
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS.` for `second`.
    stamp: [u8; 20],
    peer: Option<SocketAddr>,
    peer_text: Vec<u8>,
    plain_method: Vec<u8>,
}

impl Default for LineBuf {
    fn default() -> Self {
        LineBuf {
            buf: Vec::with_capacity(256),
            second: u64::MAX,
            stamp: [0; 20],
            peer: None,
            peer_text: Vec::new(),
            plain_method: Vec::new(),
        }
    }
}

impl LineBuf {
    fn push(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, n: impl itoa::Integer) {
        self.push(itoa::Buffer::new().format(n));
    }

    /// `t` as RFC 3339 UTC with microseconds, as tracing writes times.
    fn time(&mut self, t: SystemTime) {
        let since_epoch = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let second = since_epoch.as_secs();
        if second != self.second {
            let whole = humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + since_epoch).to_string();
            if let Some(date_time) = whole.as_bytes().get(..19) {
                self.stamp[..19].copy_from_slice(date_time);
                self.stamp[19] = b'.';
                self.second = second;
            }
        }
        self.buf.extend_from_slice(&self.stamp);
        let mut micros = since_epoch.subsec_micros();
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        self.buf.extend_from_slice(&digits);
        self.buf.push(b'Z');
    }

    fn peer(&mut self, peer: SocketAddr) {
        if self.peer != Some(peer) {
            let text = &mut self.peer_text;
            text.clear();
            match peer {
                SocketAddr::V4(v4) => {
                    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                        if i > 0 {
                            text.push(b'.');
                        }
                        text.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                    }
                    text.push(b':');
                    text.extend_from_slice(itoa::Buffer::new().format(v4.port()).as_bytes());
                }
                // Writing into a Vec cannot fail.
                SocketAddr::V6(v6) => drop(write!(text, "{v6}")),
            }
            self.peer = Some(peer);
        }
        self.buf.extend_from_slice(&self.peer_text);
    }

    /// `s` as a JSON string.
    fn json_str(&mut self, s: &str) {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.buf.push(b'"');
            self.push(s);
            self.buf.push(b'"');
        } else {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.buf, s);
        }
    }

    /// The method as a JSON string; methods repeat, so the last one that
    /// needed no escaping is remembered.
    fn json_method(&mut self, method: &str) {
        if method.as_bytes() == self.plain_method.as_slice() {
            self.buf.push(b'"');
            self.buf.extend_from_slice(&self.plain_method);
            self.buf.push(b'"');
            return;
        }
        let start = self.buf.len();
        self.json_str(method);
        if self.buf.len() - start == method.len() + 2 {
            self.plain_method.clear();
            self.plain_method.extend_from_slice(method.as_bytes());
        }
    }
}

/// The shape of tracing-subscriber's default text format, without colour.
fn text(out: &mut LineBuf, line: &Line<'_>) {
    out.time(SystemTime::now());
    out.push("  INFO ");
    out.push(TARGET);
    out.push(": method=");
    out.push(line.method);
    out.push(" code=");
    out.push(line.code);
    out.push(" duration_us=");
    out.int(line.duration_us);
    if let Some(peer) = line.peer {
        out.push(" peer=");
        out.peer(peer);
    }
    if let Some(message) = line.message {
        // Quoted and escaped, so a message cannot forge a line.
        let _ = write!(out.buf, " message={message:?}");
    }
    out.buf.push(b'\n');
}

/// The shape of tracing-subscriber's JSON format.
fn json(out: &mut LineBuf, line: &Line<'_>) {
    out.push("{\"timestamp\":\"");
    out.time(SystemTime::now());
    out.push("\",\"level\":\"INFO\",\"fields\":{\"method\":");
    out.json_method(line.method);
    out.push(",\"code\":\"");
    out.push(line.code);
    out.push("\",\"duration_us\":");
    out.int(line.duration_us);
    if let Some(peer) = line.peer {
        out.push(",\"peer\":\"");
        out.peer(peer);
        out.buf.push(b'"');
    }
    if let Some(message) = line.message {
        out.push(",\"message\":");
        out.json_str(message);
    }
    out.push("},\"target\":\"");
    out.push(TARGET);
    out.push("\"}\n");
}

/// A tower layer that logs every call: method, status code, duration, peer.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallLogLayer;

impl<S> tower::Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> CallLog<S> {
        CallLog { inner }
    }
}

/// See [`CallLogLayer`].
#[derive(Clone, Debug)]
pub struct CallLog<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for CallLog<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: Body,
{
    type Response = http::Response<CallLogBody<ResBody>>;
    type Error = S::Error;
    type Future = CallLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let call = PendingCall {
            method: req.uri().path_and_query().cloned(),
            peer: req.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr),
            end: req.extensions().get::<BodyEnd>().cloned(),
            start: Instant::now(),
            done: false,
        };
        CallLogFuture { inner: self.inner.call(req), call: Some(call) }
    }
}

/// A call whose line is not written yet; dropping it unfinished logs CANCELLED.
#[derive(Debug)]
struct PendingCall {
    method: Option<http::uri::PathAndQuery>,
    peer: Option<SocketAddr>,
    /// How the request body ended; see [`Self::log`].
    end: Option<BodyEnd>,
    start: Instant,
    done: bool,
}

impl PendingCall {
    fn finish(mut self, code: tonic::Code, message: Option<&str>) {
        self.log(code as i32, message);
    }

    /// Writes the call's line, once. A call whose client reset its request
    /// stream failed because the client gave up (or its connection broke):
    /// whatever error the handler then made of a missing or cut-off request
    /// (tonic hands it a clean end, see [`crate::ended`]), and the client
    /// never received, the line says CANCELLED.
    fn log(&mut self, mut code: i32, mut message: Option<&str>) {
        self.done = true;
        if code != tonic::Code::Ok as i32 && self.end.as_ref().is_some_and(BodyEnd::failed) {
            code = tonic::Code::Cancelled as i32;
            message = Some("the client reset its request stream (it cancelled, or its connection broke)");
        }
        let message = message.map(|m| percent_encoding::percent_decode_str(m).decode_utf8_lossy());
        let line = Line {
            method: self.method.as_ref().map_or("", |m| m.path()),
            code: code_name(code),
            duration_us: u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX),
            peer: self.peer,
            message: message.as_deref(),
        };
        match super::CALL_LINES.get() {
            Some(lines) => lines.write(&line),
            None => {
                let Line { method, code, duration_us, peer, message } = line;
                let peer = peer.map(tracing::field::display);
                tracing::info!(target: TARGET, %method, %code, duration_us, peer, message)
            }
        }
    }

    /// Finishes the call from the `grpc-status` in `headers`, if there is one.
    fn finish_from(self, headers: &HeaderMap) -> Option<Self> {
        const STATUS: HeaderName = HeaderName::from_static("grpc-status");
        const MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
        let Some(status) = headers.get(STATUS) else {
            return Some(self);
        };
        let code = match status.as_bytes() {
            b"0" => 0,
            other => std::str::from_utf8(other)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(tonic::Code::Unknown as i32),
        };
        let message = if code == 0 { None } else { headers.get(MESSAGE).and_then(|m| m.to_str().ok()) };
        let mut call = self;
        call.log(code, message);
        None
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if !self.done {
            self.log(tonic::Code::Cancelled as i32, Some("the call ended before its response did"));
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CallLog`].
    #[derive(Debug)]
    pub struct CallLogFuture<F> {
        #[pin]
        inner: F,
        call: Option<PendingCall>,
    }
}

impl<F, ResBody, E> Future for CallLogFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: Body,
{
    type Output = Result<http::Response<CallLogBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                let (parts, inner) = response.into_parts();
                // Only a trailers-only response (an empty body) carries its
                // status in the headers; others carry it in the trailers.
                let call = match call {
                    Some(call) if inner.is_end_stream() => call.finish_from(&parts.headers),
                    call => call,
                };
                Ok(http::Response::from_parts(parts, CallLogBody { inner, call }))
            }
            Err(e) => {
                if let Some(call) = call {
                    call.finish(tonic::Code::Internal, Some("the service failed before answering"));
                }
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that logs its call when the trailers pass.
    #[derive(Debug)]
    pub struct CallLogBody<B> {
        #[pin]
        inner: B,
        call: Option<PendingCall>,
    }
}

impl<B: Body> Body for CallLogBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref() {
                    *this.call = this.call.take().and_then(|call| call.finish_from(trailers));
                }
            }
            Some(Err(_)) => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Internal, Some("the response body failed"));
                }
            }
            None => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Unknown, Some("the response ended without a grpc-status"));
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: Option<&str>) -> Line<'_> {
        Line {
            method: "/helloworld.Greeter/SayHello",
            code: "NOT_FOUND",
            duration_us: 42,
            peer: Some(SocketAddr::from(([127, 0, 0, 1], 5000))),
            message,
        }
    }

    fn render(format: fn(&mut LineBuf, &Line<'_>), line: &Line<'_>) -> Vec<u8> {
        let mut out = LineBuf::default();
        format(&mut out, line);
        out.buf
    }

    #[test]
    fn json_lines_have_tracing_subscribers_shape_and_escape_the_message() {
        let buf = render(json, &line(Some("bad \"x\"\nnext")));
        assert_eq!(buf.last(), Some(&b'\n'));
        assert_eq!(buf.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "dataport::call");
        let ts = v["timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(
            v["fields"],
            serde_json::json!({
                "method": "/helloworld.Greeter/SayHello",
                "code": "NOT_FOUND",
                "duration_us": 42,
                "peer": "127.0.0.1:5000",
                "message": "bad \"x\"\nnext",
            })
        );
    }

    #[test]
    fn text_lines_read_like_tracing_subscribers_and_stay_on_one_line() {
        let s = String::from_utf8(render(text, &line(Some("two\nlines")))).unwrap();
        let (ts, rest) = s.split_once("  ").unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(
            rest,
            "INFO dataport::call: method=/helloworld.Greeter/SayHello code=NOT_FOUND duration_us=42 \
             peer=127.0.0.1:5000 message=\"two\\nlines\"\n"
        );
        let buf = render(text, &Line { peer: None, ..line(None) });
        assert!(String::from_utf8(buf).unwrap().ends_with("code=NOT_FOUND duration_us=42\n"));
    }

    #[test]
    fn times_match_rfc3339_with_microseconds() {
        let mut out = LineBuf::default();
        let base = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_244_844);
        for offset_us in [0, 42, 999_999, 1_000_000, 1_000_001, 86_400_000_123] {
            let t = base + std::time::Duration::from_micros(offset_us);
            out.buf.clear();
            out.time(t);
            assert_eq!(String::from_utf8_lossy(&out.buf), humantime::format_rfc3339_micros(t).to_string());
        }
        out.buf.clear();
        out.time(base);
        assert_eq!(out.buf, b"2026-11-21T07:07:24.000000Z");
    }

    #[test]
    fn remembered_peers_and_methods_never_leak_into_other_lines() {
        let mut out = LineBuf::default();
        let mut render_with = |method: &str, port: u16| {
            out.buf.clear();
            let line = Line { method, peer: Some(SocketAddr::from(([10, 0, 0, 1], port))), ..line(None) };
            json(&mut out, &line);
            serde_json::from_slice::<serde_json::Value>(&out.buf).unwrap()["fields"].clone()
        };
        for (method, port) in [("/a/B", 1), ("/a/B", 1), ("/a/\"C", 2), ("/a/B", 2), ("/d/E", 65535)] {
            let fields = render_with(method, port);
            assert_eq!(fields["method"], method);
            assert_eq!(fields["peer"], format!("10.0.0.1:{port}"));
        }
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 80));
        let buf = render(text, &Line { peer: Some(v6), ..line(None) });
        assert!(String::from_utf8(buf).unwrap().ends_with(" peer=[::1]:80\n"));
    }

    #[test]
    fn code_names_are_canonical() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(14), "UNAVAILABLE");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(17), "UNKNOWN");
        assert_eq!(code_name(-1), "UNKNOWN");
    }
}
