use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::*;

fn sha(data: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(data).into())
}

fn store(dir: &Path) -> LocalFileStore {
    LocalFileStore::open(dir).unwrap()
}

/// A store in a fresh directory, which lives as long as the guard.
fn opened() -> (tempfile::TempDir, LocalFileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    (dir, store)
}

fn small(dir: &Path, max_file_size: u64, sync_every: u64) -> LocalFileStore {
    let config = FileStoreConfig { max_file_size, sync_every, ..FileStoreConfig::default() };
    LocalFileStore::open_with(dir, config).unwrap()
}

/// Every path under `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(root).unwrap().to_owned());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The files in `<store>/sub`, by name.
fn entries(store: &LocalFileStore, sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.path().join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i % 251) as u8)).collect()
}

/// Where a store under test lives, so a test can open it again (a restart,
/// or a second replica) and ask what it left behind.
trait Place {
    type Store: FileStore<Upload: std::fmt::Debug> + Clone + Send + Sync + 'static;

    /// Opens the store here (again) with `config`.
    fn open_with(&self, config: FileStoreConfig) -> Self::Store;

    fn open(&self) -> Self::Store {
        self.open_with(FileStoreConfig::default())
    }

    /// What uploads left that no stored file and no unfinished resumable
    /// upload needs: temporary files, records of plain uploads, data no
    /// name refers to. Empty whenever an upload ended, however it ended.
    fn leftovers(&self, store: &Self::Store) -> Vec<String>;

    /// Marks the writer of the resumable upload `id` as finishing, as a
    /// writer whose call ended does.
    fn mark_closing(&self, store: &Self::Store, id: &str);
}

/// A local store in a fresh directory, which lives as long as the place.
struct Local(tempfile::TempDir);

fn local() -> Local {
    Local(tempfile::tempdir().unwrap())
}

impl Place for Local {
    type Store = LocalFileStore;

    fn open_with(&self, config: FileStoreConfig) -> LocalFileStore {
        LocalFileStore::open_with(self.0.path(), config).unwrap()
    }

    fn mark_closing(&self, store: &LocalFileStore, id: &str) {
        store.mark_closing(id);
    }

    fn leftovers(&self, store: &LocalFileStore) -> Vec<String> {
        let mut out: Vec<String> = entries(store, ".tmp").into_iter().filter(|e| e != "resumable").collect();
        let (objects, files) = (entries(store, "objects").len(), store.list().unwrap().len());
        if objects != files {
            out.push(format!("{objects} objects for {files} files"));
        }
        out
    }
}

/// An S3 store under a fresh prefix of the test server's bucket.
struct S3(String);

fn s3() -> S3 {
    S3(s3::tests::fresh_url())
}

impl Place for S3 {
    type Store = S3FileStore;

    fn open_with(&self, config: FileStoreConfig) -> S3FileStore {
        S3FileStore::open_with(&self.0, config, s3::tests::options()).unwrap()
    }

    fn mark_closing(&self, store: &S3FileStore, id: &str) {
        store.mark_closing(id);
    }

    fn leftovers(&self, store: &S3FileStore) -> Vec<String> {
        store.leftovers().unwrap()
    }
}

fn upload(store: &impl FileStore, name: &str, data: &[u8]) -> FileInfo {
    let mut up = store.begin_upload(name, None).unwrap();
    for chunk in data.chunks(1000) {
        up.write(chunk).unwrap();
    }
    up.commit().unwrap()
}

fn read_all(store: &impl FileStore, name: &str) -> Vec<u8> {
    let (_, mut reader) = store.open(name).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

/// The tests every file store passes, each at a fresh place made by
/// `$place` (see [`Place`]).
macro_rules! file_store_suite {
    ($attrs:tt $place:path; $($test:ident),* $(,)?) => {
        $(file_store_test!($attrs $place; $test);)*
    };
}

macro_rules! file_store_test {
    ([$(#[$attr:meta])*] $place:path; $test:ident) => {
        #[test]
        $(#[$attr])*
        fn $test() {
            super::$test(&$place());
        }
    };
}

/// Every test of the contract, by name (each a generic function below).
macro_rules! every_store_test {
    ($(#[$attr:meta])* $place:path) => {
        file_store_suite!(
            [$(#[$attr])*] $place;
            an_upload_reads_back_with_its_size_and_sha256,
            usage_counts_stored_files_and_bytes_and_uploads_under_way,
            pages_list_one_prefix_after_a_name_in_byte_order,
            a_reader_seeks_to_any_offset,
            metadata_survives_reopening_the_store,
            a_dropped_upload_leaves_nothing_visible_and_nothing_behind,
            a_checksum_mismatch_commits_nothing,
            an_upload_over_the_limit_is_refused_and_removed,
            concurrent_uploads_of_one_name_end_with_one_whole_file,
            a_reader_of_a_replaced_file_keeps_the_old_content,
            delete_removes_a_file_but_not_from_its_readers,
            a_resumable_upload_continues_after_a_restart,
            writes_of_any_size_and_syncs_anywhere_read_back_whole,
            a_resumable_upload_has_one_writer_at_a_time,
            questions_about_a_finishing_resumable_upload_wait_for_its_writer,
            a_resumable_upload_failing_its_checksum_or_limit_is_discarded,
            hostile_names_are_refused,
            a_digest_given_after_the_data_is_checked_at_commit,
            a_finished_resumable_upload_is_remembered_until_discarded_or_stale,
            an_upload_that_keeps_existing_files_is_refused_at_commit_and_leaves_nothing,
        );
    };
}

mod local_store {
    every_store_test!(super::local);
}

mod s3_store {
    every_store_test!(
        #[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
        super::s3
    );
}

fn an_upload_reads_back_with_its_size_and_sha256(place: &impl Place) {
    let store = place.open();
    let data = pattern(7, 1_000_003);
    let before = SystemTime::now();
    let info = upload(&store, "report.pdf", &data);
    assert_eq!((info.name.as_str(), info.size, info.sha256), ("report.pdf", data.len() as u64, sha(&data)));
    assert!(info.created >= before && info.modified == info.created);
    assert_eq!(read_all(&store, "report.pdf"), data);
    assert_eq!(store.stat("report.pdf").unwrap(), info);
    upload(&store, "a", b"");
    assert_eq!(store.stat("a").unwrap().sha256, sha(b""));
    assert_eq!(read_all(&store, "a"), b"");
    let names: Vec<_> = store.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["a", "report.pdf"]);
}

fn usage_counts_stored_files_and_bytes_and_uploads_under_way(place: &impl Place) {
    let store = place.open();
    assert_eq!(store.usage().unwrap(), Usage::default());
    upload(&store, "a", &pattern(1, 3000));
    upload(&store, "b", &pattern(2, 500));
    upload(&store, "a", &pattern(3, 1000));
    let plain = store.begin_upload("c", None).unwrap();
    let mut resumable = store.resumable("r1", "d", None).unwrap();
    resumable.write(b"part").unwrap();
    let usage = Usage { files: 2, bytes: 1500, uploading: 2, resumable: 1 };
    assert_eq!(store.usage().unwrap(), usage);
    drop((plain, resumable));
    // The resumable upload waits to be resumed; nothing is being written.
    assert_eq!(store.usage().unwrap(), Usage { uploading: 0, ..usage });
}

fn pages_list_one_prefix_after_a_name_in_byte_order(place: &impl Place) {
    let store = place.open();
    // "a\u{e9}" sorts after "az" as bytes (0xC3 > 'z'), and "b" ends the run.
    for name in ["a1", "a2", "a3", "az", "a\u{e9}", "b1", "A"] {
        upload(&store, name, name.as_bytes());
    }
    let page = |prefix: &str, after: Option<&str>, limit: usize| -> Vec<String> {
        store.list_page(prefix, after, limit).unwrap().into_iter().map(|i| i.name).collect()
    };
    assert_eq!(page("a", None, 2), ["a1", "a2"]);
    assert_eq!(page("a", Some("a2"), 10), ["a3", "az", "a\u{e9}"]);
    assert_eq!(page("", Some("a\u{e9}"), 10), ["b1"]);
    assert_eq!(page("", None, 1), ["A"]);
    assert_eq!(page("c", None, 10), Vec::<String>::new());
    assert_eq!(page("a", None, 0), Vec::<String>::new());
    // A name deleted since it was the last of a page still continues after it.
    assert_eq!(page("", Some("a25"), 1), ["a3"]);
    // A deleted name is not listed, and the page is still full.
    store.delete("a2").unwrap();
    assert_eq!(page("a", Some("a1"), 2), ["a3", "az"]);
    assert_eq!(page("a", None, 2), ["a1", "a3"]);
    let all: Vec<String> = store.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(all, ["A", "a1", "a3", "az", "a\u{e9}", "b1"]);
}

fn a_reader_seeks_to_any_offset(place: &impl Place) {
    let store = place.open();
    let data = pattern(1, 10_000);
    upload(&store, "f", &data);
    let (info, mut reader) = store.open("f").unwrap();
    assert_eq!(info.size, 10_000);
    reader.seek(SeekFrom::Start(9_990)).unwrap();
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, data[9_990..]);
    assert_eq!(reader.seek(SeekFrom::Current(-20)).unwrap(), 9_980);
    let mut ten = [0; 10];
    reader.read_exact(&mut ten).unwrap();
    assert_eq!(ten, data[9_980..9_990]);
    assert_eq!(reader.seek(SeekFrom::Start(5)).unwrap(), 5);
    reader.read_exact(&mut ten).unwrap();
    assert_eq!(ten, data[5..15]);
    assert!(reader.seek(SeekFrom::Current(-100)).is_err());
    assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), 10_000);
    assert_eq!(reader.read(&mut ten).unwrap(), 0);
}

fn metadata_survives_reopening_the_store(place: &impl Place) {
    let info = upload(&place.open(), "kept", b"hello");
    let again = place.open();
    assert_eq!(again.stat("kept").unwrap(), info);
    assert_eq!(read_all(&again, "kept"), b"hello");
}

fn a_dropped_upload_leaves_nothing_visible_and_nothing_behind(place: &impl Place) {
    let store = place.open_with(FileStoreConfig { sync_every: 4096, ..FileStoreConfig::default() });
    let mut up = store.begin_upload("cut.bin", None).unwrap();
    // More than an S3 part, so part of it was sent.
    up.write(&pattern(3, 9_000_000)).unwrap();
    drop(up);
    assert!(matches!(store.stat("cut.bin"), Err(FileError::NotFound { .. })));
    assert!(matches!(store.open("cut.bin"), Err(FileError::NotFound { .. })));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
    assert_eq!(store.usage().unwrap(), Usage::default());
}

fn a_checksum_mismatch_commits_nothing(place: &impl Place) {
    let store = place.open();
    let wrong = sha(b"something else");
    let mut up = store.begin_upload("f", Some(wrong)).unwrap();
    up.write(b"data").unwrap();
    let err = up.commit().unwrap_err();
    let FileError::ChecksumMismatch { expected, actual } = &err else { panic!("{err}") };
    assert_eq!((*expected, *actual), (wrong, sha(b"data")));
    assert!(err.to_string().contains(&wrong.to_hex()), "{err}");
    assert!(matches!(store.stat("f"), Err(FileError::NotFound { .. })));
    assert_eq!(place.leftovers(&store), Vec::<String>::new());

    let mut up = store.begin_upload("f", Some(sha(b"data"))).unwrap();
    up.write(b"data").unwrap();
    assert_eq!(up.commit().unwrap().sha256, sha(b"data"));
}

fn an_upload_over_the_limit_is_refused_and_removed(place: &impl Place) {
    let store = place.open_with(FileStoreConfig { max_file_size: 10, ..FileStoreConfig::default() });
    let mut up = store.begin_upload("big", None).unwrap();
    up.write(b"123456").unwrap();
    let err = up.write(b"12345").unwrap_err();
    assert!(matches!(err, FileError::TooLarge { limit: 10 }), "{err}");
    assert_eq!(err.to_string(), "file is larger than the limit of 10 bytes");
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
    assert!(matches!(up.write(b"1"), Err(FileError::Abandoned { .. })));
    assert!(matches!(up.commit(), Err(FileError::Abandoned { .. })));
    assert!(store.list().unwrap().is_empty());
    // Exactly the limit is fine.
    assert_eq!(upload(&store, "fits", b"0123456789").size, 10);
}

fn concurrent_uploads_of_one_name_end_with_one_whole_file(place: &impl Place) {
    let store = place.open_with(FileStoreConfig { sync_every: 50_000, ..FileStoreConfig::default() });
    let len = 300_000;
    std::thread::scope(|s| {
        for seed in 0..6u8 {
            let store = store.clone();
            s.spawn(move || {
                let data = pattern(seed * 40, len);
                let mut up = store.begin_upload("same", None).unwrap();
                for chunk in data.chunks(777) {
                    up.write(chunk).unwrap();
                }
                up.commit().unwrap();
            });
        }
    });
    let got = read_all(&store, "same");
    let winner = (0..6u8).find(|seed| pattern(seed * 40, len) == got);
    assert!(winner.is_some(), "the stored file is not one whole upload");
    assert_eq!(store.stat("same").unwrap().sha256, sha(&got));
    // Every replaced copy is deleted (or, in S3, waits in the trash).
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
    assert_eq!(store.usage().unwrap(), Usage { files: 1, bytes: len as u64, uploading: 0, resumable: 0 });
}

fn a_reader_of_a_replaced_file_keeps_the_old_content(place: &impl Place) {
    let store = place.open();
    let old = upload(&store, "f", &pattern(1, 50_000));
    let (_, mut reader) = store.open("f").unwrap();
    let mut first = vec![0; 10];
    reader.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let new = upload(&store, "f", b"new content");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    assert_eq!(first, pattern(1, 50_000));
    assert_eq!(read_all(&store, "f"), b"new content");
    assert_eq!(new.created, old.created, "replacing keeps the creation time");
    assert!(new.modified > old.modified);
    assert_eq!(store.stat("f").unwrap(), new);
}

fn delete_removes_a_file_but_not_from_its_readers(place: &impl Place) {
    let store = place.open();
    let info = upload(&store, "gone", b"bytes");
    let (_, mut reader) = store.open("gone").unwrap();
    assert_eq!(store.delete("gone").unwrap(), info);
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"bytes");
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
    for result in [store.stat("gone"), store.delete("gone"), store.open("gone").map(|(i, _)| i)] {
        let err = result.unwrap_err();
        assert!(matches!(&err, FileError::NotFound { name } if name == "gone"), "{err}");
        assert_eq!(err.to_string(), "no file named \"gone\"");
    }
    // The name can be stored again.
    upload(&store, "gone", b"back");
    assert_eq!(read_all(&store, "gone"), b"back");
}

fn a_resumable_upload_continues_after_a_restart(place: &impl Place) {
    let data = pattern(5, 30_000);
    let config = FileStoreConfig { sync_every: 4096, ..FileStoreConfig::default() };
    let first = place.open_with(config.clone());
    assert_eq!(first.resumable_size("up-1").unwrap(), None);
    let mut up = first.resumable("up-1", "big.bin", Some(sha(&data))).unwrap();
    up.write_at(0, &data[..12_345]).unwrap();
    assert!(first.resumable_size("up-1").unwrap().is_some());
    drop(up);
    assert_eq!(first.resumable_size("up-1").unwrap(), Some(12_345));
    drop(first);

    let again = place.open_with(config);
    assert_eq!(again.resumable_size("up-1").unwrap(), Some(12_345));
    let mut up = again.resumable("up-1", "big.bin", Some(sha(&data))).unwrap();
    assert_eq!((up.written(), up.committed_size()), (12_345, 12_345));
    let err = up.write_at(0, &data[..10]).unwrap_err();
    assert!(matches!(err, FileError::BadOffset { expected: 12_345, got: 0 }), "{err}");
    assert_eq!(err.to_string(), "write at offset 0, but the upload has 12345 bytes; continue at 12345");
    up.write_at(12_345, &data[12_345..]).unwrap();
    let info = up.commit().unwrap();
    assert_eq!((info.name.as_str(), info.size, info.sha256), ("big.bin", 30_000, sha(&data)));
    assert_eq!(read_all(&again, "big.bin"), data);
    assert_eq!(again.resumable_size("up-1").unwrap(), None);
    assert_eq!(again.usage().unwrap().resumable, 0);
    assert_eq!(place.leftovers(&again), Vec::<String>::new());
}

fn writes_of_any_size_and_syncs_anywhere_read_back_whole(place: &impl Place) {
    // Local: whole aligned pages go to disk by direct I/O where the file
    // system allows, the ragged ends of each block through the page cache.
    // S3: whole parts, and the bytes past them as a tail at each sync. Every
    // mix, across blocks or parts, flushes and syncs at odd offsets, must
    // read back exactly as written.
    let store = place.open_with(FileStoreConfig { sync_every: 100_003, ..FileStoreConfig::default() });
    let data = pattern(3, 19_000_000);
    let mut up = store.resumable("odd", "odd.bin", Some(sha(&data))).unwrap();
    let sizes = [1, 4095, 4097, 3 << 20, 12_345, 1, 777_777, 4096, 2 << 20];
    let mut at = 0;
    for (i, &size) in sizes.iter().cycle().enumerate() {
        let end = (at + size).min(data.len());
        up.write_at(at as u64, &data[at..end]).unwrap();
        at = end;
        if at == data.len() {
            break;
        }
        if i % 3 == 2 {
            assert_eq!(up.sync().unwrap(), at as u64);
            assert_eq!(up.committed_size(), at as u64);
        }
    }
    let info = up.commit().unwrap();
    assert_eq!((info.size, info.sha256), (data.len() as u64, sha(&data)));
    assert!(read_all(&store, "odd.bin") == data);
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
}

fn a_resumable_upload_has_one_writer_at_a_time(place: &impl Place) {
    let store = place.open();
    let mut up = store.resumable("r", "f", None).unwrap();
    up.write(b"abc").unwrap();
    assert!(matches!(store.resumable("r", "f", None), Err(FileError::InUse { .. })));
    assert!(matches!(store.discard_resumable("r"), Err(FileError::InUse { .. })));
    drop(up);
    assert!(store.discard_resumable("r").unwrap());
    assert!(!store.discard_resumable("r").unwrap());
    assert_eq!(store.resumable_size("r").unwrap(), None);
    assert_eq!(store.resumable("r", "f", None).unwrap().written(), 0);
}

fn questions_about_a_finishing_resumable_upload_wait_for_its_writer(place: &impl Place) {
    let store = place.open();
    let mut up = store.resumable("r", "f", None).unwrap();
    up.write(b"hello").unwrap();
    // Nothing is flushed yet: a writer still receiving answers 0 durable.
    assert!(matches!(store.upload_state("r").unwrap(), Some(UploadState::InProgress { durable: 0 })));
    // Its call ended; while it flushes, questions wait for what it stores.
    place.mark_closing(&store, "r");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(up);
    });
    let asked = Instant::now();
    assert!(matches!(store.upload_state("r").unwrap(), Some(UploadState::InProgress { durable: 5 })));
    assert!(asked.elapsed() >= Duration::from_millis(250), "answered before the writer finished");
    writer.join().unwrap();

    // A new writer waits too, rather than being refused as a second one.
    let up = store.resumable("r", "f", None).unwrap();
    place.mark_closing(&store, "r");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(up);
    });
    let resumed = store.resumable("r", "f", None).unwrap();
    assert_eq!(resumed.written(), 5);
    writer.join().unwrap();
}

fn a_resumable_upload_failing_its_checksum_or_limit_is_discarded(place: &impl Place) {
    let store = place.open_with(FileStoreConfig { max_file_size: 8, ..FileStoreConfig::default() });
    let mut up = store.resumable("r", "f", Some(sha(b"other"))).unwrap();
    up.write(b"data").unwrap();
    assert!(matches!(up.commit(), Err(FileError::ChecksumMismatch { .. })));
    assert_eq!(store.resumable_size("r").unwrap(), None);
    let mut up = store.resumable("r", "f", None).unwrap();
    up.write(b"12345").unwrap();
    assert!(matches!(up.write(b"12345"), Err(FileError::TooLarge { limit: 8 })));
    drop(up);
    assert_eq!(store.resumable_size("r").unwrap(), None);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
}

fn hostile_names_are_refused(place: &impl Place) {
    let store = place.open();
    let long = "a".repeat(256);
    for name in
        ["", ".", "..", "../escape", "/etc/passwd", "a/b", "a\\b", "..\\x", "nul\0", "new\nline", &long]
    {
        let refused = |result: Result<(), FileError>| {
            let err = result.unwrap_err();
            assert!(matches!(err, FileError::BadName(_)), "{name:?}: {err}");
            assert!(err.to_string().starts_with("file name"), "{err}");
        };
        refused(store.begin_upload(name, None).map(drop));
        refused(store.resumable(name, "ok", None).map(drop));
        refused(store.resumable("ok", name, None).map(drop));
        refused(store.resumable_size(name).map(drop));
        refused(store.upload_state(name).map(drop));
        refused(store.discard_resumable(name).map(drop));
        refused(store.open(name).map(drop));
        refused(store.stat(name).map(drop));
        refused(store.delete(name).map(drop));
    }
    assert_eq!(store.usage().unwrap(), Usage::default());
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
}

fn a_digest_given_after_the_data_is_checked_at_commit(place: &impl Place) {
    let store = place.open();
    let old = upload(&store, "f", b"old");
    let wrong = sha(b"something else");
    let mut up = store.begin_upload("f", None).unwrap();
    up.write(b"data").unwrap();
    up.expect_sha256(wrong);
    let err = up.commit().unwrap_err();
    let FileError::ChecksumMismatch { expected, actual } = &err else { panic!("{err}") };
    assert_eq!((*expected, *actual), (wrong, sha(b"data")));
    assert_eq!(store.stat("f").unwrap(), old);
    assert_eq!(read_all(&store, "f"), b"old");
    assert_eq!(place.leftovers(&store), Vec::<String>::new());

    // It replaces a digest given when the upload began.
    let mut up = store.begin_upload("f", Some(wrong)).unwrap();
    up.write(b"data").unwrap();
    up.expect_sha256(sha(b"data"));
    assert_eq!(up.commit().unwrap().sha256, sha(b"data"));
    assert_eq!(read_all(&store, "f"), b"data");
}

fn a_finished_resumable_upload_is_remembered_until_discarded_or_stale(place: &impl Place) {
    let store = place.open();
    assert_eq!(store.upload_state("up").unwrap(), None);
    let mut up = store.resumable("up", "done.bin", None).unwrap();
    up.write(b"hello").unwrap();
    // Being written: only what is durable counts.
    assert_eq!(store.upload_state("up").unwrap(), Some(UploadState::InProgress { durable: 0 }));
    up.sync().unwrap();
    assert_eq!(store.upload_state("up").unwrap(), Some(UploadState::InProgress { durable: 5 }));
    let info = up.commit().unwrap();
    assert_eq!(store.upload_state("up").unwrap(), Some(UploadState::Finished(info.clone())));
    assert_eq!(store.resumable_size("up").unwrap(), None);
    // A finished id is not written again, and no data comes back for it.
    let again = store.resumable("up", "done.bin", None).unwrap_err();
    assert!(
        matches!(&again, FileError::UploadFinished { id, info: i } if id == "up" && **i == info),
        "{again}"
    );
    assert_eq!(again.to_string(), "upload \"up\" was already finished: committed as \"done.bin\", 5 bytes");
    assert_eq!(store.usage().unwrap().resumable, 0);
    assert_eq!(place.leftovers(&store), Vec::<String>::new());
    // The record is committed with the file, and survives a restart.
    drop(store);
    let store = place.open();
    assert_eq!(store.upload_state("up").unwrap(), Some(UploadState::Finished(info.clone())));
    // Deleting the file does not forget the upload; discarding it does.
    store.delete("done.bin").unwrap();
    assert_eq!(store.upload_state("up").unwrap(), Some(UploadState::Finished(info)));
    assert!(store.discard_resumable("up").unwrap());
    assert_eq!(store.upload_state("up").unwrap(), None);
    assert!(!store.discard_resumable("up").unwrap());
    let mut up = store.resumable("up", "second.bin", None).unwrap();
    up.write(b"x").unwrap();
    up.commit().unwrap();
    // Kept as long as an unfinished upload would be.
    drop(store);
    let store =
        place.open_with(FileStoreConfig { resumable_max_age: Some(Duration::ZERO), ..Default::default() });
    assert_eq!(store.upload_state("up").unwrap(), None);
    assert_eq!(read_all(&store, "second.bin"), b"x");
    assert!(matches!(store.upload_state("a/b"), Err(FileError::BadName(_))));
}

fn an_upload_that_keeps_existing_files_is_refused_at_commit_and_leaves_nothing(place: &impl Place) {
    let store = place.open();
    // Both begin before either commits: the commit decides.
    let mut first = store.begin_upload("report.pdf", None).unwrap();
    let mut second = store.begin_upload("report.pdf", None).unwrap();
    first.keep_existing();
    second.keep_existing();
    first.write(b"first").unwrap();
    second.write(b"second").unwrap();
    first.commit().unwrap();
    match second.commit() {
        Err(FileError::Exists { name }) => assert_eq!(name, "report.pdf"),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(read_all(&store, "report.pdf"), b"first");
    assert_eq!(place.leftovers(&store), Vec::<String>::new(), "the refused upload's data is gone");
    // A name not stored yet is stored, and without keep_existing a name is replaced.
    let mut new = store.begin_upload("new.txt", None).unwrap();
    new.keep_existing();
    new.write(b"new").unwrap();
    new.commit().unwrap();
    upload(&store, "report.pdf", b"replaced");
    assert_eq!(read_all(&store, "report.pdf"), b"replaced");
    // A deleted name counts as not stored.
    store.delete("new.txt").unwrap();
    let mut again = store.begin_upload("new.txt", None).unwrap();
    again.keep_existing();
    again.write(b"again").unwrap();
    again.commit().unwrap();
    assert_eq!(read_all(&store, "new.txt"), b"again");
}

#[test]
fn migrations_are_valid() {
    assert!(index::migrations().validate().is_ok());
}

#[test]
fn a_large_file_reads_back_whole_and_from_any_offset() {
    // Large files are read with direct I/O, a block of whole pages at a
    // time, where the file system allows: reads and seeks that straddle
    // blocks and pages, and the ragged end, must give the file's bytes.
    let (_dir, store) = opened();
    let data = pattern(7, (LocalReader::DIRECT_MIN + 3 * 4096 + 123) as usize);
    upload(&store, "big", &data);
    assert_eq!(read_all(&store, "big"), data);
    let (_, mut reader) = store.open("big").unwrap();
    let mut buf = vec![0; 5_000];
    for start in [0, 1, 4095, 4096, (2 << 20) - 7, data.len() as u64 - 5_000] {
        assert_eq!(reader.seek(SeekFrom::Start(start)).unwrap(), start);
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(buf, data[start as usize..start as usize + 5_000], "at {start}");
    }
    assert_eq!(reader.seek(SeekFrom::Current(-10_000)).unwrap(), data.len() as u64 - 10_000);
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, data[data.len() - 10_000..]);
    assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), data.len() as u64 - 1);
    assert_eq!(reader.read(&mut buf).unwrap(), 1);
    assert_eq!(reader.read(&mut buf).unwrap(), 0);
    assert!(reader.seek(SeekFrom::Current(-(data.len() as i64) - 1)).is_err());
}

#[test]
fn a_large_file_reads_back_in_chunks_from_any_offset() {
    // Aligned chunks of a large file go from the disk straight into their
    // vectors (the tests run with the binary's allocator, which aligns
    // them); others, and chunks after a read that left a block buffered, go
    // through the reader's buffer. Either way they must be the file's bytes.
    let (_dir, store) = opened();
    let data = pattern(9, (LocalReader::DIRECT_MIN + (1 << 20) + 4096 + 77) as usize);
    upload(&store, "big", &data);
    let (_, mut reader) = store.open("big").unwrap();
    let mut read = Vec::new();
    loop {
        let chunk = reader.read_chunk(1 << 20).unwrap();
        assert!(
            chunk.len() == 1 << 20 || read.len() + chunk.len() == data.len(),
            "a short chunk before the end"
        );
        if chunk.is_empty() {
            break;
        }
        read.extend_from_slice(&chunk);
    }
    assert!(read == data);
    for start in [4095, 4096, 3 << 20, data.len() as u64 - 4096 - 77] {
        reader.seek(SeekFrom::Start(start)).unwrap();
        let at = start as usize;
        assert!(
            reader.read_chunk(1 << 20).unwrap() == data[at..(at + (1 << 20)).min(data.len())],
            "at {start}"
        );
        let next = at + (1 << 20);
        if next < data.len() {
            let mut byte = [0];
            reader.read_exact(&mut byte).unwrap();
            assert_eq!(byte[0], data[next]);
            assert!(
                reader.read_chunk(8192).unwrap() == data[next + 1..(next + 8193).min(data.len())],
                "after {start}"
            );
        }
    }
}

#[test]
fn periodic_flushes_advance_the_committed_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = small(dir.path(), u64::MAX, 10_000);
    let data = pattern(9, 95_000);
    let mut up = store.begin_upload("f", None).unwrap();
    for chunk in data.chunks(1000) {
        up.write(chunk).unwrap();
    }
    // The flushes run beside the upload: wait for them to catch up.
    let start = Instant::now();
    while up.committed_size() < 80_000 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(up.committed_size() >= 80_000 && up.committed_size() <= 95_000, "{}", up.committed_size());
    assert_eq!(up.sync().unwrap(), 95_000);
    assert_eq!(up.committed_size(), 95_000);
    let info = up.commit().unwrap();
    assert_eq!(info.sha256, sha(&data));
    assert_eq!(read_all(&store, "f"), data);
}

#[test]
fn leftovers_of_a_crash_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let first = store(dir.path());
    upload(&first, "kept", b"kept");
    let root = first.path().to_owned();
    drop(first);
    std::fs::write(root.join(".tmp/upload-crashed"), b"half an upload").unwrap();
    std::fs::create_dir(root.join(".tmp/odd-dir")).unwrap();
    std::fs::write(root.join("objects/orphan"), b"committed data no name refers to").unwrap();
    std::fs::write(root.join(".tmp/resumable/r1"), b"resumable data").unwrap();
    let again = store(dir.path());
    let cleaned = Cleanup { temp_files: 2, orphan_objects: 1, stale_resumable: 0 };
    assert_eq!(again.cleaned(), cleaned);
    assert_eq!(entries(&again, ".tmp"), ["resumable"]);
    assert_eq!(entries(&again, ".tmp/resumable"), ["r1"]);
    assert_eq!(entries(&again, "objects").len(), 1);
    assert_eq!(read_all(&again, "kept"), b"kept");
}

/// A crash inside a resumable upload's commit: after its data is linked
/// into objects/ but before the index names it, the upload stays resumable
/// with every byte it acknowledged; after the index names it but before its
/// own file is removed, the next open removes the file and the upload is
/// finished.
#[test]
fn a_crash_inside_a_resumable_commit_loses_no_acknowledged_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(6, 20_000);
    let store = small(dir.path(), u64::MAX, 4096);
    let mut up = store.resumable("cut", "cut.bin", None).unwrap();
    up.write_at(0, &data[..8_000]).unwrap();
    drop(up);
    // The commit's first step, then the crash.
    let root = store.path().to_owned();
    std::fs::hard_link(root.join(".tmp/resumable/cut"), root.join("objects/linked-then-crashed")).unwrap();
    drop(store);
    let again = small(dir.path(), u64::MAX, 4096);
    assert_eq!(again.cleaned().orphan_objects, 1);
    assert_eq!(again.resumable_size("cut").unwrap(), Some(8_000));
    let mut up = again.resumable("cut", "cut.bin", Some(sha(&data))).unwrap();
    up.write_at(8_000, &data[8_000..]).unwrap();
    up.commit().unwrap();
    assert_eq!(read_all(&again, "cut.bin"), data);
    assert!(entries(&again, ".tmp/resumable").is_empty(), "committed: its own file is gone");
    // The commit done, its own file's removal lost to a crash.
    std::fs::write(root.join(".tmp/resumable/cut"), &data).unwrap();
    drop(again);
    let last = small(dir.path(), u64::MAX, 4096);
    assert_eq!(last.cleaned().temp_files, 1);
    assert!(matches!(last.upload_state("cut").unwrap(), Some(UploadState::Finished(_))));
    assert_eq!(read_all(&last, "cut.bin"), data);
}

#[test]
fn stale_resumable_uploads_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = FileStoreConfig { resumable_max_age: Some(Duration::from_secs(3600)), ..Default::default() };
    let store = LocalFileStore::open_with(dir.path(), config.clone()).unwrap();
    let mut old = store.resumable("old", "f", None).unwrap();
    old.write(b"x").unwrap();
    drop(old);
    let mut fresh = store.resumable("fresh", "f", None).unwrap();
    fresh.write(b"y").unwrap();
    drop(fresh);
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let file = std::fs::File::options().write(true).open(store.path().join(".tmp/resumable/old")).unwrap();
    file.set_modified(two_hours_ago).unwrap();
    drop(store);
    let store = LocalFileStore::open_with(dir.path(), config).unwrap();
    assert_eq!(store.resumable_size("old").unwrap(), None);
    assert_eq!(store.resumable_size("fresh").unwrap(), Some(1));
    assert_eq!(store.remove_stale_resumable().unwrap(), 0);
    // One being written is never stale, however old its file.
    let busy = store.resumable("fresh", "f", None).unwrap();
    let file = std::fs::File::options().write(true).open(store.path().join(".tmp/resumable/fresh")).unwrap();
    file.set_modified(two_hours_ago).unwrap();
    assert_eq!(store.remove_stale_resumable().unwrap(), 0);
    drop(busy);
    assert_eq!(store.remove_stale_resumable().unwrap(), 1);
}

/// The suite's refusals, on the local disk: nothing is made or touched,
/// not even outside the store.
#[test]
fn hostile_names_are_refused_before_touching_the_disk() {
    let place = local();
    drop(place.open()); // the store's own directories
    let before = tree(place.0.path());
    hostile_names_are_refused(&place);
    assert_eq!(tree(place.0.path()), before);
    assert!(!place.0.path().parent().unwrap().join("escape").exists());
}

#[test]
fn a_full_disk_is_its_own_error() {
    let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
    let err = FileError::io("/data/files/.tmp/x", full);
    assert!(matches!(err, FileError::DiskFull { .. }), "{err}");
    assert_eq!(err.to_string(), "disk full writing /data/files/.tmp/x");
    let other = FileError::io("/x", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    assert!(matches!(other, FileError::Io { .. }), "{other}");
}

#[test]
fn a_file_in_the_way_of_the_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("files"), b"x").unwrap();
    let err = LocalFileStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, FileError::Io { .. }), "{err}");
    assert!(err.to_string().contains("files"), "{err}");
}

mod one_gib;

#[test]
fn check_finds_damaged_files_and_leftovers_and_repair_removes_only_leftovers() {
    let (dir, stored) = opened();
    upload(&stored, "good", b"good bytes");
    upload(&stored, "bad", b"bad bytes!");
    upload(&stored, "gone", b"gone bytes");
    let root = stored.path().to_owned();
    drop(stored);
    let objects = root.join("objects");
    let holding = |content: &[u8]| {
        std::fs::read_dir(&objects)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| std::fs::read(p).unwrap() == content)
    };
    let bad = holding(b"bad bytes!").unwrap();
    std::fs::write(&bad, b"bad bytes?").unwrap(); // the same size, another sha256
    std::fs::remove_file(holding(b"gone bytes").unwrap()).unwrap();
    std::fs::write(objects.join("orphan"), b"no name refers to it").unwrap();
    std::fs::write(root.join(".tmp/crashed"), b"half an upload").unwrap();

    let found = check(dir.path(), false).unwrap();
    assert_eq!((found.files, found.bytes), (3, 30));
    assert_eq!(found.damaged.len(), 2, "{:?}", found.damaged);
    assert!(found.damaged[0].starts_with("\"bad\": sha256 "), "{:?}", found.damaged);
    assert!(found.damaged[1].starts_with("\"gone\": its object cannot be read"), "{:?}", found.damaged);
    assert_eq!(found.leftovers.len(), 2);
    assert!(!found.clean(false));

    let repaired = check(dir.path(), true).unwrap();
    assert_eq!(repaired.leftovers.len(), 2);
    assert!(!repaired.clean(true), "a damaged file is never repaired away");
    assert!(bad.exists());
    let after = check(dir.path(), false).unwrap();
    assert!(after.leftovers.is_empty());
    assert_eq!(after.damaged.len(), 2);
    // The good file is untouched and still reads back.
    assert_eq!(read_all(&store(dir.path()), "good"), b"good bytes");
}

#[test]
fn a_sound_store_checks_clean() {
    let (dir, store) = opened();
    upload(&store, "a", b"alpha");
    drop(store);
    let found = check(dir.path(), false).unwrap();
    assert_eq!((found.files, found.damaged.len(), found.leftovers.len()), (1, 0, 0));
    assert!(found.clean(false));
}
