//! Downloads sent without tonic's encoding copy.
//!
//! tonic encodes each response message into a buffer of its own: for a
//! 1 MiB chunk, a copy of every byte, and often a fresh buffer (the one
//! before is still queued for the connection). In a profile of a 1 GiB
//! download that was about a twentieth of the machine's time. [`Uncopied`]
//! serves a download method itself: it decodes the request, calls the
//! service's own handler (every check and error stays there), and sends
//! each message that is a single `bytes` field as two HTTP/2 data frames:
//! the few bytes of gRPC prefix and field key, then the chunk as read from
//! the disk, which the connection writes to the socket without copying.
//! Every other method goes to the generated code.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use dataport_proto::dataport::files::v1;
use dataport_proto::file_srv;
use dataport_proto::google::bytestream;
use futures_util::future::BoxFuture;
use http::HeaderValue;
use http_body::{Body, Frame};
use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::server::NamedService;

use crate::framing::{LoneBytes, frames};

/// What a download handler answers: its stream of messages, or a refusal.
pub type Answer<M> = BoxFuture<'static, Result<tonic::Response<ReceiverStream<Result<M, Status>>>, Status>>;

/// A download method whose messages [`Uncopied`] sends.
pub trait Download: Clone + Send + Sync + 'static {
    /// The method's path, e.g. `/FileSrv/DownloadFile`.
    const PATH: &'static str;
    type Request: Message + Default + Send + 'static;
    type Response: LoneBytes + Send + 'static;
    /// The service's own handler.
    fn download(&self, request: tonic::Request<Self::Request>) -> Answer<Self::Response>;
}

impl Download for super::FilesV1 {
    const PATH: &'static str = "/dataport.files.v1.FilesService/Download";
    type Request = v1::DownloadRequest;
    type Response = v1::DownloadResponse;
    fn download(&self, request: tonic::Request<Self::Request>) -> Answer<Self::Response> {
        use v1::files_service_server::FilesService;
        let this = self.clone();
        Box::pin(async move { FilesService::download(&this, request).await })
    }
}

impl Download for super::FileSrvCompat {
    const PATH: &'static str = "/FileSrv/DownloadFile";
    type Request = file_srv::FileHeader;
    type Response = file_srv::FileResponse;
    fn download(&self, request: tonic::Request<Self::Request>) -> Answer<Self::Response> {
        use file_srv::file_srv_server::FileSrv;
        let this = self.clone();
        Box::pin(async move { this.download_file(request).await })
    }
}

impl Download for super::ByteStreamFiles {
    const PATH: &'static str = "/google.bytestream.ByteStream/Read";
    type Request = bytestream::ReadRequest;
    type Response = bytestream::ReadResponse;
    fn download(&self, request: tonic::Request<Self::Request>) -> Answer<Self::Response> {
        use bytestream::byte_stream_server::ByteStream;
        let this = self.clone();
        Box::pin(async move { this.read(request).await })
    }
}

/// Serves `D::PATH` with [`Uncopied`] messages and everything else through
/// `inner`.
#[derive(Clone, Debug)]
pub struct Uncopied<S, D> {
    inner: S,
    download: D,
}

impl<S, D> Uncopied<S, D> {
    pub fn new(inner: S, download: D) -> Self {
        Uncopied { inner, download }
    }
}

impl<S: NamedService, D> NamedService for Uncopied<S, D> {
    const NAME: &'static str = S::NAME;
}

/// The largest download request read: a request names files, and tonic's
/// default limit is 4 MiB.
const MAX_REQUEST: usize = 4 << 20;

impl<S, D, B> tower::Service<http::Request<B>> for Uncopied<S, D>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
    D: Download,
    B: Body + Send + 'static,
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
        let download = self.download.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let answer = match read_request::<D::Request, B>(body).await {
                Ok(message) => {
                    let request = tonic::Request::from_http(http::Request::from_parts(parts, message));
                    download.download(request).await
                }
                Err(status) => Err(status),
            };
            Ok(match answer {
                Ok(response) => {
                    let body = Messages { stream: response.into_inner(), pending: None, done: false };
                    let mut response = http::Response::new(tonic::body::Body::new(body));
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                    response
                }
                Err(status) => status.into_http(),
            })
        })
    }
}

/// Reads the one request message of a call.
async fn read_request<M: Message + Default, B>(body: B) -> Result<M, Status>
where
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame =
            frame.map_err(|e| Status::internal(format!("reading the request failed: {}", e.into())))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.remaining() > 5 + MAX_REQUEST {
                return Err(Status::resource_exhausted(format!(
                    "the request is larger than the limit of {MAX_REQUEST} bytes"
                )));
            }
            buf.put(data);
        }
    }
    let Some((&[flag, l0, l1, l2, l3], message)) = buf.split_first_chunk::<5>() else {
        return Err(Status::invalid_argument("no request message"));
    };
    if flag != 0 {
        return Err(Status::unimplemented(format!(
            "the request has compression flag {flag}; this server takes uncompressed messages"
        )));
    }
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if len != message.len() {
        return Err(Status::invalid_argument(format!(
            "the request message is {len} bytes by its prefix, but {} bytes followed it",
            message.len()
        )));
    }
    M::decode(message).map_err(|e| Status::invalid_argument(format!("the request cannot be decoded: {e}")))
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
    use dataport_proto::dataport::files::v1::download_response;

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
        let body = |bytes: Vec<u8>| OneFrame(Some(bytes.into()));
        let good = framed(&request).to_vec();
        assert_eq!(read_request::<file_srv::FileHeader, _>(body(good.clone())).await.unwrap(), request);
        let e = read_request::<file_srv::FileHeader, _>(body(Vec::new())).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let mut compressed = good.clone();
        compressed[0] = 1;
        let e = read_request::<file_srv::FileHeader, _>(body(compressed)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unimplemented);
        let e =
            read_request::<file_srv::FileHeader, _>(body(good[..good.len() - 1].to_vec())).await.unwrap_err();
        assert!(e.message().contains("bytes followed it"), "{e:?}");
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
