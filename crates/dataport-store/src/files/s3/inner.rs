//! The requests behind the store's calls: paths, the runtime bridge,
//! records and pointers read and written, uploads aborted.

use super::*;

impl Inner {
    pub fn config(&self) -> &FileStoreConfig {
        &self.config
    }

    pub fn options(&self) -> &S3Options {
        &self.options
    }

    pub fn active(&self) -> MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Inner::active`], once this process's writer of `id`, if it is
    /// finishing, has finished (waiting at most [`SETTLE_WAIT`]): what it
    /// stores is then in the bucket.
    pub(super) fn active_settled(&self, id: &str) -> MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        let closing = |active: &mut HashMap<String, Arc<AtomicBool>>| {
            active.get(id).is_some_and(|closing| closing.load(Ordering::Acquire))
        };
        self.released
            .wait_timeout_while(self.active(), SETTLE_WAIT, closing)
            .map_or_else(|poisoned| poisoned.into_inner().0, |(active, _)| active)
    }

    pub fn uploading(&self) -> &AtomicU64 {
        &self.uploading
    }

    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    pub(super) fn path(&self, rest: &str) -> Path {
        Path::from(self.key(rest))
    }

    pub fn data_path(&self, object: &str) -> Path {
        self.path(&format!("data/{object}"))
    }

    pub fn pending_path(&self, object: &str) -> Path {
        self.path(&format!("pending/{object}"))
    }

    pub(super) fn name_path(&self, name: &str) -> Path {
        self.path(&format!("names/{}", hex(name.as_bytes())))
    }

    pub fn upload_path(&self, id: &str) -> Path {
        self.path(&format!("uploads/{}", hex(id.as_bytes())))
    }

    pub(super) fn finished_path(&self, id: &str) -> Path {
        self.path(&format!("finished/{}", hex(id.as_bytes())))
    }

    pub fn tail_path(&self, tail: &str) -> Path {
        self.path(&format!("tails/{tail}"))
    }

    /// An error of the object store, with an unreachable store told apart.
    pub fn error(&self, e: object_store::Error) -> FileError {
        if unreachable(&e) {
            self.reachable.store(false, Ordering::Relaxed);
            return FileError::Unreachable { url: self.url.clone(), reason: e.to_string() };
        }
        FileError::Store { url: self.url.clone(), reason: e.to_string() }
    }

    /// Runs `task` on the store's runtime and waits for its answer; a
    /// failure to reach the store marks it unreachable, anything else as
    /// reached.
    pub fn run<T: Send + 'static>(
        &self,
        task: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<T, FileError> {
        self.wait(&self.start(task))
    }

    /// Starts `task` on the store's runtime without waiting for it: its
    /// answer comes from [`Inner::wait`] or [`Inner::poll`].
    pub fn start<T: Send + 'static>(
        &self,
        task: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Started<T> {
        let (answer, answered) = mpsc::sync_channel(1);
        if let Some(runtime) = &self.runtime {
            runtime.spawn(async move {
                let _ = answer.send(task.await);
            });
        }
        Started(answered)
    }

    /// Waits for the answer of a task [`Inner::start`] started, as
    /// [`Inner::run`] does.
    pub fn wait<T>(&self, started: &Started<T>) -> Result<T, FileError> {
        self.answer(started.0.recv().unwrap_or_else(|_| Err(stopped())))
    }

    /// The answer of a task [`Inner::start`] started, if it has come.
    pub fn poll<T>(&self, started: &Started<T>) -> Option<Result<T, FileError>> {
        match started.0.try_recv() {
            Ok(result) => Some(self.answer(result)),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(self.answer(Err(stopped()))),
        }
    }

    /// A task's answer: a failure to reach the store marks it unreachable,
    /// anything else as reached.
    fn answer<T>(&self, result: Result<T, object_store::Error>) -> Result<T, FileError> {
        match result {
            Ok(value) => {
                self.reachable.store(true, Ordering::Relaxed);
                Ok(value)
            }
            Err(e) => {
                if !unreachable(&e) {
                    self.reachable.store(true, Ordering::Relaxed);
                }
                Err(self.error(e))
            }
        }
    }

    /// The runtime's handle, for readers that stream from it.
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    pub fn s3(&self) -> Arc<AmazonS3> {
        Arc::clone(&self.s3)
    }

    /// The object at `path` parsed as JSON, and its ETag; `None` if there
    /// is none.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<(T, Option<String>)>, FileError> {
        let (s3, at) = (self.s3(), path.clone());
        let got = self.run(async move {
            match s3.get_opts(&at, GetOptions::default()).await {
                Ok(got) => {
                    let etag = got.meta.e_tag.clone();
                    Ok(Some((got.bytes().await?, etag)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let Some((bytes, etag)) = got else { return Ok(None) };
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| FileError::Store { url: self.url.clone(), reason: format!("{path}: {e}") })?;
        Ok(Some((value, etag)))
    }

    /// Writes `value` as JSON at `path` under `mode`; answers the new ETag,
    /// or `None` if the condition failed (another writer was first).
    pub fn put_json<T: serde::Serialize>(
        &self,
        path: &Path,
        value: &T,
        mode: PutMode,
    ) -> Result<Option<Option<String>>, FileError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| FileError::Store { url: self.url.clone(), reason: format!("{path}: {e}") })?;
        let (s3, at) = (self.s3(), path.clone());
        let update = matches!(mode, PutMode::Update(_));
        self.run(async move {
            let opts = PutOptions { mode, ..Default::default() };
            match s3.put_opts(&at, PutPayload::from(body), opts).await {
                Ok(put) => Ok(Some(put.e_tag)),
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                    Ok(None)
                }
                // If-Match an object that is gone: the condition failed too.
                Err(object_store::Error::NotFound { .. }) if update => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Deletes `path`; one already gone is fine.
    pub fn delete(&self, path: &Path) -> Result<(), FileError> {
        let (s3, at) = (self.s3(), path.clone());
        self.run(async move {
            match s3.delete(&at).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Aborts the multipart upload `multipart` of `data/<object>`; one
    /// already gone (completed or aborted) is fine.
    pub fn abort(&self, object: &str, multipart: &str) -> Result<(), FileError> {
        use object_store::multipart::MultipartStore;
        let (s3, at, id) = (self.s3(), self.data_path(object), multipart.to_owned());
        self.run(async move {
            match s3.abort_multipart(&at, &id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Every object whose key starts with `key` (a raw prefix, not a path).
    pub(super) fn list_all(&self, key: &str) -> Result<Vec<ObjectMeta>, FileError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let (s3, prefix) = (self.s3(), key.to_owned());
            let opts = PaginatedListOptions { page_token: token, ..Default::default() };
            let page = self.run(async move { s3.list_paginated(Some(&prefix), opts).await })?;
            out.extend(page.result.objects);
            token = page.page_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The pointer of `name`, and its ETag; `None` if the name is not
    /// stored (never, or deleted: a tombstone).
    pub(super) fn pointer(&self, name: &str) -> Result<Option<(Pointer, Option<String>)>, FileError> {
        Ok(self.get_json::<Pointer>(&self.name_path(name))?.filter(|(pointer, _)| !pointer.is_tombstone()))
    }

    /// Removes what an unfinished resumable upload wrote: its multipart
    /// upload and its tail.
    pub fn remove_upload_data(&self, record: &UploadRecord) -> Result<(), FileError> {
        if let Some(multipart) = &record.multipart {
            self.abort(&record.data, multipart)?;
        }
        if let Some(tail) = &record.tail {
            self.delete(&self.tail_path(&tail.key))?;
        }
        Ok(())
    }

    /// Marks `data/<object>` for deletion once readers that opened it have
    /// had `delete_grace`.
    pub(super) fn trash(&self, object: &str) -> Result<(), FileError> {
        let path = self.path(&format!("trash/{:020}-{object}", millis_now()));
        let (s3, at) = (self.s3(), path);
        self.run(async move { s3.put(&at, PutPayload::default()).await.map(drop) })
    }

    /// Makes the complete, checked `data/<object>` the content of
    /// `info.name`: a conditional PUT of the pointer against the one read,
    /// retried if another commit wins in between. The replaced data object
    /// goes to the trash. Without `replace`, a stored name is
    /// [`FileError::Exists`] (and the caller deletes the data). A pointer
    /// that already names `object` (a commit retried after a crash) is
    /// answered as it is.
    pub fn put_pointer(&self, object: &str, info: &FileInfo, replace: bool) -> Result<FileInfo, FileError> {
        let path = self.name_path(&info.name);
        for _ in 0..POINTER_ATTEMPTS {
            let old = self.get_json::<Pointer>(&path)?;
            let live = old.as_ref().map(|(old, _)| old).filter(|old| !old.is_tombstone());
            if let Some(old) = live
                && old.data == object
            {
                return old.info(&info.name, &self.url);
            }
            let created = match live {
                Some(_) if !replace => return Err(FileError::Exists { name: info.name.clone() }),
                Some(old) => old.created,
                None => nanos(info.created),
            };
            let replaced = live.map(|old| old.data.clone());
            let pointer = Pointer {
                data: object.to_owned(),
                size: info.size,
                sha256: info.sha256.to_hex(),
                created,
                modified: nanos(info.modified),
            };
            let mode = match &old {
                Some((_, etag)) => PutMode::Update(UpdateVersion { e_tag: etag.clone(), version: None }),
                None => PutMode::Create,
            };
            if self.put_json(&path, &pointer, mode)?.is_some() {
                if let Some(replaced) = replaced {
                    self.trash(&replaced)?;
                }
                return pointer.info(&info.name, &self.url);
            }
            if !replace {
                return Err(FileError::Exists { name: info.name.clone() });
            }
        }
        Err(FileError::Store {
            url: self.url.clone(),
            reason: format!("{:?}: {POINTER_ATTEMPTS} commits of the name won the race in a row", info.name),
        })
    }

    /// Records the resumable upload `id` as finished as `info`, and
    /// removes its record in progress.
    pub fn finish_upload(&self, id: &str, info: &FileInfo) -> Result<(), FileError> {
        self.put_json(&self.finished_path(id), &Finished::of(info), PutMode::Overwrite)?;
        self.delete(&self.upload_path(id))
    }

    /// The upload `id`, finished or in progress.
    pub(super) fn upload_state(&self, id: &str) -> Result<Option<UploadState>, FileError> {
        if let Some((finished, _)) = self.get_json::<Finished>(&self.finished_path(id))? {
            return Ok(Some(UploadState::Finished(finished.info(&self.url)?)));
        }
        let record = self.get_json::<UploadRecord>(&self.upload_path(id))?;
        Ok(record.map(|(record, _)| UploadState::InProgress { durable: record.durable() }))
    }
}

/// A task running on the store's runtime ([`Inner::start`]).
pub struct Started<T>(mpsc::Receiver<Result<T, object_store::Error>>);

/// The answer of a task whose runtime stopped (or never ran it).
fn stopped() -> object_store::Error {
    object_store::Error::Generic { store: "S3", source: "the store has stopped".into() }
}

/// Whether `e` says the store could not be reached (or answered that it
/// cannot serve now), rather than refusing the request.
pub(super) fn unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
                    | HttpErrorKind::Request
            );
        }
        // object_store keeps the status of an answer in a private type; its
        // text is how a 5xx (S3's 503 SlowDown, a gateway's 502) shows.
        if err.to_string().starts_with("Server returned non-2xx status code: 5") {
            return true;
        }
        source = err.source();
    }
    false
}
