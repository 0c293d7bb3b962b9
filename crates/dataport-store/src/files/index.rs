//! The file index: which object holds each name's content, and its
//! metadata, in one SQLite table. A row changes in one transaction, so the
//! name, its content and its metadata change together.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{FileError, FileInfo};

pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("schema.sql"))])
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
        let sqlite = |source| index_error(&path, source);
        let mut conn = Connection::open(&path).map_err(sqlite)?;
        // WAL lets a read run beside a commit; FULL makes a committed row
        // survive a power cut, which is what acknowledging an upload means.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| FileError::Migration { path: path.clone(), source })?;
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

    pub fn all(&self) -> Result<Vec<Row>, FileError> {
        let mut query = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM files ORDER BY name"))
            .map_err(|e| self.sqlite(e))?;
        let rows = query.query_map([], |r| self.row(r)).map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|e| self.sqlite(e))??);
        }
        Ok(out)
    }

    /// Every object some row names.
    pub fn objects(&self) -> Result<HashSet<String>, FileError> {
        let mut query = self.conn.prepare_cached("SELECT object FROM files").map_err(|e| self.sqlite(e))?;
        let rows = query.query_map([], |r| r.get(0)).map_err(|e| self.sqlite(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.sqlite(e))
    }

    /// Makes `object` the content of `info.name` in one transaction, keeping
    /// the name's creation time if it existed. Answers the row as stored and
    /// the object it replaced.
    pub fn put(&mut self, object: &str, info: &FileInfo) -> Result<(Row, Option<String>), FileError> {
        let path = self.path;
        let sqlite = |source| index_error(path, source);
        let tx = self.conn.transaction().map_err(sqlite)?;
        let old: Option<(String, i64)> = tx
            .query_row("SELECT object, created FROM files WHERE name = ?1", [&info.name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sqlite)?;
        let created = old.as_ref().map_or(to_nanos(info.created), |(_, created)| *created);
        let size = i64::try_from(info.size).unwrap_or(i64::MAX);
        tx.execute(
            &format!("INSERT OR REPLACE INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![info.name, object, size, info.sha256.to_hex(), created, to_nanos(info.modified)],
        )
        .map_err(sqlite)?;
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
}
