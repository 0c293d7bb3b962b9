//! One line per call: the record of a call in flight ([`Call`]) and the
//! formatter of its line.
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
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use dataport_wire::Tally;

use super::Audit;
use super::sink::Sink;
use super::trace::{TraceId, TraceParent};
use crate::auth::Caller;
use crate::config::LogFormat;
use crate::connections::ActiveCall;
use crate::metrics::{Handled, MethodId};
use crate::tls::Peer;
use crate::tonic_fixes::BodyEnd;
use crate::traces::Finished;

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
    /// When it finished.
    at: Instant,
    method: &'a str,
    code: &'static str,
    duration_us: u64,
    peer: Option<SocketAddr>,
    /// Who called: a token's or a client certificate's name, or `anonymous`.
    caller: &'a str,
    /// The trace the client said the call is part of.
    trace_id: Option<&'a str>,
    message: Option<&'a str>,
}

thread_local! {
    static LINE: RefCell<LineBuf> = RefCell::new(LineBuf::default());
}

/// A runtime thread hands the lines it holds to the sink once they reach
/// this size, or when it parks, whichever comes first.
const BATCH: usize = 16 * 1024;

impl CallLines {
    fn write(&self, line: &Line<'_>) {
        LINE.with_borrow_mut(|out| {
            match self.format {
                LogFormat::Text => text(out, line),
                LogFormat::Json => json(out, line),
            }
            if !out.holds || out.buf.len() >= BATCH {
                self.hand_over(out);
            }
        });
    }

    fn hand_over(&self, out: &mut LineBuf) {
        if !out.buf.is_empty() {
            self.sink.append(|pending| pending.extend_from_slice(&out.buf));
            out.buf.clear();
        }
    }
}

/// For the runtime's `on_thread_park`: hands the lines this thread holds to
/// the sink, and lets it hold the lines of the calls it finishes until it
/// next parks (or holds [`BATCH`] bytes). A busy thread so takes the sink's
/// lock once per many calls, and an idle one never holds a line. A thread
/// that never parks (one not of the runtime) holds none.
pub fn parked() {
    hand_over(true);
}

/// For the runtime's `on_thread_stop`: hands the lines this thread holds to
/// the sink, and holds no more.
pub fn stopped() {
    hand_over(false);
}

fn hand_over(holds: bool) {
    let Some(lines) = super::CALL_LINES.get() else {
        return;
    };
    let _ = LINE.try_with(|out| {
        if let Ok(mut out) = out.try_borrow_mut() {
            out.holds = holds;
            lines.hand_over(&mut out);
        }
    });
}

/// The lines a thread holds, plus what the last line on this thread already
/// worked out: the formatted second, the peer, and a method known to need no
/// JSON escaping (consecutive calls on a thread mostly share all three), and
/// the wall clock's reading against the monotonic one, so that a line reads
/// one clock, not two. Everything appends bytes directly: `core::fmt` would
/// cost more than the rest of the call.
struct LineBuf {
    buf: Vec<u8>,
    /// Whether lines stay in `buf` until the thread parks (see [`parked`]).
    holds: bool,
    /// The wall clock (microseconds since the Unix epoch) at a monotonic
    /// instant, read again each second.
    clock: Option<(Instant, u64)>,
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS.` for `second`.
    stamp: [u8; 20],
    /// Peers as text, by port ([`PEER_SLOTS`] of them): a thread serves
    /// the calls of many connections in turn.
    peers: Vec<(Option<SocketAddr>, Vec<u8>)>,
    plain_method: Vec<u8>,
}

/// How many peers' texts a thread keeps.
const PEER_SLOTS: usize = 64;

impl Default for LineBuf {
    fn default() -> Self {
        LineBuf {
            buf: Vec::with_capacity(256),
            holds: false,
            clock: None,
            second: u64::MAX,
            stamp: [0; 20],
            peers: Vec::new(),
            plain_method: Vec::new(),
        }
    }
}

/// `t` in microseconds since the Unix epoch (0 before it).
fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl LineBuf {
    fn push(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// The wall-clock time at `at`, in microseconds since the Unix epoch.
    fn wall(&mut self, at: Instant) -> u64 {
        if let Some((base, micros)) = self.clock
            && let Some(since) = at.checked_duration_since(base)
            && since.as_secs() == 0
        {
            return micros + u64::from(since.subsec_micros());
        }
        let micros = unix_micros(SystemTime::now());
        self.clock = Some((at, micros));
        micros
    }

    fn int(&mut self, n: impl itoa::Integer) {
        self.push(itoa::Buffer::new().format(n));
    }

    /// `micros` since the Unix epoch as RFC 3339 UTC with microseconds, as
    /// tracing writes times.
    fn time(&mut self, micros: u64) {
        let second = micros / 1_000_000;
        if second != self.second {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(second);
            let whole = humantime::format_rfc3339_seconds(at).to_string();
            if let Some(date_time) = whole.as_bytes().get(..19) {
                self.stamp[..19].copy_from_slice(date_time);
                self.stamp[19] = b'.';
                self.second = second;
            }
        }
        self.buf.extend_from_slice(&self.stamp);
        let mut micros = micros % 1_000_000;
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        self.buf.extend_from_slice(&digits);
        self.buf.push(b'Z');
    }

    fn peer(&mut self, peer: SocketAddr) {
        if self.peers.is_empty() {
            self.peers.resize(PEER_SLOTS, (None, Vec::new()));
        }
        let (known, text) = &mut self.peers[usize::from(peer.port()) % PEER_SLOTS];
        if *known != Some(peer) {
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
            *known = Some(peer);
        }
        self.buf.extend_from_slice(text);
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

    /// The code, the duration and the peer (if known), which every format
    /// writes alike: `before` holds what goes before each, and after the peer.
    fn fields(&mut self, line: &Line<'_>, before: [&str; 4]) {
        let [code, duration_us, peer, after_peer] = before;
        self.push(code);
        self.push(line.code);
        self.push(duration_us);
        self.int(line.duration_us);
        if let Some(addr) = line.peer {
            self.push(peer);
            self.peer(addr);
            self.push(after_peer);
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
    let wall = out.wall(line.at);
    out.time(wall);
    out.push("  INFO ");
    out.push(TARGET);
    out.push(": method=");
    out.push(line.method);
    out.fields(line, [" code=", " duration_us=", " peer=", ""]);
    out.push(" caller=");
    if line.caller.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b)) {
        out.push(line.caller);
    } else {
        // Quoted and escaped, as a message is.
        let _ = write!(out.buf, "{:?}", line.caller);
    }
    if let Some(trace_id) = line.trace_id {
        out.push(" trace_id=");
        out.push(trace_id);
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
    let wall = out.wall(line.at);
    out.time(wall);
    out.push("\",\"level\":\"INFO\",\"fields\":{\"method\":");
    out.json_method(line.method);
    out.fields(line, [",\"code\":\"", "\",\"duration_us\":", ",\"peer\":\"", "\""]);
    out.push(",\"caller\":");
    out.json_str(line.caller);
    if let Some(trace_id) = line.trace_id {
        out.push(",\"trace_id\":\"");
        out.push(trace_id);
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

/// A call whose line is not written yet; dropping it unfinished logs
/// CANCELLED. [`crate::stack`] starts one per request and finishes it when the
/// call's status leaves the server.
#[derive(Debug)]
pub(crate) struct Call {
    method: Option<http::uri::PathAndQuery>,
    peer: Option<SocketAddr>,
    /// None for `anonymous`.
    caller: Option<Arc<str>>,
    /// For a write, its audit line's object.
    audit: Audit,
    /// How the request body ended; see [`Self::finish`].
    end: BodyEnd,
    start: Instant,
    done: bool,
    /// Whether the server exports spans (so that a call of one that does
    /// not never looks).
    traced: bool,
    /// From the request's `traceparent` (boxed: most calls have none, and
    /// every call's futures carry this struct).
    parent: Option<Box<TraceParent>>,
    /// Counts the call on its connection while it is under way; the way
    /// to the metrics.
    active: Option<ActiveCall>,
    /// The method, when the metrics count calls.
    counted: Option<MethodId>,
    /// The response messages sent, when counted.
    sent: Tally,
}

impl Call {
    /// A call of `request`, which needs `need` ([`crate::auth::need`]), by
    /// `caller` as auth knows them, else the name of its client
    /// certificate, else anonymous. A write gets an [`Audit`] in its
    /// extensions, for its handler.
    pub(crate) fn start(
        request: &mut http::request::Parts,
        peer: Option<&Peer>,
        active: Option<ActiveCall>,
        end: BodyEnd,
        need: Option<crate::auth::Need>,
        caller: Option<Caller>,
        parent: Option<TraceParent>,
    ) -> Call {
        let audit = match need {
            Some(crate::auth::Need::Scope(_, crate::auth::Access::Write)) => {
                let audit = Audit::write();
                request.extensions.insert(audit.clone());
                audit
            }
            _ => Audit::default(),
        };
        let caller = match caller {
            Some(caller) => Some(caller.0),
            None => peer.and_then(|p| p.certificate_name.clone()),
        };
        let metrics = active.as_ref().and_then(ActiveCall::metrics);
        let counted = metrics.and_then(|m| m.method(request.uri.path()));
        if let (Some(metrics), Some(id)) = (metrics, counted) {
            metrics.started(id);
        }
        Call {
            method: request.uri.path_and_query().cloned(),
            peer: peer.and_then(|p| p.addr),
            caller,
            audit,
            end,
            start: Instant::now(),
            done: false,
            traced: active.as_ref().and_then(ActiveCall::spans).is_some(),
            parent: parent.map(Box::new),
            active,
            counted,
            sent: Tally::default(),
        }
    }

    /// Counts the messages in `data`, the next bytes of the response body.
    pub(crate) fn sent(&mut self, data: &[u8]) {
        if self.counted.is_some() {
            self.sent.see(data);
        }
    }

    /// Writes the call's line (`message` is empty for none). A call whose
    /// client reset its request stream failed because the client gave up (or
    /// its connection broke): whatever error the handler then made of a
    /// missing or cut-off request (tonic hands it a clean end, see
    /// [`crate::tonic_fixes`]), and the client never received, the line says
    /// CANCELLED.
    pub(crate) fn finish(mut self, code: tonic::Code, message: &str) {
        self.log(code, message);
    }

    fn log(&mut self, mut code: tonic::Code, mut message: &str) {
        self.done = true;
        if code != tonic::Code::Ok && self.end.failed() {
            code = tonic::Code::Cancelled;
            message = "the client reset its request stream (it cancelled, or its connection broke)";
        }
        let at = Instant::now();
        let elapsed = at.saturating_duration_since(self.start);
        let method = self.method.as_ref().map_or("", |m| m.path());
        let caller = self.caller.as_deref();
        let mut trace = self.parent.as_ref().map(|p| p.trace);
        if self.traced
            && let Some(spans) = self.active.as_ref().and_then(ActiveCall::spans)
        {
            let end = SystemTime::now();
            let finished = Finished {
                path: method,
                code,
                message,
                start: end - elapsed,
                end,
                peer: self.peer,
                caller,
                parent: self.parent.as_deref().copied(),
            };
            trace = spans.record(&finished).and_then(TraceId::from_u128);
        }
        if let Some(id) = self.counted
            && let Some(metrics) = self.active.as_ref().and_then(ActiveCall::metrics)
        {
            let handled = Handled {
                code,
                elapsed,
                received: self.end.messages(),
                sent: self.sent.count(),
                caller: self.caller.as_ref(),
            };
            metrics.handled(id, handled);
        }
        let line = Line {
            at,
            method,
            code: code_name(code as i32),
            duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            peer: self.peer,
            caller: caller.unwrap_or("anonymous"),
            trace_id: trace.as_ref().map(TraceId::as_str),
            message: (code != tonic::Code::Ok && !message.is_empty()).then_some(message),
        };
        if self.audit.is_write() {
            self.audit.log(line.caller, line.method, line.code, line.message);
        }
        match super::CALL_LINES.get() {
            Some(lines) => lines.write(&line),
            None => {
                let Line { method, code, duration_us, peer, caller, trace_id, message, .. } = line;
                let peer = peer.map(tracing::field::display);
                tracing::info!(target: TARGET, %method, %code, duration_us, peer, caller, trace_id, message)
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            self.log(tonic::Code::Cancelled, "the call ended before its response did");
        }
    }
}

#[cfg(test)]
mod tests;
