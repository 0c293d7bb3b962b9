//! Tests of what only the S3 store does (the contract every store keeps is
//! the suite in `files/tests.rs`), against a real S3 server:
//! `DATAPORT_TEST_S3`, its endpoint URL, with `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` set and a bucket `dataport-test` made
//! (`tests/s3/server start` does all of it). Each test keeps to a prefix
//! of its own.

use std::sync::atomic::{AtomicUsize, Ordering};

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

#[test]
#[ignore = "needs an S3 server: tests/run starts one and sets DATAPORT_TEST_S3"]
fn smoke() {
    use std::io::Read;
    let store = fresh_with(FileStoreConfig::default());
    let mut up = store.begin_upload("a b%c", None).unwrap();
    up.write(b"hello").unwrap();
    let info = up.commit().unwrap();
    assert_eq!(info.size, 5);
    let mut up = store.begin_upload("a b%c", None).unwrap();
    up.write(b"again").unwrap();
    up.commit().unwrap();
    let (_, mut reader) = store.open("a b%c").unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"again");
    assert_eq!(store.list().unwrap().len(), 1);
    store.delete("a b%c").unwrap();
    assert!(store.list().unwrap().is_empty());
}
