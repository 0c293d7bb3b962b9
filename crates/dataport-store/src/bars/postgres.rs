//! The bar store in PostgreSQL (`bars_url = postgres://...`): one database
//! that every replica shares.
//!
//! The [`BarStore`] trait is synchronous (its callers are compute and
//! blocking-pool threads), and tokio-postgres is asynchronous; the store owns
//! a one-thread runtime of its own that runs the queries, the pool and the
//! `LISTEN` connection, and each call waits on a channel for its answer. So a
//! call works from any thread, inside a runtime or not, and the server's
//! runtime never waits on the database.
//!
//! Each import and delete advances the symbol's generation (one sequence for
//! all symbols) in the same transaction and sends a `NOTIFY` on commit. A
//! cache in front checks the generation on every read ([`BarStore::generation`]),
//! which is what makes a read that starts after an acknowledged import see it
//! on every replica; the notifications only drop stale entries early.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use dataport_core::market::bars::{Bar, Date};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio_postgres::{AsyncMessage, NoTls};

use super::{BarStore, BarStoreError, Changed, Subscriber, SymbolSummary};

/// The schema, one script per version, applied in order at start.
const MIGRATIONS: &[&str] = &[include_str!("postgres.sql")];

/// The area's name in `dataport_migrations`.
const AREA: &str = "bars";

/// The channel imports and deletes notify, with the symbol as payload.
const CHANNEL: &str = "dataport_bars";

/// The advisory lock that one replica at a time holds while it migrates.
const MIGRATION_LOCK: i64 = 0x6461_7461_706f_7274; // "dataport"

/// How long a call waits for a pooled connection, or for a new one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the notification listener waits before it reconnects.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Daily bars in a PostgreSQL database.
pub struct PgBarStore {
    /// The URL without its password, for errors and logs.
    shown: String,
    pool: Pool,
    /// Whether the listener holds a live connection now.
    reachable: Arc<AtomicBool>,
    subscriber: Arc<Mutex<Option<Subscriber>>>,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PgBarStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBarStore").field("url", &self.shown).finish_non_exhaustive()
    }
}

impl Drop for PgBarStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which a thread inside
        // another runtime may not do; the listener would never end anyway.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `url` as logs may show it: the password left out.
pub fn shown_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

impl PgBarStore {
    /// Connects to `url` with at most `pool_size` connections, brings the
    /// schema up to date (one replica at a time) and starts listening for
    /// changes made elsewhere.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self, BarStoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| BarStoreError::Url { reason: e.to_string() })?;
        let shown = shown_url(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dataport-postgres")
            .enable_all()
            .build()
            .map_err(|e| BarStoreError::Unreachable { url: shown.clone(), reason: e.to_string() })?;
        let pool = {
            let _entered = runtime.enter();
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig { recycling_method: RecyclingMethod::Fast },
            );
            Pool::builder(manager)
                .max_size(pool_size.max(1))
                .wait_timeout(Some(POOL_TIMEOUT))
                .create_timeout(Some(POOL_TIMEOUT))
                .recycle_timeout(Some(POOL_TIMEOUT))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| BarStoreError::Unreachable { url: shown.clone(), reason: e.to_string() })?
        };
        let store = PgBarStore {
            shown,
            pool,
            // Connecting migrates: reached, until the listener finds otherwise.
            reachable: Arc::new(AtomicBool::new(true)),
            subscriber: Arc::default(),
            runtime: Some(runtime),
        };
        store.migrate()?;
        store.spawn(listen(config, Arc::clone(&store.reachable), Arc::clone(&store.subscriber)));
        Ok(store)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(task);
        }
    }

    /// Runs `query` on the store's runtime and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        query: impl Future<Output = Result<T, BarStoreError>> + Send + 'static,
    ) -> Result<T, BarStoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.spawn(async move {
            let _ = answer.send(query.await);
        });
        answered.recv().unwrap_or_else(|_| {
            Err(BarStoreError::Unreachable {
                url: self.shown.clone(),
                reason: "the store has stopped".into(),
            })
        })
    }

    /// A pooled connection, or why there is none.
    fn client(
        &self,
    ) -> impl Future<Output = Result<deadpool_postgres::Client, BarStoreError>> + Send + 'static {
        let (pool, url) = (self.pool.clone(), self.shown.clone());
        async move {
            pool.get().await.map_err(|e| match e {
                PoolError::Backend(source) => postgres_error(&url, source),
                other => BarStoreError::Unreachable { url, reason: other.to_string() },
            })
        }
    }

    /// Applies the migrations this database lacks, under an advisory lock so
    /// that replicas starting together apply each once.
    fn migrate(&self) -> Result<(), BarStoreError> {
        let (client, url) = (self.client(), self.shown.clone());
        self.run(async move {
            let mut client = client.await?;
            let failed = |e| postgres_error(&url, e);
            let tx = client.transaction().await.map_err(failed)?;
            // "already exists, skipping" is no news to log.
            tx.batch_execute("SET LOCAL client_min_messages = warning").await.map_err(failed)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(failed)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS dataport_migrations (
                     area       text NOT NULL,
                     version    integer NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now(),
                     PRIMARY KEY (area, version))",
            )
            .await
            .map_err(failed)?;
            let applied: i32 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM dataport_migrations WHERE area = $1",
                    &[&AREA],
                )
                .await
                .map_err(failed)?
                .get(0);
            let known = MIGRATIONS.len() as i32;
            if applied > known {
                return Err(BarStoreError::Newer { url, found: applied, known });
            }
            for (version, script) in (1..).zip(MIGRATIONS).skip(applied as usize) {
                tx.batch_execute(script).await.map_err(failed)?;
                tx.execute(
                    "INSERT INTO dataport_migrations (area, version) VALUES ($1, $2)",
                    &[&AREA, &version],
                )
                .await
                .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }

    /// Whether the store's connection for notifications is up: when it is
    /// not, the database is unreachable (or was until a moment ago).
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
}

/// The meta key set once the sample bars were loaded.
const SAMPLE_LOADED: &str = "sample_loaded";

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
        let columns = Columns::of(&rows);
        let (client, url, symbol) = (self.client(), self.shown.clone(), symbol.to_owned());
        let written = bars.len();
        self.run(async move {
            let mut client = client.await?;
            let failed = |e| postgres_error(&url, e);
            let tx = client.transaction().await.map_err(failed)?;
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
                .await
                .map_err(failed)?;
            let c = &columns;
            tx.execute(
                &insert,
                &[&symbol, &c.dates, &c.open, &c.high, &c.low, &c.close, &c.volume, &c.adj_close],
            )
            .await
            .map_err(failed)?;
            changed(&tx, &symbol).await.map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(written)
        })
    }

    fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError> {
        let (client, url) = (self.client(), self.shown.clone());
        self.run(async move {
            let client = client.await?;
            let rows = client
                .query(
                    "SELECT symbol, COUNT(*), MIN(day)::text, MAX(day)::text, COUNT(adj_close) > 0
                     FROM bars GROUP BY symbol ORDER BY symbol",
                    &[],
                )
                .await
                .map_err(|e| postgres_error(&url, e))?;
            rows.iter()
                .map(|row| {
                    let symbol: String = row.get(0);
                    let count: i64 = row.get(1);
                    let first = date(&url, &symbol, row.get(2))?;
                    let last = date(&url, &symbol, row.get(3))?;
                    Ok(SymbolSummary {
                        bars: count.unsigned_abs(),
                        first,
                        last,
                        adjusted: row.get(4),
                        symbol,
                    })
                })
                .collect()
        })
    }

    fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError> {
        let (client, url, symbol) = (self.client(), self.shown.clone(), symbol.to_owned());
        self.run(async move {
            let client = client.await?;
            let query = client
                .prepare_cached(
                    "SELECT day::text, open, high, low, close, volume, adj_close
                     FROM bars WHERE symbol = $1 ORDER BY day",
                )
                .await
                .map_err(|e| postgres_error(&url, e))?;
            let rows = client.query(&query, &[&symbol]).await.map_err(|e| postgres_error(&url, e))?;
            if rows.is_empty() {
                return Ok(None);
            }
            let bars = rows
                .iter()
                .map(|r| {
                    Ok(Bar {
                        date: date(&url, &symbol, r.get(0))?,
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
        })
    }

    fn delete(&self, symbol: &str) -> Result<u64, BarStoreError> {
        let (client, url, symbol) = (self.client(), self.shown.clone(), symbol.to_owned());
        self.run(async move {
            let mut client = client.await?;
            let failed = |e| postgres_error(&url, e);
            let tx = client.transaction().await.map_err(failed)?;
            let deleted =
                tx.execute("DELETE FROM bars WHERE symbol = $1", &[&symbol]).await.map_err(failed)?;
            tx.execute("DELETE FROM bar_symbols WHERE symbol = $1", &[&symbol]).await.map_err(failed)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &symbol]).await.map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(deleted)
        })
    }

    fn generation(&self, symbol: &str) -> Result<Option<u64>, BarStoreError> {
        let (client, url, symbol) = (self.client(), self.shown.clone(), symbol.to_owned());
        self.run(async move {
            let client = client.await?;
            let query = client
                .prepare_cached("SELECT generation FROM bar_symbols WHERE symbol = $1")
                .await
                .map_err(|e| postgres_error(&url, e))?;
            let row = client.query_opt(&query, &[&symbol]).await.map_err(|e| postgres_error(&url, e))?;
            // The sequence starts at 1: 0 is "never imported, or deleted".
            Ok(Some(row.map_or(0, |r| r.get::<_, i64>(0).unsigned_abs())))
        })
    }

    fn subscribe(&self, subscriber: Subscriber) {
        *self.subscriber.lock().unwrap_or_else(PoisonError::into_inner) = Some(subscriber);
    }

    fn wants_sample(&self) -> Result<bool, BarStoreError> {
        let (client, url) = (self.client(), self.shown.clone());
        self.run(async move {
            let client = client.await?;
            let row = client
                .query_one(
                    "SELECT NOT EXISTS (SELECT 1 FROM bars) AND NOT EXISTS (SELECT 1 FROM bar_meta WHERE key = $1)",
                    &[&SAMPLE_LOADED],
                )
                .await
                .map_err(|e| postgres_error(&url, e))?;
            Ok(row.get(0))
        })
    }

    fn sample_loaded(&self) -> Result<(), BarStoreError> {
        let (client, url) = (self.client(), self.shown.clone());
        self.run(async move {
            let client = client.await?;
            client
                .execute(
                    "INSERT INTO bar_meta (key, value) VALUES ($1, '1') ON CONFLICT DO NOTHING",
                    &[&SAMPLE_LOADED],
                )
                .await
                .map_err(|e| postgres_error(&url, e))?;
            Ok(())
        })
    }

    fn reachable(&self) -> bool {
        PgBarStore::reachable(self)
    }
}

/// Advances `symbol`'s generation and tells the other replicas, both on commit.
async fn changed(tx: &deadpool_postgres::Transaction<'_>, symbol: &str) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO bar_symbols (symbol, generation) VALUES ($1, nextval('bar_generation'))
         ON CONFLICT (symbol) DO UPDATE SET generation = EXCLUDED.generation",
        &[&symbol],
    )
    .await?;
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &symbol]).await?;
    Ok(())
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

fn date(url: &str, symbol: &str, text: String) -> Result<Date, BarStoreError> {
    text.parse().map_err(|_| BarStoreError::Corrupt {
        db: url.to_owned(),
        symbol: symbol.to_owned(),
        date: text,
    })
}

/// What a failed query means: the database gone (UNAVAILABLE to clients, who
/// may retry), out of disk, or an error of its own.
fn postgres_error(url: &str, source: tokio_postgres::Error) -> BarStoreError {
    use tokio_postgres::error::SqlState;
    let url = url.to_owned();
    match source.code() {
        Some(code) if *code == SqlState::DISK_FULL => BarStoreError::DiskFull { db: url },
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57P") => {
            BarStoreError::Unreachable { url, reason: source.to_string() }
        }
        Some(_) => BarStoreError::Postgres { url, source },
        None => BarStoreError::Unreachable { url, reason: source.to_string() },
    }
}

/// Keeps one connection listening for changes made through other replicas,
/// reconnecting after a second when it drops. Every (re)connect tells the
/// subscriber that anything may have changed meanwhile.
async fn listen(
    config: tokio_postgres::Config,
    reachable: Arc<AtomicBool>,
    subscriber: Arc<Mutex<Option<Subscriber>>>,
) {
    let tell = |change: Changed| {
        let subscriber = subscriber.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(subscriber) = subscriber {
            subscriber(change);
        }
    };
    let shown = shown_url(&config);
    let mut was_up = true;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (symbols, mut notified) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                let _ = symbols.send(n.payload().to_owned());
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return e.to_string(),
                            None => return "the connection closed".to_owned(),
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::warn!(url = %shown, error = %e, "bar database: cannot listen for changes");
                } else {
                    tell(Changed::Everything);
                    reachable.store(true, Ordering::Relaxed);
                    if !was_up {
                        tracing::info!(url = %shown, "bar database reachable again");
                    }
                    while let Some(symbol) = notified.recv().await {
                        tell(Changed::Symbol(symbol));
                    }
                }
                drop(client);
                let reason = driver.await.unwrap_or_else(|e| e.to_string());
                reachable.store(false, Ordering::Relaxed);
                tracing::warn!(url = %shown, reason, "bar database: lost the connection; reconnecting");
                was_up = false;
            }
            Err(e) => {
                reachable.store(false, Ordering::Relaxed);
                if was_up {
                    tracing::warn!(url = %shown, error = %e, "bar database unreachable; retrying every second");
                }
                was_up = false;
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
