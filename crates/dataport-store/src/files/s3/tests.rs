//! Tests of what only the S3 store does (the contract every store keeps is
//! the suite in `files/tests.rs`), against a real S3 server:
//! `DATAPORT_TEST_S3`, its endpoint URL, with `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` set and a bucket `dataport-test` made
//! (`tests/s3/server start` does all of it). Each test keeps to a prefix
//! of its own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::files::Upload;

/// The bucket `tests/s3/server` makes.
pub(crate) const BUCKET: &str = "dataport-test";

pub(crate) fn endpoint() -> String {
    std::env::var("DATAPORT_TEST_S3")
        .expect("DATAPORT_TEST_S3: the endpoint of an S3 server to test against (tests/s3/server starts one)")
}

/// A prefix no other test (of this run or another) uses.
pub(crate) fn fresh_url() -> String {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    format!("s3://{BUCKET}/t{}-{}-{n}", millis_now(), std::process::id())
}

pub(crate) fn options() -> S3Options {
    S3Options { endpoint: Some(endpoint()), ..S3Options::default() }
}

/// A store under a fresh prefix.
pub(crate) fn fresh_with(config: FileStoreConfig) -> S3FileStore {
    S3FileStore::open_with(&fresh_url(), config, options()).unwrap()
}

fn open(url: &str, config: FileStoreConfig) -> S3FileStore {
    S3FileStore::open_with(url, config, options()).unwrap()
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i % 251) as u8)).collect()
}

fn sha(data: &[u8]) -> Sha256Digest {
    use sha2::{Digest, Sha256};
    Sha256Digest(Sha256::digest(data).into())
}

fn read_all(store: &S3FileStore, name: &str) -> Vec<u8> {
    use std::io::Read;
    let (_, mut reader) = store.open(name).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

/// Whether the multipart upload `id` of `data/<object>` still takes parts.
fn multipart_open(store: &S3FileStore, object: &str, id: &str) -> bool {
    use object_store::multipart::MultipartStore;
    let (s3, at, id) = (store.inner.s3(), store.inner.data_path(object), id.to_owned());
    store.inner.run(async move { s3.put_part(&at, &id, 0, PutPayload::from(vec![1u8; 10])).await }).is_ok()
}

fn record(store: &S3FileStore, id: &str) -> UploadRecord {
    store.inner.get_json::<UploadRecord>(&store.inner.upload_path(id)).unwrap().unwrap().0
}

fn exists(store: &S3FileStore, path: &Path) -> bool {
    let (s3, at) = (store.inner.s3(), path.clone());
    store.inner.run(async move { s3.head(&at).await }).is_ok()
}

const MIB: usize = 1 << 20;
const PART: u64 = 8 << 20;

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_resumable_upload_continues_on_another_replica() {
    let url = fresh_url();
    let data = pattern(4, 21 * MIB + 123);
    let one = open(&url, FileStoreConfig::default());
    let mut up = one.resumable("up", "big.bin", Some(sha(&data))).unwrap();
    up.write_at(0, &data[..10 * MIB]).unwrap();
    // One whole part is on its way, durable once stored; the rest waits in
    // memory.
    assert!(up.committed_size() <= PART);
    up.wait_for_parts().unwrap();
    assert_eq!(up.committed_size(), PART);
    drop(up);
    // Dropped: the bytes past the part were stored as its tail.
    assert_eq!(one.resumable_size("up").unwrap(), Some(10 * MIB as u64));
    drop(one);

    let two = open(&url, FileStoreConfig::default());
    let mut up = two.resumable("up", "big.bin", Some(sha(&data))).unwrap();
    assert_eq!((up.written(), up.committed_size()), (10 * MIB as u64, 10 * MIB as u64));
    up.write_at(10 * MIB as u64, &data[10 * MIB..]).unwrap();
    let info = up.commit().unwrap();
    assert_eq!((info.size, info.sha256), (data.len() as u64, sha(&data)));
    assert!(read_all(&two, "big.bin") == data);
    assert!(matches!(two.upload_state("up").unwrap(), Some(UploadState::Finished(_))));
    assert_eq!(two.leftovers().unwrap(), Vec::<String>::new());
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_replica_that_crashed_mid_upload_is_taken_over_and_its_late_writes_refused() {
    let url = fresh_url();
    let data = pattern(8, 18 * MIB);
    let one = open(&url, FileStoreConfig::default());
    let mut cut = one.resumable("up", "f.bin", None).unwrap();
    cut.write_at(0, &data[..9 * MIB]).unwrap();
    cut.wait_for_parts().unwrap();
    // The first replica stops answering: what it held in memory is lost,
    // the whole part it sent is not.
    let two = open(&url, FileStoreConfig::default());
    assert_eq!(two.resumable_size("up").unwrap(), Some(PART));
    let mut up = two.resumable("up", "f.bin", Some(sha(&data))).unwrap();
    assert_eq!(up.written(), PART);
    up.write_at(PART, &data[PART as usize..]).unwrap();
    // The first comes back and writes on: it has lost the upload, and
    // learns it at its next record update, here once its part is stored.
    let err = cut.write_at(9 * MIB as u64, &data[9 * MIB..]).and_then(|()| cut.sync().map(drop)).unwrap_err();
    assert!(matches!(err, FileError::InUse { .. }), "{err}");
    drop(cut);
    up.commit().unwrap();
    assert!(read_all(&two, "f.bin") == data);
    assert_eq!(two.leftovers().unwrap(), Vec::<String>::new());
    drop(one);
}

/// Whether the sha256 state a resumable upload's record holds is that of
/// the parts it names, and how many bytes those are.
fn record_matches(store: &S3FileStore, id: &str, data: &[u8]) -> u64 {
    use sha2::Digest;
    let record = record(store, id);
    let named = record.parts.len() * PART as usize;
    let hashed = upload::hasher_from(&store.inner.url, &record.hashed).unwrap();
    assert_eq!(Sha256Digest(hashed.finalize().into()), sha(&data[..named]), "{} parts", record.parts.len());
    named as u64
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_resumable_record_names_only_stored_parts_with_their_sha256_while_parts_are_in_flight() {
    let url = fresh_url();
    let data = pattern(5, 45 * MIB + 7);
    let one = open(&url, FileStoreConfig::default());
    let mut up = one.resumable("up", "many.bin", Some(sha(&data))).unwrap();
    let mut named = 0;
    for (i, chunk) in data.chunks(MIB).enumerate().take(41) {
        up.write(chunk).unwrap();
        // Never ahead of what was written, never behind what it said before.
        let now = record_matches(&one, "up", &data);
        assert!(now >= named && now <= (i as u64 + 1) * MIB as u64, "{now} after {} MiB", i + 1);
        assert!(up.committed_size() >= now && up.committed_size() <= up.written());
        named = now;
    }
    // Dropped with parts on their way: they are stored and recorded, the
    // rest as the tail.
    drop(up);
    assert_eq!(one.resumable_size("up").unwrap(), Some(41 * MIB as u64));
    assert_eq!(record_matches(&one, "up", &data), 5 * PART);
    let two = open(&url, FileStoreConfig::default());
    let mut up = two.resumable("up", "many.bin", Some(sha(&data))).unwrap();
    assert_eq!(up.written(), 41 * MIB as u64);
    up.write(&data[41 * MIB..]).unwrap();
    let info = up.commit().unwrap();
    assert_eq!((info.size, info.sha256), (data.len() as u64, sha(&data)));
    assert!(read_all(&two, "many.bin") == data);
    assert_eq!(two.leftovers().unwrap(), Vec::<String>::new());
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_part_that_fails_on_its_way_fails_the_upload_at_its_next_call_and_is_never_recorded() {
    let store = fresh_with(FileStoreConfig::default());
    let data = pattern(6, 2 * PART as usize);
    let mut up = store.resumable("up", "f.bin", None).unwrap();
    up.write(&data[..PART as usize]).unwrap();
    assert_eq!(up.sync().unwrap(), PART);
    // The multipart upload vanishes behind the writer's back: the next part
    // leaves, and fails.
    let kept = record(&store, "up");
    store.inner.abort(&kept.data, kept.multipart.as_deref().unwrap()).unwrap();
    up.write(&data[PART as usize..]).unwrap();
    // Any call after its answer came says so, a write too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let err = loop {
        match up.write(&[]) {
            Err(e) => break e,
            Ok(()) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Ok(()) => panic!("the failed part was never reported"),
        }
    };
    assert!(matches!(err, FileError::Store { .. }), "{err}");
    assert!(matches!(up.write(b"x"), Err(FileError::Abandoned { .. })));
    assert_eq!(up.committed_size(), PART);
    assert_eq!(record(&store, "up").parts, kept.parts, "the record names the stored part alone");
    assert_eq!(store.resumable_size("up").unwrap(), Some(PART));

    // A plain upload's failed part is refused at the commit, and takes the
    // upload with it.
    let mut up = store.begin_upload("g.bin", None).unwrap();
    up.write(&data[..PART as usize]).unwrap();
    up.wait_for_parts().unwrap();
    let pending = store.inner.list_all(&store.inner.key("pending/")).unwrap();
    let object = pending[0].location.filename().unwrap().to_owned();
    let (record, _) = store.inner.get_json::<Pending>(&pending[0].location).unwrap().unwrap();
    store.inner.abort(&object, &record.multipart.unwrap()).unwrap();
    up.write(&data[PART as usize..]).unwrap();
    assert!(up.commit().is_err());
    assert!(matches!(store.stat("g.bin"), Err(FileError::NotFound { .. })));
    assert!(store.inner.list_all(&store.inner.key("pending/")).unwrap().is_empty());
    assert!(!exists(&store, &store.inner.data_path(&object)));
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_dropped_upload_aborts_its_multipart_upload_and_leaves_no_object() {
    let store = fresh_with(FileStoreConfig::default());
    let mut up = store.begin_upload("cut.bin", None).unwrap();
    up.write(&pattern(1, 17 * MIB)).unwrap();
    let pending = store.inner.list_all(&store.inner.key("pending/")).unwrap();
    assert_eq!(pending.len(), 1, "a plain upload with parts is recorded");
    let object = pending[0].location.filename().unwrap().to_owned();
    let (record, _) = store.inner.get_json::<Pending>(&pending[0].location).unwrap().unwrap();
    let multipart = record.multipart.unwrap();
    assert!(multipart_open(&store, &object, &multipart));
    drop(up);
    assert!(!multipart_open(&store, &object, &multipart), "the multipart upload was aborted");
    assert!(!exists(&store, &store.inner.data_path(&object)));
    assert_eq!(store.leftovers().unwrap(), Vec::<String>::new());
    assert!(matches!(store.stat("cut.bin"), Err(FileError::NotFound { .. })));
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_reader_keeps_reading_a_replaced_file_until_the_grace_has_passed() {
    use std::io::Read;
    let url = fresh_url();
    let old = pattern(2, 17 * MIB + 5);
    let store = open(&url, FileStoreConfig::default());
    let mut up = store.begin_upload("f", None).unwrap();
    up.write(&old).unwrap();
    up.commit().unwrap();
    let (_, mut reader) = store.open("f").unwrap();
    let mut first = vec![0; MIB];
    reader.read_exact(&mut first).unwrap();
    let mut up = store.begin_upload("f", None).unwrap();
    up.write(b"new").unwrap();
    up.commit().unwrap();
    // A sweep within the grace keeps the old data.
    assert_eq!(store.sweep().unwrap().deleted_data, 0);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    assert!(first == old);
    assert_eq!(read_all(&store, "f"), b"new");
    // Past the grace it goes: a reader that opened it before fails.
    let (_, mut late) = {
        let mut up = store.begin_upload("g", None).unwrap();
        up.write(b"g1").unwrap();
        up.commit().unwrap();
        store.open("g").unwrap()
    };
    let mut up = store.begin_upload("g", None).unwrap();
    up.write(b"g2").unwrap();
    up.commit().unwrap();
    let options = S3Options { delete_grace: Duration::ZERO, ..options() };
    let sweeper = S3FileStore::open_with(&url, FileStoreConfig::default(), options).unwrap();
    assert_eq!(sweeper.swept().deleted_data, 2, "the old f and the old g");
    assert!(late.read_to_end(&mut Vec::new()).is_err());
    assert_eq!(read_all(&store, "f"), b"new");
    assert_eq!(read_all(&store, "g"), b"g2");
    assert_eq!(sweeper.leftovers().unwrap(), Vec::<String>::new());
    assert_eq!(store.usage().unwrap(), Usage { files: 2, bytes: 5, uploading: 0, resumable: 0 });
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn stale_uploads_are_swept_with_their_multipart_uploads() {
    let url = fresh_url();
    let store = open(&url, FileStoreConfig::default());
    // A resumable upload left with a part and a tail.
    let mut up = store.resumable("old", "f", None).unwrap();
    up.write(&pattern(3, 9 * MIB)).unwrap();
    drop(up);
    let old = record(&store, "old");
    let (object, multipart) = (old.data.clone(), old.multipart.clone().unwrap());
    assert!(old.tail.is_some());
    // A plain upload whose process died: its drop never ran.
    let mut crashed = store.begin_upload("g", None).unwrap();
    crashed.write(&pattern(4, 9 * MIB)).unwrap();
    let pending = store.inner.list_all(&store.inner.key("pending/")).unwrap();
    let (plain, _) = store.inner.get_json::<Pending>(&pending[0].location).unwrap().unwrap();
    let plain_object = pending[0].location.filename().unwrap().to_owned();
    let plain_multipart = plain.multipart.unwrap();
    std::mem::forget(crashed);
    // Young ones are kept.
    assert_eq!(store.sweep().unwrap(), Swept::default());
    // The sweep at open removes both, multipart uploads and all.
    let stale = FileStoreConfig { resumable_max_age: Some(Duration::ZERO), ..FileStoreConfig::default() };
    let sweeper = open(&url, stale);
    assert_eq!(sweeper.swept(), Swept { stale_resumable: 1, stale_pending: 1, deleted_data: 0 });
    assert_eq!(sweeper.upload_state("old").unwrap(), None);
    assert!(!multipart_open(&sweeper, &object, &multipart));
    assert!(!multipart_open(&sweeper, &plain_object, &plain_multipart));
    assert_eq!(sweeper.leftovers().unwrap(), Vec::<String>::new());
    // One being written in this process is never stale.
    let busy = sweeper.resumable("busy", "h", None).unwrap();
    assert_eq!(sweeper.sweep().unwrap(), Swept::default());
    assert_eq!(sweeper.resumable_size("busy").unwrap(), Some(0));
    drop(busy);
    assert_eq!(sweeper.sweep().unwrap().stale_resumable, 1);
    assert_eq!(sweeper.usage().unwrap(), Usage::default());
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn pointer_writes_are_conditional_on_the_server() {
    // What the commits and deletes rely on: the server refuses a PUT
    // If-Match an older ETag, and a PUT If-None-Match * over an object.
    let store = fresh_with(FileStoreConfig::default());
    let inner = &store.inner;
    let path = inner.path("names/probe");
    let pointer = |data: &str| Pointer { data: data.into(), ..Pointer::default() };
    let first = inner.put_json(&path, &pointer("1"), PutMode::Create).unwrap().unwrap();
    assert_eq!(inner.put_json(&path, &pointer("2"), PutMode::Create).unwrap(), None);
    let update =
        |etag: &Option<String>| PutMode::Update(UpdateVersion { e_tag: etag.clone(), version: None });
    let second = inner.put_json(&path, &pointer("3"), update(&first)).unwrap().unwrap();
    assert_ne!(first, second);
    assert_eq!(inner.put_json(&path, &pointer("4"), update(&first)).unwrap(), None);
    assert_eq!(inner.get_json::<Pointer>(&path).unwrap().unwrap().0.data, "3");
    inner.delete(&path).unwrap();
    assert_eq!(inner.put_json(&path, &pointer("5"), update(&second)).unwrap(), None);
    // An ETag is the content's MD5 here (as on AWS for a plain PUT): the
    // same content written again has the same ETag, which is why each
    // writer of a resumable upload's record puts its own id in it.
    let again = inner.put_json(&path, &pointer("3"), PutMode::Overwrite).unwrap();
    assert_eq!(again, Some(second));
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn an_unreachable_store_says_so_without_its_secrets() {
    // A port nothing listens on: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = S3Options { endpoint: Some(format!("http://127.0.0.1:{port}")), ..S3Options::default() };
    let err =
        S3FileStore::open_with("s3://bucket/some/prefix", FileStoreConfig::default(), options).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FileError::Unreachable { .. }), "{text}");
    assert!(text.starts_with("file store s3://bucket/some/prefix is unreachable: "), "{text}");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    assert!(!text.contains(&secret) && !format!("{err:?}").contains(&secret), "{text}");
    let store = fresh_with(FileStoreConfig::default());
    assert!(store.reachable());
    assert!(!format!("{store:?}").contains(&secret));
}

#[test]
fn urls_name_a_bucket_and_a_prefix() {
    assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), "".into()));
    assert_eq!(parse_url("s3://b/").unwrap(), ("b".into(), "".into()));
    assert_eq!(parse_url("s3://b/p/q/").unwrap(), ("b".into(), "p/q".into()));
    for bad in ["http://b/p", "s3://", "s3:///p", "s3://b/p//q", "s3://b/../q", "s3://u@b/p", "s3://b/p?x=1"]
    {
        let err = parse_url(bad).unwrap_err();
        assert!(matches!(err, FileError::Url { .. }), "{bad}: {err}");
        assert!(err.to_string().starts_with(&format!("files_url {bad:?}: ")), "{err}");
    }
}

#[test]
fn names_in_keys_sort_as_the_names_do() {
    let mut names = ["a", "a\u{e9}", "az", "A", "a b", "a%", "\u{1F600}", "z"];
    let mut keys: Vec<String> = names.iter().map(|n| hex(n.as_bytes())).collect();
    names.sort();
    keys.sort();
    let back: Vec<String> = keys.iter().map(|k| String::from_utf8(unhex(k).unwrap()).unwrap()).collect();
    assert_eq!(back, names);
    assert_eq!(unhex("6"), None);
    assert_eq!(unhex("zz"), None);
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn racing_commits_of_one_name_each_trash_the_copy_they_replaced() {
    // Every commit reads the pointer and writes it If-Match what it read:
    // a commit that lost the race reads again, so each replaced copy is
    // trashed by exactly one commit and none is left unnamed.
    const N: usize = 12;
    let store = fresh_with(FileStoreConfig::default());
    let ready = std::sync::Barrier::new(N);
    std::thread::scope(|s| {
        for seed in 0..N as u8 {
            let (store, ready) = (store.clone(), &ready);
            s.spawn(move || {
                let mut up = store.begin_upload("same", None).unwrap();
                up.write(&pattern(seed, 1000)).unwrap();
                ready.wait();
                up.commit().unwrap();
            });
        }
    });
    let inner = &store.inner;
    let trashed: Vec<String> = inner
        .list_all(&inner.key("trash/"))
        .unwrap()
        .iter()
        .map(|meta| meta.location.filename().unwrap().split_once('-').unwrap().1.to_owned())
        .collect();
    let distinct: HashSet<&String> = trashed.iter().collect();
    assert_eq!((trashed.len(), distinct.len()), (N - 1, N - 1), "{trashed:?}");
    let (pointer, _) = inner.pointer("same").unwrap().unwrap();
    assert!(!distinct.contains(&pointer.data));
    assert_eq!(store.leftovers().unwrap(), Vec::<String>::new());
    let got = read_all(&store, "same");
    assert!((0..N as u8).any(|seed| got == pattern(seed, 1000)));
}

/// A TCP relay to the test server that can be cut and restored, to make
/// the store unreachable and reachable again.
struct Relay {
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<std::net::TcpStream>>>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(listener: std::net::TcpListener, to: std::net::SocketAddr) -> Relay {
        use std::net::TcpStream;
        let stop = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        listener.set_nonblocking(true).unwrap();
        let (halt, held) = (Arc::clone(&stop), Arc::clone(&streams));
        let accepting = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(to) else { continue };
                held.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut into) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Relay { stop, streams, accepting: Some(accepting) }
    }

    /// Stops accepting and cuts every relayed connection.
    fn cut(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accepting) = self.accepting.take() {
            accepting.join().unwrap();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn a_store_that_stops_answering_is_unreachable_until_it_answers_again() {
    let upstream: std::net::SocketAddr =
        endpoint().strip_prefix("http://").expect("an http:// endpoint").parse().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = Relay::start(listener, upstream);
    let options = S3Options { endpoint: Some(format!("http://127.0.0.1:{port}")), ..S3Options::default() };
    let store = S3FileStore::open_with(&fresh_url(), FileStoreConfig::default(), options).unwrap();
    let mut up = store.begin_upload("f", None).unwrap();
    up.write(b"kept").unwrap();
    up.commit().unwrap();
    assert!(store.reachable());

    relay.cut();
    let err = store.stat("f").unwrap_err();
    assert!(matches!(err, FileError::Unreachable { .. }), "{err}");
    assert!(!store.reachable());
    assert!(FileStore::reachable(&store) == store.reachable());
    let mut up = store.begin_upload("g", None).unwrap();
    up.write(b"lost").unwrap();
    assert!(matches!(up.commit(), Err(FileError::Unreachable { .. })));

    let relay = Relay::start(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), upstream);
    assert_eq!(read_all(&store, "f"), b"kept");
    assert!(store.reachable());
    assert!(matches!(store.stat("g"), Err(FileError::NotFound { .. })));
    relay.cut();
}

mod one_gib;
