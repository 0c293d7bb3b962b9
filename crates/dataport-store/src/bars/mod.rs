//! Daily bars per symbol: the storage interface, its SQLite implementation
//! (the default, in the data directory), its PostgreSQL one (shared by
//! replicas) and a cache in front of any implementation.

mod cache;
mod postgres;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dataport_core::market::bars::{Bar, Date};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

pub use cache::{CacheStats, CachedBarStore};
pub use postgres::PgBarStore;

use crate::postgres::DbError;

impl From<DbError> for BarStoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::DiskFull { url } => BarStoreError::DiskFull { db: url },
            other => BarStoreError::Database(other),
        }
    }
}

/// What the store holds for one symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolSummary {
    pub symbol: String,
    pub bars: u64,
    pub first: Date,
    pub last: Date,
    /// Whether any of its bars carries an adjusted close.
    pub adjusted: bool,
}

/// Why the bar store failed.
#[derive(Debug, thiserror::Error)]
pub enum BarStoreError {
    #[error("bar database {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    /// The shared database failed (or cannot be reached: [`DbError::Unreachable`]).
    #[error(transparent)]
    Database(DbError),
    /// The disk (or the database's size limit) had no room for a write;
    /// the transaction was rolled back.
    #[error("bar database {db}: the disk is full")]
    DiskFull { db: String },
    #[error("bar database {path}: schema migration failed: {source}")]
    Migration { path: PathBuf, source: rusqlite_migration::Error },
    #[error("bar database {db}: stored date {date:?} of {symbol} is not YYYY-MM-DD")]
    Corrupt { db: String, symbol: String, date: String },
}

/// Who is told of changes made through other processes ([`BarStore::subscribe`]).
pub type Subscriber = Arc<dyn Fn(Changed) + Send + Sync>;

/// What changed in a shared store through another process, as
/// [`BarStore::subscribe`] tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    /// This symbol's bars.
    Symbol(String),
    /// Anything: the store reconnected, and may have missed news meanwhile.
    Everything,
}

/// Daily bars per symbol. Implementations must make each import and each
/// delete atomic: a reader sees all of it or none of it. Symbols are taken
/// as given: callers store and ask for them upper-case
/// ([`dataport_core::market::bars::symbol`]).
pub trait BarStore: Send + Sync + std::fmt::Debug {
    /// Stores `bars` (already validated) for `symbol` in one transaction;
    /// a date already stored for the symbol is replaced. Returns how many
    /// bars were written.
    fn import(&self, symbol: &str, bars: &[Bar]) -> Result<usize, BarStoreError>;

    /// Every symbol with its bar count and date span, by symbol.
    fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError>;

    /// Every bar of `symbol` in date order; `None` for an unknown symbol.
    fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError>;

    /// Removes every bar of `symbol` in one transaction; returns how many
    /// there were (0 for an unknown symbol).
    fn delete(&self, symbol: &str) -> Result<u64, BarStoreError>;

    /// For a store other processes write too: a number that changes
    /// whenever `symbol`'s bars do (0 for an unknown symbol), so that a cache
    /// can check its copy on every read. `None`, the default: only this
    /// process writes the store, so a cache that sees every write through it
    /// needs no check.
    fn generation(&self, _symbol: &str) -> Result<Option<u64>, BarStoreError> {
        Ok(None)
    }

    /// Asks to be told of changes made through other processes, as soon as
    /// the store learns of them (replacing an earlier subscriber). A store
    /// only this process writes never calls it.
    fn subscribe(&self, _subscriber: Subscriber) {}

    /// Whether the store can be reached now (a shared database may not be).
    fn reachable(&self) -> bool {
        true
    }

    /// Whether the bundled sample should be loaded: the store holds no bars
    /// and has never been given the sample.
    fn wants_sample(&self) -> Result<bool, BarStoreError>;

    /// Records that the sample was loaded, so [`Self::wants_sample`] stays
    /// false once its symbols are removed.
    fn sample_loaded(&self) -> Result<(), BarStoreError>;
}

impl<S: BarStore + ?Sized> BarStore for Box<S> {
    fn import(&self, symbol: &str, bars: &[Bar]) -> Result<usize, BarStoreError> {
        (**self).import(symbol, bars)
    }
    fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError> {
        (**self).symbols()
    }
    fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError> {
        (**self).bars(symbol)
    }
    fn delete(&self, symbol: &str) -> Result<u64, BarStoreError> {
        (**self).delete(symbol)
    }
    fn generation(&self, symbol: &str) -> Result<Option<u64>, BarStoreError> {
        (**self).generation(symbol)
    }
    fn subscribe(&self, subscriber: Subscriber) {
        (**self).subscribe(subscriber);
    }
    fn reachable(&self) -> bool {
        (**self).reachable()
    }
    fn wants_sample(&self) -> Result<bool, BarStoreError> {
        (**self).wants_sample()
    }
    fn sample_loaded(&self) -> Result<(), BarStoreError> {
        (**self).sample_loaded()
    }
}

/// The bar store in one SQLite file, `bars.sqlite3` in the data directory.
#[derive(Debug)]
pub struct SqliteBarStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("schema.sql")),
        M::up(include_str!("upper_case_symbols.sql")),
        M::up(include_str!("adjustments.sql")),
    ])
}

/// The `meta` key set once the sample bars were loaded.
const SAMPLE_LOADED: &str = "sample_loaded";

impl SqliteBarStore {
    /// The file name inside the data directory.
    pub const FILE: &str = "bars.sqlite3";

    /// Opens (creating if missing) the store in `dir` and brings its schema
    /// up to date.
    pub fn open(dir: &Path) -> Result<Self, BarStoreError> {
        let path = dir.join(Self::FILE);
        let conn = crate::open_sqlite(&path, &migrations()).map_err(|e| match e {
            crate::OpenError::Sqlite(source) => BarStoreError::Sqlite { path: path.clone(), source },
            crate::OpenError::Migration(source) => BarStoreError::Migration { path: path.clone(), source },
        })?;
        Ok(SqliteBarStore { path, conn: Mutex::new(conn) })
    }

    /// What SQLite's `integrity_check` finds wrong with the file (nothing
    /// when it is sound).
    pub fn integrity_check(&self) -> Result<Vec<String>, BarStoreError> {
        let conn = self.conn();
        let mut query = conn.prepare("PRAGMA integrity_check").map_err(|e| self.sqlite(e))?;
        let rows = query.query_map([], |r| r.get::<_, String>(0)).map_err(|e| self.sqlite(e))?;
        let found: Vec<String> = rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))?;
        Ok(found.into_iter().filter(|line| line != "ok").collect())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-statement leaves SQLite's own transaction to roll back.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sqlite(&self, source: rusqlite::Error) -> BarStoreError {
        let path = self.path.clone();
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return BarStoreError::DiskFull { db: path.display().to_string() };
        }
        BarStoreError::Sqlite { path, source }
    }

    fn date(&self, symbol: &str, text: String) -> Result<Date, BarStoreError> {
        text.parse().map_err(|_| BarStoreError::Corrupt {
            db: self.path.display().to_string(),
            symbol: symbol.into(),
            date: text,
        })
    }
}

impl BarStore for SqliteBarStore {
    fn import(&self, symbol: &str, bars: &[Bar]) -> Result<usize, BarStoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO bars (symbol, date, open, high, low, close, volume, adj_close)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| self.sqlite(e))?;
            for b in bars {
                insert
                    .execute(params![
                        symbol,
                        b.date.to_string(),
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume,
                        b.adj_close
                    ])
                    .map_err(|e| self.sqlite(e))?;
            }
        }
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(bars.len())
    }

    fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError> {
        let conn = self.conn();
        let mut query = conn
            .prepare_cached(
                "SELECT symbol, COUNT(*), MIN(date), MAX(date), COUNT(adj_close) > 0
                 FROM bars GROUP BY symbol ORDER BY symbol",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (symbol, count, first, last, adjusted) = row.map_err(|e| self.sqlite(e))?;
            let (first, last) = (self.date(&symbol, first)?, self.date(&symbol, last)?);
            out.push(SymbolSummary { bars: count.unsigned_abs(), symbol, first, last, adjusted });
        }
        Ok(out)
    }

    fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError> {
        let conn = self.conn();
        let known: Option<i64> = conn
            .query_row("SELECT 1 FROM bars WHERE symbol = ?1 LIMIT 1", [symbol], |r| r.get(0))
            .optional()
            .map_err(|e| self.sqlite(e))?;
        if known.is_none() {
            return Ok(None);
        }
        let mut query = conn
            .prepare_cached(
                "SELECT date, open, high, low, close, volume, adj_close FROM bars WHERE symbol = ?1 ORDER BY date",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map([symbol], |r| {
                let text: String = r.get(0)?;
                Ok((text, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (date, open, high, low, close, volume, adj_close) = row.map_err(|e| self.sqlite(e))?;
            out.push(Bar { date: self.date(symbol, date)?, open, high, low, close, volume, adj_close });
        }
        Ok(Some(out.into()))
    }

    fn delete(&self, symbol: &str) -> Result<u64, BarStoreError> {
        let conn = self.conn();
        let deleted =
            conn.execute("DELETE FROM bars WHERE symbol = ?1", [symbol]).map_err(|e| self.sqlite(e))?;
        Ok(deleted as u64)
    }

    fn wants_sample(&self) -> Result<bool, BarStoreError> {
        let conn = self.conn();
        let query =
            "SELECT NOT EXISTS (SELECT 1 FROM bars) AND NOT EXISTS (SELECT 1 FROM meta WHERE key = ?1)";
        conn.query_row(query, [SAMPLE_LOADED], |r| r.get(0)).map_err(|e| self.sqlite(e))
    }

    fn sample_loaded(&self) -> Result<(), BarStoreError> {
        let conn = self.conn();
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')", [SAMPLE_LOADED])
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }
}

#[cfg(test)]
mod tests;
