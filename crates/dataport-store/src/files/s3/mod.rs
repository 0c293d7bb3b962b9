//! [`S3FileStore`]: files in an S3 bucket (`files_url = s3://BUCKET/PREFIX`),
//! shared by every replica that names the same bucket and prefix.
//!
//! ```text
//! PREFIX/names/<hex name>      the pointer: which data object is the name's
//!                              content, its size, sha256 and times (JSON);
//!                              `{}` once the name is deleted (a tombstone)
//! PREFIX/data/<object id>      file contents, never changed once written
//! PREFIX/pending/<object id>   a plain upload writing data/<object id> (JSON)
//! PREFIX/uploads/<hex id>      a resumable upload in progress: its multipart
//!                              upload, parts, sha256 state, tail (JSON)
//! PREFIX/tails/<random>        the bytes of a resumable upload past its last
//!                              whole part, stored when it is made durable
//! PREFIX/finished/<hex id>     a resumable upload that was committed (JSON)
//! PREFIX/trash/<ms>-<object>   data/<object> was replaced or deleted at <ms>;
//!                              removed once `delete_grace` has passed
//! ```
//!
//! **Names are hex in keys.** A name is any valid file name (Unicode,
//! spaces, `%`...); as lowercase hex of its bytes, keys sort exactly as the
//! names do as bytes (what [`FileStore::list_page`] promises), a name prefix
//! is a key prefix, and no character reaches S3 that it or a proxy could
//! treat specially. 255 bytes of name make 510 of key, within S3's 1,024.
//!
//! **A file appears by one PUT.** Data goes to a new object under `data/`
//! (a multipart upload in parts of [`S3Options::part_size`], sha256 computed
//! as each part leaves); only once it is complete and its sha256 checked is
//! the name's pointer written, and that PUT is the commit: before it nothing
//! is visible, after it the whole file is. S3 makes a PUT atomic for
//! readers, so a replace is atomic too, and a reader that resolved the old
//! pointer keeps reading the old data object, which is immutable. The
//! pointer is written conditionally (`If-Match` the pointer read, or
//! `If-None-Match: *` where there was none, which is also how
//! [`Upload::keep_existing`] refuses), so of two commits racing for a name
//! each knows exactly which data object it replaced: that object goes to
//! `trash/`, and is deleted by a sweep after [`S3Options::delete_grace`],
//! so readers of it keep reading meanwhile.
//!
//! **Nothing is left behind.** A dropped or failed upload aborts its
//! multipart upload and deletes what it wrote. A crash cannot run that code,
//! so every upload is recorded as it starts writing: plain ones in
//! `pending/` (with the multipart upload once it exists, or before the one
//! PUT of a file smaller than a part), resumable ones in `uploads/`; a sweep (when the store opens, and by
//! [`S3FileStore::sweep`]) aborts and deletes those older than
//! `resumable_max_age`. (A crash in the moment between creating a multipart
//! upload and recording it leaks that upload; on AWS a bucket lifecycle rule
//! `AbortIncompleteMultipartUpload` removes such parts.)
//!
//! **Resumable uploads live in the bucket**, not in one replica's memory:
//! the record holds the multipart upload id, each completed part's ETag,
//! the sha256 state after the parts (sha2's serialized state), and the
//! bytes past the last whole part once they are made durable (a small
//! object in `tails/`, S3 refusing parts under 5 MiB but the last). Any
//! replica can continue it after another was dropped or crashed. The record
//! changes only by conditional PUTs against the ETag its writer last saw:
//! a second writer in the same process is refused ([`FileError::InUse`]),
//! after waiting for the first if that one is finishing (storing what a
//! cut call sent, or committing); one in another process takes the upload
//! over (so cross-process `InUse` is best effort: the latest writer wins), and the first learns it at
//! its next step (its record update fails: [`FileError::InUse`]). S3 checks
//! each part's ETag when the upload completes, so data written by a writer
//! that lost the upload never becomes part of the file.
//!
//! **Memory per transfer is bounded**: an upload holds at most
//! [`S3Options::parts_in_flight`] parts on their way (3) and the one
//! filling; a reader a few received chunks. (A 1 GiB `dataport upload` to
//! versitygw on loopback: a server peak RSS of 92-100 MiB, against 73-77
//! MiB sending one part at a time; the rate there is bound by versitygw's
//! CPU, see ARCHITECTURE.md's decisions.)
//!
//! **Limits.** A reader slower than `delete_grace` loses a replaced file's
//! data. A deleted name keeps its tombstone (reused if the name comes
//! back). [`FileStore::usage`] lists the prefix (`names/`, `data/`,
//! `trash/`, `uploads/`): its cost grows with the store.
//!
//! The [`FileStore`] trait is synchronous (its callers are blocking-pool
//! threads) and object_store is asynchronous: the store owns a small runtime
//! of its own; each call runs there and the caller waits on a channel, so a
//! call works from any thread, inside a runtime or not.

mod reader;
mod records;
mod upload;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, SystemTime};

use dataport_core::files::{Sha256Digest, validate_name};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    ClientConfigKey, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion,
};

pub use reader::S3Reader;
use records::{Finished, Pending, Pointer, UploadRecord};
pub use upload::S3Upload;

use super::{FileError, FileInfo, FileStore, FileStoreConfig, UploadState, Usage};

/// How long a question about a resumable upload (or a new writer of it)
/// waits for this process's writer of it to finish (to store what a cut
/// call sent, or to commit) before it goes on with what the bucket holds.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// How many pointers a listing reads at once.
const LIST_CONCURRENCY: usize = 16;

/// How often a commit retries its conditional pointer write when another
/// commit of the same name won the race in between.
const POINTER_ATTEMPTS: usize = 32;

/// How many parts of an upload are on their way at once, by default: as
/// fast as four against versitygw here, with a part of room for a store
/// farther away (ARCHITECTURE.md's decisions have the figures).
const PARTS_IN_FLIGHT: usize = 3;

/// Settings of an S3 store beyond [`FileStoreConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Options {
    /// The size of each part of a multipart upload but the last, and so the
    /// memory an upload holds. S3 needs at least 5 MiB. (The store stores
    /// whole parts as they fill; [`FileStoreConfig::sync_every`] is the
    /// local store's.)
    pub part_size: usize,
    /// How many parts of an upload may be on their way at once while the
    /// next one fills (at least 1): an upload holds at most this many parts
    /// and one more.
    pub parts_in_flight: usize,
    /// How long a replaced or deleted file's data is kept for the readers
    /// that opened it before; a reader slower than this fails.
    pub delete_grace: Duration,
    /// The endpoint, in place of `AWS_ENDPOINT_URL`; one on plain HTTP is
    /// allowed (naming it asks for it).
    pub endpoint: Option<String>,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            part_size: 8 << 20,
            parts_in_flight: PARTS_IN_FLIGHT,
            delete_grace: Duration::from_secs(6 * 3600),
            endpoint: None,
        }
    }
}

/// What a sweep ([`S3FileStore::sweep`]) removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Resumable uploads idle past `resumable_max_age` (their multipart
    /// uploads aborted), and finished ones remembered that long.
    pub stale_resumable: usize,
    /// Plain uploads that a crash left (older than `resumable_max_age`).
    pub stale_pending: usize,
    /// Data objects of replaced or deleted files, past `delete_grace`.
    pub deleted_data: usize,
}

/// Files in an S3 bucket. Cheap to clone: clones share one store.
#[derive(Clone)]
pub struct S3FileStore {
    inner: Arc<Inner>,
    swept: Swept,
}

impl fmt::Debug for S3FileStore {
    // Only the URL: the client's own Debug would show the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3FileStore").field("url", &self.inner.url).finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    /// `s3://bucket/prefix`, for errors and logs (it holds no secret).
    url: String,
    s3: Arc<AmazonS3>,
    /// The key prefix, ending in `/` unless empty.
    prefix: String,
    config: FileStoreConfig,
    options: S3Options,
    /// Whether the last request reached the store.
    reachable: AtomicBool,
    /// Resumable uploads this process is writing, each with whether its
    /// writer is finishing (see [`Claim::close`]).
    active: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Notified whenever an upload leaves `active`.
    released: Condvar,
    /// Uploads open (plain or resumable), for [`FileStore::usage`].
    uploading: AtomicU64,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which a thread inside
        // another runtime may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `s3://bucket/prefix` split into the bucket and the prefix (without
/// surrounding slashes).
fn parse_url(url: &str) -> Result<(String, String), FileError> {
    let bad = |reason: &str| FileError::Url { url: url.to_owned(), reason: reason.to_owned() };
    let rest = url.strip_prefix("s3://").ok_or_else(|| bad("it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("it names no bucket"));
    }
    if bucket.contains(['?', '#', '@']) || prefix.contains(['?', '#']) {
        return Err(bad("a bucket and a prefix only: no user, query or fragment"));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..") && !prefix.is_empty() {
        return Err(bad("the prefix has an empty, . or .. segment"));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// Lowercase hex of `bytes`: sorts as the bytes do.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A new random object id: 128 bits, in hex.
pub(super) fn random_id() -> Result<String, FileError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| FileError::Io {
        path: "the system's random generator".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(hex(&bytes))
}

pub(super) fn nanos(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos())
        .unwrap_or(u64::MAX)
}

pub(super) fn from_nanos(nanos: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn millis_now() -> u64 {
    nanos(SystemTime::now()) / 1_000_000
}

impl S3FileStore {
    /// Opens the store at `url` (`s3://BUCKET/PREFIX`, the prefix
    /// optional) with the default [`S3Options`].
    pub fn open(url: &str, config: FileStoreConfig) -> Result<Self, FileError> {
        Self::open_with(url, config, S3Options::default())
    }

    /// Opens the store at `url`: the credentials, region and endpoint come
    /// from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for a store
    /// that is not AWS, `AWS_ALLOW_HTTP=true` for one on plain HTTP). Then
    /// sweeps what crashes and replaces left ([`S3FileStore::sweep`]); a
    /// store that cannot be reached is [`FileError::Unreachable`].
    pub fn open_with(url: &str, config: FileStoreConfig, options: S3Options) -> Result<Self, FileError> {
        let (bucket, prefix) = parse_url(url)?;
        let shown = format!("s3://{bucket}/{prefix}");
        // object_store's client is reqwest with rustls, and rustls needs a
        // provider chosen: the process's one, ring (a second call is a no-op;
        // rustls deprecates ring's provider only for its lack of post-quantum
        // key exchange, as the server's TLS notes).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let retry =
            RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(20), ..Default::default() };
        // Set key by key: `with_client_options` would drop what the
        // environment set (AWS_ALLOW_HTTP among it).
        let client = |key| AmazonS3ConfigKey::Client(key);
        let mut builder = AmazonS3Builder::from_env()
            .with_config(client(ClientConfigKey::ConnectTimeout), "5s")
            .with_config(client(ClientConfigKey::Timeout), "120s");
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let s3 = builder
            .with_bucket_name(&bucket)
            .with_retry(retry)
            .build()
            .map_err(|e| FileError::Url { url: shown.clone(), reason: e.to_string() })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dataport-s3")
            .enable_all()
            .build()
            .map_err(|e| FileError::Unreachable { url: shown.clone(), reason: e.to_string() })?;
        let inner = Inner {
            url: shown,
            s3: Arc::new(s3),
            prefix: if prefix.is_empty() { prefix } else { format!("{prefix}/") },
            config,
            options,
            reachable: AtomicBool::new(true),
            active: Mutex::new(HashMap::new()),
            released: Condvar::new(),
            uploading: AtomicU64::new(0),
            runtime: Some(runtime),
        };
        let mut store = S3FileStore { inner: Arc::new(inner), swept: Swept::default() };
        store.swept = store.sweep()?;
        Ok(store)
    }

    /// What the sweep at open removed.
    pub fn swept(&self) -> Swept {
        self.swept
    }

    /// Whether the last request reached the store (false while it is
    /// unreachable, until a request succeeds again).
    pub fn reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::Relaxed)
    }

    /// Removes what no file needs any more: data of replaced and deleted
    /// files older than `delete_grace`; resumable uploads not written to
    /// for longer than `resumable_max_age` (none if `None`) and not being
    /// written in this process, with their multipart uploads; finished ones
    /// remembered that long; and plain uploads a crash left, as old. A
    /// server calls it now and then.
    pub fn sweep(&self) -> Result<Swept, FileError> {
        let inner = &self.inner;
        let mut swept = Swept::default();
        let now = millis_now();
        let grace = u64::try_from(inner.options.delete_grace.as_millis()).unwrap_or(u64::MAX);
        for meta in inner.list_all(&inner.key("trash/"))? {
            let Some((when, object)) = meta.location.filename().and_then(|f| f.split_once('-')) else {
                continue;
            };
            let Ok(when) = when.parse::<u64>() else { continue };
            if now.saturating_sub(when) >= grace {
                inner.delete(&inner.data_path(object))?;
                inner.delete(&meta.location)?;
                swept.deleted_data += 1;
            }
        }
        let Some(max_age) = inner.config.resumable_max_age else { return Ok(swept) };
        let max_age = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let stale = |meta: &ObjectMeta| {
            let modified = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            now.saturating_sub(modified) >= max_age
        };
        for meta in inner.list_all(&inner.key("finished/"))? {
            if stale(&meta) {
                inner.delete(&meta.location)?;
                swept.stale_resumable += 1;
            }
        }
        for meta in inner.list_all(&inner.key("uploads/"))? {
            let Some(id) = meta.location.filename().and_then(unhex).and_then(|b| String::from_utf8(b).ok())
            else {
                continue;
            };
            // Held while removing, so nobody here claims the upload meanwhile.
            let active = inner.active();
            if stale(&meta) && !active.contains_key(&id) {
                if let Some((record, _)) = inner.get_json::<UploadRecord>(&meta.location)? {
                    inner.remove_upload_data(&record)?;
                    // A commit that crashed after completing its data and
                    // before naming it (one that named it is finished).
                    let finished = inner.get_json::<Finished>(&inner.finished_path(&id))?.is_some();
                    let named = || {
                        Ok::<_, FileError>(
                            inner.pointer(&record.name)?.is_some_and(|(p, _)| p.data == record.data),
                        )
                    };
                    if !finished && !named()? {
                        inner.delete(&inner.data_path(&record.data))?;
                    }
                }
                inner.delete(&meta.location)?;
                swept.stale_resumable += 1;
            }
        }
        for meta in inner.list_all(&inner.key("pending/"))? {
            let Some(object) = meta.location.filename().map(str::to_owned) else { continue };
            if stale(&meta) {
                if let Some((pending, _)) = inner.get_json::<Pending>(&meta.location)? {
                    if let Some(multipart) = &pending.multipart {
                        inner.abort(&object, multipart)?;
                    }
                    // A crash after the pointer was written leaves the record
                    // of a finished upload: its data is the file's.
                    let named = inner.pointer(&pending.name)?.is_some_and(|(p, _)| p.data == object);
                    if !named {
                        inner.delete(&inner.data_path(&object))?;
                    }
                }
                inner.delete(&meta.location)?;
                swept.stale_pending += 1;
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
impl S3FileStore {
    /// Marks the writer of `id` as finishing, as a writer whose call ended does.
    pub(crate) fn mark_closing(&self, id: &str) {
        self.inner.active()[id].store(true, Ordering::Release);
    }

    /// What uploads left that no stored file and no unfinished resumable
    /// upload needs: records of plain uploads, tails no record names, data
    /// objects that no pointer names and that are not in the trash.
    pub(crate) fn leftovers(&self) -> Result<Vec<String>, FileError> {
        let inner = &self.inner;
        let mut out: Vec<String> =
            inner.list_all(&inner.key("pending/"))?.into_iter().map(|m| m.location.to_string()).collect();
        let mut needed = HashSet::new();
        for meta in inner.list_all(&inner.key("trash/"))? {
            if let Some((_, object)) = meta.location.filename().and_then(|f| f.split_once('-')) {
                needed.insert(format!("data/{object}"));
            }
        }
        for meta in inner.list_all(&inner.key("names/"))? {
            if let Some((pointer, _)) = inner.get_json::<Pointer>(&meta.location)?
                && !pointer.is_tombstone()
            {
                needed.insert(format!("data/{}", pointer.data));
            }
        }
        for meta in inner.list_all(&inner.key("uploads/"))? {
            if let Some((record, _)) = inner.get_json::<UploadRecord>(&meta.location)?
                && let Some(tail) = record.tail
            {
                needed.insert(format!("tails/{}", tail.key));
            }
        }
        for kind in ["data/", "tails/"] {
            for meta in inner.list_all(&inner.key(kind))? {
                let key = meta.location.to_string();
                if !needed.contains(key.strip_prefix(&inner.prefix).unwrap_or(&key)) {
                    out.push(key);
                }
            }
        }
        Ok(out)
    }
}

/// Claims the resumable upload id in this process until dropped. A writer
/// of it that is finishing is waited for (at most [`SETTLE_WAIT`]) rather
/// than refused: a client resuming right after a cut continues from what
/// the cut call stored.
pub(super) struct Claim {
    inner: Arc<Inner>,
    id: String,
    closing: Arc<AtomicBool>,
}

impl Claim {
    fn take(inner: &Arc<Inner>, id: &str) -> Result<Self, FileError> {
        let mut active = inner.active_settled(id);
        if active.contains_key(id) {
            return Err(FileError::InUse { id: id.to_owned() });
        }
        let closing = Arc::new(AtomicBool::new(false));
        active.insert(id.to_owned(), Arc::clone(&closing));
        Ok(Claim { inner: Arc::clone(inner), id: id.to_owned(), closing })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Marks the writer as finishing: storing what it has (its call ended)
    /// or committing.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.inner.active().remove(&self.id);
        self.inner.released.notify_all();
    }
}

impl FileStore for S3FileStore {
    type Upload = S3Upload;
    type Reader = S3Reader;

    fn begin_upload(&self, name: &str, expected: Option<Sha256Digest>) -> Result<S3Upload, FileError> {
        validate_name(name)?;
        S3Upload::plain(Arc::clone(&self.inner), name, expected)
    }

    fn resumable(&self, id: &str, name: &str, expected: Option<Sha256Digest>) -> Result<S3Upload, FileError> {
        validate_name(id)?;
        validate_name(name)?;
        let claim = Claim::take(&self.inner, id)?;
        let inner = &self.inner;
        if let Some((finished, _)) = inner.get_json::<Finished>(&inner.finished_path(id))? {
            let info = finished.info(&inner.url)?;
            return Err(FileError::UploadFinished { id: id.to_owned(), info: Box::new(info) });
        }
        S3Upload::resume(Arc::clone(inner), name, expected, claim)
    }

    fn resumable_size(&self, id: &str) -> Result<Option<u64>, FileError> {
        validate_name(id)?;
        drop(self.inner.active_settled(id));
        let record = self.inner.get_json::<UploadRecord>(&self.inner.upload_path(id))?;
        Ok(record.map(|(record, _)| record.durable()))
    }

    fn upload_state(&self, id: &str) -> Result<Option<UploadState>, FileError> {
        validate_name(id)?;
        drop(self.inner.active_settled(id));
        self.inner.upload_state(id)
    }

    fn discard_resumable(&self, id: &str) -> Result<bool, FileError> {
        validate_name(id)?;
        let _claim = Claim::take(&self.inner, id)?;
        let inner = &self.inner;
        let finished = inner.finished_path(id);
        let forgotten = inner.get_json::<Finished>(&finished)?.is_some();
        if forgotten {
            inner.delete(&finished)?;
        }
        let path = inner.upload_path(id);
        let Some((record, _)) = inner.get_json::<UploadRecord>(&path)? else { return Ok(forgotten) };
        inner.remove_upload_data(&record)?;
        inner.delete(&path)?;
        Ok(true)
    }

    fn open(&self, name: &str) -> Result<(FileInfo, S3Reader), FileError> {
        validate_name(name)?;
        let inner = &self.inner;
        let (pointer, _) =
            inner.pointer(name)?.ok_or_else(|| FileError::NotFound { name: name.to_owned() })?;
        let info = pointer.info(name, &inner.url)?;
        let reader = S3Reader::new(Arc::clone(inner), inner.data_path(&pointer.data), info.size);
        Ok((info, reader))
    }

    fn stat(&self, name: &str) -> Result<FileInfo, FileError> {
        validate_name(name)?;
        let (pointer, _) =
            self.inner.pointer(name)?.ok_or_else(|| FileError::NotFound { name: name.to_owned() })?;
        pointer.info(name, &self.inner.url)
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<FileInfo>, FileError> {
        use futures_util::{StreamExt, TryStreamExt};
        let inner = &self.inner;
        let names = inner.key("names/");
        let mut found: Vec<Path> = Vec::new();
        let mut token = None;
        while found.len() < limit {
            let (s3, key) = (inner.s3(), format!("{names}{}", hex(prefix.as_bytes())));
            let opts = PaginatedListOptions {
                offset: after.map(|after| format!("{names}{}", hex(after.as_bytes()))),
                max_keys: Some((limit - found.len()).min(1000)),
                page_token: token,
                ..Default::default()
            };
            let page = inner.run(async move { s3.list_paginated(Some(&key), opts).await })?;
            let mut objects = page.result.objects;
            objects.retain(|meta| meta.size > Pointer::TOMBSTONE_SIZE);
            // S3 lists in key order; another store might not.
            objects.sort_by(|a, b| a.location.cmp(&b.location));
            found.extend(objects.into_iter().map(|meta| meta.location));
            token = page.page_token;
            if token.is_none() {
                break;
            }
        }
        found.truncate(limit);
        // One GET per pointer, a few at a time.
        let (s3, url) = (inner.s3(), inner.url.clone());
        let pointers = inner.run(async move {
            futures_util::stream::iter(found.into_iter().map(|path| {
                let s3 = Arc::clone(&s3);
                async move {
                    match s3.get(&path).await {
                        Ok(got) => Ok(Some((path, got.bytes().await?))),
                        // Deleted since it was listed.
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            }))
            .buffered(LIST_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await
        })?;
        let mut out = Vec::new();
        for (path, bytes) in pointers.into_iter().flatten() {
            let Some(name) = path.filename().and_then(unhex).and_then(|b| String::from_utf8(b).ok()) else {
                continue;
            };
            let pointer: Pointer = serde_json::from_slice(&bytes)
                .map_err(|e| FileError::Store { url: url.clone(), reason: format!("{path}: {e}") })?;
            out.push(pointer.info(&name, &url)?);
        }
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<FileInfo, FileError> {
        validate_name(name)?;
        let inner = &self.inner;
        let path = inner.name_path(name);
        for _ in 0..POINTER_ATTEMPTS {
            let (pointer, etag) =
                inner.pointer(name)?.ok_or_else(|| FileError::NotFound { name: name.to_owned() })?;
            let info = pointer.info(name, &inner.url)?;
            // A conditional PUT of a tombstone, not a DELETE (which S3 does
            // not make conditional): a commit racing this delete lands
            // either before it (and is deleted) or after it, never lost.
            let mode = PutMode::Update(UpdateVersion { e_tag: etag, version: None });
            if inner.put_json(&path, &Pointer::tombstone(), mode)?.is_some() {
                inner.trash(&pointer.data)?;
                return Ok(info);
            }
        }
        Err(FileError::Store {
            url: inner.url.clone(),
            reason: format!("{name:?}: {POINTER_ATTEMPTS} commits of the name won the race in a row"),
        })
    }

    fn usage(&self) -> Result<Usage, FileError> {
        let inner = &self.inner;
        let names = inner.list_all(&inner.key("names/"))?;
        let files = names.iter().filter(|meta| meta.size > Pointer::TOMBSTONE_SIZE).count() as u64;
        let trashed: HashSet<String> = inner
            .list_all(&inner.key("trash/"))?
            .iter()
            .filter_map(|meta| meta.location.filename()?.split_once('-').map(|(_, o)| o.to_owned()))
            .collect();
        let bytes = inner
            .list_all(&inner.key("data/"))?
            .iter()
            .filter(|meta| meta.location.filename().is_some_and(|o| !trashed.contains(o)))
            .map(|meta| meta.size)
            .sum();
        let resumable = inner.list_all(&inner.key("uploads/"))?.len() as u64;
        let uploading = inner.uploading.load(Ordering::Relaxed);
        Ok(Usage { files, bytes, uploading, resumable })
    }

    fn reachable(&self) -> bool {
        S3FileStore::reachable(self)
    }
}

mod inner;

#[cfg(test)]
pub(super) mod tests;
