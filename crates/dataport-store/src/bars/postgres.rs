//! The bar store in PostgreSQL (`bars_url = postgres://...`): one database
//! that every replica shares ([`crate::postgres::Database`]).
//!
//! Each import and delete advances the symbol's generation (one sequence for
//! all symbols) in the same transaction and notifies `dataport_bars` on
//! commit. A cache in front checks the generation on every read
//! ([`BarStore::generation`]), which is what makes a read that starts after an
//! acknowledged import see it on every replica; the notifications only drop
//! stale entries early.

use std::sync::Arc;

use dataport_core::market::bars::{Bar, Date};

use super::{BarStore, BarStoreError, Changed, Subscriber, SymbolSummary};
use crate::postgres::{Database, Notice};

/// The schema, one script per version, applied in order at start.
const MIGRATIONS: &[&str] = &[include_str!("postgres.sql")];

/// The channel imports and deletes notify, with the symbol as payload.
const CHANNEL: &str = "dataport_bars";

/// The meta key set once the sample bars were loaded.
const SAMPLE_LOADED: &str = "sample_loaded";

/// Daily bars in a PostgreSQL database.
#[derive(Debug)]
pub struct PgBarStore {
    db: Arc<Database>,
}

impl PgBarStore {
    /// Brings the bars' schema in `db` up to date (one replica at a time).
    pub fn open(db: Arc<Database>) -> Result<Self, BarStoreError> {
        db.migrate("bars", MIGRATIONS)?;
        Ok(PgBarStore { db })
    }

    /// Connects to `url` with a pool of `pool_size` and opens the store.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self, BarStoreError> {
        PgBarStore::open(Database::connect(url, pool_size)?)
    }
}

impl BarStore for PgBarStore {
    fn import(&self, symbol: &str, bars: &[Bar]) -> Result<usize, BarStoreError> {
        // One row per date, the last given winning, as SQLite's INSERT OR
        // REPLACE does (one INSERT may not update a row twice).
        let mut rows: Vec<&Bar> = bars.iter().collect();
        rows.sort_by_key(|b| b.date);
        rows.dedup_by(|later, earlier| {
            let same = later.date == earlier.date;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        let c = Columns::of(&rows);
        let symbol = symbol.to_owned();
        self.db.query(move |mut client| async move {
            let tx = client.transaction().await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO bars (symbol, day, open, high, low, close, volume, adj_close)
                     SELECT $1, d::date, o, h, l, c, v, a
                     FROM UNNEST($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                                 $7::float8[], $8::float8[]) AS t(d, o, h, l, c, v, a)
                     ON CONFLICT (symbol, day) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,
                         low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume,
                         adj_close = EXCLUDED.adj_close",
                )
                .await?;
            tx.execute(
                &insert,
                &[&symbol, &c.dates, &c.open, &c.high, &c.low, &c.close, &c.volume, &c.adj_close],
            )
            .await?;
            tx.execute(
                "INSERT INTO bar_symbols (symbol, generation) VALUES ($1, nextval('bar_generation'))
                 ON CONFLICT (symbol) DO UPDATE SET generation = EXCLUDED.generation",
                &[&symbol],
            )
            .await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &symbol]).await?;
            tx.commit().await
        })?;
        Ok(bars.len())
    }

    fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError> {
        let rows = self.db.query(|client| async move {
            client
                .query(
                    "SELECT symbol, COUNT(*), MIN(day)::text, MAX(day)::text, COUNT(adj_close) > 0
                     FROM bars GROUP BY symbol ORDER BY symbol",
                    &[],
                )
                .await
        })?;
        rows.iter()
            .map(|row| {
                let symbol: String = row.get(0);
                let count: i64 = row.get(1);
                let first = self.date(&symbol, row.get(2))?;
                let last = self.date(&symbol, row.get(3))?;
                Ok(SymbolSummary { bars: count.unsigned_abs(), first, last, adjusted: row.get(4), symbol })
            })
            .collect()
    }

    fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError> {
        let owned = symbol.to_owned();
        let rows = self.db.query(move |client| async move {
            let query = client
                .prepare_cached(
                    "SELECT day::text, open, high, low, close, volume, adj_close
                     FROM bars WHERE symbol = $1 ORDER BY day",
                )
                .await?;
            client.query(&query, &[&owned]).await
        })?;
        if rows.is_empty() {
            return Ok(None);
        }
        let bars = rows
            .iter()
            .map(|r| {
                Ok(Bar {
                    date: self.date(symbol, r.get(0))?,
                    open: r.get(1),
                    high: r.get(2),
                    low: r.get(3),
                    close: r.get(4),
                    volume: r.get(5),
                    adj_close: r.get(6),
                })
            })
            .collect::<Result<Vec<Bar>, BarStoreError>>()?;
        Ok(Some(bars.into()))
    }

    fn delete(&self, symbol: &str) -> Result<u64, BarStoreError> {
        let symbol = symbol.to_owned();
        let deleted = self.db.query(move |mut client| async move {
            let tx = client.transaction().await?;
            let deleted = tx.execute("DELETE FROM bars WHERE symbol = $1", &[&symbol]).await?;
            tx.execute("DELETE FROM bar_symbols WHERE symbol = $1", &[&symbol]).await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &symbol]).await?;
            tx.commit().await?;
            Ok(deleted)
        })?;
        Ok(deleted)
    }

    fn generation(&self, symbol: &str) -> Result<Option<u64>, BarStoreError> {
        let symbol = symbol.to_owned();
        let row = self.db.query(move |client| async move {
            let query = client.prepare_cached("SELECT generation FROM bar_symbols WHERE symbol = $1").await?;
            client.query_opt(&query, &[&symbol]).await
        })?;
        // The sequence starts at 1: 0 is "never imported, or deleted".
        Ok(Some(row.map_or(0, |r| r.get::<_, i64>(0).unsigned_abs())))
    }

    fn subscribe(&self, subscriber: Subscriber) {
        self.db.subscribe(
            CHANNEL,
            Arc::new(move |notice| {
                subscriber(match notice {
                    Notice::Message(symbol) => Changed::Symbol(symbol),
                    Notice::Reconnected => Changed::Everything,
                });
            }),
        );
    }

    fn reachable(&self) -> bool {
        self.db.reachable()
    }

    fn wants_sample(&self) -> Result<bool, BarStoreError> {
        let row = self.db.query(|client| async move {
            client
                .query_one(
                    "SELECT NOT EXISTS (SELECT 1 FROM bars) AND NOT EXISTS (SELECT 1 FROM bar_meta WHERE key = $1)",
                    &[&SAMPLE_LOADED],
                )
                .await
        })?;
        Ok(row.get(0))
    }

    fn sample_loaded(&self) -> Result<(), BarStoreError> {
        self.db.query(|client| async move {
            client
                .execute(
                    "INSERT INTO bar_meta (key, value) VALUES ($1, '1') ON CONFLICT DO NOTHING",
                    &[&SAMPLE_LOADED],
                )
                .await
        })?;
        Ok(())
    }
}

impl PgBarStore {
    fn date(&self, symbol: &str, text: String) -> Result<Date, BarStoreError> {
        text.parse().map_err(|_| BarStoreError::Corrupt {
            db: self.db.url().to_owned(),
            symbol: symbol.to_owned(),
            date: text,
        })
    }
}

/// A batch of bars as the arrays one `INSERT ... UNNEST` takes.
struct Columns {
    dates: Vec<String>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<Option<f64>>,
    adj_close: Vec<Option<f64>>,
}

impl Columns {
    fn of(bars: &[&Bar]) -> Columns {
        Columns {
            dates: bars.iter().map(|b| b.date.to_string()).collect(),
            open: bars.iter().map(|b| b.open).collect(),
            high: bars.iter().map(|b| b.high).collect(),
            low: bars.iter().map(|b| b.low).collect(),
            close: bars.iter().map(|b| b.close).collect(),
            volume: bars.iter().map(|b| b.volume).collect(),
            adj_close: bars.iter().map(|b| b.adj_close).collect(),
        }
    }
}
