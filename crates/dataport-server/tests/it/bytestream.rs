//! google.bytestream.ByteStream over the file store: resumable writes,
//! offset reads, and every way a Write can end.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::assert_status;
use common::files::{bytes, cuttable_proxy, hex_sha256, stored_files};
use dataport_proto::google::bytestream::byte_stream_client::ByteStreamClient;
use dataport_proto::google::bytestream::{QueryWriteStatusRequest, ReadRequest, WriteRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

type Client = ByteStreamClient<Channel>;

/// A server, a client, and where the server keeps its files.
async fn start() -> (common::TestServer, Client, PathBuf) {
    common::files::serve(|_| {}, ByteStreamClient::new).await
}

fn upload(id: &str, name: &str) -> String {
    format!("uploads/{id}/files/{name}")
}

/// `data` as it goes from `offset`, in `chunk`-byte messages: the first names
/// `resource`, and the last has `finish` (an empty `data` is one message).
fn messages(resource: &str, offset: usize, data: &[u8], chunk: usize, finish: bool) -> Vec<WriteRequest> {
    let mut out: Vec<WriteRequest> = data
        .chunks(chunk)
        .scan(offset, |at, piece| {
            let message = WriteRequest {
                resource_name: String::new(),
                write_offset: *at as i64,
                finish_write: false,
                data: piece.to_vec().into(),
            };
            *at += piece.len();
            Some(message)
        })
        .collect();
    if out.is_empty() {
        out.push(WriteRequest { write_offset: offset as i64, ..Default::default() });
    }
    out[0].resource_name = resource.to_owned();
    if let Some(last) = out.last_mut() {
        last.finish_write = finish;
    }
    out
}

async fn write(client: &mut Client, messages: Vec<WriteRequest>) -> Result<i64, tonic::Status> {
    client.write(tokio_stream::iter(messages)).await.map(|r| r.into_inner().committed_size)
}

async fn query(client: &mut Client, resource: &str) -> Result<(i64, bool), tonic::Status> {
    let request = QueryWriteStatusRequest { resource_name: resource.to_owned() };
    client.query_write_status(request).await.map(|r| {
        let r = r.into_inner();
        (r.committed_size, r.complete)
    })
}

/// The bytes a Read answers, and the sizes of its messages.
async fn read_parts(
    client: &mut Client,
    resource: &str,
    read_offset: i64,
    read_limit: i64,
) -> Result<(Vec<u8>, Vec<usize>), tonic::Status> {
    let request = ReadRequest { resource_name: resource.to_owned(), read_offset, read_limit };
    common::files::collect(client.read(request).await?.into_inner(), |m| &m.data).await
}

async fn read(client: &mut Client, name: &str) -> Result<Vec<u8>, tonic::Status> {
    read_parts(client, &format!("files/{name}"), 0, 0).await.map(|(data, _)| data)
}

/// Waits until the server has written some of upload `id` to its data file.
async fn until_some_written(files: &Path, id: &str) {
    let path = files.join(".tmp/resumable").join(id);
    common::until("the upload reaches the disk", || std::fs::metadata(&path).map_or(0, |m| m.len()) > 0)
        .await;
}

/// What a client does after its Write was cut off: asks where to continue
/// and confirms it with an empty Write there, again while the server is still
/// winding the old call down (ABORTED) or its size still moves (OUT_OF_RANGE).
async fn resume_point(client: &mut Client, resource: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (size, complete) = query(client, resource).await.expect("the upload is known");
        assert!(!complete, "a cut-off upload must not be finished");
        match write(client, messages(resource, size as usize, &[], 1, false)).await {
            Ok(confirmed) => {
                assert_eq!(confirmed, size);
                return size as u64;
            }
            Err(e) if matches!(e.code(), Code::Aborted | Code::OutOfRange) => {
                assert!(tokio::time::Instant::now() < deadline, "never settled: {e:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("resuming failed: {e:?}"),
        }
    }
}

#[tokio::test]
async fn a_write_in_one_go_is_stored_and_reads_back() {
    let (_server, mut client, files) = start().await;
    let data = bytes(3 * 1024 * 1024 + 4321, 1);
    let resource = upload("one-go", "report.pdf");
    let committed = write(&mut client, messages(&resource, 0, &data, 100_003, true)).await.unwrap();
    assert_eq!(committed, data.len() as i64);
    assert!(read(&mut client, "report.pdf").await.unwrap() == data, "read back differs");
    assert_eq!(query(&mut client, &resource).await.unwrap(), (data.len() as i64, true));
    // The resumable data became the file: nothing else is left behind.
    assert_eq!(stored_files(&files).len(), 1, "{:?}", stored_files(&files));
}

#[tokio::test]
async fn an_empty_upload_is_an_empty_file() {
    let (_server, mut client, _) = start().await;
    let resource = upload("empty", "empty.txt");
    assert_eq!(write(&mut client, messages(&resource, 0, &[], 1, true)).await.unwrap(), 0);
    assert_eq!(read(&mut client, "empty.txt").await.unwrap(), b"");
    assert_eq!(query(&mut client, &resource).await.unwrap(), (0, true));
}

#[tokio::test]
async fn a_write_in_pieces_over_several_calls_resumes_from_query_write_status() {
    let (_server, mut client, _) = start().await;
    let data = bytes(1_000_000, 2);
    let resource = upload("pieces", "pieces.bin");
    assert_status(
        query(&mut client, &resource).await,
        Code::NotFound,
        &["\"pieces\"", "start a Write at offset 0"],
    );
    let mut at = 0;
    for end in [1, 65_536, 300_000, 300_000, 999_999] {
        let (size, complete) =
            if at == 0 { (0, false) } else { query(&mut client, &resource).await.unwrap() };
        assert_eq!((size, complete), (at as i64, false));
        // A stream that ends without finish_write answers what is now durable.
        let committed =
            write(&mut client, messages(&resource, at, &data[at..end], 40_000, false)).await.unwrap();
        assert_eq!(committed, end as i64);
        at = end;
        assert_status(read(&mut client, "pieces.bin").await, Code::NotFound, &["pieces.bin"]);
    }
    let committed = write(&mut client, messages(&resource, at, &data[at..], 40_000, true)).await.unwrap();
    assert_eq!(committed, data.len() as i64);
    assert!(read(&mut client, "pieces.bin").await.unwrap() == data);
    assert_eq!(query(&mut client, &resource).await.unwrap(), (1_000_000, true));
}

#[tokio::test]
async fn bad_offsets_are_out_of_range_naming_expected_and_got_and_keep_the_data() {
    let (_server, mut client, _) = start().await;
    let resource = upload("offsets", "offsets.bin");
    // A new upload starts at 0.
    assert_status(
        write(&mut client, messages(&resource, 5, b"data", 10, true)).await,
        Code::OutOfRange,
        &["offset 5", "has 0 bytes", "continue at 0"],
    );
    write(&mut client, messages(&resource, 0, b"0123456789", 4, false)).await.unwrap();
    // Resuming before or past the committed size.
    for wrong in [0, 9, 11] {
        assert_status(
            write(&mut client, messages(&resource, wrong, b"abc", 10, true)).await,
            Code::OutOfRange,
            &[&format!("offset {wrong}"), "has 10 bytes", "continue at 10"],
        );
    }
    // A gap or an overlap between messages of one call.
    let mut gap = messages(&resource, 10, b"abcdef", 3, true);
    gap[1].write_offset = 14;
    assert_status(write(&mut client, gap).await, Code::OutOfRange, &["offset 14", "continue at 13"]);
    let mut overlap = messages(&resource, 13, b"defghi", 3, true);
    overlap[1].write_offset = 15;
    assert_status(write(&mut client, overlap).await, Code::OutOfRange, &["offset 15", "continue at 16"]);
    let mut negative = messages(&resource, 16, b"x", 3, true);
    negative[0].write_offset = -1;
    assert_status(write(&mut client, negative).await, Code::OutOfRange, &["write_offset -1", "negative"]);
    // What each call wrote before its bad message is kept.
    assert_eq!(query(&mut client, &resource).await.unwrap(), (16, false));
    assert_eq!(write(&mut client, messages(&resource, 16, b"!", 1, true)).await.unwrap(), 17);
    assert_eq!(read(&mut client, "offsets.bin").await.unwrap(), b"0123456789abcdef!");
}

#[tokio::test]
async fn a_sha256_in_the_name_must_match_or_nothing_is_stored() {
    let (_server, mut client, files) = start().await;
    let data = bytes(500_000, 3);
    let wrong = hex_sha256(b"something else");
    let resource = format!("{}/sha256/{wrong}", upload("digest", "checked.bin"));
    assert_status(
        write(&mut client, messages(&resource, 0, &data, 65_536, true)).await,
        Code::DataLoss,
        &["sha256 mismatch", &wrong, &hex_sha256(&data), "nothing was stored"],
    );
    assert_status(read(&mut client, "checked.bin").await, Code::NotFound, &[]);
    assert_status(query(&mut client, &resource).await, Code::NotFound, &[]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());

    // Given in pieces, the digest of the whole is checked at the end.
    let right = format!("{}/sha256/{}", upload("digest-2", "checked.bin"), hex_sha256(&data));
    write(&mut client, messages(&right, 0, &data[..200_000], 65_536, false)).await.unwrap();
    let committed =
        write(&mut client, messages(&right, 200_000, &data[200_000..], 65_536, true)).await.unwrap();
    assert_eq!(committed, data.len() as i64);
    assert!(read(&mut client, "checked.bin").await.unwrap() == data);
}

#[tokio::test]
async fn reads_take_offsets_and_limits() {
    let (_server, mut client, _) = start().await;
    let data = bytes(700_000, 4);
    write(&mut client, messages(&upload("r", "read.bin"), 0, &data, 1 << 20, true)).await.unwrap();
    let name = "files/read.bin";
    let cases: &[(i64, i64, std::ops::Range<usize>)] = &[
        (0, 0, 0..700_000),
        (0, 1, 0..1),
        (1, 0, 1..700_000),
        (123_456, 300_000, 123_456..423_456),
        (699_999, 0, 699_999..700_000),
        (699_999, 5, 699_999..700_000),
        (0, 10_000_000, 0..700_000),
        (700_000, 0, 700_000..700_000),
        (700_000, 3, 700_000..700_000),
    ];
    for (offset, limit, range) in cases.iter().cloned() {
        let (got, sizes) = read_parts(&mut client, name, offset, limit).await.unwrap();
        assert!(got == data[range.clone()], "offset {offset} limit {limit}: {} bytes", got.len());
        assert!(sizes.iter().all(|&s| s > 0 && s <= 4 << 20), "{sizes:?}");
    }
    assert_status(
        read_parts(&mut client, name, 700_001, 0).await,
        Code::OutOfRange,
        &["read_offset 700001", "past the end", "700000 bytes"],
    );
    assert_status(
        read_parts(&mut client, name, -1, 0).await,
        Code::OutOfRange,
        &["read_offset -1", "negative"],
    );
    assert_status(
        read_parts(&mut client, name, 0, -5).await,
        Code::OutOfRange,
        &["read_limit -5", "negative"],
    );
    assert_status(read_parts(&mut client, "files/missing", 0, 0).await, Code::NotFound, &["\"missing\""]);
    assert_status(
        read_parts(&mut client, "read.bin", 0, 0).await,
        Code::InvalidArgument,
        &["resource_name \"read.bin\"", "expected files/{name}"],
    );
}

#[tokio::test]
async fn a_stream_ending_without_finish_write_commits_nothing() {
    let (_server, mut client, _) = start().await;
    let resource = upload("open", "open.bin");
    assert_eq!(write(&mut client, messages(&resource, 0, b"abc", 1, false)).await.unwrap(), 3);
    assert_status(read(&mut client, "open.bin").await, Code::NotFound, &[]);
    assert_eq!(query(&mut client, &resource).await.unwrap(), (3, false));
}

#[tokio::test]
async fn a_message_after_finish_write_is_refused_and_nothing_committed() {
    let (_server, mut client, _) = start().await;
    let resource = upload("late", "late.bin");
    let mut late = messages(&resource, 0, b"abcdef", 3, true);
    late.push(WriteRequest { write_offset: 6, data: b"more".to_vec().into(), ..Default::default() });
    assert_status(write(&mut client, late).await, Code::InvalidArgument, &["message 3", "finish_write"]);
    assert_status(read(&mut client, "late.bin").await, Code::NotFound, &[]);
    // What came before it is kept, and the upload finishes from there.
    assert_eq!(query(&mut client, &resource).await.unwrap(), (6, false));
    assert_eq!(write(&mut client, messages(&resource, 6, &[], 1, true)).await.unwrap(), 6);
    assert_eq!(read(&mut client, "late.bin").await.unwrap(), b"abcdef");
}

#[tokio::test]
async fn later_messages_name_the_same_resource_or_none() {
    let (_server, mut client, _) = start().await;
    let resource = upload("same", "same.bin");
    let mut repeated = messages(&resource, 0, b"abcdef", 2, true);
    repeated[2].resource_name = resource.clone();
    assert_eq!(write(&mut client, repeated).await.unwrap(), 6);

    let other = upload("other", "other.bin");
    let mut changed = messages(&other, 0, b"abcdef", 2, true);
    changed[1].resource_name = upload("other", "elsewhere.bin");
    assert_status(
        write(&mut client, changed).await,
        Code::InvalidArgument,
        &["message 2", "uploads/other/files/elsewhere.bin", "differs from the first"],
    );
    let mut unnamed = messages(&other, 0, b"abc", 3, true);
    unnamed[0].resource_name.clear();
    assert_status(
        write(&mut client, unnamed).await,
        Code::InvalidArgument,
        &["message 1", "resource_name is empty"],
    );
    assert_status(
        write(&mut client, vec![]).await,
        Code::InvalidArgument,
        &["empty stream", "resource_name"],
    );
    assert_status(read(&mut client, "other.bin").await, Code::NotFound, &[]);
}

#[tokio::test]
async fn a_finished_upload_answers_its_size_and_is_not_written_again() {
    let (_server, mut client, _) = start().await;
    let resource = upload("done", "done.bin");
    write(&mut client, messages(&resource, 0, b"first", 2, true)).await.unwrap();
    assert_eq!(query(&mut client, &resource).await.unwrap(), (5, true));
    // Another Write of a finished upload answers without writing, whatever it sends.
    assert_eq!(write(&mut client, messages(&resource, 0, b"second!", 2, true)).await.unwrap(), 5);
    assert_eq!(write(&mut client, messages(&resource, 5, b"more", 2, false)).await.unwrap(), 5);
    assert_eq!(read(&mut client, "done.bin").await.unwrap(), b"first");
    let digest = format!("{resource}/sha256/{}", hex_sha256(b"first"));
    assert_eq!(query(&mut client, &digest).await.unwrap(), (5, true));
    // The same id for another file or other content is a mistake worth saying.
    for reused in [upload("done", "other.bin"), format!("{resource}/sha256/{}", hex_sha256(b"other"))] {
        assert_status(
            query(&mut client, &reused).await,
            Code::AlreadyExists,
            &["\"done\" was already finished", "new upload_id"],
        );
        assert_status(
            write(&mut client, messages(&reused, 0, b"x", 1, true)).await,
            Code::AlreadyExists,
            &["new upload_id"],
        );
    }
    assert_status(read(&mut client, "other.bin").await, Code::NotFound, &[]);
}

#[tokio::test]
async fn concurrent_writes_of_one_upload_are_aborted() {
    let (_server, mut client, _files) = start().await;
    let resource = upload("busy", "busy.bin");
    let (tx, rx) = mpsc::channel(4);
    let call = {
        let mut client = client.clone();
        tokio::spawn(async move { client.write(ReceiverStream::new(rx)).await })
    };
    let data = bytes(600_000, 5);
    for message in messages(&resource, 0, &data[..300_000], 300_000, false) {
        tx.send(message).await.unwrap();
    }
    // The first call holds the upload once the server knows of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while query(&mut client, &resource).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the first Write never started the upload");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_status(
        write(&mut client, messages(&resource, 0, b"x", 1, true)).await,
        Code::Aborted,
        &["\"busy\"", "already being written"],
    );
    // The first call goes on undisturbed.
    for message in messages("", 300_000, &data[300_000..], 100_000, true) {
        tx.send(message).await.unwrap();
    }
    drop(tx);
    assert_eq!(call.await.unwrap().unwrap().into_inner().committed_size, 600_000);
    assert!(read(&mut client, "busy.bin").await.unwrap() == data);
}

#[tokio::test]
async fn a_write_over_the_size_limit_is_resource_exhausted() {
    let (mut config, dir) = common::config();
    config.max_file_size = 1000;
    let server = common::start_with(config, dir).await;
    let mut client = ByteStreamClient::new(server.channel().await);
    let resource = upload("big", "big.bin");
    write(&mut client, messages(&resource, 0, &[7; 600], 100, false)).await.unwrap();
    assert_status(
        write(&mut client, messages(&resource, 600, &[7; 600], 100, true)).await,
        Code::ResourceExhausted,
        &["limit of 1000 bytes"],
    );
    assert_status(read(&mut client, "big.bin").await, Code::NotFound, &[]);
    assert_status(query(&mut client, &resource).await, Code::NotFound, &[]);
}

#[tokio::test]
async fn hostile_resource_names_are_refused_and_nothing_stored() {
    let (_server, mut client, files) = start().await;
    let long = "n".repeat(256);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("uploads/../files/x".into(), "upload_id: file name \"..\""),
        ("uploads/u/files/..".into(), "name: file name \"..\""),
        ("uploads/u/files/../../etc/passwd".into(), "not of that form"),
        ("uploads/u/files/a\\b".into(), "path separator"),
        ("uploads/u\0/files/x".into(), "NUL"),
        ("uploads/u/files/x\n".into(), "control character"),
        ("uploads/u/files/".into(), "must not be empty"),
        (format!("uploads/u/files/{long}"), "256 bytes"),
        ("uploads/u/files/x/sha256/zz".into(), "sha256: a sha256 digest is 64 hex digits"),
        ("files/x".into(), "not of that form"),
        ("/".repeat(100_000), "not of that form"),
    ];
    for (resource, problem) in &cases {
        let first = WriteRequest {
            resource_name: resource.clone(),
            finish_write: true,
            data: b"payload".to_vec().into(),
            ..Default::default()
        };
        let expected_form =
            if resource.is_empty() { "resource_name" } else { "uploads/{upload_id}/files/{name}" };
        assert_status(
            write(&mut client, vec![first]).await,
            Code::InvalidArgument,
            &[expected_form, problem],
        );
        if !resource.is_empty() {
            assert_status(
                query(&mut client, resource).await,
                Code::InvalidArgument,
                &["resource_name", problem],
            );
        }
    }
    for resource in ["files/..", "files/../x", "files/", "files/a\0", "../files/x", "uploads/u/files/x"] {
        assert_status(
            read_parts(&mut client, resource, 0, 0).await,
            Code::InvalidArgument,
            &["resource_name"],
        );
    }
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
    let data_dir = files.parent().expect("files is inside the data dir");
    assert!(!data_dir.join("x").exists() && !data_dir.parent().expect("tempdir").join("x").exists());
}

/// Starts a Write of `data` through `channel` whose stream stays open after
/// the message with finish_write: only a clean end may commit it.
async fn open_write(
    channel: Channel,
    resource: &str,
    data: &[u8],
) -> (mpsc::Sender<WriteRequest>, tokio::task::JoinHandle<Result<i64, tonic::Status>>) {
    let (tx, rx) = mpsc::channel(64);
    let call = tokio::spawn(async move {
        ByteStreamClient::new(channel)
            .write(ReceiverStream::new(rx))
            .await
            .map(|r| r.into_inner().committed_size)
    });
    for message in messages(resource, 0, data, 256 * 1024, true) {
        tx.send(message).await.expect("the call takes its messages");
    }
    (tx, call)
}

#[tokio::test]
async fn a_cancelled_write_keeps_what_arrived_and_resumes() {
    let (server, mut client, files) = start().await;
    let data = bytes(3 * 1024 * 1024, 6);
    let resource = upload("cancelled", "cancelled.bin");
    let (tx, call) = open_write(server.channel().await, &resource, &data).await;
    until_some_written(&files, "cancelled").await;
    // The client gives up (RST_STREAM CANCEL), although finish_write was sent.
    call.abort();
    let _ = call.await;
    let at = resume_point(&mut client, &resource).await;
    drop(tx);
    assert!(at > 0 && at <= data.len() as u64, "{at}");
    assert_status(read(&mut client, "cancelled.bin").await, Code::NotFound, &[]);
    let at = at as usize;
    assert_eq!(
        write(&mut client, messages(&resource, at, &data[at..], 100_000, true)).await.unwrap(),
        3 << 20
    );
    assert!(read(&mut client, "cancelled.bin").await.unwrap() == data);
}

#[tokio::test]
async fn a_write_cut_off_with_its_connection_keeps_what_arrived_and_resumes() {
    let (server, mut client, files) = start().await;
    let (proxy, cut) = cuttable_proxy(server.addr).await;
    let channel =
        Channel::from_shared(format!("http://{proxy}")).expect("uri").connect().await.expect("connects");
    let data = bytes(3 * 1024 * 1024, 7);
    let resource = upload("cut", "cut.bin");
    let (tx, call) = open_write(channel, &resource, &data).await;
    until_some_written(&files, "cut").await;
    cut.abort();
    let _ = cut.await;
    assert!(call.await.expect("call task joins").is_err(), "a cut-off write must not succeed");
    drop(tx);
    let at = resume_point(&mut client, &resource).await as usize;
    assert!(at > 0 && at <= data.len(), "{at}");
    assert_status(read(&mut client, "cut.bin").await, Code::NotFound, &[]);
    write(&mut client, messages(&resource, at, &data[at..], 100_000, true)).await.unwrap();
    assert!(read(&mut client, "cut.bin").await.unwrap() == data);
}

/// A server on its own runtime, so that stopping it can wait for every
/// thread it started (an upload's writer) before another server opens the
/// same data directory, as a process exiting would.
struct OwnRuntimeServer {
    runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl OwnRuntimeServer {
    fn start(config: dataport_server::config::Config) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let server = dataport_server::Server::new(config).expect("server starts");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = runtime.spawn(server.run(listener, async {
            let _ = stopped.await;
        }));
        OwnRuntimeServer { runtime, addr, stop, task }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.runtime.block_on(self.task).expect("server task joins");
        // Waits for the blocking threads, the upload writers among them.
        drop(self.runtime);
    }
}

#[test]
fn a_server_restarted_mid_upload_resumes_it() {
    let (mut config, _dir) = common::config();
    config.shutdown_timeout = Duration::from_millis(200);
    let files = config.data_dir.join("files");
    let client_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let data = bytes(4 * 1024 * 1024, 8);
    let resource = upload("restart", "restart.bin");

    let first = OwnRuntimeServer::start(config.clone());
    let (tx, call) = client_runtime.block_on(async {
        let channel =
            Channel::from_shared(format!("http://{}", first.addr)).unwrap().connect().await.unwrap();
        let call = open_write(channel, &resource, &data[..3 << 20]);
        let (tx, call) = call.await;
        until_some_written(&files, "restart").await;
        (tx, call)
    });
    // The upload is still open when the server goes down.
    first.stop();
    assert!(client_runtime.block_on(call).expect("call task joins").is_err());
    drop(tx);

    let second = OwnRuntimeServer::start(config);
    client_runtime.block_on(async {
        let channel =
            Channel::from_shared(format!("http://{}", second.addr)).unwrap().connect().await.unwrap();
        let mut client = ByteStreamClient::new(channel);
        let (at, complete) = query(&mut client, &resource).await.unwrap();
        assert!(!complete && at > 0 && at <= 3 << 20, "{at}");
        assert_status(read(&mut client, "restart.bin").await, Code::NotFound, &[]);
        let at = at as usize;
        let committed =
            write(&mut client, messages(&resource, at, &data[at..], 256 * 1024, true)).await.unwrap();
        assert_eq!(committed, data.len() as i64);
        assert!(read(&mut client, "restart.bin").await.unwrap() == data);
        assert_eq!(query(&mut client, &resource).await.unwrap(), (4 << 20, true));
    });
    second.stop();
}
