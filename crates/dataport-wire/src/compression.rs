//! Compressed gRPC, for every method alike: [`Compression`] undoes a
//! request's `grpc-encoding` before any service sees it, and compresses
//! responses when the server is told to and the client accepts it. It is two
//! steps, not a layer of its own, so that the server's one call layer takes
//! them (one future and one body a call, however many concerns).
//!
//! Requests: a call in gzip, deflate or zstd has each compressed message
//! gathered (at most the method's limit, as sent), decompressed (at most
//! the limit again, so a bomb costs bounded memory: RESOURCE_EXHAUSTED
//! naming the limit), and handed on as an uncompressed message, with
//! `grpc-encoding` removed; tonic's generated services and the methods
//! served off the wire then read plain gRPC, with the same limits and
//! errors as ever. Large messages are decompressed on the blocking pool.
//! An unknown encoding is UNIMPLEMENTED, naming what is accepted, as gRPC
//! specifies; every response advertises `grpc-accept-encoding`.
//!
//! Responses: with an encoding set, each response message of a call whose
//! `grpc-accept-encoding` lists it is compressed, except the methods named
//! plain (file data and images: compressing them costs time for nothing).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Either;
use prost::bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;
use tonic::Status;

use crate::codec::{ACCEPTED, Encoding};
use crate::reader::{Piece, Reader, prefix};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// A compressed message at least this long is decompressed on the blocking
/// pool: about a millisecond of work.
const BLOCKING_FROM: usize = 64 << 10;

/// The largest request message of each method, as the services enforce it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The limit of every service not named.
    pub default: usize,
    /// Services (by full name, `pb.Outliers`) with a limit of their own.
    pub services: Vec<(&'static str, usize)>,
}

impl Limits {
    /// The limit of the method at `path` (`/pb.Outliers/Detect`).
    pub fn of(&self, path: &str) -> usize {
        let service = path.strip_prefix('/').and_then(|p| p.split_once('/')).map(|(s, _)| s);
        self.services.iter().find(|(name, _)| Some(*name) == service).map_or(self.default, |&(_, l)| l)
    }
}

/// What the server does about compression: the two steps a call layer
/// takes, [`Compression::request`] and [`Compression::response`].
#[derive(Debug)]
pub struct Compression {
    limits: Limits,
    /// The encoding responses are compressed in, if any.
    respond: Option<Encoding>,
    /// The methods whose responses are never compressed.
    plain: &'static [&'static str],
}

/// A request's body once its encoding is undone: the body itself when it
/// came uncompressed (nearly every call), else re-framed, out of line so
/// that the common case stays small.
pub type Decoded<B> = Either<B, Pin<Box<Reframed<B>>>>;

/// What [`Compression::request`] decided for a call's response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Respond(Option<Encoding>);

impl Compression {
    /// Reads compressed requests within `limits`; compresses responses in
    /// `respond` (if set), except those of the `plain` methods.
    pub fn new(limits: Limits, respond: Option<Encoding>, plain: &'static [&'static str]) -> Self {
        Compression { limits, respond, plain }
    }

    /// Undoes a request's `grpc-encoding`, `encoding` (the caller found it
    /// in `parts`' headers; this removes it), and decides whether its
    /// response is compressed. An encoding not accepted is UNIMPLEMENTED,
    /// naming those that are.
    pub fn request<B>(
        &self,
        parts: &mut http::request::Parts,
        encoding: Option<&HeaderValue>,
        body: B,
    ) -> Result<(Decoded<B>, Respond), Status> {
        let encoding = match encoding {
            None => None,
            Some(name) => Encoding::from_name(name.as_bytes())?,
        };
        let respond = self.respond.filter(|e| {
            !self.plain.contains(&parts.uri.path())
                && parts.headers.get(&ACCEPT_ENCODING).is_some_and(|a| e.listed_in(a.as_bytes()))
        });
        let body = match encoding {
            None => Either::Left(body),
            Some(encoding) => {
                parts.headers.remove(&ENCODING);
                let limit = self.limits.of(parts.uri.path());
                Either::Right(Box::pin(Reframed::new(body, Mode::Decompress(encoding), limit)))
            }
        };
        Ok((body, Respond(respond)))
    }

    /// Advertises the accepted encodings in a response's headers, and
    /// compresses its body as `respond` says unless the service answered
    /// with its status in the headers or compressed the body itself.
    pub fn response<B>(respond: Respond, parts: &mut http::response::Parts, body: B) -> Out<B> {
        advertise(&mut parts.headers);
        match respond.0 {
            Some(encoding)
                if !parts.headers.contains_key("grpc-status") && !parts.headers.contains_key(&ENCODING) =>
            {
                parts.headers.insert(ENCODING, HeaderValue::from_static(encoding.name()));
                let inner = Box::pin(Reframed::new(body, Mode::Compress(encoding), usize::MAX));
                Out::Compressed { inner }
            }
            _ => Out::Plain { inner: body },
        }
    }
}

/// Lists the accepted encodings (`grpc-accept-encoding`) in `headers`, as
/// every response does, a refusal included.
pub fn advertise(headers: &mut HeaderMap) {
    headers.entry(ACCEPT_ENCODING).or_insert(HeaderValue::from_static(ACCEPTED));
}

pin_project_lite::pin_project! {
    /// A response body: as the service sent it, with each message
    /// compressed, or empty (a refusal in the headers).
    #[project = OutProj]
    pub enum Out<B> {
        Plain { #[pin] inner: B },
        Compressed { inner: Pin<Box<Reframed<B>>> },
        Empty,
    }
}

/// An empty body: what a refusal in the headers sends.
impl<B> Default for Out<B> {
    fn default() -> Self {
        Out::Empty
    }
}

impl<B> Body for Out<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            OutProj::Plain { inner } => inner.poll_frame(cx).map_err(Into::into),
            OutProj::Compressed { inner } => inner.as_mut().poll_frame(cx),
            OutProj::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Out::Plain { inner } => inner.is_end_stream(),
            Out::Compressed { inner } => inner.is_end_stream(),
            Out::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Out::Plain { inner } => inner.size_hint(),
            Out::Compressed { .. } => SizeHint::default(),
            Out::Empty => SizeHint::with_exact(0),
        }
    }
}

/// What a [`Reframed`] body does to the messages it carries.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// A request in this encoding: compressed messages are decompressed.
    Decompress(Encoding),
    /// A response in this encoding: plain messages are compressed.
    Compress(Encoding),
}

pin_project_lite::pin_project! {
    /// A body whose messages are re-framed as they pass: each one `mode`
    /// changes is gathered whole (at most the reader's limit) and handed on
    /// changed; every other one is handed on piece by piece as it comes.
    pub struct Reframed<B> {
        #[pin]
        inner: B,
        mode: Mode,
        reader: Reader,
        // The message being gathered to change (`None` while passing one on).
        gathering: Option<BytesMut>,
        // What to hand on, in order.
        out: VecDeque<Queued>,
        ended: bool,
    }
}

/// A frame to hand on, or a large message still being decompressed on the
/// blocking pool.
enum Queued {
    Ready(Bytes),
    Working(JoinHandle<Result<Bytes, Status>>),
}

impl<B> Reframed<B> {
    fn new(inner: B, mode: Mode, limit: usize) -> Self {
        Reframed {
            inner,
            mode,
            reader: Reader::new(limit),
            gathering: None,
            out: VecDeque::new(),
            ended: false,
        }
    }
}

impl<B> std::fmt::Debug for Reframed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reframed").field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// The frames of a message changed to `compressed`: its prefix, then its bytes.
fn framed(compressed: bool, message: Bytes) -> [Option<Queued>; 2] {
    let prefix = Queued::Ready(Bytes::copy_from_slice(&prefix(compressed, message.len())));
    [Some(prefix), (!message.is_empty()).then_some(Queued::Ready(message))]
}

impl Mode {
    /// Whether a message with this compressed flag is changed.
    fn changes(self, compressed: bool) -> bool {
        matches!((self, compressed), (Mode::Decompress(_), true) | (Mode::Compress(_), false))
    }

    /// The changed message, queued: compressed at once; decompressed at once
    /// when small, else on the blocking pool.
    fn change(self, message: BytesMut, limit: usize, out: &mut VecDeque<Queued>) -> Result<(), Status> {
        match self {
            Mode::Compress(encoding) => {
                out.extend(framed(true, encoding.compress(&message)).into_iter().flatten())
            }
            Mode::Decompress(encoding) if message.len() >= BLOCKING_FROM => {
                out.push_back(Queued::Working(tokio::task::spawn_blocking(move || {
                    encoding.decompress(&message, limit)
                })))
            }
            Mode::Decompress(encoding) => {
                out.extend(framed(false, encoding.decompress(&message, limit)?).into_iter().flatten())
            }
        }
        Ok(())
    }
}

impl<B> Body for Reframed<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            match this.out.front_mut() {
                Some(Queued::Ready(_)) => {
                    if let Some(Queued::Ready(data)) = this.out.pop_front() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Some(Queued::Working(working)) => {
                    let done = ready!(Pin::new(working).poll(cx));
                    this.out.pop_front();
                    let message =
                        done.map_err(|e| Status::internal(format!("decompressing failed: {e}")))??;
                    for frame in framed(false, message).into_iter().flatten().rev() {
                        this.out.push_front(frame);
                    }
                    continue;
                }
                None => {}
            }
            if *this.ended {
                return Poll::Ready(None);
            }
            let frame = match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    *this.ended = true;
                    if !this.reader.between_messages() {
                        let cut = Status::invalid_argument("the stream ended inside a message");
                        return Poll::Ready(Some(Err(cut.into())));
                    }
                    continue;
                }
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            let (mode, limit) = (*this.mode, this.reader.limit());
            let (gathering, out) = (&mut *this.gathering, &mut *this.out);
            this.reader.feed(data, |piece| {
                match piece {
                    Piece::Start(h) if mode.changes(h.compressed) => {
                        *gathering = Some(BytesMut::with_capacity(h.len))
                    }
                    Piece::Start(h) => {
                        out.push_back(Queued::Ready(Bytes::copy_from_slice(&prefix(h.compressed, h.len))))
                    }
                    Piece::Data(d) => match gathering {
                        Some(buf) => buf.extend_from_slice(&d),
                        None => out.push_back(Queued::Ready(d)),
                    },
                    Piece::End => {
                        if let Some(message) = gathering.take() {
                            mode.change(message, limit, out)?;
                        }
                    }
                }
                Ok(())
            })?;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.out.is_empty()
    }
}
