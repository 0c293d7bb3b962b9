//! The file index: which object holds each name's content, and its
//! metadata, in one SQLite table. A row changes in one transaction, so the
//! name, its content and its metadata change together. A second table
//! remembers which resumable uploads were finished, written in the
//! transaction that commits the file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{FileError, FileInfo};

/// Version 2: resumable uploads that were finished, so a client whose Write
/// ended in the commit can still learn that it did. A row is written in the
/// transaction that commits the file (so an upload is never both lost and
/// unfinished), and deleted like a resumable upload's data, after
/// `resumable_max_age`. The columns are those of `files`, with the upload id
/// in place of the object.
const FINISHED_UPLOADS: &str = "
CREATE TABLE finished_uploads (
    id       TEXT PRIMARY KEY NOT NULL,  -- the upload id, checked by validate_name
    name     TEXT NOT NULL,              -- the file it was committed as
    size     INTEGER NOT NULL,
    sha256   TEXT NOT NULL,              -- 64 lowercase hex digits
    created  INTEGER NOT NULL,           -- nanoseconds since the Unix epoch
    modified INTEGER NOT NULL            -- when it was committed
) STRICT, WITHOUT ROWID;
";

pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("schema.sql")), M::up(FINISHED_UPLOADS)])
}

/// A stored file: its metadata and the object holding its content.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub info: FileInfo,
    pub object: String,
}

#[derive(Debug)]
pub(super) struct Index {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// The index, held: object files are created and deleted only while it is
/// held, so a row read under the lock names an object that exists.
pub(super) struct Locked<'a> {
    path: &'a Path,
    conn: MutexGuard<'a, Connection>,
}

impl Index {
    pub fn open(path: PathBuf) -> Result<Self, FileError> {
        let conn = crate::open_sqlite(&path, &migrations()).map_err(|e| match e {
            crate::OpenError::Sqlite(source) => index_error(&path, source),
            crate::OpenError::Migration(source) => FileError::Migration { path: path.clone(), source },
        })?;
        Ok(Index { path, conn: Mutex::new(conn) })
    }

    pub fn lock(&self) -> Locked<'_> {
        // A panic mid-statement leaves SQLite's own transaction to roll back.
        Locked { path: &self.path, conn: self.conn.lock().unwrap_or_else(PoisonError::into_inner) }
    }
}

fn index_error(path: &Path, source: rusqlite::Error) -> FileError {
    if source.sqlite_error_code() == Some(ErrorCode::DiskFull) {
        return FileError::DiskFull { path: path.to_owned() };
    }
    FileError::Index { path: path.to_owned(), source }
}

fn to_nanos(time: SystemTime) -> i64 {
    let nanos = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

fn from_nanos(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos.max(0).unsigned_abs())
}

const COLUMNS: &str = "name, object, size, sha256, created, modified";

/// The columns of `finished_uploads`, in the places of [`COLUMNS`].
const FINISHED_COLUMNS: &str = "name, id, size, sha256, created, modified";

impl Locked<'_> {
    fn sqlite(&self, source: rusqlite::Error) -> FileError {
        index_error(self.path, source)
    }

    fn row(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Row, FileError>> {
        let name: String = r.get(0)?;
        let sha256: String = r.get(3)?;
        let size: i64 = r.get(2)?;
        let Ok(digest) = sha256.parse() else {
            return Ok(Err(FileError::Corrupt { path: self.path.to_owned(), name, sha256 }));
        };
        Ok(Ok(Row {
            object: r.get(1)?,
            info: FileInfo {
                name,
                size: size.unsigned_abs(),
                sha256: digest,
                created: from_nanos(r.get(4)?),
                modified: from_nanos(r.get(5)?),
            },
        }))
    }

    pub fn get(&self, name: &str) -> Result<Option<Row>, FileError> {
        let mut query = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM files WHERE name = ?1"))
            .map_err(|e| self.sqlite(e))?;
        query.query_row([name], |r| self.row(r)).optional().map_err(|e| self.sqlite(e))?.transpose()
    }

    /// At most `limit` rows in name order whose names start with `prefix`
    /// and sort after `after`. Names compare as bytes, in SQLite as in Rust,
    /// so the names with a prefix are one run of the primary key: the scan
    /// starts at the run and stops at its end.
    pub fn page(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<Row>, FileError> {
        let mut query = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE name > ?1 AND name >= ?2 ORDER BY name"
            ))
            .map_err(|e| self.sqlite(e))?;
        let rows = query.query_map([after, prefix], |r| self.row(r)).map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.sqlite(e))??;
            if out.len() == limit || !row.info.name.starts_with(prefix) {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// How many files there are, and their bytes.
    pub fn totals(&self) -> Result<(u64, u64), FileError> {
        let mut query = self
            .conn
            .prepare_cached("SELECT count(*), coalesce(sum(size), 0) FROM files")
            .map_err(|e| self.sqlite(e))?;
        let (files, bytes): (i64, i64) =
            query.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.sqlite(e))?;
        Ok((files.unsigned_abs(), bytes.unsigned_abs()))
    }

    /// Every object some row names.
    pub fn objects(&self) -> Result<HashSet<String>, FileError> {
        let mut query = self.conn.prepare_cached("SELECT object FROM files").map_err(|e| self.sqlite(e))?;
        let rows = query.query_map([], |r| r.get(0)).map_err(|e| self.sqlite(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.sqlite(e))
    }

    /// Makes `object` the content of `info.name` in one transaction, keeping
    /// the name's creation time if it existed (or, without `replace`,
    /// refusing: [`FileError::Exists`]), and records the resumable upload
    /// `finished` (if any) as finished with it. Answers the row as stored and
    /// the object it replaced.
    pub fn put(
        &mut self,
        object: &str,
        info: &FileInfo,
        finished: Option<&str>,
        replace: bool,
    ) -> Result<(Row, Option<String>), FileError> {
        let path = self.path;
        let sqlite = |source| index_error(path, source);
        let tx = self.conn.transaction().map_err(sqlite)?;
        let old: Option<(String, i64)> = tx
            .query_row("SELECT object, created FROM files WHERE name = ?1", [&info.name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sqlite)?;
        if old.is_some() && !replace {
            return Err(FileError::Exists { name: info.name.clone() });
        }
        let created = old.as_ref().map_or(to_nanos(info.created), |(_, created)| *created);
        let size = i64::try_from(info.size).unwrap_or(i64::MAX);
        tx.execute(
            &format!("INSERT OR REPLACE INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![info.name, object, size, info.sha256.to_hex(), created, to_nanos(info.modified)],
        )
        .map_err(sqlite)?;
        if let Some(id) = finished {
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO finished_uploads ({FINISHED_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![info.name, id, size, info.sha256.to_hex(), created, to_nanos(info.modified)],
            )
            .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)?;
        let info = FileInfo {
            created: from_nanos(created),
            modified: from_nanos(to_nanos(info.modified)),
            ..info.clone()
        };
        Ok((Row { info, object: object.to_owned() }, old.map(|(object, _)| object)))
    }

    /// Deletes the row of `name` and answers it.
    pub fn remove(&mut self, name: &str) -> Result<Option<Row>, FileError> {
        let Some(row) = self.get(name)? else { return Ok(None) };
        self.conn.execute("DELETE FROM files WHERE name = ?1", [name]).map_err(|e| self.sqlite(e))?;
        Ok(Some(row))
    }

    /// The file the resumable upload `id` was committed as, if it was
    /// finished (and not forgotten since).
    pub fn finished(&self, id: &str) -> Result<Option<FileInfo>, FileError> {
        let mut query = self
            .conn
            .prepare_cached(&format!("SELECT {FINISHED_COLUMNS} FROM finished_uploads WHERE id = ?1"))
            .map_err(|e| self.sqlite(e))?;
        let row = query.query_row([id], |r| self.row(r)).optional().map_err(|e| self.sqlite(e))?;
        Ok(row.transpose()?.map(|row| row.info))
    }

    /// Forgets that the upload `id` was finished; false if it was not.
    pub fn forget_finished(&self, id: &str) -> Result<bool, FileError> {
        let deleted = self
            .conn
            .execute("DELETE FROM finished_uploads WHERE id = ?1", [id])
            .map_err(|e| self.sqlite(e))?;
        Ok(deleted > 0)
    }

    /// Forgets the uploads finished before `cutoff`; answers how many.
    pub fn forget_finished_before(&self, cutoff: SystemTime) -> Result<usize, FileError> {
        self.conn
            .execute("DELETE FROM finished_uploads WHERE modified < ?1", [to_nanos(cutoff)])
            .map_err(|e| self.sqlite(e))
    }
}
