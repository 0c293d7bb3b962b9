//! Where Dataport corrects tonic (0.14): every place, and only here. Each
//! correction says why; its test drives a real tonic server on a pre-bound
//! port, without and with the correction, and checks tonic's own behaviour as
//! well as ours, so it fails the day tonic changes (and the correction can go,
//! or must follow).
//!
//! - **A request stream reset by the client is not a clean end.** tonic's
//!   `Streaming::message` answers `Ok(None)` to a request stream the client
//!   cancelled (an HTTP/2 RST_STREAM with CANCEL), exactly as when the client
//!   finished sending. An upload that trusted that would commit the part
//!   received before the client gave up (the very thing the seed service did
//!   wrong); an import would store part of a file. [`watch_end`] gives every
//!   request a [`BodyEnd`] that records how its stream really ended; every
//!   handler that commits a client stream (UploadFile, Upload, Write,
//!   ImportBars) checks it before committing, and the call log logs a call the
//!   client reset as CANCELLED, whatever the handler made of the missing
//!   request.
//! - **A call past its deadline is DEADLINE_EXCEEDED, not CANCELLED.**
//!   tonic's server reads `grpc-timeout` itself, outside every layer, and
//!   ends an expired call with CANCELLED "Timeout expired". Clients mostly
//!   report their own DEADLINE_EXCEEDED first, but when the server's answer
//!   wins the race (a handler still working at the deadline) they saw
//!   CANCELLED. Dataport serves its connections itself
//!   ([`crate::connections`]), so that timer is not in the way, and
//!   [`Deadline`] is the timer of the call layer, from the same header.
//! - **A request message over the size limit is RESOURCE_EXHAUSTED**, as gRPC
//!   specifies; tonic answers OUT_OF_RANGE "Error, decoded message length too
//!   large: found N bytes, the limit is: L bytes". [`corrected`] gives our
//!   code and a wording that names the limit; tonic's text is the only thing
//!   that tells it apart from a handler's status. tonic never decompresses a
//!   request here: dataport-wire's compression, in the call layer, undoes
//!   every encoding first, within the same limits and in the same words
//!   (tonic's own wording, "Error decompressing: size limit, of L bytes,
//!   exceeded while decompressing message", is kept in view by a test).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use dataport_wire::Tally;
use http::{HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};

// ---- A request stream reset by the client ----

/// How the request body of a call ended, as far as it has been read, and
/// how many messages it held; in every request's extensions.
#[derive(Clone, Debug, Default)]
pub struct BodyEnd(Arc<Ends>);

#[derive(Debug, Default)]
struct Ends {
    failed: AtomicBool,
    messages: AtomicU64,
}

impl BodyEnd {
    /// True once reading the body failed: the client reset the stream or
    /// the connection broke.
    pub fn failed(&self) -> bool {
        self.0.failed.load(Ordering::Acquire)
    }

    /// The request messages read so far (their prefixes, at least).
    pub fn messages(&self) -> u64 {
        self.0.messages.load(Ordering::Relaxed)
    }
}

/// Gives a request's body its [`BodyEnd`], also put in the request's
/// extensions for its handler (the call layer does this below tonic's own
/// reading of the body).
pub fn watch_end<B>(parts: &mut http::request::Parts, body: B) -> (Watched<B>, BodyEnd) {
    let end = BodyEnd::default();
    parts.extensions.insert(end.clone());
    (Watched { inner: body, end: end.clone(), tally: Tally::default() }, end)
}

pin_project_lite::pin_project! {
    /// A request body that records in its [`BodyEnd`] when reading it fails,
    /// before tonic sees the error (and may call it a clean end), and how
    /// many messages passed.
    #[derive(Debug)]
    pub struct Watched<B> {
        #[pin]
        inner: B,
        end: BodyEnd,
        tally: Tally,
    }
}

impl<B: Body<Data: AsRef<[u8]>>> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.tally.see(data.as_ref());
                    this.end.0.messages.store(this.tally.count(), Ordering::Relaxed);
                }
            }
            Some(Err(_)) => this.end.0.failed.store(true, Ordering::Release),
            None => {}
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

// ---- A call past its deadline ----

/// The client's deadline for a call: how long it gave the call
/// (`grpc-timeout`), and a timer that fires then.
#[derive(Debug)]
pub struct Deadline {
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    /// The deadline `headers` give a call that starts now, if any.
    pub fn of(headers: &HeaderMap) -> Option<Deadline> {
        let timeout = grpc_timeout(headers)?;
        Some(Deadline { timeout, timer: Box::pin(tokio::time::sleep(timeout)) })
    }

    /// Whether the deadline has passed by the clock (a timer can fire late).
    pub fn passed(&self) -> bool {
        self.timer.deadline() <= Instant::now()
    }

    /// Ready once the timer fires.
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.timer.as_mut().poll(cx)
    }

    /// What the client is told.
    pub fn status(&self) -> Status {
        Status::deadline_exceeded(format!(
            "the client's deadline ({:?} after the call began) passed before the reply",
            self.timeout
        ))
    }
}

/// The `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n).
/// Anything else is no deadline, as tonic treats it.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

// ---- A request message over the size limit ----

/// tonic's status for a request message over the size limit, as
/// RESOURCE_EXHAUSTED naming the limit; `None` for every other status.
pub fn corrected(status: &Status) -> Option<Status> {
    let message = status.message();
    let number = |s: &str| s.parse::<u64>().ok();
    let ours = match status.code() {
        Code::OutOfRange => {
            let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
            let (found, limit) = rest.strip_suffix(" bytes")?.split_once(" bytes, the limit is: ")?;
            let (found, limit) = (number(found)?, number(limit)?);
            format!("the request message is {found} bytes, over this service's limit of {limit} bytes")
        }
        _ => return None,
    };
    Some(Status::resource_exhausted(ours))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use dataport_proto::file_transfer::file_service_client::FileServiceClient;
    use dataport_proto::file_transfer::file_service_server::{FileService, FileServiceServer};
    use dataport_proto::file_transfer::{Chunk, Response};
    use dataport_proto::helloworld::greeter_client::GreeterClient;
    use dataport_proto::helloworld::greeter_server::{Greeter, GreeterServer};
    use dataport_proto::helloworld::{HelloReply, HelloRequest};
    use std::convert::Infallible;
    use std::sync::Arc;

    use dataport_wire::compression::{Compression, Decoded, Limits};
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use tonic::codec::CompressionEncoding;
    use tonic::server::NamedService;
    use tonic::transport::Channel;
    use tonic::transport::server::TcpIncoming;

    use super::*;
    use crate::connections::{self, Connection, Shared};
    use crate::router::{Routed, Router};

    /// Serves `service` on a port bound before the server starts: as tonic
    /// alone, or as Dataport serves (its connections, call layer and router).
    async fn serve<S>(service: S, fixed: bool) -> SocketAddr
    where
        S: NamedService + Clone + Send + Sync + 'static,
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
                Future: Send + 'static,
            >,
        S: tower::Service<
                http::Request<Decoded<Watched<hyper::body::Incoming>>>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
                Future = Routed,
            >,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        if fixed {
            let mut router = Router::builder();
            router.add(service);
            let shared = Arc::new(Shared {
                // Compressed requests are read within small_greeter's limit.
                compression: Compression::new(Limits { default: 64, services: Vec::new() }, None, &[]),
                auth: None,
                router: router.build(),
            });
            let limits = crate::config::Config::default().connection_limits();
            let incoming = crate::tls::incoming(listener, None, limits.handshake_timeout);
            let http = connections::http(false, &limits);
            let service = move |remote| Connection::new(Arc::clone(&shared), remote);
            let load = connections::Load::new(limits.max_calls, connections::Observers::default());
            tokio::spawn(connections::serve(incoming, http, limits, load, service, std::future::pending()));
        } else {
            let server = tonic::transport::Server::builder().add_service(service);
            tokio::spawn(server.serve_with_incoming(TcpIncoming::from(listener)));
        }
        addr
    }

    async fn connect(addr: SocketAddr) -> Channel {
        Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connects")
    }

    /// Reads a client stream in a task of its own, as the upload handlers
    /// do, and reports the first message, how the stream then ended for
    /// tonic, and what [`BodyEnd`] says (`None` without [`watch_end`]).
    #[derive(Clone)]
    struct Reader(mpsc::Sender<Result<Option<Chunk>, Status>>, mpsc::Sender<Option<bool>>);

    #[tonic::async_trait]
    impl FileService for Reader {
        async fn upload(
            &self,
            request: tonic::Request<tonic::Streaming<Chunk>>,
        ) -> Result<tonic::Response<Response>, Status> {
            let end = request.extensions().get::<BodyEnd>().cloned();
            let mut stream = request.into_inner();
            let Reader(messages, ends) = self.clone();
            let read = tokio::spawn(async move {
                let _ = messages.send(stream.message().await).await;
                let _ = messages.send(stream.message().await).await;
                let _ = ends.send(end.map(|end| end.failed())).await;
            });
            let _ = read.await;
            Ok(tonic::Response::new(Response::default()))
        }
    }

    #[tokio::test]
    async fn tonic_reports_a_request_stream_reset_by_the_client_as_a_clean_end_and_body_end_does_not() {
        for fixed in [false, true] {
            let (messages, mut received) = mpsc::channel(2);
            let (ends, mut ended) = mpsc::channel(1);
            let addr = serve(FileServiceServer::new(Reader(messages, ends)), fixed).await;
            let channel = connect(addr).await;
            let (tx, rx) = mpsc::channel(1);
            let mut client = FileServiceClient::new(channel);
            let call = tokio::spawn(async move { client.upload(ReceiverStream::new(rx)).await });
            tx.send(Chunk { data: "first".into() }).await.expect("the call takes a message");
            let first = received.recv().await.expect("the handler reads");
            assert_eq!(first.expect("a message").expect("not the end").data, "first");
            // The client gives up: tonic's client resets the stream (RST_STREAM CANCEL).
            call.abort();
            let _ = call.await;
            let next = received.recv().await.expect("the handler reads again");
            assert!(matches!(next, Ok(None)), "tonic: a clean end, {next:?} (fixed: {fixed})");
            let failed = ended.recv().await.expect("the handler reports");
            assert_eq!(failed, fixed.then_some(true));
            drop(tx);
        }
    }

    /// Answers after `delay`; a message names its size.
    struct Slow(Duration);

    #[tonic::async_trait]
    impl Greeter for Slow {
        async fn say_hello(
            &self,
            request: tonic::Request<HelloRequest>,
        ) -> Result<tonic::Response<HelloReply>, Status> {
            tokio::time::sleep(self.0).await;
            let message = format!("{} bytes", request.into_inner().name.len());
            Ok(tonic::Response::new(HelloReply { message }))
        }

        async fn say_hello_again(
            &self,
            request: tonic::Request<HelloRequest>,
        ) -> Result<tonic::Response<HelloReply>, Status> {
            self.say_hello(request).await
        }
    }

    /// The status of a SayHello call to `addr` with `grpc-timeout: 50m`,
    /// sent over HTTP/2 directly: tonic's client would end the call at the
    /// deadline itself, before the server's answer arrives.
    async fn say_hello_within_50ms(addr: SocketAddr) -> Status {
        use prost::Message as _;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connects");
        let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
        tokio::spawn(connection);
        let request = http::Request::post(format!("http://{addr}/helloworld.Greeter/SayHello"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "50m")
            .body(())
            .expect("a request");
        let (response, mut send) =
            client.ready().await.expect("ready").send_request(request, false).expect("sent");
        let message = HelloRequest { name: "late".into() }.encode_to_vec();
        let mut frame = vec![0];
        frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        frame.extend_from_slice(&message);
        send.send_data(frame.into(), true).expect("the message goes");
        let (parts, mut body) = response.await.expect("an answer").into_parts();
        if let Some(status) = Status::from_header_map(&parts.headers) {
            return status;
        }
        while body.data().await.transpose().expect("the body").is_some() {}
        let trailers = body.trailers().await.expect("trailers").expect("trailers");
        Status::from_header_map(&trailers).expect("a status")
    }

    #[tokio::test]
    async fn tonic_ends_a_call_past_its_deadline_cancelled_and_the_stack_deadline_exceeded() {
        for fixed in [false, true] {
            let addr = serve(GreeterServer::new(Slow(Duration::from_secs(60))), fixed).await;
            let status = say_hello_within_50ms(addr).await;
            if fixed {
                assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
                assert!(status.message().contains("deadline (50ms after"), "{status:?}");
            } else {
                assert_eq!((status.code(), status.message()), (Code::Cancelled, "Timeout expired"));
            }
        }
    }

    /// A greeter that takes messages of up to 64 bytes, gzip-compressed or not.
    fn small_greeter() -> GreeterServer<Slow> {
        GreeterServer::new(Slow(Duration::ZERO))
            .max_decoding_message_size(64)
            .accept_compressed(CompressionEncoding::Gzip)
    }

    #[tokio::test]
    async fn tonic_refuses_a_message_over_the_limit_out_of_range_and_the_stack_resource_exhausted() {
        for fixed in [false, true] {
            let mut client = GreeterClient::new(connect(serve(small_greeter(), fixed).await).await);
            let fits = client.say_hello(HelloRequest { name: "a".repeat(60) }).await.expect("fits");
            assert_eq!(fits.into_inner().message, "60 bytes");
            let status =
                client.say_hello(HelloRequest { name: "a".repeat(100) }).await.expect_err("too large");
            let expected = if fixed {
                (
                    Code::ResourceExhausted,
                    "the request message is 102 bytes, over this service's limit of 64 bytes",
                )
            } else {
                (
                    Code::OutOfRange,
                    "Error, decoded message length too large: found 102 bytes, the limit is: 64 bytes",
                )
            };
            assert_eq!((status.code(), status.message()), expected);
        }
    }

    #[tokio::test]
    async fn tonic_words_a_message_decompressed_past_the_limit_its_own_way_and_the_stack_names_the_limit() {
        for fixed in [false, true] {
            let channel = connect(serve(small_greeter(), fixed).await).await;
            let mut client = GreeterClient::new(channel).send_compressed(CompressionEncoding::Gzip);
            // 1000 bytes that gzip to far fewer than 64.
            let status =
                client.say_hello(HelloRequest { name: "a".repeat(1000) }).await.expect_err("too large");
            let expected = if fixed {
                "the request message is over this service's limit of 64 bytes once decompressed"
            } else {
                "Error decompressing: size limit, of 64 bytes, exceeded while decompressing message"
            };
            assert_eq!((status.code(), status.message()), (Code::ResourceExhausted, expected));
        }
    }

    #[test]
    fn other_statuses_are_not_corrected() {
        for status in [
            Status::out_of_range("start_date is out of range"),
            Status::out_of_range("Error, decoded message length too large: found many bytes"),
            Status::invalid_argument(
                "Error, decoded message length too large: found 9 bytes, the limit is: 8 bytes",
            ),
            Status::resource_exhausted("too many watchers"),
            Status::new(Code::Ok, ""),
        ] {
            assert!(corrected(&status).is_none(), "{status:?}");
        }
    }

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("a header value"));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("99999999S"), Some(Duration::from_secs(99_999_999)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("0n"), Some(Duration::ZERO));
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
        for bad in ["", "m", "100", "123456789m", "1.5S", "-1S", "10x", "1 S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
