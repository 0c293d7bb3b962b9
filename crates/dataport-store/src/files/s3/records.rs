//! The small JSON objects an [`super::S3FileStore`] keeps beside the data:
//! times are nanoseconds since the Unix epoch, digests 64 lowercase hex
//! digits, as in the local store's index.

use serde::{Deserialize, Serialize};

use dataport_core::files::Sha256Digest;

use super::{from_nanos, nanos};
use crate::files::{FileError, FileInfo};

/// `names/<hex name>`: the name's content. A deleted name keeps a
/// tombstone, `{}`, so that deleting is a conditional write like the rest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Pointer {
    /// The data object's id (`data/<id>`); empty in a tombstone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modified: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn corrupt(url: &str, what: &str, sha256: &str) -> FileError {
    FileError::Store {
        url: url.to_owned(),
        reason: format!("{what}: stored sha256 {sha256:?} is not 64 hex digits"),
    }
}

impl Pointer {
    /// A listed pointer this size or smaller is a tombstone (`{}`); a live
    /// one holds at least a sha256.
    pub const TOMBSTONE_SIZE: u64 = 2;

    pub fn tombstone() -> Self {
        Pointer::default()
    }

    pub fn is_tombstone(&self) -> bool {
        self.data.is_empty()
    }

    pub fn info(&self, name: &str, url: &str) -> Result<FileInfo, FileError> {
        let sha256: Sha256Digest = self.sha256.parse().map_err(|_| corrupt(url, name, &self.sha256))?;
        Ok(FileInfo {
            name: name.to_owned(),
            size: self.size,
            sha256,
            created: from_nanos(self.created),
            modified: from_nanos(self.modified),
        })
    }
}

/// `pending/<object id>`: a plain upload writing `data/<object id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub name: String,
    /// Its multipart upload, once it has one.
    #[serde(default)]
    pub multipart: Option<String>,
}

/// `finished/<hex id>`: what a finished resumable upload was committed as.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Finished {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub created: u64,
    pub modified: u64,
}

impl Finished {
    pub fn of(info: &FileInfo) -> Self {
        Finished {
            name: info.name.clone(),
            size: info.size,
            sha256: info.sha256.to_hex(),
            created: nanos(info.created),
            modified: nanos(info.modified),
        }
    }

    pub fn info(&self, url: &str) -> Result<FileInfo, FileError> {
        let sha256: Sha256Digest = self.sha256.parse().map_err(|_| corrupt(url, &self.name, &self.sha256))?;
        Ok(FileInfo {
            name: self.name.clone(),
            size: self.size,
            sha256,
            created: from_nanos(self.created),
            modified: from_nanos(self.modified),
        })
    }
}

/// The bytes of a resumable upload past its last whole part, once made
/// durable: `tails/<key>`, `len` bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Tail {
    pub key: String,
    pub len: u64,
}

/// `uploads/<hex id>`: a resumable upload in progress, everything another
/// replica needs to continue it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    /// Who writes it: a random id each writer puts in at its claim, so its
    /// record's content, and so its ETag, differs from any other writer's
    /// (an ETag is the content's MD5).
    #[serde(default)]
    pub writer: String,
    /// The name it was last begun as (the sweep checks whether a crash came
    /// after its commit).
    pub name: String,
    /// The data object it completes into.
    pub data: String,
    /// Its multipart upload, once its first part is sent.
    #[serde(default)]
    pub multipart: Option<String>,
    /// The size of every part but the last.
    pub part_size: u64,
    /// The ETag of each completed part, in order.
    #[serde(default)]
    pub parts: Vec<String>,
    /// sha2's serialized sha256 state after the parts, in hex.
    pub hashed: String,
    #[serde(default)]
    pub tail: Option<Tail>,
}

impl UploadRecord {
    /// The bytes durably stored: the whole parts, and the tail.
    pub fn durable(&self) -> u64 {
        self.parts.len() as u64 * self.part_size + self.tail.as_ref().map_or(0, |tail| tail.len)
    }
}
