//! The shared PostgreSQL database (`bars_url`) that replicas keep their
//! common state in: the bars ([`crate::bars::PgBarStore`]) and the latest
//! positions ([`crate::positions::PgPositions`]).
//!
//! The stores' traits are synchronous (their callers are compute and
//! blocking-pool threads) and tokio-postgres is asynchronous: a [`Database`]
//! owns a one-thread runtime of its own that runs the queries, the pool and
//! the `LISTEN` connection, and each call waits on a channel for its answer.
//! So a call works from any thread, inside a runtime or not, and the server's
//! runtime never waits on the database.
//!
//! One connection listens on every channel the stores notify; a store
//! subscribes to its channel ([`Database::subscribe`]). [`Database::connect`]
//! returns once it listens, so a subscriber hears of every change committed
//! after that; after each reconnect every subscriber hears
//! [`Notice::Reconnected`]: anything may have changed while it was down.
//!
//! Connections are plain unless the URL asks for TLS (`sslmode`,
//! `sslrootcert`, as libpq names them; [`tls`] says what each means here).

mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Every channel the stores notify on; the listener listens on all.
const CHANNELS: &[&str] = &["dataport_bars", "dataport_positions"];

/// The advisory lock that one replica at a time holds while it migrates.
const MIGRATION_LOCK: i64 = 0x6461_7461_706f_7274; // "dataport"

/// How long a call waits for a pooled connection, or for a new one.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the listener waits before it reconnects.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Why the database failed a call.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {url}: {source}")]
    Postgres { url: String, source: tokio_postgres::Error },
    /// The database cannot be reached now; a later call may succeed.
    #[error("database {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The database's disk had no room for a write; it was rolled back.
    #[error("database {url}: the disk is full")]
    DiskFull { url: String },
    /// `bars_url` cannot be used: not a PostgreSQL URL, or a TLS setting
    /// in it that is wrong (the reason names the key and the value).
    #[error("bars_url: {reason}")]
    Url { reason: String },
    #[error(
        "database {url}: its {area} schema is version {found}, newer than this dataport knows ({known}); \
         upgrade dataport"
    )]
    Newer { url: String, area: &'static str, found: i32, known: i32 },
    #[error("database {url}: {what}")]
    Corrupt { url: String, what: String },
}

/// What a subscriber hears on its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A notification's payload.
    Message(String),
    /// The listener reconnected: notifications may have been missed.
    Reconnected,
}

type Subscribers = HashMap<&'static str, Vec<Arc<dyn Fn(Notice) + Send + Sync>>>;

/// A pool of connections to one PostgreSQL database, and its listener.
pub struct Database {
    /// The URL without its password, for errors and logs.
    shown: String,
    /// What TLS checks the server's certificate against, for errors.
    trust: Arc<str>,
    pool: Pool,
    /// Whether the listener holds a live connection now.
    reachable: Arc<AtomicBool>,
    subscribers: Arc<Mutex<Subscribers>>,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.shown).finish_non_exhaustive()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which a thread inside
        // another runtime may not do; the listener would never end anyway.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A database URL as logs may show it: the password left out.
fn shown_url(config: &tokio_postgres::Config) -> String {
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

impl Database {
    /// Connects to `url` with at most `pool_size` connections (checking that
    /// it answers) and starts the listener.
    pub fn connect(url: &str, pool_size: usize) -> Result<Arc<Self>, DbError> {
        let tls::Parsed { config, mode, connector, trust } = tls::parse(url)?;
        let shown = shown_url(&config);
        tracing::debug!(url = %shown, sslmode = mode.name(), trust, "database: connecting");
        let unreachable = |reason: String| DbError::Unreachable { url: shown.clone(), reason };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dataport-postgres")
            .enable_all()
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let pool = {
            let _entered = runtime.enter();
            let manager = Manager::from_config(
                config.clone(),
                connector.clone(),
                ManagerConfig { recycling_method: RecyclingMethod::Fast },
            );
            Pool::builder(manager)
                .max_size(pool_size.max(1))
                .wait_timeout(Some(POOL_TIMEOUT))
                .create_timeout(Some(POOL_TIMEOUT))
                .recycle_timeout(Some(POOL_TIMEOUT))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| unreachable(e.to_string()))?
        };
        let db = Database {
            shown,
            trust: trust.into(),
            pool,
            // Reached below; the listener says otherwise when it loses it.
            reachable: Arc::new(AtomicBool::new(true)),
            subscribers: Arc::default(),
            runtime: Some(runtime),
        };
        db.query(|client| async move { client.batch_execute("SELECT 1").await })?;
        // Listening before anyone subscribes: a subscriber hears of every
        // change committed after `connect` returns.
        let (up, listening) = mpsc::sync_channel(1);
        let (reachable, subscribers) = (Arc::clone(&db.reachable), Arc::clone(&db.subscribers));
        db.spawn(listen(config, connector, Arc::clone(&db.trust), reachable, subscribers, up));
        if listening.recv_timeout(POOL_TIMEOUT).is_err() {
            let reason = "cannot listen for notifications".into();
            return Err(DbError::Unreachable { url: db.shown.clone(), reason });
        }
        Ok(Arc::new(db))
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Whether the listener's connection is up: when it is not, the database
    /// is unreachable (or was until a moment ago).
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Calls `subscriber` with every notification on `channel` (one of
    /// [`CHANNELS`]) from now on, and after every reconnect.
    pub fn subscribe(&self, channel: &'static str, subscriber: Arc<dyn Fn(Notice) + Send + Sync>) {
        debug_assert!(CHANNELS.contains(&channel), "{channel} is not listened on");
        lock(&self.subscribers).entry(channel).or_default().push(subscriber);
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(task);
        }
    }

    /// Runs `work` with a pooled connection on the database's runtime and
    /// waits for its answer.
    pub fn query<T, F>(
        &self,
        work: impl FnOnce(deadpool_postgres::Client) -> F + Send + 'static,
    ) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let (pool, url, trust) = (self.pool.clone(), self.shown.clone(), Arc::clone(&self.trust));
        let (answer, answered) = mpsc::sync_channel(1);
        self.spawn(async move {
            let result = match pool.get().await {
                Ok(client) => work(client).await.map_err(|e| error(&url, &trust, e)),
                Err(PoolError::Backend(e)) => Err(error(&url, &trust, e)),
                Err(other) => Err(DbError::Unreachable { url, reason: other.to_string() }),
            };
            let _ = answer.send(result);
        });
        answered.recv().unwrap_or_else(|_| {
            Err(DbError::Unreachable {
                url: self.shown.clone(),
                reason: "the database's runtime stopped".into(),
            })
        })
    }

    /// Applies the scripts of `area` this database lacks, in order, under an
    /// advisory lock so that replicas starting together apply each once. A
    /// database whose `area` is newer than `scripts` is refused.
    pub fn migrate(&self, area: &'static str, scripts: &'static [&'static str]) -> Result<(), DbError> {
        let found = self.query(move |mut client| async move {
            let tx = client.transaction().await?;
            // "already exists, skipping" is no news to log.
            tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS dataport_migrations (
                     area       text NOT NULL,
                     version    integer NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now(),
                     PRIMARY KEY (area, version))",
            )
            .await?;
            let applied: i32 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM dataport_migrations WHERE area = $1",
                    &[&area],
                )
                .await?
                .get(0);
            if applied as usize <= scripts.len() {
                for (version, script) in (1..).zip(scripts).skip(applied as usize) {
                    tx.batch_execute(script).await?;
                    tx.execute(
                        "INSERT INTO dataport_migrations (area, version) VALUES ($1, $2)",
                        &[&area, &version],
                    )
                    .await?;
                }
                tx.commit().await?;
            }
            Ok(applied)
        })?;
        let known = scripts.len() as i32;
        if found > known {
            return Err(DbError::Newer { url: self.shown.clone(), area, found, known });
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Subscribing and telling leave the map whole across a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a failed query means: the database gone (UNAVAILABLE to clients, who
/// may retry), out of disk, or an error of its own. A TLS handshake that
/// failed on the server's certificate is unreachable too, its reason saying
/// what the certificate was checked against (`trust`).
fn error(url: &str, trust: &str, source: tokio_postgres::Error) -> DbError {
    use tokio_postgres::error::SqlState;
    let url = url.to_owned();
    match source.code() {
        Some(code) if *code == SqlState::DISK_FULL => DbError::DiskFull { url },
        // Connection exceptions, and the server shutting down.
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57P") => {
            DbError::Unreachable { url, reason: reason(&source, trust) }
        }
        Some(_) => DbError::Postgres { url, source },
        None => DbError::Unreachable { url, reason: reason(&source, trust) },
    }
}

/// Why a connection failed, in words: tokio-postgres's error and its
/// causes (its own text leaves them out), and for a server certificate that
/// failed the checks, what it was checked against.
fn reason(e: &tokio_postgres::Error, trust: &str) -> String {
    let mut words = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(err) = cause {
        words = format!("{words}: {err}");
        cause = err.source();
    }
    if tls::certificate_error(e).is_some() {
        words = format!("{words} (the server's certificate is checked against {trust})");
    }
    words
}

/// Keeps one connection listening on [`CHANNELS`], reconnecting a second
/// after it drops, and hands each notification to its channel's subscribers;
/// `up` hears when it first listens.
async fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    trust: Arc<str>,
    reachable: Arc<AtomicBool>,
    subscribers: Arc<Mutex<Subscribers>>,
    up: mpsc::SyncSender<()>,
) {
    let tell = |channel: &str, notice: Notice| {
        let told = lock(&subscribers).get(channel).cloned().unwrap_or_default();
        for subscriber in told {
            subscriber(notice.clone());
        }
    };
    let shown = shown_url(&config);
    let mut was_up = true;
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let (notices, mut notified) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                let _ = notices.send((n.channel().to_owned(), n.payload().to_owned()));
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return e.to_string(),
                            None => return "the connection closed".to_owned(),
                        }
                    }
                });
                let listened: String = CHANNELS.iter().map(|c| format!("LISTEN {c};")).collect();
                if let Err(e) = client.batch_execute(&listened).await {
                    tracing::warn!(url = %shown, error = %e, "database: cannot listen for changes");
                } else {
                    // Nobody has subscribed yet at the first connect.
                    for channel in CHANNELS {
                        tell(channel, Notice::Reconnected);
                    }
                    reachable.store(true, Ordering::Relaxed);
                    let _ = up.try_send(());
                    if !was_up {
                        tracing::info!(url = %shown, "database reachable again");
                    }
                    while let Some((channel, payload)) = notified.recv().await {
                        tell(&channel, Notice::Message(payload));
                    }
                }
                drop(client);
                let reason = driver.await.unwrap_or_else(|e| e.to_string());
                reachable.store(false, Ordering::Relaxed);
                tracing::warn!(url = %shown, reason, "database: lost the connection; reconnecting");
            }
            Err(e) => {
                reachable.store(false, Ordering::Relaxed);
                if was_up {
                    let error = reason(&e, &trust);
                    tracing::warn!(url = %shown, error, "database unreachable; retrying every second");
                }
            }
        }
        was_up = false;
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// The URL of a new, empty database on the PostgreSQL server of
/// `DATAPORT_TEST_POSTGRES` (a URL without a database,
/// `postgres://USER@HOST:PORT`, which tests/run starts): each test makes its
/// own.
#[cfg(test)]
pub(crate) fn test_database() -> String {
    use std::sync::atomic::AtomicUsize;
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let server = std::env::var("DATAPORT_TEST_POSTGRES").expect(
        "DATAPORT_TEST_POSTGRES: the URL of a PostgreSQL server to test against (tests/run starts one)",
    );
    let name = format!("test_{}_{}", std::process::id(), MADE.fetch_add(1, Ordering::Relaxed));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
                .await
                .expect("connects");
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("creates a database");
    });
    format!("{server}/{name}")
}

#[cfg(test)]
mod tests;
