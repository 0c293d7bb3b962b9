//! Dataport's storage: the data directory and everything kept in it (the
//! daily bars in SQLite, `bars`; stored files, `files`).
//!
//! This is the only crate that touches the data directory. It must never
//! know about gRPC: it takes and returns plain types and its own errors.

pub mod backup;
pub mod bars;
pub mod files;
pub mod positions;
pub mod postgres;

#[cfg(test)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// Why a store's SQLite database cannot be opened.
#[derive(Debug)]
enum OpenError {
    Sqlite(rusqlite::Error),
    Migration(rusqlite_migration::Error),
}

/// Opens (creating if missing) a store's SQLite database at `path` and brings
/// its schema up to date with `migrations`. WAL lets reads run beside a
/// write; synchronous=FULL makes a committed transaction (an import, an
/// upload's index row) survive a power cut, which is what acknowledging it
/// means.
fn open_sqlite(
    path: &Path,
    migrations: &rusqlite_migration::Migrations<'_>,
) -> Result<rusqlite::Connection, OpenError> {
    let mut conn = rusqlite::Connection::open(path).map_err(OpenError::Sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(OpenError::Sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(OpenError::Sqlite)?;
    migrations.to_latest(&mut conn).map_err(OpenError::Migration)?;
    Ok(conn)
}

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot open lock file {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("data directory {path} is in use by another dataport server")]
    InUse { path: PathBuf },
}

/// An open data directory, held exclusively by this process until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    // Holding the file holds the advisory lock that keeps a second server
    // from writing the same files.
    _lock: File,
}

impl DataDir {
    /// The name of the lock file inside the data directory.
    pub const LOCK_FILE: &str = "dataport.lock";

    /// Creates `path` if missing and takes its lock.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|source| StoreError::Create { path: path.to_owned(), source })?;
        let lock_path = path.join(Self::LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Lock { path: lock_path.clone(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::InUse { path: path.to_owned() });
            }
            Err(TryLockError::Error(source)) => {
                return Err(StoreError::Lock { path: lock_path, source });
            }
        }
        Ok(DataDir { path: path.to_owned(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_missing_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("a/b/data");
        let dir = DataDir::open(&path).expect("opens");
        assert!(path.is_dir());
        assert_eq!(dir.path(), path);
    }

    #[test]
    fn a_second_open_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(tmp.path()).expect("opens");
        let err = DataDir::open(tmp.path()).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("in use by another dataport server"));
        drop(first);
        DataDir::open(tmp.path()).expect("free again");
    }

    #[test]
    fn a_file_in_the_way_is_a_clear_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("taken");
        std::fs::write(&file, b"x").expect("write");
        let err = DataDir::open(&file).unwrap_err();
        assert!(err.to_string().starts_with("cannot create data directory"), "{err}");
    }
}
