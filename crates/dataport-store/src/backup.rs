//! Backups of a data directory, taken while a server runs on it, and their
//! restore. A backup is itself a data directory, which `serve` and `fsck`
//! accept.
//!
//! Each SQLite file is copied as one snapshot (`VACUUM INTO`, a read
//! transaction: writers go on). The file store's objects never change once
//! written, so copying the ones the index snapshot names gives a consistent
//! copy; one deleted or replaced meanwhile is missing, and then the index is
//! snapshotted again and the objects it names copied (those already copied
//! stay), until a snapshot's objects are all there. Uploads in progress are
//! not copied.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::DataDir;
use crate::bars::SqliteBarStore;
use crate::files::LocalFileStore;

/// What a backup copied.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub files: usize,
    pub bytes: u64,
    /// Index snapshots taken: more than one when files changed meanwhile.
    pub snapshots: usize,
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing `path` failed (a SQLite error comes as an I/O one).
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0} exists and is not empty: back up or restore into a new directory")]
    NotEmpty(PathBuf),
    #[error("{0} holds no data directory (no bars.sqlite3)")]
    NotADataDir(PathBuf),
    #[error("the files kept changing: {0} index snapshots in a row named an object deleted since")]
    Unsettled(usize),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_owned(), source }
}

/// How many index snapshots a backup takes before giving up.
const SNAPSHOTS: usize = 10;

/// Copies the data directory `source` (a server may be running on it) into
/// `dest`, a new or empty directory, held locked meanwhile.
pub fn backup(source: &Path, dest: &Path) -> Result<Copied, BackupError> {
    if !source.join(SqliteBarStore::FILE).exists() {
        return Err(BackupError::NotADataDir(source.to_owned()));
    }
    let dest = new_data_dir(dest)?;
    snapshot(&source.join(SqliteBarStore::FILE), &dest.path().join(SqliteBarStore::FILE))?;
    let (from, to) = (source.join(LocalFileStore::DIR), dest.path().join(LocalFileStore::DIR));
    let mut copied = Copied::default();
    if from.join("index.sqlite3").exists() {
        std::fs::create_dir_all(to.join("objects")).map_err(io_error(&to))?;
        let mut have = HashSet::new();
        loop {
            if copied.snapshots == SNAPSHOTS {
                return Err(BackupError::Unsettled(SNAPSHOTS));
            }
            copied.snapshots += 1;
            let index = to.join("index.sqlite3");
            let _ = std::fs::remove_file(&index);
            snapshot(&from.join("index.sqlite3"), &index)?;
            let named = objects(&index)?;
            let mut complete = true;
            for object in &named {
                if have.contains(object) {
                    continue;
                }
                match copy(&from.join("objects").join(object), &to.join("objects").join(object)) {
                    Ok(_) => {
                        have.insert(object.clone());
                    }
                    Err(BackupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                        complete = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            if complete {
                // Objects of earlier snapshots that this one no longer names.
                for stale in have.difference(&named) {
                    let path = to.join("objects").join(stale);
                    std::fs::remove_file(&path).map_err(io_error(&path))?;
                }
                let (files, bytes) = totals(&index)?;
                copied.files = files;
                copied.bytes = bytes;
                break;
            }
        }
        sync_dir(&to.join("objects"))?;
        sync_dir(&to)?;
    }
    sync_dir(dest.path())?;
    Ok(copied)
}

/// Restores the backup `from` (or any data directory no server runs on)
/// into `to`, a new or empty directory.
pub fn restore(from: &Path, to: &Path) -> Result<Copied, BackupError> {
    if !from.join(SqliteBarStore::FILE).exists() {
        return Err(BackupError::NotADataDir(from.to_owned()));
    }
    // Nobody may change the backup while it is read.
    let _held = DataDir::open(from)?;
    backup(from, to)
}

/// `to` as a new data directory: created (or empty) and locked.
fn new_data_dir(to: &Path) -> Result<DataDir, BackupError> {
    if let Ok(mut entries) = std::fs::read_dir(to)
        && entries.next().is_some()
    {
        return Err(BackupError::NotEmpty(to.to_owned()));
    }
    Ok(DataDir::open(to)?)
}

/// The SQLite database at `from` as one consistent file at `to`.
fn snapshot(from: &Path, to: &Path) -> Result<(), BackupError> {
    let sqlite = |e| BackupError::Io { path: from.to_owned(), source: io::Error::other(e) };
    let conn = rusqlite::Connection::open(from).map_err(sqlite)?;
    let target = to.to_str().ok_or_else(|| BackupError::Io {
        path: to.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not UTF-8"),
    })?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(sqlite)?;
    File::open(to).and_then(|f| f.sync_all()).map_err(io_error(to))
}

/// The objects the file index at `index` names.
fn objects(index: &Path) -> Result<HashSet<String>, BackupError> {
    let sqlite = |e| BackupError::Io { path: index.to_owned(), source: io::Error::other(e) };
    let conn = rusqlite::Connection::open(index).map_err(sqlite)?;
    let mut query = conn.prepare("SELECT object FROM files").map_err(sqlite)?;
    let rows = query.query_map([], |r| r.get(0)).map_err(sqlite)?;
    rows.collect::<Result<_, _>>().map_err(sqlite)
}

/// How many files the index at `index` holds, and their bytes.
fn totals(index: &Path) -> Result<(usize, u64), BackupError> {
    let sqlite = |e| BackupError::Io { path: index.to_owned(), source: io::Error::other(e) };
    let conn = rusqlite::Connection::open(index).map_err(sqlite)?;
    let (files, bytes): (i64, i64) = conn
        .query_row("SELECT count(*), coalesce(sum(size), 0) FROM files", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sqlite)?;
    Ok((files.unsigned_abs() as usize, bytes.unsigned_abs()))
}

/// Copies `from` to `to` and makes it durable; answers its size.
fn copy(from: &Path, to: &Path) -> Result<u64, BackupError> {
    let size = std::fs::copy(from, to).map_err(io_error(from))?;
    File::open(to).and_then(|f| f.sync_all()).map_err(io_error(to))?;
    Ok(size)
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use dataport_core::market::bars::parse_csv;

    use super::*;
    use crate::bars::BarStore;
    use crate::files::{FileStore, Upload};

    fn store_file(store: &LocalFileStore, name: &str, data: &[u8]) {
        let mut up = store.begin_upload(name, None).unwrap();
        up.write(data).unwrap();
        up.commit().unwrap();
    }

    fn read(store: &LocalFileStore, name: &str) -> Vec<u8> {
        let (_, mut reader) = store.open(name).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_backup_taken_beside_a_server_restores_to_the_same_data() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data");
        // As a running server holds it: locked, both stores open.
        let _server = DataDir::open(&source).unwrap();
        let files = LocalFileStore::open(&source).unwrap();
        let bars = SqliteBarStore::open(&source).unwrap();
        store_file(&files, "a.txt", b"alpha");
        store_file(&files, "b.bin", &[7u8; 5000]);
        store_file(&files, "a.txt", b"alpha, again"); // replaced: its first object is gone
        let imported = parse_csv("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n".as_bytes()).unwrap();
        bars.import("ACME", &imported).unwrap();

        let copy = dir.path().join("backup");
        let copied = backup(&source, &copy).unwrap();
        assert_eq!(copied, Copied { files: 2, bytes: 5012, snapshots: 1 });
        assert!(matches!(backup(&source, &copy), Err(BackupError::NotEmpty(_))));

        let restored = dir.path().join("restored");
        restore(&copy, &restored).unwrap();
        for data_dir in [&copy, &restored] {
            let check = crate::files::check(data_dir, false).unwrap();
            assert!(check.clean(false), "{check:?}");
            let files = LocalFileStore::open(data_dir).unwrap();
            assert_eq!(read(&files, "a.txt"), b"alpha, again");
            assert_eq!(read(&files, "b.bin"), vec![7u8; 5000]);
            let bars = SqliteBarStore::open(data_dir).unwrap();
            assert_eq!(*bars.bars("ACME").unwrap().unwrap(), *imported);
        }
        // A backup in use by a server is not restored from.
        let _serving_the_backup = DataDir::open(&copy).unwrap();
        let refused = restore(&copy, &dir.path().join("elsewhere")).unwrap_err();
        assert!(matches!(refused, BackupError::Store(crate::StoreError::InUse { .. })), "{refused}");
    }

    #[test]
    fn what_is_no_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let refused = backup(dir.path(), &dir.path().join("to")).unwrap_err();
        assert!(matches!(refused, BackupError::NotADataDir(_)), "{refused}");
    }
}
