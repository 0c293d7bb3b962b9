//! Compressed calls against a real server: requests in gzip, deflate and
//! zstd on tonic's path and on the methods served off the wire, the limits
//! on what they decompress to, and compressed responses.

use crate::common;

use common::assert_status;
use common::files::{bytes, hex_sha256};
use dataport_proto::dataport::files::v1 as files;
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;
use dataport_proto::file_srv::file_srv_client::FileSrvClient;
use dataport_proto::file_srv::{self, FileHeader};
use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;
use dataport_proto::pb;
use dataport_proto::pb::outliers_client::OutliersClient;
use dataport_proto::routeguide::Point;
use dataport_proto::routeguide::route_guide_client::RouteGuideClient;
use dataport_server::config::ResponseCompression;
use tonic::Code;
use tonic::codec::CompressionEncoding;

const EVERY: [CompressionEncoding; 3] =
    [CompressionEncoding::Gzip, CompressionEncoding::Deflate, CompressionEncoding::Zstd];

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

/// A FileSrv upload of `name.bin`: its header, then `chunks`.
fn upload_of(name: &str, chunks: &[&[u8]]) -> Vec<file_srv::UploadRequest> {
    use file_srv::upload_request::Request;
    let header = Request::Header(FileHeader { filename: name.into(), extension: ".bin".into() });
    std::iter::once(header)
        .chain(chunks.iter().map(|c| Request::ChunkData(c.to_vec().into())))
        .map(|r| file_srv::UploadRequest { request: Some(r) })
        .collect()
}

#[tokio::test]
async fn every_encoding_is_read_on_tonics_path_and_accept_encoding_is_advertised() {
    let server = common::start().await;
    for encoding in EVERY {
        let mut greeter = GreeterClient::new(server.channel().await).send_compressed(encoding);
        let reply = greeter.say_hello(hello("zip")).await.unwrap();
        assert_eq!(reply.get_ref().message, "Hello, zip!", "{encoding:?}");
        let accepted = reply.metadata().get("grpc-accept-encoding").expect("advertised");
        assert_eq!(accepted, "gzip,deflate,zstd");

        // A client stream, several compressed messages in one call.
        let mut route = RouteGuideClient::new(server.channel().await).send_compressed(encoding);
        let points = [Point { latitude: 0, longitude: 0 }, Point { latitude: 10_000_000, longitude: 0 }];
        let summary = route.record_route(tokio_stream::iter(points)).await.unwrap().into_inner();
        assert_eq!(summary.point_count, 2, "{encoding:?}");
        assert!(summary.distance > 0, "{encoding:?}");
    }
}

#[tokio::test]
async fn detect_read_off_the_wire_answers_the_same_compressed() {
    let server = common::start().await;
    // numpy: a = np.array(VALUES); np.where(np.abs(a - a.mean()) > 2 * a.std())[0] -> [9]
    let values = [10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 11.0, 9.0, 10.0, 45.0, 10.0, 11.0];
    let metrics: Vec<_> =
        values.iter().map(|&value| pb::Metric { time: None, name: "cpu".into(), value }).collect();
    // Large enough that the server decompresses it on the blocking pool.
    let many: Vec<_> = (0..200_000)
        .map(|i| pb::Metric { time: None, name: format!("s{}", i % 7), value: (i % 13) as f64 })
        .collect();
    let plain = OutliersClient::new(server.channel().await)
        .max_encoding_message_size(usize::MAX)
        .detect(pb::OutliersRequest { metrics: many.clone() })
        .await
        .unwrap()
        .into_inner();
    for encoding in EVERY {
        let mut client = OutliersClient::new(server.channel().await)
            .send_compressed(encoding)
            .max_encoding_message_size(usize::MAX);
        let reply = client.detect(pb::OutliersRequest { metrics: metrics.clone() }).await.unwrap();
        assert_eq!(reply.into_inner().indices, [9], "{encoding:?}");
        let reply = client.detect(pb::OutliersRequest { metrics: many.clone() }).await.unwrap();
        assert_eq!(reply.into_inner(), plain, "{encoding:?}");
    }
}

#[tokio::test]
async fn uploads_read_off_the_wire_store_the_same_bytes_compressed() {
    let server = common::start().await;
    let data = bytes(3 << 20, 7);
    for (i, encoding) in EVERY.into_iter().enumerate() {
        let mut client = FileSrvClient::new(server.channel().await).send_compressed(encoding);
        let messages = upload_of(&format!("z{i}"), &[&data[..1 << 20], &data[1 << 20..]]);
        client.upload_file(tokio_stream::iter(messages)).await.unwrap();

        let mut v1 = FilesServiceClient::new(server.channel().await).send_compressed(encoding);
        let request = files::DownloadRequest { names: vec![format!("z{i}.bin")] };
        let mut stream = v1.download(request).await.unwrap().into_inner();
        let mut got = Vec::new();
        while let Some(message) = stream.message().await.unwrap() {
            if let Some(files::download_response::Kind::Chunk(chunk)) = message.kind {
                got.extend_from_slice(&chunk);
            }
        }
        assert_eq!(got.len(), data.len(), "{encoding:?}");
        assert_eq!(hex_sha256(&got), hex_sha256(&data), "{encoding:?}");
    }
}

#[tokio::test]
async fn a_message_that_decompresses_past_the_limit_is_resource_exhausted_naming_it() {
    let server = common::start().await;
    // 5 MiB of one letter: a few KiB compressed, over the 4 MiB limit once inflated.
    let name = "a".repeat(5 << 20);
    for encoding in EVERY {
        let mut greeter = GreeterClient::new(server.channel().await)
            .send_compressed(encoding)
            .max_encoding_message_size(usize::MAX);
        let result = greeter.say_hello(hello(&name)).await;
        assert_status(result, Code::ResourceExhausted, &["limit of 4194304 bytes"]);

        let files = FileSrvClient::new(server.channel().await).send_compressed(encoding);
        let mut files = files.max_encoding_message_size(usize::MAX);
        let result = files.upload_file(tokio_stream::iter(upload_of("bomb", &[&[0; 5 << 20]]))).await;
        assert_status(result, Code::ResourceExhausted, &["limit of 4194304 bytes"]);
    }
    // Nothing was stored.
    let mut v1 = FilesServiceClient::new(server.channel().await);
    let listed = v1.list(files::ListRequest::default()).await.unwrap().into_inner();
    assert!(listed.files.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn an_unknown_encoding_is_unimplemented_listing_what_is_accepted() {
    let server = common::start().await;
    let mut greeter =
        GreeterClient::with_interceptor(server.channel().await, |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("grpc-encoding", "snappy".parse().expect("ascii"));
            Ok(request)
        });
    let result = greeter.say_hello(hello("x")).await;
    assert_status(result, Code::Unimplemented, &["\"snappy\"", "gzip, deflate or zstd"]);
}

#[tokio::test]
async fn responses_are_compressed_when_asked_and_accepted_but_file_data_never() {
    let (mut config, dir) = common::config();
    config.response_compression = ResponseCompression::Gzip;
    let server = common::start_with(config, dir).await;

    let accepting = GreeterClient::new(server.channel().await).accept_compressed(CompressionEncoding::Gzip);
    let reply = accepting.clone().say_hello(hello("zip")).await.unwrap();
    assert_eq!(reply.get_ref().message, "Hello, zip!");
    assert_eq!(reply.metadata().get("grpc-encoding").expect("compressed"), "gzip");

    let plain = GreeterClient::new(server.channel().await).say_hello(hello("zip")).await.unwrap();
    assert!(plain.metadata().get("grpc-encoding").is_none(), "{:?}", plain.metadata());
    // A client that accepts only zstd gets no gzip.
    let zstd_only = GreeterClient::new(server.channel().await).accept_compressed(CompressionEncoding::Zstd);
    let reply = zstd_only.clone().say_hello(hello("zip")).await.unwrap();
    assert!(reply.metadata().get("grpc-encoding").is_none());

    let data = bytes(100_000, 3);
    let mut files = FileSrvClient::new(server.channel().await).accept_compressed(CompressionEncoding::Gzip);
    let upload = upload_of("f", &[&data]);
    let reply = files.upload_file(tokio_stream::iter(upload)).await.unwrap();
    assert_eq!(reply.metadata().get("grpc-encoding").expect("the answer is compressed"), "gzip");
    let download =
        files.download_file(FileHeader { filename: "f".into(), extension: ".bin".into() }).await.unwrap();
    assert!(download.metadata().get("grpc-encoding").is_none(), "file data is sent plain");
    let mut stream = download.into_inner();
    let mut got = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        got.extend_from_slice(&m.chunk_data);
    }
    assert!(got == data);
}

#[tokio::test]
async fn the_configured_message_limit_holds_on_every_path_compressed_or_not() {
    let (mut config, dir) = common::config();
    config.max_message_size = 1024;
    let server = common::start_with(config, dir).await;
    let name = "a".repeat(2000);
    // tonic's path, plain and compressed.
    let greeter = GreeterClient::new(server.channel().await).max_encoding_message_size(usize::MAX);
    let result = greeter.clone().say_hello(hello(&name)).await;
    assert_status(result, Code::ResourceExhausted, &["limit of 1024 bytes"]);
    let result = greeter.send_compressed(CompressionEncoding::Gzip).say_hello(hello(&name)).await;
    assert_status(result, Code::ResourceExhausted, &["limit of 1024 bytes"]);
    assert_eq!(
        GreeterClient::new(server.channel().await)
            .say_hello(hello("short"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "Hello, short!"
    );
    // An upload read off the wire: a chunk over the limit, plain and compressed.
    for encoding in [None, Some(CompressionEncoding::Zstd)] {
        let mut client = FileSrvClient::new(server.channel().await);
        if let Some(encoding) = encoding {
            client = client.send_compressed(encoding);
        }
        let upload = upload_of("big", &[&[0; 2000]]);
        let result = client.upload_file(tokio_stream::iter(upload)).await;
        assert_status(result, Code::ResourceExhausted, &["limit of 1024 bytes"]);
    }
}
