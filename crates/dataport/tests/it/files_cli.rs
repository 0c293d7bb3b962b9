//! `dataport upload`, `dataport download` and `dataport files`, run as a
//! user runs them: the built binary against a real server started in this
//! process on an ephemeral port (and, where a server must misbehave, against
//! a fake one). Tests run without a terminal, so the commands print no
//! progress: stderr stays empty unless something failed.

use std::net::SocketAddr;
use std::path::Path;

use dataport_proto::dataport::files::v1 as pb;
use dataport_proto::google::bytestream::{self as bs, byte_stream_client::ByteStreamClient};
use dataport_testkit::BackgroundServer;
use dataport_testkit::cli::{dataport, failing, quietly};
use dataport_testkit::data::{bytes, hex_sha256};
use prost::bytes::Bytes;
use sha2::{Digest, Sha256};

/// The entries of `dir`, sorted: to see that nothing half-written stayed.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("reads dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn upload_then_list_stat_and_download_round_trip_byte_exact() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    // Large enough to be read with direct I/O at both ends (16 MiB), not a
    // multiple of the client's 1 MiB chunks; and an empty file.
    let big = bytes(17 * 1024 * 1024 + 12_345, 1);
    std::fs::write(local.path().join("big.bin"), &big).expect("write");
    std::fs::write(local.path().join("empty"), b"").expect("write");

    let out = quietly(
        dataport(s.addr()).arg("upload").arg(local.path().join("big.bin")).arg(local.path().join("empty")),
    );
    assert_eq!(
        out,
        format!(
            "stored big.bin ({} bytes, sha256 {})\nstored empty (0 bytes, sha256 {})\n",
            big.len(),
            hex_sha256(&big),
            hex_sha256(b"")
        )
    );

    let out = quietly(dataport(s.addr()).args(["files", "ls", "--format", "csv"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "size,created,updated,sha256,name");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with(&format!("{},", big.len())), "{out}");
    assert!(lines[1].ends_with(&format!(",{},big.bin", hex_sha256(&big))), "{out}");
    assert!(
        lines[2].starts_with("0,") && lines[2].ends_with(&format!(",{},empty", hex_sha256(b""))),
        "{out}"
    );
    let out = quietly(dataport(s.addr()).args(["files", "ls", "em"]));
    assert_eq!(out.lines().count(), 2, "a header and one file: {out}");

    let out = quietly(dataport(s.addr()).args(["files", "stat", "big.bin", "--format", "json"]));
    let stat: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(stat["name"], "big.bin");
    assert_eq!(stat["size"].as_f64(), Some(big.len() as f64));
    assert_eq!(stat["sha256"], hex_sha256(&big));
    assert!(stat["updated"].as_str().is_some_and(|t| t.ends_with('Z')), "{out}");

    let into = tempfile::tempdir().expect("tempdir");
    let out = quietly(dataport(s.addr()).args(["download", "big.bin", "empty", "-o"]).arg(into.path()));
    let written = into.path().join("big.bin");
    assert_eq!(
        out,
        format!(
            "wrote {} ({} bytes, sha256 {})\nwrote {} (0 bytes, sha256 {})\n",
            written.display(),
            big.len(),
            hex_sha256(&big),
            into.path().join("empty").display(),
            hex_sha256(b"")
        )
    );
    assert!(std::fs::read(&written).expect("read") == big, "downloaded bytes differ");
    assert_eq!(std::fs::read(into.path().join("empty")).expect("read"), b"");
    assert_eq!(entries(into.path()), ["big.bin", "empty"]);

    // A second download replaces the file.
    std::fs::write(&written, b"stale").expect("write");
    quietly(dataport(s.addr()).args(["download", "big.bin", "-o"]).arg(into.path()));
    assert!(std::fs::read(&written).expect("read") == big, "downloaded bytes differ");
}

#[test]
fn download_of_several_files_is_one_call_into_a_new_directory() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| (format!("part-{i}.dat"), bytes(700_000 * i + 1, i as u64 + 7))).collect();
    let mut upload = dataport(s.addr());
    upload.arg("upload");
    for (name, bytes) in &files {
        std::fs::write(local.path().join(name), bytes).expect("write");
        upload.arg(local.path().join(name));
    }
    assert_eq!(quietly(&mut upload).lines().count(), 3);

    // A new directory: named with a trailing `/`.
    let into = local.path().join("new/dir/");
    let out = quietly(
        dataport(s.addr()).args(["download", "part-2.dat", "part-0.dat", "part-1.dat", "-o"]).arg(&into),
    );
    let order: Vec<&str> = out.lines().map(|l| l.split(' ').nth(1).unwrap_or("")).collect();
    let expected: Vec<String> = ["part-2.dat", "part-0.dat", "part-1.dat"]
        .iter()
        .map(|n| into.join(n).display().to_string())
        .collect();
    assert_eq!(order, expected, "{out}");
    for (name, bytes) in &files {
        assert!(std::fs::read(into.join(name)).expect("read") == *bytes, "{name} differs");
    }
    assert_eq!(entries(&into), ["part-0.dat", "part-1.dat", "part-2.dat"]);
}

#[test]
fn download_of_a_missing_name_fails_and_writes_nothing() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    std::fs::write(local.path().join("here.txt"), b"present").expect("write");
    quietly(dataport(s.addr()).arg("upload").arg(local.path().join("here.txt")));

    let existing = local.path().join("out");
    std::fs::create_dir(&existing).expect("mkdir");
    let stderr = failing(dataport(s.addr()).args(["download", "here.txt", "ghost.txt", "-o"]).arg(&existing));
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
    assert!(stderr.contains("ghost.txt"), "{stderr}");
    assert!(entries(&existing).is_empty(), "{:?}", entries(&existing));
    let new = local.path().join("new");
    failing(dataport(s.addr()).args(["download", "ghost.txt", "-o"]).arg(&new));
    assert!(!new.exists(), "a failed download creates no directory");

    let stderr = failing(dataport(s.addr()).args(["files", "stat", "ghost.txt"]));
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
}

#[test]
fn hostile_base_names_are_refused_before_anything_is_sent() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let good = local.path().join("good.txt");
    std::fs::write(&good, b"fine").expect("write");
    for hostile in ["back\\slash", "bell\u{7}", "new\nline", "esc\u{1b}[31m"] {
        let path = local.path().join(hostile);
        std::fs::write(&path, b"x").expect("write");
        // With a good file first: a bad name anywhere uploads nothing.
        let stderr = failing(dataport(s.addr()).arg("upload").arg(&good).arg(&path));
        assert!(stderr.starts_with("error: cannot upload "), "{hostile:?}: {stderr}");
        assert!(stderr.contains("use --name"), "{hostile:?}: {stderr}");
        // The same file under a name of the user's choice is fine.
        let out = quietly(dataport(s.addr()).arg("upload").arg(&path).args(["--name", "renamed"]));
        assert!(out.starts_with("stored renamed (1 bytes, sha256 "), "{out}");
    }
    for name in ["..", ".", "a/b", "", "tab\there"] {
        let stderr = failing(dataport(s.addr()).arg("upload").arg(&good).args(["--name", name]));
        assert!(stderr.starts_with("error: --name: file name"), "{name:?}: {stderr}");
    }
    let stderr = failing(dataport(s.addr()).arg("upload").arg(local.path().join("..")));
    assert!(stderr.contains("names no file"), "{stderr}");
    let stderr = failing(dataport(s.addr()).arg("upload").arg(local.path()));
    assert!(stderr.contains("not a regular file"), "{stderr}");
    let stderr = failing(dataport(s.addr()).arg("upload").arg(&good).arg(&good).args(["--name", "x"]));
    assert!(stderr.starts_with("error: --name stores one file"), "{stderr}");
    let stderr = failing(
        dataport(s.addr())
            .arg("upload")
            .arg(&good)
            .arg(local.path().join("../").join(local.path().file_name().expect("name")).join("good.txt")),
    );
    assert!(stderr.contains("would both be stored as \"good.txt\""), "{stderr}");

    let out = quietly(dataport(s.addr()).args(["files", "ls", "--format", "csv"]));
    assert_eq!(
        out.lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or("")).collect::<Vec<_>>(),
        ["renamed"]
    );

    let into = local.path().join("out");
    for name in ["../escape", "..", "a\\b"] {
        let stderr = failing(dataport(s.addr()).args(["download", name, "-o"]).arg(&into));
        assert!(stderr.starts_with("error: file name"), "{name:?}: {stderr}");
    }
    assert!(!into.exists(), "a refused download creates nothing");
}

/// What the CLI derives a resumable upload's id from: its stored name, its
/// content and how many uploads of both finished before (whose files were
/// deleted or replaced since), so that the same command continues the same
/// upload.
fn upload_id(name: &str, content: &[u8], generation: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("dataport upload\n{name}\n{}\n{generation}", hex_sha256(content)));
    hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Writes `prefix` to a resumable upload without finishing it, as a client
/// cut off after sending it would have; answers what the server then holds.
fn write_partially(s: &BackgroundServer, resource: &str, prefix: &[u8]) -> i64 {
    s.runtime.block_on(async {
        let mut client = ByteStreamClient::connect(s.server.url()).await.expect("connects");
        let request = bs::WriteRequest {
            resource_name: resource.to_owned(),
            write_offset: 0,
            finish_write: false,
            data: Bytes::copy_from_slice(prefix),
        };
        let committed = client.write(tokio_stream::iter([request])).await.expect("writes").into_inner();
        assert_eq!(committed.committed_size, prefix.len() as i64);
        let query = bs::QueryWriteStatusRequest { resource_name: resource.to_owned() };
        let status = client.query_write_status(query).await.expect("queries").into_inner();
        assert!(!status.complete);
        status.committed_size
    })
}

#[test]
fn resume_continues_a_partial_upload_and_sends_only_the_rest() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let content = bytes(2 * 1024 * 1024 + 999, 3);
    let path = local.path().join("resumed.bin");
    std::fs::write(&path, &content).expect("write");
    let sha = hex_sha256(&content);
    let resource =
        format!("uploads/{}/files/resumed.bin/sha256/{sha}", upload_id("resumed.bin", &content, 0));
    let held = write_partially(&s, &resource, &content[..1_500_000]);
    assert_eq!(held, 1_500_000);

    // The server accepts a Write only at the committed offset, so success
    // means the CLI sent the bytes from there on, and nothing before.
    let out = quietly(dataport(s.addr()).args(["upload", "--resume"]).arg(&path));
    assert_eq!(out, format!("stored resumed.bin ({} bytes, sha256 {sha})\n", content.len()));
    let into = local.path().join("back/");
    quietly(dataport(s.addr()).args(["download", "resumed.bin", "-o"]).arg(&into));
    assert!(std::fs::read(into.join("resumed.bin")).expect("read") == content, "resumed upload differs");

    // The same command again finds the upload done.
    let again = quietly(dataport(s.addr()).args(["upload", "--resume"]).arg(&path));
    assert_eq!(again, out);
    // Deleted or replaced since, the file is uploaded again.
    quietly(dataport(s.addr()).args(["files", "rm", "resumed.bin"]));
    assert_eq!(quietly(dataport(s.addr()).args(["upload", "--resume"]).arg(&path)), out);
    let other = local.path().join("other");
    std::fs::write(&other, b"other content").expect("write");
    quietly(dataport(s.addr()).arg("upload").arg(&other).args(["--name", "resumed.bin"]));
    assert_eq!(quietly(dataport(s.addr()).args(["upload", "--resume"]).arg(&path)), out);
    let stat = quietly(dataport(s.addr()).args(["files", "stat", "resumed.bin", "--format", "csv"]));
    assert!(stat.contains(&format!("{sha},resumed.bin")), "{stat}");

    // A resumable upload from nothing, several files at once.
    let other = local.path().join("fresh.bin");
    std::fs::write(&other, bytes(5000, 9)).expect("write");
    let out = quietly(
        dataport(s.addr())
            .args(["upload", "--resume"])
            .arg(&other)
            .arg(local.path().join("back/resumed.bin")),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = quietly(dataport(s.addr()).args(["files", "stat", "fresh.bin", "--format", "csv"]));
    assert!(out.contains(&hex_sha256(&bytes(5000, 9))), "{out}");
}

#[test]
fn resume_onto_a_damaged_prefix_is_data_loss_and_stores_nothing() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let content = bytes(300_000, 5);
    let path = local.path().join("damaged.bin");
    std::fs::write(&path, &content).expect("write");
    let resource = format!(
        "uploads/{}/files/damaged.bin/sha256/{}",
        upload_id("damaged.bin", &content, 0),
        hex_sha256(&content)
    );
    let mut wrong = content[..100_000].to_vec();
    wrong[5] ^= 0xff;
    write_partially(&s, &resource, &wrong);

    let stderr = failing(dataport(s.addr()).args(["upload", "--resume"]).arg(&path));
    assert!(stderr.starts_with("error: DATA_LOSS: "), "{stderr}");
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    let stderr = failing(dataport(s.addr()).args(["files", "stat", "damaged.bin"]));
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
}

#[test]
fn rm_deletes_and_names_what_it_deleted() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    for name in ["a", "b"] {
        std::fs::write(local.path().join(name), name).expect("write");
    }
    quietly(dataport(s.addr()).arg("upload").arg(local.path().join("a")).arg(local.path().join("b")));
    let out = quietly(dataport(s.addr()).args(["files", "rm", "a", "b"]));
    assert_eq!(
        out,
        format!(
            "deleted a (1 bytes, sha256 {})\ndeleted b (1 bytes, sha256 {})\n",
            hex_sha256(b"a"),
            hex_sha256(b"b")
        )
    );
    assert_eq!(quietly(dataport(s.addr()).args(["files", "ls"])).lines().count(), 1, "the header only");
    let stderr = failing(dataport(s.addr()).args(["files", "rm", "a"]));
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
}

#[test]
fn listing_follows_every_page() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    // More than the server's default page of 1000.
    let mut upload = dataport(s.addr());
    upload.arg("upload");
    for i in 0..1005 {
        let path = local.path().join(format!("f{i:04}"));
        std::fs::write(&path, b"").expect("write");
        upload.arg(path);
    }
    assert_eq!(quietly(&mut upload).lines().count(), 1005);
    let out = quietly(dataport(s.addr()).args(["files", "ls", "--format", "json"]));
    assert_eq!(out.lines().count(), 1005);
    assert!(out.lines().last().is_some_and(|l| l.contains("\"f1004\"")), "{out}");

    // More names than one Download call may carry.
    let into = local.path().join("all/");
    let mut download = dataport(s.addr());
    download.arg("download").arg("-o").arg(&into);
    download.args((0..1005).map(|i| format!("f{i:04}")));
    assert_eq!(quietly(&mut download).lines().count(), 1005);
    assert_eq!(entries(&into).len(), 1005);
}

/// A FilesService whose Download lies or breaks, for what a real server
/// never does.
mod fake {
    use super::*;
    use dataport_proto::dataport::files::v1::files_service_server::{FilesService, FilesServiceServer};
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{Request, Response, Status, Streaming};

    #[derive(Clone, Copy, Debug)]
    pub enum Lie {
        /// The data does not have the sha256 the File message gives.
        WrongSha,
        /// The data stops short of the File's size.
        Short,
        /// The stream fails halfway through the second file.
        Breaks,
        /// The stream sends half of the first file, then nothing.
        Stalls,
    }

    #[derive(Debug)]
    struct Fake(Lie);

    fn file(name: &str, content: &[u8]) -> pb::DownloadResponse {
        let file = pb::File {
            name: name.into(),
            size: content.len() as u64,
            sha256: hex_sha256(content),
            ..Default::default()
        };
        pb::DownloadResponse { kind: Some(pb::download_response::Kind::File(file)) }
    }

    fn chunk(content: &[u8]) -> pb::DownloadResponse {
        pb::DownloadResponse {
            kind: Some(pb::download_response::Kind::Chunk(Bytes::copy_from_slice(content))),
        }
    }

    #[tonic::async_trait]
    impl FilesService for Fake {
        async fn upload(
            &self,
            _: Request<Streaming<pb::UploadRequest>>,
        ) -> Result<Response<pb::UploadResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }

        type DownloadStream =
            std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::DownloadResponse, Status>> + Send>>;

        async fn download(
            &self,
            request: Request<pb::DownloadRequest>,
        ) -> Result<Response<Self::DownloadStream>, Status> {
            let names = request.into_inner().names;
            let good = bytes(200_000, 11);
            let mut messages = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match self.0 {
                    Lie::WrongSha => {
                        messages.push(Ok(file(name, b"the promised content")));
                        messages.push(Ok(chunk(b"the delivered stuff!")));
                    }
                    Lie::Short | Lie::Stalls => {
                        messages.push(Ok(file(name, &good)));
                        messages.push(Ok(chunk(&good[..100_000])));
                    }
                    Lie::Breaks => {
                        messages.push(Ok(file(name, &good)));
                        messages.push(Ok(chunk(&good[..100_000])));
                        messages.push(match i {
                            0 => Ok(chunk(&good[100_000..])),
                            _ => Err(Status::internal("disk gone")),
                        });
                    }
                }
                if matches!(self.0, Lie::Stalls) {
                    break;
                }
            }
            let sent = tokio_stream::iter(messages);
            Ok(Response::new(match self.0 {
                Lie::Stalls => Box::pin(tokio_stream::StreamExt::chain(sent, tokio_stream::pending())),
                _ => Box::pin(sent),
            }))
        }

        async fn list(&self, _: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }

        async fn stat(&self, _: Request<pb::StatRequest>) -> Result<Response<pb::StatResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }

        async fn delete(
            &self,
            _: Request<pb::DeleteRequest>,
        ) -> Result<Response<pb::DeleteResponse>, Status> {
            Err(Status::unimplemented("fake"))
        }
    }

    pub fn serve(lie: Lie) -> (SocketAddr, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tonic::transport::Server::builder()
            .add_service(FilesServiceServer::new(Fake(lie)))
            .serve_with_incoming(TcpListenerStream::new(listener));
        runtime.spawn(server);
        (addr, runtime)
    }
}

#[test]
fn a_download_that_is_damaged_short_or_cut_off_leaves_nothing_behind() {
    for (lie, expected) in [
        (fake::Lie::WrongSha, "arrived damaged: its sha256 is "),
        (fake::Lie::Short, "the server sent 100000 bytes of \"one\", which has 200000"),
        (fake::Lie::Breaks, "error: INTERNAL: disk gone"),
    ] {
        let (addr, _runtime) = fake::serve(lie);
        let into = tempfile::tempdir().expect("tempdir");
        let out =
            dataport(addr).args(["download", "one", "two", "-o"]).arg(into.path()).output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "{lie:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{lie:?}: {stderr}");
        match lie {
            // The first file was whole and checked before the second broke.
            fake::Lie::Breaks => assert_eq!(entries(into.path()), ["one"], "{lie:?}"),
            _ => assert!(entries(into.path()).is_empty(), "{lie:?}: {:?}", entries(into.path())),
        }
    }
}

#[test]
fn an_interrupted_download_leaves_nothing_behind() {
    let (addr, _runtime) = fake::serve(fake::Lie::Stalls);
    let into = tempfile::tempdir().expect("tempdir");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dataport"))
        .args(["--server", &format!("http://{addr}"), "download", "one", "-o"])
        .arg(into.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    // Wait until the first half is being written, then press Ctrl-C.
    dataport_testkit::until_blocking("the download starts", || !entries(into.path()).is_empty());
    let part = entries(into.path());
    assert!(part[0].starts_with(".dataport-") && part[0].ends_with(".part"), "{part:?}");
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(kill.expect("kill runs").success());
    let out = child.wait_with_output().expect("exits");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: interrupted\n");
    assert!(entries(into.path()).is_empty(), "{:?}", entries(into.path()));
}

#[test]
fn download_writes_a_named_file_a_directory_or_stdout_and_no_clobber_keeps_what_is_there() {
    let s = BackgroundServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let report = bytes(300_000, 3);
    let notes = bytes(1_000, 4);
    std::fs::write(local.path().join("report.pdf"), &report).expect("write");
    std::fs::write(local.path().join("notes.txt"), &notes).expect("write");
    quietly(
        dataport(s.addr())
            .arg("upload")
            .arg(local.path().join("report.pdf"))
            .arg(local.path().join("notes.txt")),
    );
    let into = tempfile::tempdir().expect("tempdir");

    // -o FILE writes that file (its directory made if missing).
    let copy = into.path().join("sub/copy.pdf");
    let out = quietly(dataport(s.addr()).args(["download", "report.pdf", "-o"]).arg(&copy));
    assert_eq!(
        out,
        format!("wrote {} ({} bytes, sha256 {})\n", copy.display(), report.len(), hex_sha256(&report))
    );
    assert!(std::fs::read(&copy).expect("read") == report);
    assert_eq!(entries(&into.path().join("sub")), ["copy.pdf"], "no temporary file stays");

    // An existing directory, with or without a trailing /, gets DIR/NAME.
    quietly(dataport(s.addr()).args(["download", "notes.txt", "-o"]).arg(into.path()));
    assert!(std::fs::read(into.path().join("notes.txt")).expect("read") == notes);

    // -o FILE or -o - with several names says what to do instead.
    let stderr = failing(dataport(s.addr()).args(["download", "report.pdf", "notes.txt", "-o"]).arg(&copy));
    assert!(stderr.contains("names one file, but 2 names were given; end it with / "), "{stderr}");
    let stderr = failing(dataport(s.addr()).args(["download", "report.pdf", "notes.txt", "-o", "-"]));
    assert!(stderr.contains("-o - writes one file to stdout, but 2 names were given"), "{stderr}");

    // -o - writes the bytes, and only them, to stdout.
    let out = dataport(s.addr()).args(["download", "report.pdf", "-o", "-"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == report, "stdout holds exactly the file");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

    // --no-clobber: an existing file is kept and nothing is downloaded.
    std::fs::write(&copy, b"mine").expect("write");
    let stderr =
        failing(dataport(s.addr()).args(["download", "report.pdf", "--no-clobber", "-o"]).arg(&copy));
    assert!(stderr.contains("exists, and --no-clobber keeps it; nothing was downloaded"), "{stderr}");
    assert_eq!(std::fs::read(&copy).expect("read"), b"mine");
    let stderr = failing(
        dataport(s.addr()).args(["download", "-n", "notes.txt", "report.pdf", "-o"]).arg(into.path()),
    );
    assert!(stderr.contains("notes.txt exists"), "{stderr}");
    assert!(!into.path().join("report.pdf").exists(), "nothing was downloaded");
    // Without it, the file is replaced.
    quietly(dataport(s.addr()).args(["download", "report.pdf", "-o"]).arg(&copy));
    assert!(std::fs::read(&copy).expect("read") == report);
}

#[test]
fn upload_reads_stdin_given_a_name() {
    let s = BackgroundServer::start();
    // Not a multiple of the 1 MiB chunks, which a pipe hands over in pieces.
    let data = bytes(3 * 1024 * 1024 + 777, 9);
    let out =
        quietly(dataport(s.addr()).args(["upload", "-", "--name", "piped.bin"]).write_stdin(data.clone()));
    assert_eq!(out, format!("stored piped.bin ({} bytes, sha256 {})\n", data.len(), hex_sha256(&data)));
    let out = dataport(s.addr()).args(["download", "piped.bin", "-o", "-"]).output().expect("runs");
    assert!(out.stdout == data, "stdin round trips byte exact");

    let stderr = failing(dataport(s.addr()).args(["upload", "-"]).write_stdin("x"));
    assert!(stderr.contains("give the name to store it under with --name"), "{stderr}");
    let stderr =
        failing(dataport(s.addr()).args(["upload", "-", "--name", "x", "--resume"]).write_stdin("x"));
    assert!(stderr.contains("stdin cannot be read again"), "{stderr}");
}

#[test]
fn files_ls_shows_short_sha256s_and_human_sizes_when_asked_and_whole_ones_in_csv() {
    let s = BackgroundServer::start();
    let data = bytes(1536 * 1024, 5);
    let sha = hex_sha256(&data);
    quietly(dataport(s.addr()).args(["upload", "-", "--name", "one.bin"]).write_stdin(data.clone()));

    let table = quietly(dataport(s.addr()).args(["files", "ls"]));
    let row = table.lines().nth(1).expect("a row");
    assert!(row.starts_with(&format!("{:>10} ", data.len())), "{table}");
    assert!(row.contains(&format!(" {} ", &sha[..12])) && !row.contains(&sha), "{table}");
    let human = quietly(dataport(s.addr()).args(["files", "ls", "-h"]));
    assert!(human.lines().nth(1).is_some_and(|r| r.starts_with("      1.5M ")), "{human}");
    let long = quietly(dataport(s.addr()).args(["files", "stat", "one.bin", "--long", "-h"]));
    assert!(long.contains(&sha), "{long}");
    let csv = quietly(dataport(s.addr()).args(["files", "ls", "-h", "--format", "csv"]));
    assert!(
        csv.lines().nth(1).is_some_and(|r| r.starts_with(&format!("{},", data.len())) && r.contains(&sha)),
        "{csv}"
    );
    // --help still works, -h being taken.
    let help = quietly(dataport(s.addr()).args(["files", "ls", "--help"]));
    assert!(help.contains("--human-readable"), "{help}");
}

#[test]
fn upload_no_clobber_keeps_a_stored_file() {
    let s = BackgroundServer::start();
    quietly(dataport(s.addr()).args(["upload", "-", "--name", "kept.txt"]).write_stdin("first"));
    let stderr = failing(
        dataport(s.addr()).args(["upload", "-", "--name", "kept.txt", "--no-clobber"]).write_stdin("second"),
    );
    assert!(
        stderr.contains("\"kept.txt\" is already stored") && stderr.contains("nothing was stored"),
        "{stderr}"
    );
    let out = dataport(s.addr()).args(["download", "kept.txt", "-o", "-"]).output().expect("runs");
    assert_eq!(out.stdout, b"first");
    // A name not stored yet is stored; --resume cannot promise the same.
    quietly(dataport(s.addr()).args(["upload", "-", "--name", "new.txt", "-n"]).write_stdin("new"));
    let out = dataport(s.addr()).args(["upload", "--resume", "--no-clobber", "x"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
