//! [`S3Upload`]: one upload to an [`super::S3FileStore`], sent in parts of
//! [`super::S3Options::part_size`] as they fill, the sha256 computed over
//! each part, in order, as it leaves. Up to
//! [`super::S3Options::parts_in_flight`] parts are on their way while the
//! next one fills, so the upload holds at most that many parts and one more
//! in memory. Only the parts stored, contiguously from the first, count:
//! they are what a resumable upload's record names and what
//! [`Upload::committed_size`] answers; a part that failed fails the upload at
//! its next call.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use dataport_core::files::Sha256Digest;
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};

use super::inner::Started;
use super::records::{Pending, Tail, UploadRecord};
use super::{Claim, Inner, hex, random_id, unhex};
use crate::files::{FileError, FileInfo, Stage, Upload};

/// A file being uploaded to an [`super::S3FileStore`]. Dropping it before
/// [`Upload::commit`] aborts a plain upload (its multipart upload and its
/// record), and makes a resumable upload's data durable for the next call,
/// here or on another replica, to continue.
pub struct S3Upload {
    inner: Arc<Inner>,
    name: String,
    expected: Option<Sha256Digest>,
    /// Whether the commit may replace a stored file of the name.
    replace: bool,
    /// The data object it completes into, `data/<object>`.
    object: String,
    part_size: usize,
    multipart: Option<String>,
    /// The parts stored, in order from the first: what a record names.
    parts: Vec<PartId>,
    /// The parts sent after them and not yet answered, oldest first.
    flight: VecDeque<Flight>,
    /// The bytes past the last part sent.
    buffer: Vec<u8>,
    /// An empty buffer of a part that was answered, for the next part.
    spare: Option<Vec<u8>>,
    /// The sha256 of the parts sent (stored or on their way), and of the
    /// parts stored alone (a record's).
    hasher: Sha256,
    stored_hash: Sha256,
    /// Bytes in the parts stored, and bytes written.
    stored: u64,
    written: u64,
    kind: Kind,
    state: Stage,
}

/// A part on its way: its size, the sha256 state once it was hashed (the
/// record's, once it and every part before it are stored), the answer to
/// its upload, and its bytes.
struct Flight {
    len: u64,
    hashed: Sha256,
    answer: Started<PartId>,
    body: bytes::Bytes,
}

enum Kind {
    /// Recorded in `pending/` once it writes anything.
    Plain { recorded: bool },
    Resumable {
        claim: Claim,
        /// The record's ETag as this writer last wrote it: a writer that
        /// finds another there has lost the upload.
        etag: Option<String>,
        /// The stored tail, if any.
        tail: Option<Tail>,
        /// This writer's id in the record.
        writer: String,
    },
}

impl fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Upload")
            .field("name", &self.name)
            .field("object", &self.object)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

fn hash_state(hasher: &Sha256) -> String {
    hex(&hasher.serialize())
}

pub(super) fn hasher_from(url: &str, state: &str) -> Result<Sha256, FileError> {
    let bad = || FileError::Store {
        url: url.to_owned(),
        reason: "a resumable upload's sha256 state is damaged".into(),
    };
    let bytes = unhex(state).ok_or_else(bad)?;
    let state = SerializedState::<Sha256>::try_from(&bytes[..]).map_err(|_| bad())?;
    Sha256::deserialize(&state).map_err(|_| bad())
}

impl S3Upload {
    fn new(
        inner: Arc<Inner>,
        name: &str,
        expected: Option<Sha256Digest>,
        object: String,
        kind: Kind,
    ) -> Self {
        inner.uploading().fetch_add(1, Ordering::Relaxed);
        let part_size = inner.options().part_size.max(1);
        S3Upload {
            inner,
            name: name.to_owned(),
            expected,
            replace: true,
            object,
            part_size,
            multipart: None,
            parts: Vec::new(),
            flight: VecDeque::new(),
            buffer: Vec::new(),
            spare: None,
            hasher: Sha256::new(),
            stored_hash: Sha256::new(),
            stored: 0,
            written: 0,
            kind,
            state: Stage::Open,
        }
    }

    pub(super) fn plain(
        inner: Arc<Inner>,
        name: &str,
        expected: Option<Sha256Digest>,
    ) -> Result<Self, FileError> {
        let object = random_id()?;
        Ok(S3Upload::new(inner, name, expected, object, Kind::Plain { recorded: false }))
    }

    /// Continues the upload of `claim`'s id from its record, or starts it
    /// with a new record; either way the record is written with this
    /// writer's ETag, taking the upload over from any writer elsewhere.
    pub(super) fn resume(
        inner: Arc<Inner>,
        name: &str,
        expected: Option<Sha256Digest>,
        claim: Claim,
    ) -> Result<Self, FileError> {
        let path = inner.upload_path(claim.id());
        let in_use = || FileError::InUse { id: claim.id().to_owned() };
        let Some((mut record, etag)) = inner.get_json::<UploadRecord>(&path)? else {
            let object = random_id()?;
            let record = UploadRecord {
                writer: random_id()?,
                name: name.to_owned(),
                data: object.clone(),
                multipart: None,
                part_size: inner.options().part_size.max(1) as u64,
                parts: Vec::new(),
                hashed: hash_state(&Sha256::new()),
                tail: None,
            };
            let etag = inner.put_json(&path, &record, PutMode::Create)?.ok_or_else(in_use)?;
            let kind = Kind::Resumable { claim, etag, tail: None, writer: record.writer.clone() };
            return Ok(S3Upload::new(inner, name, expected, object, kind));
        };
        let limit = inner.config().max_file_size;
        if record.durable() > limit {
            inner.remove_upload_data(&record)?;
            inner.delete(&path)?;
            return Err(FileError::TooLarge { limit });
        }
        let hasher = hasher_from(&inner.url, &record.hashed)?;
        let buffer = match &record.tail {
            Some(tail) => {
                let (s3, at) = (inner.s3(), inner.tail_path(&tail.key));
                inner.run(async move { s3.get(&at).await?.bytes().await })?.to_vec()
            }
            None => Vec::new(),
        };
        record.name = name.to_owned();
        record.writer = random_id()?;
        let mode = PutMode::Update(UpdateVersion { e_tag: etag, version: None });
        let etag = inner.put_json(&path, &record, mode)?.ok_or_else(in_use)?;
        let object = record.data.clone();
        let kind = Kind::Resumable { claim, etag, tail: record.tail.clone(), writer: record.writer.clone() };
        let mut upload = S3Upload::new(inner, name, expected, object, kind);
        upload.part_size = usize::try_from(record.part_size).unwrap_or(usize::MAX).max(1);
        upload.multipart = record.multipart;
        upload.parts = record.parts.into_iter().map(|content_id| PartId { content_id }).collect();
        upload.stored_hash = hasher.clone();
        upload.hasher = hasher;
        upload.stored = upload.parts.len() as u64 * upload.part_size as u64;
        upload.written = upload.stored + buffer.len() as u64;
        upload.buffer = buffer;
        Ok(upload)
    }

    /// Marks a resumable upload's writer as finishing (see [`Claim`]).
    fn close(&self) {
        if let Kind::Resumable { claim, .. } = &self.kind {
            claim.close();
        }
    }

    /// The name the upload becomes when committed.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Resumable { claim, .. } => Some(claim.id()),
            Kind::Plain { .. } => None,
        }
    }

    /// The resumable upload's record as it stands in memory.
    fn record(&self, tail: Option<Tail>) -> UploadRecord {
        let writer = match &self.kind {
            Kind::Resumable { writer, .. } => writer.clone(),
            Kind::Plain { .. } => String::new(),
        };
        UploadRecord {
            writer,
            name: self.name.clone(),
            data: self.object.clone(),
            multipart: self.multipart.clone(),
            part_size: self.part_size as u64,
            parts: self.parts.iter().map(|part| part.content_id.clone()).collect(),
            hashed: hash_state(&self.stored_hash),
            tail,
        }
    }

    /// Writes the resumable upload's record with `tail` against the ETag
    /// this writer last saw; another writer's record there means this one
    /// lost the upload ([`FileError::InUse`]). The tail it replaces is
    /// deleted once the record no longer names it.
    fn save(&mut self, tail: Option<Tail>) -> Result<(), FileError> {
        let record = self.record(tail.clone());
        let Kind::Resumable { claim, etag, tail: stored, .. } = &mut self.kind else { return Ok(()) };
        let path = self.inner.upload_path(claim.id());
        let mode = PutMode::Update(UpdateVersion { e_tag: etag.clone(), version: None });
        let Some(new) = self.inner.put_json(&path, &record, mode)? else {
            return Err(FileError::InUse { id: claim.id().to_owned() });
        };
        *etag = new;
        let kept = tail.as_ref().map(|tail| tail.key.clone());
        let old = std::mem::replace(stored, tail);
        if let Some(old) = old
            && Some(&old.key) != kept.as_ref()
        {
            self.inner.delete(&self.inner.tail_path(&old.key))?;
        }
        Ok(())
    }

    /// The multipart upload, started with the first part and recorded at
    /// once, so that a crash from here on leaves a record the sweep aborts
    /// it by (S3 can name an upload only once it exists: the moment before
    /// is the one gap).
    fn multipart(&mut self) -> Result<String, FileError> {
        if let Some(id) = &self.multipart {
            return Ok(id.clone());
        }
        let (s3, at) = (self.inner.s3(), self.inner.data_path(&self.object));
        let id = self.inner.run(async move { s3.create_multipart(&at).await })?;
        self.multipart = Some(id.clone());
        match &mut self.kind {
            Kind::Plain { recorded } => {
                let pending = Pending { name: self.name.clone(), multipart: Some(id.clone()) };
                let at = self.inner.pending_path(&self.object);
                self.inner.put_json(&at, &pending, PutMode::Overwrite)?;
                *recorded = true;
            }
            Kind::Resumable { .. } => self.save(self.stored_tail())?,
        }
        Ok(id)
    }

    /// Makes room in the buffer for `more` bytes: a part's buffer that came
    /// back; a whole part once the upload has parts; or, before, one grown
    /// by doubling up to a part (a small file costs little). Never past a
    /// part, so a full part goes out without a copy.
    fn make_room(&mut self, more: usize) {
        if self.buffer.capacity() == 0
            && let Some(spare) = self.spare.take()
        {
            self.buffer = spare;
        }
        let (len, capacity) = (self.buffer.len(), self.buffer.capacity());
        if capacity - len < more {
            let want = match self.multipart {
                Some(_) => self.part_size,
                None => (capacity * 2).max(len + more).max(64 << 10).min(self.part_size),
            };
            self.buffer.reserve_exact(want - len);
        }
    }

    /// Hashes the full buffer and sends it as the next part, once fewer
    /// than `parts_in_flight` parts are on their way.
    fn send_part(&mut self) -> Result<(), FileError> {
        let multipart = self.multipart()?;
        let room = self.inner.options().parts_in_flight.max(1) - 1;
        self.settle(room, true)?;
        let part = std::mem::take(&mut self.buffer);
        self.hasher.update(&part);
        self.launch(&multipart, part);
        Ok(())
    }

    /// Starts the upload of `part` as the part after those sent.
    fn launch(&mut self, multipart: &str, part: Vec<u8>) {
        let (s3, at, id) = (self.inner.s3(), self.inner.data_path(&self.object), multipart.to_owned());
        let (index, len) = (self.parts.len() + self.flight.len(), part.len() as u64);
        // Sent without a copy, and kept to be the buffer of a later part.
        let body = bytes::Bytes::from(part);
        let sent = PutPayload::from(body.clone());
        let answer = self.inner.start(async move { s3.put_part(&at, &id, index, sent).await });
        self.flight.push_back(Flight { len, hashed: self.hasher.clone(), answer, body });
    }

    /// Keeps the buffer of a part that was answered for the next one, if
    /// the request let go of it: an upload reuses its few buffers rather
    /// than have the allocator hold on to freed ones between collections.
    fn recycle(&mut self, body: bytes::Bytes) {
        if self.spare.is_none()
            && let Ok(body) = body.try_into_mut()
        {
            let mut spare = Vec::from(body);
            spare.clear();
            self.spare = Some(spare);
        }
    }

    /// Takes the answers of the parts on their way, oldest first, waiting
    /// while more than `at_most` are left: each stored part joins `parts`,
    /// and with `record` a resumable upload's record names them (and drops
    /// the tail they now hold). The first failed part's error is the
    /// answer; the parts stored before it are recorded first.
    fn settle(&mut self, at_most: usize, record: bool) -> Result<(), FileError> {
        let mut stored = false;
        let mut failed = None;
        while let Some(front) = self.flight.front() {
            let answer = if self.flight.len() > at_most {
                self.inner.wait(&front.answer)
            } else {
                match self.inner.poll(&front.answer) {
                    Some(answer) => answer,
                    None => break,
                }
            };
            let Some(Flight { len, hashed, body, .. }) = self.flight.pop_front() else { break };
            self.recycle(body);
            match answer {
                Ok(part) => {
                    self.parts.push(part);
                    self.stored += len;
                    self.stored_hash = hashed;
                    stored = true;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if stored && record {
            // The tail, if one was stored, is now inside the parts.
            let saved = self.save(None);
            if failed.is_none() {
                saved?;
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Waits for the parts on their way and records those stored, as a
    /// writer that crashed a moment later would have left them.
    #[cfg(test)]
    pub(super) fn wait_for_parts(&mut self) -> Result<(), FileError> {
        self.settle(0, true)
    }

    /// Waits for every part on its way and forgets them: the upload has
    /// failed or is being removed.
    fn abandon_flight(&mut self) {
        for flight in std::mem::take(&mut self.flight) {
            let _ = self.inner.wait(&flight.answer);
        }
    }

    /// Gives up after an error: a plain upload's parts are aborted, a
    /// resumable one keeps what its record says is durable.
    fn fail(&mut self, err: FileError) -> FileError {
        self.state = Stage::Failed;
        match self.kind {
            Kind::Plain { .. } => self.remove_plain(),
            Kind::Resumable { .. } => self.abandon_flight(),
        }
        err
    }

    /// Removes a plain upload's multipart upload, data and record, once no
    /// part is on its way; best effort (what remains, the sweep removes).
    fn remove_plain(&mut self) {
        self.abandon_flight();
        if let Some(multipart) = self.multipart.take() {
            let _ = self.inner.abort(&self.object, &multipart);
        }
        if let Kind::Plain { recorded: true } = self.kind {
            let _ = self.inner.delete(&self.inner.data_path(&self.object));
            let _ = self.inner.delete(&self.inner.pending_path(&self.object));
        }
    }

    /// Deletes the upload and everything it wrote, resumable or not.
    fn discard(&mut self) {
        self.state = Stage::Failed;
        self.abandon_flight();
        match &self.kind {
            Kind::Plain { .. } => self.remove_plain(),
            Kind::Resumable { claim, .. } => {
                let record = self.record(self.stored_tail());
                let _ = self.inner.remove_upload_data(&record);
                let _ = self.inner.delete(&self.inner.data_path(&self.object));
                let _ = self.inner.delete(&self.inner.upload_path(claim.id()));
            }
        }
    }

    fn stored_tail(&self) -> Option<Tail> {
        match &self.kind {
            Kind::Resumable { tail, .. } => tail.clone(),
            Kind::Plain { .. } => None,
        }
    }

    /// Stores the bytes past the last part as the resumable upload's tail.
    fn save_tail(&mut self) -> Result<(), FileError> {
        let stored = self.stored_tail().map_or(0, |tail| tail.len);
        if self.buffer.len() as u64 == stored {
            return Ok(());
        }
        let tail = if self.buffer.is_empty() {
            None
        } else {
            let key = random_id()?;
            // Sent without a copy, and taken back as the buffer after.
            let body = bytes::Bytes::from(std::mem::take(&mut self.buffer));
            let (s3, at, sent) = (self.inner.s3(), self.inner.tail_path(&key), body.clone());
            let put = self.inner.run(async move { s3.put(&at, PutPayload::from(sent)).await });
            self.buffer = Vec::from(body);
            put?;
            Some(Tail { key, len: self.buffer.len() as u64 })
        };
        let new = tail.as_ref().map(|tail| tail.key.clone());
        self.save(tail).inspect_err(|_| {
            // No record names it: it goes, or only the sweep would know.
            if let Some(key) = new {
                let _ = self.inner.delete(&self.inner.tail_path(&key));
            }
        })
    }

    /// Completes the data object: the last part and the multipart upload,
    /// or, for data smaller than a part, one PUT.
    fn complete(&mut self) -> Result<(), FileError> {
        let data = self.inner.data_path(&self.object);
        let Some(multipart) = self.multipart.clone() else {
            if let Kind::Plain { recorded } = &mut self.kind {
                let pending = Pending { name: self.name.clone(), multipart: None };
                self.inner.put_json(&self.inner.pending_path(&self.object), &pending, PutMode::Overwrite)?;
                *recorded = true;
            }
            let (s3, body) = (self.inner.s3(), std::mem::take(&mut self.buffer));
            return self.inner.run(async move { s3.put(&data, PutPayload::from(body)).await.map(drop) });
        };
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            self.launch(&multipart, last);
        }
        // Not recorded: a record naming the last part, shorter than the
        // others, would claim more bytes than are stored.
        self.settle(0, false)?;
        let (s3, at, parts) = (self.inner.s3(), data.clone(), self.parts.clone());
        let completed = self.inner.run(async move { s3.complete_multipart(&at, &multipart, parts).await });
        match completed {
            Ok(_) => Ok(()),
            // A commit of this resumable upload that crashed after
            // completing it: the data object is whole.
            Err(e) if self.id().is_some() && self.data_is_whole()? => {
                tracing::info!(upload = ?self.id(), error = %e, "completing an upload found it completed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn data_is_whole(&self) -> Result<bool, FileError> {
        let (s3, at) = (self.inner.s3(), self.inner.data_path(&self.object));
        let head = self.inner.run(async move {
            match s3.head(&at).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(head == Some(self.written))
    }
}

impl Upload for S3Upload {
    fn expect_sha256(&mut self, expected: Sha256Digest) {
        self.expected = Some(expected);
    }

    fn keep_existing(&mut self) {
        self.replace = false;
    }

    fn write(&mut self, mut data: &[u8]) -> Result<(), FileError> {
        self.state.check(&self.name)?;
        let limit = self.inner.config().max_file_size;
        if self.written.saturating_add(data.len() as u64) > limit {
            self.discard();
            return Err(FileError::TooLarge { limit });
        }
        // The parts stored meanwhile are recorded; one that failed fails
        // this call.
        self.settle(usize::MAX, true).map_err(|e| self.fail(e))?;
        while !data.is_empty() {
            let take = (self.part_size - self.buffer.len()).min(data.len());
            self.make_room(take);
            self.buffer.extend_from_slice(&data[..take]);
            self.written += take as u64;
            data = &data[take..];
            if self.buffer.len() == self.part_size {
                self.send_part().map_err(|e| self.fail(e))?;
            }
        }
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    /// The parts stored and the stored tail: parts on their way count
    /// only once stored (and, for a resumable upload, recorded).
    fn committed_size(&self) -> u64 {
        self.stored + self.stored_tail().map_or(0, |tail| tail.len)
    }

    /// Waits for the parts on their way. A resumable upload then stores the
    /// bytes past its last part as its tail, so everything written is
    /// durable; a plain upload, which nothing can resume, answers the bytes
    /// in its parts.
    fn sync(&mut self) -> Result<u64, FileError> {
        self.state.check(&self.name)?;
        self.settle(0, true).map_err(|e| self.fail(e))?;
        if matches!(self.kind, Kind::Resumable { .. }) {
            self.save_tail().map_err(|e| self.fail(e))?;
        }
        Ok(self.committed_size())
    }

    fn commit(mut self) -> Result<FileInfo, FileError> {
        self.state.check(&self.name)?;
        self.close();
        let mut hasher = self.hasher.clone();
        hasher.update(&self.buffer);
        let actual = Sha256Digest(hasher.finalize().into());
        if let Some(expected) = self.expected
            && expected != actual
        {
            self.discard();
            return Err(FileError::ChecksumMismatch { expected, actual });
        }
        self.complete().map_err(|e| self.fail(e))?;
        let now = SystemTime::now();
        let info = FileInfo {
            name: self.name.clone(),
            size: self.written,
            sha256: actual,
            created: now,
            modified: now,
        };
        let stored = match self.inner.put_pointer(&self.object, &info, self.replace) {
            Ok(stored) => stored,
            Err(e @ FileError::Exists { .. }) => {
                self.discard();
                return Err(e);
            }
            // Whether the pointer was written is not known: the data and
            // its record stay for the sweep, which checks.
            Err(e) => {
                self.state = Stage::Failed;
                return Err(e);
            }
        };
        self.state = Stage::Committed;
        match &self.kind {
            Kind::Plain { .. } => self.inner.delete(&self.inner.pending_path(&self.object))?,
            Kind::Resumable { claim, tail, .. } => {
                self.inner.finish_upload(claim.id(), &stored)?;
                if let Some(tail) = tail {
                    self.inner.delete(&self.inner.tail_path(&tail.key))?;
                }
            }
        }
        Ok(stored)
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if self.state == Stage::Open {
            match self.kind {
                Kind::Plain { .. } => self.remove_plain(),
                Kind::Resumable { .. } => {
                    self.close();
                    let _ = self.sync();
                }
            }
        }
        self.inner.uploading().fetch_sub(1, Ordering::Relaxed);
    }
}
