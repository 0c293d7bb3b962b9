use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::assert_status;
use common::files::{bytes, cuttable_proxy, hex_sha256, odd_pieces, stored_files};
use dataport_proto::file_srv::file_srv_client::FileSrvClient;
use dataport_proto::file_srv::upload_request::Request as Part;
use dataport_proto::file_srv::{FileHeader, UploadRequest};
use tonic::Code;
use tonic::transport::Channel;

/// A server, a client, and where the server keeps its files.
async fn start() -> (common::TestServer, FileSrvClient<Channel>, PathBuf) {
    common::files::serve(|_| {}, FileSrvClient::new).await
}

fn header(filename: &str, extension: &str) -> UploadRequest {
    UploadRequest {
        request: Some(Part::Header(FileHeader { filename: filename.into(), extension: extension.into() })),
    }
}

fn chunk(data: &[u8]) -> UploadRequest {
    UploadRequest { request: Some(Part::ChunkData(data.to_vec().into())) }
}

/// A header for `name`, then `data` in chunks of odd sizes.
fn upload_messages(filename: &str, extension: &str, data: &[u8]) -> Vec<UploadRequest> {
    std::iter::once(header(filename, extension)).chain(odd_pieces(data).into_iter().map(chunk)).collect()
}

async fn upload(
    client: &mut FileSrvClient<Channel>,
    messages: Vec<UploadRequest>,
) -> Result<String, tonic::Status> {
    client.upload_file(tokio_stream::iter(messages)).await.map(|r| r.into_inner().message)
}

/// The file's content and the sizes of the messages it came in.
async fn download(
    client: &mut FileSrvClient<Channel>,
    filename: &str,
    extension: &str,
) -> Result<(Vec<u8>, Vec<usize>), tonic::Status> {
    let request = FileHeader { filename: filename.into(), extension: extension.into() };
    common::files::collect(client.download_file(request).await?.into_inner(), |m| &m.chunk_data).await
}

#[tokio::test]
async fn uploaded_bytes_download_unchanged_with_size_and_sha256_in_the_answer() {
    let (_server, mut client, _) = start().await;
    let data = bytes(3 * 1024 * 1024 + 12_345, 1);
    let message = upload(&mut client, upload_messages("report", ".pdf", &data)).await.unwrap();
    assert_eq!(message, format!("stored \"report.pdf\": {} bytes, sha256 {}", data.len(), hex_sha256(&data)));

    let (got, sizes) = download(&mut client, "report", ".pdf").await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "downloaded bytes differ");
    // Every chunk fits the 4 MiB a default gRPC client accepts.
    assert!(sizes.iter().all(|&s| s > 0 && s < 4 * 1024 * 1024), "{sizes:?}");
    // The same name, split differently, is the same file.
    assert_eq!(download(&mut client, "repo", "rt.pdf").await.unwrap().0.len(), data.len());
}

#[tokio::test]
async fn a_header_alone_stores_an_empty_file() {
    let (_server, mut client, _) = start().await;
    let message = upload(&mut client, vec![header("empty", "")]).await.unwrap();
    assert_eq!(message, format!("stored \"empty\": 0 bytes, sha256 {}", hex_sha256(b"")));
    assert_eq!(download(&mut client, "empty", "").await.unwrap(), (vec![], vec![]));
}

#[tokio::test]
async fn a_second_upload_replaces_the_first() {
    let (_server, mut client, _) = start().await;
    upload(&mut client, upload_messages("data", ".bin", &bytes(500_000, 2))).await.unwrap();
    let second = bytes(70_000, 3);
    let message = upload(&mut client, upload_messages("data", ".bin", &second)).await.unwrap();
    assert!(message.contains("70000 bytes"), "{message}");
    assert!(download(&mut client, "data", ".bin").await.unwrap().0 == second);
}

#[tokio::test]
async fn a_missing_file_is_not_found_naming_it() {
    let (_server, mut client, _) = start().await;
    assert_status(download(&mut client, "nothing", ".txt").await, Code::NotFound, &["nothing.txt"]);
}

#[tokio::test]
async fn a_chunk_before_the_header_is_refused_and_nothing_stored() {
    let (_server, mut client, files) = start().await;
    let messages = vec![chunk(b"early"), header("a", ".txt"), chunk(b"late")];
    assert_status(upload(&mut client, messages).await, Code::InvalidArgument, &["chunk_data", "header"]);
    assert_status(download(&mut client, "a", ".txt").await, Code::NotFound, &["a.txt"]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_second_header_is_refused_and_nothing_stored() {
    let (_server, mut client, files) = start().await;
    let messages = vec![header("a", ".txt"), chunk(b"some"), header("b", ".txt"), chunk(b"more")];
    assert_status(
        upload(&mut client, messages).await,
        Code::InvalidArgument,
        &["message 3", "second header"],
    );
    assert_status(download(&mut client, "a", ".txt").await, Code::NotFound, &[]);
    assert_status(download(&mut client, "b", ".txt").await, Code::NotFound, &[]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_chunk_over_the_message_limit_is_resource_exhausted_and_nothing_stored() {
    let (_server, client, files) = start().await;
    let mut client = client.max_encoding_message_size(64 << 20);
    let messages = vec![header("a", ".bin"), chunk(b"before"), chunk(&vec![7; 5 << 20])];
    assert_status(
        upload(&mut client, messages).await,
        Code::ResourceExhausted,
        &["5242885 bytes", "4194304"],
    );
    assert_status(download(&mut client, "a", ".bin").await, Code::NotFound, &[]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

/// A request body of the bytes given, in one data frame.
struct Raw(Option<prost::bytes::Bytes>);

impl http_body::Body for Raw {
    type Data = prost::bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, tonic::Status>>> {
        std::task::Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }
}

#[tokio::test]
async fn a_stream_that_ends_inside_a_chunk_is_refused_and_nothing_stored() {
    use prost::Message;
    use tonic::client::GrpcService;
    let (server, mut client, files) = start().await;
    // A header, then a chunk message whose prefix says 100 bytes, of which 10 come.
    let header = header("a", ".bin").encode_to_vec();
    let mut wire = vec![0];
    wire.extend_from_slice(&(header.len() as u32).to_be_bytes());
    wire.extend_from_slice(&header);
    wire.extend_from_slice(&[0, 0, 0, 0, 102, 0x12, 100]);
    wire.extend_from_slice(&[5; 10]);
    let mut request = http::Request::new(tonic::body::Body::new(Raw(Some(wire.into()))));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static("/FileSrv/UploadFile");
    let headers = request.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
    let mut channel = server.channel().await;
    std::future::poll_fn(|cx| GrpcService::poll_ready(&mut channel, cx)).await.unwrap();
    let response = GrpcService::call(&mut channel, request).await.unwrap();
    let status = tonic::Status::from_header_map(response.headers()).expect("a status in the headers");
    assert_status(Err::<(), _>(status), Code::InvalidArgument, &["ended inside a message"]);
    assert_status(download(&mut client, "a", ".bin").await, Code::NotFound, &[]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_empty_stream_is_refused() {
    let (_server, mut client, files) = start().await;
    assert_status(upload(&mut client, vec![]).await, Code::InvalidArgument, &["empty stream", "header"]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn hostile_names_are_refused_naming_the_problem_and_nothing_stored() {
    let (_server, mut client, files) = start().await;
    let cases: &[(&str, &str, &str)] = &[
        ("../x", "", "path separator"),
        ("..", "/x", "path separator"),
        ("a/b", "", "path separator"),
        ("a\\b", "", "path separator"),
        ("", "", "must not be empty"),
        (".", "", "names a directory"),
        ("..", "", "names a directory"),
        ("\0", "", "NUL"),
        ("a", "\n", "control character"),
    ];
    for &(filename, extension, problem) in cases {
        let messages = vec![header(filename, extension), chunk(b"payload")];
        assert_status(
            upload(&mut client, messages).await,
            Code::InvalidArgument,
            &["header: file name", problem],
        );
        assert_status(download(&mut client, filename, extension).await, Code::InvalidArgument, &[problem]);
    }
    let long = "n".repeat(256);
    assert_status(
        upload(&mut client, vec![header(&long, ""), chunk(b"x")]).await,
        Code::InvalidArgument,
        &["256 bytes", "255"],
    );
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
    // Nothing escaped the data dir either.
    let data_dir = files.parent().expect("files is inside the data dir");
    assert!(!data_dir.join("x").exists() && !data_dir.parent().expect("tempdir").join("x").exists());
}

#[tokio::test]
async fn a_client_cut_off_mid_upload_leaves_nothing_visible() {
    let (server, mut client, files) = start().await;
    let (proxy, cut) = cuttable_proxy(server.addr).await;
    let channel =
        Channel::from_shared(format!("http://{proxy}")).expect("uri").connect().await.expect("connects");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call = tokio::spawn(async move {
        FileSrvClient::new(channel).upload_file(tokio_stream::wrappers::ReceiverStream::new(rx)).await
    });
    tx.send(header("partial", ".bin")).await.unwrap();
    for i in 0..8 {
        tx.send(chunk(&bytes(100_000, i))).await.unwrap();
    }
    // Wait until the upload's temporary file exists, so the server has begun it.
    let tmp = files.join(".tmp");
    common::until("the upload starts", || !stored_files(&tmp).is_empty()).await;
    // The request stream never ends cleanly: the connection is cut under it.
    cut.abort();
    let _ = cut.await;
    assert!(call.await.expect("call task joins").is_err(), "a cut-off upload must not succeed");
    drop(tx);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert_status(download(&mut client, "partial", ".bin").await, Code::NotFound, &["partial.bin"]);
        if stored_files(&files).is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "left behind: {:?}", stored_files(&files));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn file_transfer_upload_stores_under_a_generated_name_it_answers() {
    use dataport_proto::file_transfer::Chunk;
    use dataport_proto::file_transfer::file_service_client::FileServiceClient;

    let (server, mut files, _) = start().await;
    let mut client = FileServiceClient::new(server.channel().await);
    let data = bytes(500_000, 9);
    let chunks: Vec<Chunk> = data.chunks(65_536).map(|c| Chunk { data: c.to_vec().into() }).collect();
    let first = client.upload(tokio_stream::iter(chunks.clone())).await.unwrap().into_inner().message;
    let second = client.upload(tokio_stream::iter(chunks)).await.unwrap().into_inner().message;
    assert_ne!(first, second, "every upload gets a name of its own");
    // stored "upload-...": 500000 bytes, sha256 ...
    let name = first.split('"').nth(1).expect("the answer quotes the name");
    assert!(name.starts_with("upload-"), "{first}");
    assert_eq!(first, format!("stored {name:?}: 500000 bytes, sha256 {}", hex_sha256(&data)));
    // The seed FileSrv downloads it (no extension).
    assert_eq!(download(&mut files, name, "").await.unwrap().0, data);
    // An empty upload is an empty file, like a header-only UploadFile.
    let empty = client.upload(tokio_stream::iter(Vec::<Chunk>::new())).await.unwrap().into_inner().message;
    assert!(empty.contains(": 0 bytes"), "{empty}");
}
