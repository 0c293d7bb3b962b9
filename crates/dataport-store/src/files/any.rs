//! The file store a server runs on, whichever it is: on the local disk (the
//! default) or in S3 (`files_url`). One concrete type, so the services that
//! stream files in and out need not be generic over the store.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use dataport_core::files::Sha256Digest;

use super::{
    FileError, FileInfo, FileStore, LocalFileStore, LocalReader, LocalUpload, S3FileStore, S3Reader,
    S3Upload, UploadState, Usage,
};

/// A [`LocalFileStore`] or an [`S3FileStore`]. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Files {
    Local(LocalFileStore),
    S3(Arc<S3FileStore>),
}

/// An upload to a [`Files`].
#[derive(Debug)]
pub enum FilesUpload {
    Local(LocalUpload),
    S3(S3Upload),
}

/// A stored file being read from a [`Files`].
#[derive(Debug)]
pub enum FilesReader {
    Local(LocalReader),
    S3(S3Reader),
}

/// Calls the same method on whichever store (upload, reader) `$self` holds.
macro_rules! either {
    ($self:expr, $kind:ident, $s:ident => $call:expr) => {
        match $self {
            $kind::Local($s) => $call,
            $kind::S3($s) => $call,
        }
    };
}

impl FilesReader {
    /// Reads up to `max` bytes into a new vector, fewer only at the end of
    /// the file (without zeroing it first, on the local disk).
    pub fn read_chunk(&mut self, max: usize) -> io::Result<Vec<u8>> {
        match self {
            FilesReader::Local(reader) => reader.read_chunk(max),
            FilesReader::S3(reader) => {
                let mut chunk = Vec::with_capacity(max);
                reader.take(max as u64).read_to_end(&mut chunk)?;
                Ok(chunk)
            }
        }
    }
}

impl Read for FilesReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        either!(self, FilesReader, r => r.read(buf))
    }
}

impl Seek for FilesReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        either!(self, FilesReader, r => r.seek(pos))
    }
}

impl super::Upload for FilesUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), FileError> {
        either!(self, FilesUpload, u => u.write(data))
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), FileError> {
        either!(self, FilesUpload, u => u.write_at(offset, data))
    }

    fn written(&self) -> u64 {
        either!(self, FilesUpload, u => u.written())
    }

    fn committed_size(&self) -> u64 {
        either!(self, FilesUpload, u => u.committed_size())
    }

    fn sync(&mut self) -> Result<u64, FileError> {
        either!(self, FilesUpload, u => u.sync())
    }

    fn expect_sha256(&mut self, expected: Sha256Digest) {
        either!(self, FilesUpload, u => u.expect_sha256(expected))
    }

    fn keep_existing(&mut self) {
        either!(self, FilesUpload, u => u.keep_existing())
    }

    fn commit(self) -> Result<FileInfo, FileError> {
        either!(self, FilesUpload, u => u.commit())
    }
}

impl FileStore for Files {
    type Upload = FilesUpload;
    type Reader = FilesReader;

    fn begin_upload(&self, name: &str, expected: Option<Sha256Digest>) -> Result<FilesUpload, FileError> {
        match self {
            Files::Local(store) => store.begin_upload(name, expected).map(FilesUpload::Local),
            Files::S3(store) => store.begin_upload(name, expected).map(FilesUpload::S3),
        }
    }

    fn resumable(
        &self,
        id: &str,
        name: &str,
        expected: Option<Sha256Digest>,
    ) -> Result<FilesUpload, FileError> {
        match self {
            Files::Local(store) => store.resumable(id, name, expected).map(FilesUpload::Local),
            Files::S3(store) => store.resumable(id, name, expected).map(FilesUpload::S3),
        }
    }

    fn resumable_size(&self, id: &str) -> Result<Option<u64>, FileError> {
        either!(self, Files, s => s.resumable_size(id))
    }

    fn upload_state(&self, id: &str) -> Result<Option<UploadState>, FileError> {
        either!(self, Files, s => s.upload_state(id))
    }

    fn discard_resumable(&self, id: &str) -> Result<bool, FileError> {
        either!(self, Files, s => s.discard_resumable(id))
    }

    fn open(&self, name: &str) -> Result<(FileInfo, FilesReader), FileError> {
        match self {
            Files::Local(store) => store.open(name).map(|(info, r)| (info, FilesReader::Local(r))),
            Files::S3(store) => store.open(name).map(|(info, r)| (info, FilesReader::S3(r))),
        }
    }

    fn stat(&self, name: &str) -> Result<FileInfo, FileError> {
        either!(self, Files, s => s.stat(name))
    }

    fn list_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<FileInfo>, FileError> {
        either!(self, Files, s => s.list_page(prefix, after, limit))
    }

    fn delete(&self, name: &str) -> Result<FileInfo, FileError> {
        either!(self, Files, s => s.delete(name))
    }

    fn usage(&self) -> Result<Usage, FileError> {
        either!(self, Files, s => s.usage())
    }

    fn reachable(&self) -> bool {
        either!(self, Files, s => s.reachable())
    }
}
