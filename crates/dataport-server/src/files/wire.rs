//! File data served off the wire, without tonic's copies.
//!
//! tonic encodes each response message into a buffer of its own, and
//! gathers each request message into another before decoding it: for a
//! 1 MiB chunk, a copy of every byte, and often a fresh buffer (the one
//! before is still queued). In profiles of 1 GiB transfers that was a
//! tenth to a seventh of the machine's time. [`Lean`](crate::lean::Lean) serves the
//! methods that carry file data itself, with [`crate::framing`]:
//!
//! - a download decodes its request, calls the service's own handler, and
//!   sends each chunk as two HTTP/2 data frames, the few bytes of gRPC
//!   prefix and field key and then the chunk as read from the disk, which
//!   the connection writes to the socket without copying;
//! - an upload hands the service's own upload code a [`Wire`] source, from
//!   which a chunk arrives as pieces of the data frames it came in, copied
//!   once, into the store's blocks.
//!
//! Every check and error stays in the service's code, shared with the
//! generated path; every other method goes to the generated code.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use dataport_proto::dataport::files::v1::files_service_server::FilesService as _;
use dataport_proto::file_srv::file_srv_server::FileSrv as _;
use dataport_proto::google::bytestream::{self, byte_stream_server::ByteStream as _};
use http::HeaderValue;
use http_body::{Body, Frame};
use prost::Message;
use prost::bytes::Bytes;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::stream::{Incoming, Source};
use super::{ByteStream, FileSrv, FileTransfer, FilesService};
use crate::framing::{Event, Framing, LoneBytes, frames, grpc_response, unary_response};
use crate::lean::{OffTheWire, Served};

impl OffTheWire for FilesService {
    const PATHS: &'static [&'static str] =
        &["/dataport.files.v1.FilesService/Download", "/dataport.files.v1.FilesService/Upload"];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        if request.uri().path().ends_with("/Upload") {
            return upload(request, move |source| async move { FilesService::upload(&this, source).await });
        }
        download(request, move |request| async move { FilesService::download(&this, request).await })
    }
}

impl OffTheWire for FileSrv {
    const PATHS: &'static [&'static str] = &["/FileSrv/DownloadFile", "/FileSrv/UploadFile"];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        if request.uri().path().ends_with("/UploadFile") {
            return upload(request, move |source| async move { this.upload(source).await });
        }
        download(request, move |request| async move { this.download_file(request).await })
    }
}

impl OffTheWire for FileTransfer {
    const PATHS: &'static [&'static str] = &["/FileTransfer.FileService/Upload"];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        upload(request, move |source| async move { FileTransfer::upload(&this, source).await })
    }
}

/// ByteStream's Write messages carry offsets with their data, never a lone
/// bytes field, so only Read is served here.
impl OffTheWire for ByteStream {
    const PATHS: &'static [&'static str] = &["/google.bytestream.ByteStream/Read"];
    fn serve(&self, request: http::Request<tonic::body::Body>) -> Served {
        let this = self.clone();
        download(request, move |request: tonic::Request<bytestream::ReadRequest>| async move {
            this.read(request).await
        })
    }
}

/// The largest request message read here, tonic's default limit: a
/// download request names files, an upload's messages are at most one
/// chunk.
const MAX_MESSAGE: usize = 4 << 20;

/// A download: its request read whole, the handler's messages sent with
/// their chunks uncopied.
fn download<Req, M, F>(
    request: http::Request<tonic::body::Body>,
    handler: impl FnOnce(tonic::Request<Req>) -> F + Send + 'static,
) -> Served
where
    Req: Message + Default + Send + 'static,
    M: LoneBytes + Send + 'static,
    F: Future<Output = Result<tonic::Response<ReceiverStream<Result<M, Status>>>, Status>> + Send,
{
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let answer = match read_request::<Req>(body).await {
            Ok(message) => {
                handler(tonic::Request::from_http(http::Request::from_parts(parts, message))).await
            }
            Err(status) => Err(status),
        };
        match answer {
            Ok(response) => {
                let body = Messages { stream: response.into_inner(), pending: None, done: false };
                grpc_response(tonic::body::Body::new(body))
            }
            Err(status) => status.into_http(),
        }
    })
}

/// An upload: the handler reads its messages from the [`Wire`], and its
/// answer is sent as one message.
fn upload<T, R, F>(
    request: http::Request<tonic::body::Body>,
    handler: impl FnOnce(Wire<T>) -> F + Send + 'static,
) -> Served
where
    T: LoneBytes + Default + Send + 'static,
    R: Message + 'static,
    F: Future<Output = Result<R, Status>> + Send,
{
    Box::pin(async move {
        let source = Wire::new(request.into_body());
        match handler(source).await {
            Ok(reply) => unary_response(&reply),
            Err(status) => status.into_http(),
        }
    })
}

/// An upload's messages read off the wire: a chunk as the pieces of the
/// data frames it arrived in.
pub(super) struct Wire<T> {
    body: tonic::body::Body,
    framing: Framing<T>,
    ended: bool,
}

impl<T: LoneBytes + Default> Wire<T> {
    fn new(body: tonic::body::Body) -> Self {
        Wire { body, framing: Framing::new(Some(T::FIELD), MAX_MESSAGE), ended: false }
    }
}

impl<T: LoneBytes + Default + Send + 'static> Source<T> for Wire<T> {
    async fn next(&mut self) -> Result<Option<Incoming<T>>, Status> {
        loop {
            if let Some(event) = self.framing.next_event() {
                return Ok(Some(match event {
                    Event::Message(message) => Incoming::Message(message),
                    Event::BytesStart => Incoming::Message(T::with_bytes(Bytes::new())),
                    Event::Bytes(bytes) => Incoming::More(bytes),
                }));
            }
            if self.ended {
                return Ok(None);
            }
            match std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await {
                None => {
                    self.ended = true;
                    if !self.framing.between_messages() {
                        return Err(Status::invalid_argument("the request stream ended inside a message"));
                    }
                }
                // The client reset the stream, or the connection broke.
                Some(Err(_)) => return Err(super::stream::reset()),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.framing.feed(data)?;
                    }
                }
            }
        }
    }
}

/// Reads the one request message of a call.
async fn read_request<M: Message + Default>(mut body: tonic::body::Body) -> Result<M, Status> {
    let mut framing = Framing::<M>::new(None, MAX_MESSAGE);
    let mut request = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            framing.feed(data)?;
        }
        while let Some(event) = framing.next_event() {
            match (event, &request) {
                (Event::Message(message), None) => request = Some(message),
                _ => {
                    return Err(Status::invalid_argument(
                        "more than one request message; the method takes one",
                    ));
                }
            }
        }
    }
    if !framing.between_messages() {
        return Err(Status::invalid_argument("the request ended inside its message"));
    }
    request.ok_or_else(|| Status::invalid_argument("no request message"))
}

/// The response body: each message framed, a lone `bytes` field as its
/// prefix and the bytes themselves, then trailers with the status.
struct Messages<M> {
    stream: ReceiverStream<Result<M, Status>>,
    /// The bytes of the field whose prefix was just sent.
    pending: Option<Bytes>,
    done: bool,
}

impl<M: LoneBytes> Body for Messages<M> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(data) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
            Some(Ok(message)) => {
                let (first, rest) = frames(message);
                self.pending = rest;
                Frame::data(first)
            }
            Some(Err(status)) => {
                self.done = true;
                let mut trailers = http::HeaderMap::new();
                status.add_header(&mut trailers)?;
                Frame::trailers(trailers)
            }
            None => {
                self.done = true;
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                Frame::trailers(trailers)
            }
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_none()
    }
}

#[cfg(test)]
mod tests {
    use dataport_proto::dataport::files::v1::{self, download_response};
    use dataport_proto::file_srv;

    use std::convert::Infallible;

    use super::*;
    use crate::framing::framed;

    /// The bytes a body sends.
    async fn sent<M: LoneBytes + Send + 'static>(
        messages: Vec<Result<M, Status>>,
    ) -> (Vec<u8>, http::HeaderMap) {
        let (tx, rx) = tokio::sync::mpsc::channel(messages.len().max(1));
        for m in messages {
            tx.send(m).await.unwrap();
        }
        drop(tx);
        let mut body = Messages { stream: ReceiverStream::new(rx), pending: None, done: false };
        let (mut data, mut trailers) = (Vec::new(), None);
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            match frame.unwrap().into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(f) => trailers = f.into_trailers().ok(),
            }
        }
        (data, trailers.expect("trailers"))
    }

    fn framed_all<M: Message>(messages: &[M]) -> Vec<u8> {
        messages.iter().flat_map(|m| framed(m).to_vec()).collect()
    }

    #[tokio::test]
    async fn messages_are_sent_as_tonic_encodes_them() {
        let chunk =
            |b: Vec<u8>| v1::DownloadResponse { kind: Some(download_response::Kind::Chunk(b.into())) };
        let file = v1::DownloadResponse {
            kind: Some(download_response::Kind::File(v1::File {
                name: "a".into(),
                size: 300,
                ..Default::default()
            })),
        };
        let messages = vec![file, chunk(vec![9; 300]), chunk(Vec::new()), chunk((0..=255).collect())];
        let (data, trailers) = sent(messages.iter().cloned().map(Ok).collect()).await;
        assert_eq!(data, framed_all(&messages));
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");

        let plain = |b: Vec<u8>| file_srv::FileResponse { chunk_data: b.into() };
        let messages = vec![plain(vec![1; 200]), plain(Vec::new()), plain(vec![2; 20_000])];
        let (data, _) = sent(messages.iter().cloned().map(Ok).collect()).await;
        assert_eq!(data, framed_all(&messages));

        let upload = |kind| v1::UploadRequest { kind: Some(kind) };
        let messages = vec![
            upload(v1::upload_request::Kind::Header(v1::UploadHeader {
                name: "a".into(),
                sha256: String::new(),
            })),
            upload(v1::upload_request::Kind::Chunk(vec![4; 1000].into())),
            upload(v1::upload_request::Kind::Chunk(Bytes::new())),
            upload(v1::upload_request::Kind::Trailer(v1::UploadTrailer {
                sha256: String::new(),
                crc32c: Some(7),
            })),
        ];
        let (data, _) = sent(messages.iter().cloned().map(Ok).collect()).await;
        assert_eq!(data, framed_all(&messages));

        let read = |b: Vec<u8>| bytestream::ReadResponse { data: b.into() };
        let messages = vec![read(vec![3; 5]), read(Vec::new())];
        let (data, _) = sent(messages.iter().cloned().map(Ok).collect()).await;
        assert_eq!(data, framed_all(&messages));
    }

    #[tokio::test]
    async fn an_error_in_the_stream_ends_it_with_that_status() {
        let messages = vec![
            Ok(file_srv::FileResponse { chunk_data: vec![1; 10].into() }),
            Err(Status::internal("disk")),
        ];
        let (data, trailers) = sent(messages).await;
        assert_eq!(data, framed_all(&[file_srv::FileResponse { chunk_data: vec![1; 10].into() }]));
        let status = Status::from_header_map(&trailers).unwrap();
        assert_eq!((status.code(), status.message()), (tonic::Code::Internal, "disk"));
    }

    #[tokio::test]
    async fn requests_are_read_whole_and_bad_framing_is_refused() {
        let request = file_srv::FileHeader { filename: "a".into(), extension: ".b".into() };
        let body = |bytes: Vec<u8>| tonic::body::Body::new(OneFrame(Some(bytes.into())));
        let good = framed(&request).to_vec();
        assert_eq!(read_request::<file_srv::FileHeader>(body(good.clone())).await.unwrap(), request);
        let e = read_request::<file_srv::FileHeader>(body(Vec::new())).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let mut compressed = good.clone();
        compressed[0] = 1;
        let e = read_request::<file_srv::FileHeader>(body(compressed)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented);
        let e =
            read_request::<file_srv::FileHeader>(body(good[..good.len() - 1].to_vec())).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("ended inside its message"), "{e:?}");
        let twice = [good.clone(), good.clone()].concat();
        let e = read_request::<file_srv::FileHeader>(body(twice)).await.unwrap_err();
        assert!(e.message().contains("more than one request message"), "{e:?}");
    }

    /// A request body of one data frame.
    struct OneFrame(Option<Bytes>);

    impl Body for OneFrame {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
        }
    }
}
