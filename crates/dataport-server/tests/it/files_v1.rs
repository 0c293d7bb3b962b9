use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::assert_status;
use common::files::{bytes, cuttable_proxy, hex_sha256, odd_pieces, stored_files};
use dataport_proto::dataport::files::v1::files_service_client::FilesServiceClient;
use dataport_proto::dataport::files::v1::{
    DeleteRequest, DownloadRequest, File, ListRequest, ListResponse, StatRequest, UploadHeader,
    UploadRequest, UploadTrailer, download_response, upload_request,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

type Client = FilesServiceClient<Channel>;

/// A server, a client, and where the server keeps its files.
async fn start() -> (common::TestServer, Client, PathBuf) {
    start_limited(None).await
}

async fn start_limited(max_file_size: Option<u64>) -> (common::TestServer, Client, PathBuf) {
    let configure = |config: &mut dataport_server::config::Config| {
        if let Some(limit) = max_file_size {
            config.max_file_size = limit;
        }
    };
    common::files::serve(configure, FilesServiceClient::new).await
}

fn header(name: &str, sha256: &str) -> UploadRequest {
    UploadRequest {
        kind: Some(upload_request::Kind::Header(UploadHeader {
            name: name.into(),
            sha256: sha256.into(),
            keep_existing: false,
        })),
    }
}

fn chunk(data: &[u8]) -> UploadRequest {
    UploadRequest { kind: Some(upload_request::Kind::Chunk(data.to_vec().into())) }
}

fn trailer(sha256: &str) -> UploadRequest {
    let trailer = UploadTrailer { sha256: sha256.into(), crc32c: None };
    UploadRequest { kind: Some(upload_request::Kind::Trailer(trailer)) }
}

fn crc32c_trailer(crc32c: u32) -> UploadRequest {
    let trailer = UploadTrailer { sha256: String::new(), crc32c: Some(crc32c) };
    UploadRequest { kind: Some(upload_request::Kind::Trailer(trailer)) }
}

fn empty() -> UploadRequest {
    UploadRequest { kind: None }
}

/// `data` in chunks of odd sizes.
fn chunks(data: &[u8]) -> Vec<UploadRequest> {
    odd_pieces(data).into_iter().map(chunk).collect()
}

/// A header for `name`, then `data` in chunks.
fn upload_messages(name: &str, data: &[u8]) -> Vec<UploadRequest> {
    let mut messages = vec![header(name, "")];
    messages.extend(chunks(data));
    messages
}

async fn upload(client: &mut Client, messages: Vec<UploadRequest>) -> Result<File, tonic::Status> {
    let response = client.upload(tokio_stream::iter(messages)).await?.into_inner();
    Ok(response.file.expect("an upload answers the file"))
}

/// Every file the download sent, with its bytes; checks that a file message
/// comes before chunks, that chunks are of a sane size and that each file
/// has the bytes its message announced.
async fn download(client: &mut Client, names: &[&str]) -> Result<Vec<(File, Vec<u8>)>, tonic::Status> {
    let request = DownloadRequest { names: names.iter().map(|n| n.to_string()).collect() };
    let mut stream = client.download(request).await?.into_inner();
    let mut files: Vec<(File, Vec<u8>)> = Vec::new();
    while let Some(message) = stream.message().await? {
        match message.kind.expect("a download message is a file or a chunk") {
            download_response::Kind::File(file) => files.push((file, Vec::new())),
            download_response::Kind::Chunk(data) => {
                assert!(!data.is_empty() && data.len() < 4 << 20, "chunk of {} bytes", data.len());
                files.last_mut().expect("a chunk before any file message").1.extend_from_slice(&data);
            }
        }
    }
    for (file, data) in &files {
        assert_eq!(data.len() as u64, file.size, "{}", file.name);
        assert_eq!(hex_sha256(data), file.sha256, "{}", file.name);
    }
    Ok(files)
}

/// The one file a download of `name` sends.
async fn content(client: &mut Client, name: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut files = download(client, &[name]).await?;
    assert_eq!(files.len(), 1);
    Ok(files.remove(0).1)
}

async fn stat(client: &mut Client, name: &str) -> Result<File, tonic::Status> {
    let answer = client.stat(StatRequest { name: name.into() }).await?.into_inner();
    Ok(answer.file.expect("stat answers the file"))
}

async fn delete(client: &mut Client, name: &str) -> Result<File, tonic::Status> {
    let answer = client.delete(DeleteRequest { name: name.into() }).await?.into_inner();
    Ok(answer.file.expect("delete answers the file"))
}

async fn list(
    client: &mut Client,
    prefix: &str,
    page_size: i32,
    page_token: &str,
) -> Result<ListResponse, tonic::Status> {
    let request = ListRequest { prefix: prefix.into(), page_size, page_token: page_token.into() };
    Ok(client.list(request).await?.into_inner())
}

fn names(files: &[File]) -> Vec<&str> {
    files.iter().map(|f| f.name.as_str()).collect()
}

/// Waits until `dir` holds exactly `count` stored files.
async fn until_stored_count(dir: &Path, count: usize) {
    common::until(&format!("{count} stored files"), || stored_files(dir).len() == count).await;
}

#[tokio::test]
async fn uploaded_files_stat_list_and_download_byte_exact() {
    let (_server, mut client, _) = start().await;
    let big = bytes(3 * 1024 * 1024 + 12_345, 1);
    let small = bytes(1_000, 2);
    let before = std::time::SystemTime::now();
    let stored = upload(&mut client, upload_messages("big.bin", &big)).await.unwrap();
    assert_eq!((stored.name.as_str(), stored.size), ("big.bin", big.len() as u64));
    assert_eq!(stored.sha256, hex_sha256(&big));
    let created: std::time::SystemTime = stored.create_time.unwrap().try_into().unwrap();
    assert!(created >= before - Duration::from_secs(1), "{created:?}");
    assert_eq!(stored.create_time, stored.update_time);
    upload(&mut client, upload_messages("small.txt", &small)).await.unwrap();
    upload(&mut client, vec![header("empty", "")]).await.unwrap();

    assert_eq!(stat(&mut client, "big.bin").await.unwrap(), stored);
    let listed = list(&mut client, "", 0, "").await.unwrap();
    assert_eq!(names(&listed.files), ["big.bin", "empty", "small.txt"]);
    assert_eq!(listed.files[0], stored);
    assert_eq!(listed.next_page_token, "");

    // Several files, one name twice, each announced by its file message.
    let got = download(&mut client, &["small.txt", "big.bin", "empty", "small.txt"]).await.unwrap();
    let got_names: Vec<&str> = got.iter().map(|(f, _)| f.name.as_str()).collect();
    assert_eq!(got_names, ["small.txt", "big.bin", "empty", "small.txt"]);
    assert_eq!(got[1].0, stored);
    assert!(got[0].1 == small && got[1].1 == big && got[2].1.is_empty() && got[3].1 == small);
}

#[tokio::test]
async fn a_replaced_file_keeps_its_create_time() {
    let (_server, mut client, files) = start().await;
    let first = upload(&mut client, upload_messages("f", b"first")).await.unwrap();
    // The replacement is stored at a later time than the first: wait until
    // the clock has passed it.
    let t1: std::time::SystemTime = first.update_time.unwrap().try_into().unwrap();
    while std::time::SystemTime::now() <= t1 {
        tokio::task::yield_now().await;
    }
    let second = upload(&mut client, upload_messages("f", b"second, longer")).await.unwrap();
    assert_eq!(second.create_time, first.create_time);
    let t2: std::time::SystemTime = second.update_time.unwrap().try_into().unwrap();
    assert!(t2 > t1, "{t1:?} {t2:?}");
    assert_eq!(content(&mut client, "f").await.unwrap(), b"second, longer");
    assert_eq!(stored_files(&files).len(), 1, "the replaced object is deleted");
}

#[tokio::test]
async fn a_header_sha256_is_checked_and_a_mismatch_stores_nothing() {
    let (_server, mut client, files) = start().await;
    let data = bytes(400_000, 3);
    let mut messages = vec![header("checked", &hex_sha256(&data).to_uppercase())];
    messages.extend(chunks(&data));
    assert_eq!(upload(&mut client, messages).await.unwrap().sha256, hex_sha256(&data));

    let wrong = hex_sha256(b"something else");
    let mut messages = vec![header("checked", &wrong)];
    messages.extend(chunks(&bytes(400_000, 4)));
    assert_status(upload(&mut client, messages).await, Code::DataLoss, &[&wrong, "nothing was stored"]);
    assert!(content(&mut client, "checked").await.unwrap() == data, "the old file is untouched");
    assert_eq!(stored_files(&files).len(), 1);
}

#[tokio::test]
async fn an_upload_that_keeps_existing_files_is_already_exists_and_leaves_the_stored_one() {
    let (_server, mut client, files) = start().await;
    let keeping = |name: &str| UploadRequest {
        kind: Some(upload_request::Kind::Header(UploadHeader {
            name: name.into(),
            sha256: String::new(),
            keep_existing: true,
        })),
    };
    let old = bytes(200_000, 7);
    let mut messages = vec![keeping("kept.bin")];
    messages.extend(chunks(&old));
    let old_file = upload(&mut client, messages).await.unwrap();

    let mut messages = vec![keeping("kept.bin")];
    messages.extend(chunks(&bytes(300_000, 8)));
    let status = upload(&mut client, messages).await;
    assert_status(status, Code::AlreadyExists, &["\"kept.bin\" is already stored", "nothing was stored"]);
    assert_eq!(stat(&mut client, "kept.bin").await.unwrap(), old_file);
    assert!(content(&mut client, "kept.bin").await.unwrap() == old);
    assert_eq!(stored_files(&files).len(), 1, "nothing of the refused upload is left");
}

#[tokio::test]
async fn a_header_sha256_that_is_not_hex_is_refused_naming_it() {
    let (_server, mut client, files) = start().await;
    for bad in ["xyz", &"g".repeat(64), &"0".repeat(63)] {
        let messages = vec![header("f", bad), chunk(b"data")];
        assert_status(upload(&mut client, messages).await, Code::InvalidArgument, &["header.sha256", bad]);
    }
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_trailer_sha256_is_checked_and_a_mismatch_leaves_the_old_file() {
    let (_server, mut client, files) = start().await;
    let old = bytes(100_000, 5);
    let old_file = upload(&mut client, upload_messages("t.bin", &old)).await.unwrap();

    let data = bytes(700_000, 6);
    let wrong = hex_sha256(&old);
    let mut messages = upload_messages("t.bin", &data);
    messages.push(trailer(&wrong));
    assert_status(upload(&mut client, messages).await, Code::DataLoss, &[&wrong, &hex_sha256(&data)]);
    assert_eq!(stat(&mut client, "t.bin").await.unwrap(), old_file);
    assert!(content(&mut client, "t.bin").await.unwrap() == old);
    assert_eq!(stored_files(&files).len(), 1, "nothing of the refused upload is left");

    let mut messages = upload_messages("t.bin", &data);
    messages.push(trailer(&hex_sha256(&data)));
    assert_eq!(upload(&mut client, messages).await.unwrap().size, data.len() as u64);
    assert!(content(&mut client, "t.bin").await.unwrap() == data);

    // The same digest in header and trailer; an empty trailer checks nothing.
    let mut messages = vec![header("both", &hex_sha256(b"x"))];
    messages.extend([chunk(b"x"), trailer(&hex_sha256(b"x"))]);
    upload(&mut client, messages).await.unwrap();
    upload(&mut client, vec![header("none", ""), chunk(b"y"), trailer("")]).await.unwrap();
    assert_eq!(content(&mut client, "none").await.unwrap(), b"y");
}

#[tokio::test]
async fn a_trailer_crc32c_is_checked_and_a_mismatch_leaves_the_old_file() {
    let (_server, mut client, files) = start().await;
    // The CRC-32C (Castagnoli) check value: the server computes that CRC and no other.
    let messages = vec![header("check", ""), chunk(b"1234"), chunk(b"56789"), crc32c_trailer(0xe306_9283)];
    assert_eq!(upload(&mut client, messages).await.unwrap().size, 9);

    let old = bytes(100_000, 7);
    let old_file = upload(&mut client, upload_messages("c.bin", &old)).await.unwrap();
    let data = bytes(700_000, 8);
    let crc = crc32c::crc32c(&data);
    let mut messages = upload_messages("c.bin", &data);
    messages.push(crc32c_trailer(crc ^ 1));
    assert_status(
        upload(&mut client, messages).await,
        Code::DataLoss,
        &["trailer.crc32c", &format!("{:#010x}", crc ^ 1), &format!("{crc:#010x}")],
    );
    assert_eq!(stat(&mut client, "c.bin").await.unwrap(), old_file);
    assert!(content(&mut client, "c.bin").await.unwrap() == old);
    assert_eq!(stored_files(&files).len(), 2, "nothing of the refused upload is left");

    let mut messages = upload_messages("c.bin", &data);
    messages.push(crc32c_trailer(crc));
    let stored = upload(&mut client, messages).await.unwrap();
    assert_eq!((stored.size, stored.sha256), (data.len() as u64, hex_sha256(&data)));
    assert!(content(&mut client, "c.bin").await.unwrap() == data);
}

#[tokio::test]
async fn a_trailer_sha256_differing_from_the_header_is_refused() {
    let (_server, mut client, files) = start().await;
    let messages = vec![header("f", &hex_sha256(b"abc")), chunk(b"abc"), trailer(&hex_sha256(b"abd"))];
    assert_status(
        upload(&mut client, messages).await,
        Code::InvalidArgument,
        &["message 3", "trailer.sha256", "header.sha256"],
    );
    let messages = vec![header("f", ""), chunk(b"abc"), trailer("nothex")];
    assert_status(
        upload(&mut client, messages).await,
        Code::InvalidArgument,
        &["message 3", "trailer.sha256", "nothex"],
    );
    assert_status(stat(&mut client, "f").await, Code::NotFound, &["\"f\""]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn messages_out_of_order_are_refused_naming_the_message_and_nothing_stored() {
    let (_server, mut client, files) = start().await;
    let sha = hex_sha256(b"ab");
    let cases: Vec<(Vec<UploadRequest>, &[&str])> = vec![
        (vec![], &["empty stream", "header"]),
        (vec![chunk(b"early"), header("f", "")], &["message 1 is a chunk", "header"]),
        (vec![trailer(&sha), header("f", "")], &["message 1 is a trailer", "header"]),
        (vec![empty(), header("f", "")], &["message 1 is empty", "header"]),
        (vec![header("f", ""), chunk(b"a"), header("g", "")], &["message 3", "second header"]),
        (vec![header("f", ""), header("f", "")], &["message 2", "second header"]),
        (
            vec![header("f", ""), chunk(b"ab"), trailer(&sha), chunk(b"c")],
            &["message 4 is a chunk", "after the trailer"],
        ),
        (
            vec![header("f", ""), chunk(b"ab"), trailer(&sha), trailer(&sha)],
            &["message 4 is a trailer", "after the trailer"],
        ),
        (
            vec![header("f", ""), trailer(""), header("g", "")],
            &["message 3 is a header", "after the trailer"],
        ),
        (vec![header("f", ""), chunk(b"a"), empty(), chunk(b"b")], &["message 3 is empty"]),
    ];
    for (messages, parts) in cases {
        assert_status(upload(&mut client, messages).await, Code::InvalidArgument, parts);
        assert_status(stat(&mut client, "f").await, Code::NotFound, &[]);
        assert_status(stat(&mut client, "g").await, Code::NotFound, &[]);
        assert_eq!(stored_files(&files), Vec::<PathBuf>::new(), "{parts:?}");
    }
}

#[tokio::test]
async fn hostile_names_are_refused_everywhere_naming_the_field_and_the_problem() {
    let (_server, mut client, files) = start().await;
    let long = "n".repeat(256);
    let cases: &[(&str, &str)] = &[
        ("", "must not be empty"),
        (".", "names a directory"),
        ("..", "names a directory"),
        ("a/b", "path separator"),
        ("../x", "path separator"),
        ("/", "path separator"),
        ("a\\b", "path separator"),
        ("a\0b", "NUL"),
        ("a\u{1}b", "control character"),
        ("a\nb", "control character"),
        ("\u{7f}", "control character"),
        (&long, "256 bytes"),
    ];
    for &(name, problem) in cases {
        let messages = vec![header(name, ""), chunk(b"payload")];
        assert_status(upload(&mut client, messages).await, Code::InvalidArgument, &["header.name", problem]);
        assert_status(stat(&mut client, name).await, Code::InvalidArgument, &["name: file name", problem]);
        assert_status(delete(&mut client, name).await, Code::InvalidArgument, &["name: file name", problem]);
        assert_status(
            download(&mut client, &["ok", name]).await,
            Code::InvalidArgument,
            &["names[1]", problem],
        );
    }
    // The refusal shows the name escaped.
    assert_status(stat(&mut client, "a\nb").await, Code::InvalidArgument, &["\"a\\nb\""]);
    assert_eq!(stored_files(&files), Vec::<PathBuf>::new());
    let data_dir = files.parent().expect("files is inside the data dir");
    assert!(!data_dir.join("x").exists() && !data_dir.parent().expect("tempdir").join("x").exists());
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_resource_exhausted_and_nothing_stored() {
    let (_server, mut client, files) = start_limited(Some(1 << 20)).await;
    let fits = bytes(1 << 20, 7);
    upload(&mut client, upload_messages("limit.bin", &fits)).await.unwrap();
    let over = bytes((1 << 20) + 1, 8);
    assert_status(
        upload(&mut client, upload_messages("limit.bin", &over)).await,
        Code::ResourceExhausted,
        &["1048576"],
    );
    assert_status(
        upload(&mut client, upload_messages("other.bin", &over)).await,
        Code::ResourceExhausted,
        &["limit"],
    );
    assert!(content(&mut client, "limit.bin").await.unwrap() == fits, "the old file is untouched");
    assert_status(stat(&mut client, "other.bin").await, Code::NotFound, &[]);
    assert_eq!(stored_files(&files).len(), 1);
}

/// Starts an upload of `name` on `channel` that sends a header and some
/// chunks and then waits; answers the call and its sender once the server
/// has begun writing it.
async fn upload_in_progress(
    channel: Channel,
    name: &str,
    files: &Path,
) -> (
    tokio::task::JoinHandle<
        Result<tonic::Response<dataport_proto::dataport::files::v1::UploadResponse>, tonic::Status>,
    >,
    tokio::sync::mpsc::Sender<UploadRequest>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call =
        tokio::spawn(async move { FilesServiceClient::new(channel).upload(ReceiverStream::new(rx)).await });
    tx.send(header(name, "")).await.expect("the call takes the header");
    for i in 0..8 {
        tx.send(chunk(&bytes(100_000, i))).await.expect("the call takes a chunk");
    }
    // The temporary file exists once the server has begun the upload.
    let tmp = files.join(".tmp");
    common::until("the upload starts", || !stored_files(&tmp).is_empty()).await;
    (call, tx)
}

#[tokio::test]
async fn an_upload_cut_off_or_cancelled_stores_nothing() {
    let (server, mut client, files) = start().await;

    // The connection is cut under the stream.
    let (proxy, cut) = cuttable_proxy(server.addr).await;
    let channel = Channel::from_shared(format!("http://{proxy}")).unwrap().connect().await.unwrap();
    let (call, tx) = upload_in_progress(channel, "cut.bin", &files).await;
    cut.abort();
    let _ = cut.await;
    assert!(call.await.expect("call task joins").is_err(), "a cut-off upload must not succeed");
    drop(tx);
    until_stored_count(&files, 0).await;
    assert_status(stat(&mut client, "cut.bin").await, Code::NotFound, &["cut.bin"]);

    // The client drops the call: tonic resets the stream (RST_STREAM CANCEL),
    // which the server's handler sees as a clean end unless told otherwise.
    let (call, tx) = upload_in_progress(server.channel().await, "dropped.bin", &files).await;
    call.abort();
    let _ = call.await;
    drop(tx);
    until_stored_count(&files, 0).await;
    assert_status(stat(&mut client, "dropped.bin").await, Code::NotFound, &["dropped.bin"]);
    assert!(list(&mut client, "", 0, "").await.unwrap().files.is_empty());
}

#[tokio::test]
async fn concurrent_uploads_of_one_name_leave_exactly_one_of_them_whole() {
    let (server, mut client, files) = start().await;
    let contents: Vec<Vec<u8>> = (0..6).map(|i| bytes(1_000_000 + 9_973 * i, 100 + i as u64)).collect();
    let digests: HashSet<String> = contents.iter().map(|c| hex_sha256(c)).collect();

    // Readers download the name throughout the race.
    let racing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (mut reader, racing, digests) = (client.clone(), racing.clone(), digests.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while racing.load(std::sync::atomic::Ordering::Acquire) {
                match download(&mut reader, &["race.bin"]).await {
                    // download() checks the bytes against the sha256 announced.
                    Ok(files) => {
                        assert!(digests.contains(&files[0].0.sha256), "a file nobody uploaded");
                        seen += 1;
                    }
                    Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
                }
            }
            seen
        }));
    }

    // Every upload sends a chunk in turn, so they are all open at once.
    let mut senders = Vec::new();
    let mut calls = Vec::new();
    for _ in &contents {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let mut uploader = FilesServiceClient::new(server.channel().await);
        calls.push(tokio::spawn(async move { uploader.upload(ReceiverStream::new(rx)).await }));
        tx.send(header("race.bin", "")).await.unwrap();
        senders.push(tx);
    }
    let pieces: Vec<Vec<&[u8]>> = contents.iter().map(|c| c.chunks(64 * 1024).collect()).collect();
    for round in 0..pieces.iter().map(Vec::len).max().unwrap() {
        for (tx, pieces) in senders.iter().zip(&pieces) {
            if let Some(piece) = pieces.get(round) {
                tx.send(chunk(piece)).await.unwrap();
            }
        }
    }
    drop(senders);
    let mut answered = HashSet::new();
    for call in calls {
        let file = call.await.unwrap().expect("every upload succeeds").into_inner().file.unwrap();
        answered.insert(file.sha256);
    }
    assert_eq!(answered, digests, "each upload answers its own content");
    racing.store(false, std::sync::atomic::Ordering::Release);
    for reader in readers {
        reader.await.expect("reader joins");
    }

    let last = stat(&mut client, "race.bin").await.unwrap();
    let data = content(&mut client, "race.bin").await.unwrap();
    let winner =
        contents.iter().find(|c| hex_sha256(c) == last.sha256).expect("the file is one of the uploads");
    assert!(&data == winner, "the stored file is that upload, whole");
    assert_eq!(names(&list(&mut client, "", 0, "").await.unwrap().files), ["race.bin"]);
    until_stored_count(&files, 1).await;
}

#[tokio::test]
async fn list_pages_in_name_order_within_the_prefix() {
    let (_server, mut client, _) = start().await;
    let mut expected: Vec<String> = (0..25).map(|i| format!("p-{i:02}")).collect();
    expected.extend(["p", "p-ä", "p-Z"].map(String::from));
    for name in expected.iter().chain(&["o".into(), "q-1".into(), "P-1".into()]) {
        upload(&mut client, upload_messages(name, name.as_bytes())).await.unwrap();
    }
    expected.sort();

    let (mut pages, mut token, mut got) = (0, String::new(), Vec::new());
    loop {
        let page = list(&mut client, "p", 10, &token).await.unwrap();
        pages += 1;
        assert!(page.files.len() <= 10);
        got.extend(page.files.iter().map(|f| f.name.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(got, expected);
    assert_eq!(pages, 3);

    // A last page that is exactly full has no next token.
    let (mut token, mut sizes) = (String::new(), Vec::new());
    loop {
        let page = list(&mut client, "p-", 9, &token).await.unwrap();
        sizes.push(page.files.len());
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(sizes, [9, 9, 9]);

    assert_eq!(list(&mut client, "", 0, "").await.unwrap().files.len(), 31);
    assert_eq!(names(&list(&mut client, "q", 0, "").await.unwrap().files), ["q-1"]);
    assert!(list(&mut client, "zzz", 0, "").await.unwrap().files.is_empty());
    // A page size past the cap is the cap, not an error.
    assert_eq!(list(&mut client, "", i32::MAX, "").await.unwrap().files.len(), 31);
}

#[tokio::test]
async fn list_refuses_a_negative_page_size_and_a_malformed_token() {
    let (_server, mut client, _) = start().await;
    assert_status(list(&mut client, "", -1, "").await, Code::InvalidArgument, &["page_size = -1"]);
    for token in ["nothex", "abc", "2f", "00"] {
        assert_status(list(&mut client, "", 0, token).await, Code::InvalidArgument, &["page_token", token]);
    }
}

#[tokio::test]
async fn a_deleted_file_answers_what_it_was_and_is_then_not_found() {
    let (_server, mut client, files) = start().await;
    let stored = upload(&mut client, upload_messages("gone.txt", b"bye")).await.unwrap();
    upload(&mut client, upload_messages("kept.txt", b"hi")).await.unwrap();
    assert_eq!(delete(&mut client, "gone.txt").await.unwrap(), stored);
    assert_status(stat(&mut client, "gone.txt").await, Code::NotFound, &["gone.txt"]);
    assert_status(delete(&mut client, "gone.txt").await, Code::NotFound, &["gone.txt"]);
    assert_status(content(&mut client, "gone.txt").await, Code::NotFound, &["gone.txt"]);
    assert_eq!(names(&list(&mut client, "", 0, "").await.unwrap().files), ["kept.txt"]);
    assert_eq!(stored_files(&files).len(), 1);
}

#[tokio::test]
async fn download_checks_every_name_before_sending_anything() {
    let (_server, mut client, _) = start().await;
    upload(&mut client, upload_messages("a", b"a")).await.unwrap();
    assert_status(download(&mut client, &[]).await, Code::InvalidArgument, &["names", "at least one"]);
    // The call fails before its response headers: no file of it was sent.
    let request = DownloadRequest { names: vec!["a".into(), "missing-1".into(), "missing-2".into()] };
    assert_status(client.download(request).await, Code::NotFound, &["missing-1"]);
    assert_status(download(&mut client, &["a", "b/c"]).await, Code::InvalidArgument, &["names[1]", "b/c"]);

    // A name may come back any number of times; distinct files are limited.
    let many = vec!["a"; 3000];
    assert_eq!(download(&mut client, &many).await.unwrap().len(), 3000);
    let distinct: Vec<String> = (0..1001).map(|i| format!("f{i}")).collect();
    let distinct: Vec<&str> = distinct.iter().map(String::as_str).collect();
    assert_status(download(&mut client, &distinct).await, Code::InvalidArgument, &["1001 distinct", "1000"]);
}

#[tokio::test]
async fn a_download_under_way_sends_the_old_file_whole_when_it_is_replaced_or_deleted() {
    let (server, mut client, files) = start().await;
    let old = bytes(6 * 1024 * 1024, 20);
    let other = bytes(500_000, 21);
    upload(&mut client, upload_messages("doc.bin", &old)).await.unwrap();
    upload(&mut client, upload_messages("next.bin", &other)).await.unwrap();

    // Small HTTP/2 windows, so the server cannot have read the file ahead.
    let channel = Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut slow = FilesServiceClient::new(channel);
    let request = DownloadRequest { names: vec!["doc.bin".into(), "next.bin".into()] };
    let mut stream = slow.download(request).await.unwrap().into_inner();
    let Some(download_response::Kind::File(first)) = stream.message().await.unwrap().unwrap().kind else {
        panic!("the download starts with a file message")
    };
    assert_eq!(first.sha256, hex_sha256(&old));

    let new = bytes(2_000_000, 22);
    upload(&mut client, upload_messages("doc.bin", &new)).await.unwrap();
    delete(&mut client, "next.bin").await.unwrap();
    // Only the new object is left on disk; the download reads unlinked files.
    assert_eq!(stored_files(&files).len(), 1);

    let mut got: Vec<(File, Vec<u8>)> = vec![(first, Vec::new())];
    while let Some(message) = stream.message().await.unwrap() {
        match message.kind.unwrap() {
            download_response::Kind::File(file) => got.push((file, Vec::new())),
            download_response::Kind::Chunk(data) => got.last_mut().unwrap().1.extend_from_slice(&data),
        }
    }
    assert_eq!(got.len(), 2);
    assert!(got[0].1 == old, "the old content, whole");
    assert_eq!(got[1].0.name, "next.bin");
    assert!(got[1].1 == other, "a file deleted after the call began still arrives");
    assert!(content(&mut client, "doc.bin").await.unwrap() == new);
}

#[tokio::test]
async fn stat_and_delete_of_a_missing_file_are_not_found_naming_it() {
    let (_server, mut client, _) = start().await;
    assert_status(stat(&mut client, "nothing.txt").await, Code::NotFound, &["nothing.txt"]);
    assert_status(delete(&mut client, "nothing.txt").await, Code::NotFound, &["nothing.txt"]);
}
