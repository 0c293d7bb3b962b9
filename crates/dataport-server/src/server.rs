//! Assembles the services, health and reflection, and runs them until a
//! shutdown signal, then drains.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use dataport_core::route::FeatureDb;
use dataport_proto::grpc::health::v1::health_check_response::ServingStatus;
use dataport_proto::grpc::health::v1::health_server::HealthServer;
use dataport_store::bars::{BarStore, BarStoreError, CachedBarStore, PgBarStore, SqliteBarStore};
use dataport_store::files::{
    Cleanup, FileError, FileStore, FileStoreConfig, Files, LocalFileStore, S3FileStore,
};
use dataport_store::positions::PgPositions;
use dataport_store::postgres::Database;
use dataport_store::{DataDir, StoreError};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tonic::server::NamedService;

use dataport_wire::Encoding;
use dataport_wire::compression::{Compression, Limits};

use crate::auth::Auth;
use crate::config::{Config, ResponseCompression};
use crate::connections::{self, Connection, Load, Observers, Shared};
use crate::drain::{Drain, EndOnDrain};
use crate::inflight::Inflight;
use crate::market::{self, Market};
use crate::metrics::{Areas, CallMetrics, Metrics};
use crate::outliers::Judged;
use crate::position::{Hub, Positions};
use crate::reflection::{Catalog, ReflectionV1, ReflectionV1Alpha};
use crate::router::Router;
use crate::tls::{Tls, TlsError, TlsFiles};
use crate::traces::Spans;
use crate::{files, greeter, health, outliers, position, route};

/// Why the server could not start; its `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("features = {path:?}: cannot read: {source}")]
    FeaturesRead { path: PathBuf, source: std::io::Error },
    #[error("features = {path:?}: {source}")]
    FeaturesParse { path: PathBuf, source: dataport_core::route::FeaturesError },
    #[error("data_dir = {path:?}: {source}")]
    DataDir { path: PathBuf, source: StoreError },
    #[error("{0}")]
    Bars(#[from] BarStoreError),
    #[error("file store: {0}")]
    Files(#[from] FileError),
    #[error("sample_data: {0}")]
    Sample(String),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Otlp(String),
    #[error("{key} = \"{addr}\": cannot bind: {source}")]
    Listen { key: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(
        "refusing to serve {listen} without {missing}: anyone who can reach it could read and change everything. \
         Set tls_cert and tls_key (--tls-cert, --tls-key) and auth_tokens (--auth-tokens), listen on 127.0.0.1, \
         or accept the risk with --insecure"
    )]
    Unprotected { listen: SocketAddr, missing: &'static str },
}

/// Reports every service SERVING while the stores can be reached and
/// NOT_SERVING while a shared one cannot (a balancer then sends calls
/// elsewhere), checking every 250 ms, until the drain starts. The server
/// starts SERVING: a shared store was reached when it was opened.
async fn follow_stores(
    health: health::Reporter,
    drain: Drain,
    bars: Arc<CachedBarStore<Box<dyn BarStore>>>,
    files: Files,
) {
    let mut was = true;
    let mut ticks = drain.every(std::time::Duration::from_millis(250));
    while ticks.next().await {
        let up = bars.reachable() && files.reachable();
        if was != up {
            if up {
                tracing::info!("the shared stores are reachable again: serving");
            } else {
                tracing::warn!("a shared store is unreachable: health says NOT_SERVING until it is back");
            }
            health.set_all(if up { ServingStatus::Serving } else { ServingStatus::NotServing });
            was = up;
        }
    }
}

/// Removes what the S3 store no longer needs (stale resumable uploads, data
/// replaced long enough ago) every ten minutes, until the drain starts. Any
/// replica may sweep: the sweep decides by age, not by who wrote.
async fn sweep_s3(store: Arc<S3FileStore>, drain: Drain) {
    let mut ticks = drain.every(std::time::Duration::from_secs(600));
    ticks.next().await; // at once: opening the store swept
    while ticks.next().await {
        let store = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || store.sweep()).await {
            Ok(Ok(swept)) => tracing::info!(?swept, "swept the S3 file store"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep the S3 file store"),
            Err(e) => tracing::warn!(error = %e, "the S3 sweep failed"),
        }
    }
}

/// Asks the S3 store about a name every two seconds, until the drain
/// starts: its `reachable()` follows its last request, so without calls an
/// outage would go unseen by health (and the balancer) until a call failed.
/// One small request at a time; the answer (usually "no such file") is not
/// the point.
async fn probe_s3(store: Arc<S3FileStore>, drain: Drain) {
    let mut ticks = drain.every(std::time::Duration::from_secs(2));
    while ticks.next().await {
        let store = Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || store.stat("dataport-health-probe")).await;
    }
}

/// The stores a server runs on, as the config chose them.
struct Stores {
    /// `None` when both stores are shared: nothing is kept in a data
    /// directory, so none is locked.
    data_dir: Option<DataDir>,
    files: Files,
    bars: Box<dyn BarStore>,
    shared_positions: Option<Arc<PgPositions>>,
}

/// Opens the file store (local, or S3 with `files_url`), the bar store and
/// positions (SQLite and memory, or PostgreSQL with `bars_url`), and the
/// data directory if anything is kept there.
fn open_stores(config: &Config) -> Result<Stores, StartError> {
    let data_dir = match (&config.bars_url, &config.files_url) {
        (Some(_), Some(_)) => None,
        _ => Some(
            DataDir::open(&config.data_dir)
                .map_err(|source| StartError::DataDir { path: config.data_dir.clone(), source })?,
        ),
    };
    let file_config = FileStoreConfig { max_file_size: config.max_file_size, ..FileStoreConfig::default() };
    let files = match (&config.files_url, &data_dir) {
        (Some(url), _) => Files::S3(Arc::new(S3FileStore::open(url, file_config)?)),
        (None, Some(dir)) => {
            let files = LocalFileStore::open_with(dir.path(), file_config)?;
            let cleaned = files.cleaned();
            if cleaned != Cleanup::default() {
                tracing::info!(
                    temp_files = cleaned.temp_files,
                    orphan_objects = cleaned.orphan_objects,
                    stale_resumable = cleaned.stale_resumable,
                    "the file store removed what a crash or an abandoned upload left"
                );
            }
            Files::Local(files)
        }
        (None, None) => unreachable!("a data directory is opened unless files_url is set"),
    };
    let (bars, shared_positions): (Box<dyn BarStore>, _) = match (&config.bars_url, &data_dir) {
        (Some(url), _) => {
            let db = Database::connect(url.expose(), config.bars_pool_size).map_err(BarStoreError::from)?;
            let positions = PgPositions::open(Arc::clone(&db)).map_err(BarStoreError::from)?;
            (Box::new(PgBarStore::open(db)?), Some(Arc::new(positions)))
        }
        (None, Some(dir)) => (Box::new(SqliteBarStore::open(dir.path())?), None),
        (None, None) => unreachable!("a data directory is opened unless bars_url is set"),
    };
    Ok(Stores { data_dir, files, bars, shared_positions })
}

/// A server with everything loaded that can fail before a port is bound.
#[derive(Debug)]
pub struct Server {
    config: Config,
    /// `None` when every store is shared (`bars_url` and `files_url`).
    data_dir: Option<DataDir>,
    features: Arc<FeatureDb>,
    hub: Arc<Hub>,
    positions: Positions,
    market: Market,
    /// The market's store, for the metrics and health.
    bars: Arc<CachedBarStore<Box<dyn BarStore>>>,
    files: Files,
    judged: Judged,
    inflight: Inflight,
    tls: Option<Arc<Tls>>,
    auth: Option<Arc<Auth>>,
    /// Bound in `new`, so a taken port fails the start, not the run.
    health_listener: Option<std::net::TcpListener>,
    metrics_listener: Option<std::net::TcpListener>,
    spans: Option<Arc<Spans>>,
}

/// The most bars kept in memory (about 56 MB): 20 years of daily bars for
/// about 200 symbols.
const BAR_CACHE_BUDGET: usize = 1_000_000;

/// The names of every application service, as health and reflection list them.
pub const SERVICES: &[&str] = &[
    dataport_proto::helloworld::greeter_server::SERVICE_NAME,
    dataport_proto::routeguide::route_guide_server::SERVICE_NAME,
    dataport_proto::pos_xyz::position_service_server::SERVICE_NAME,
    dataport_proto::dataport::position::v1::position_service_server::SERVICE_NAME,
    dataport_proto::idc::indicator_server::SERVICE_NAME,
    dataport_proto::idc::indicator_graph_server::SERVICE_NAME,
    dataport_proto::dataport::market::v1::market_service_server::SERVICE_NAME,
    dataport_proto::pb::outliers_server::SERVICE_NAME,
    dataport_proto::dataport::outliers::v1::outliers_service_server::SERVICE_NAME,
    dataport_proto::file_srv::file_srv_server::SERVICE_NAME,
    dataport_proto::file_transfer::file_service_server::SERVICE_NAME,
    dataport_proto::google::bytestream::byte_stream_server::SERVICE_NAME,
    dataport_proto::dataport::files::v1::files_service_server::SERVICE_NAME,
];

impl Server {
    /// Opens the data directory and loads the features.
    pub fn new(config: Config) -> Result<Server, StartError> {
        protected(&config)?;
        let features = match &config.features {
            None => FeatureDb::builtin(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| StartError::FeaturesRead { path: path.clone(), source })?;
                FeatureDb::from_json(&text)
                    .map_err(|source| StartError::FeaturesParse { path: path.clone(), source })?
            }
        };
        let Stores { data_dir, files, bars, shared_positions } = open_stores(&config)?;
        if config.sample_data && bars.wants_sample()? {
            let (symbols, count) = market::load_sample(&bars).map_err(StartError::Sample)?;
            bars.sample_loaded()?;
            tracing::info!(symbols, bars = count, "loaded the sample bars into the empty bar store");
        }
        let bars = Arc::new(CachedBarStore::new(bars, BAR_CACHE_BUDGET));
        let inflight = Inflight::new(config.max_inflight_bytes);
        let market = Market::new(
            bars.clone(),
            config.default_symbol.clone(),
            config.compat_adjusted,
            inflight.clone(),
        );
        let hub = Arc::new(Hub::new(config.max_entities));
        let positions = Positions::new(Arc::clone(&hub), shared_positions, config.max_entities);
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::load(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: config.tls_client_ca.clone(),
            })?),
            _ => None,
        };
        let auth = match &config.auth_tokens {
            Some(path) => Some(Auth::load(path.clone(), config.reflection_public).map_err(StartError::Auth)?),
            None => None,
        };
        let health_listener = bind("health_listen", config.health_listen)?;
        let metrics_listener = bind("metrics_listen", config.metrics_listen)?;
        let spans = match &config.otlp_endpoint {
            None => None,
            Some(_) if tokio::runtime::Handle::try_current().is_err() => {
                return Err(StartError::Otlp(
                    "otlp_endpoint: the server must be made inside a tokio runtime".into(),
                ));
            }
            Some(endpoint) => {
                Some(Arc::new(Spans::start(endpoint, config.otlp_sample_ratio).map_err(StartError::Otlp)?))
            }
        };
        Ok(Server {
            config,
            data_dir,
            features: Arc::new(features),
            hub,
            positions,
            market,
            bars,
            files,
            judged: Judged::default(),
            inflight,
            tls,
            auth,
            health_listener,
            metrics_listener,
            spans,
        })
    }

    /// Where the health service alone is served (`health_listen`), once bound.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where `/metrics` is served (`metrics_listen`), once bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    fn outliers(&self) -> outliers::Context {
        let limits = outliers::Limits {
            max_detect_bytes: self.config.max_detect_bytes,
            max_stream_series: self.config.max_stream_series,
            max_stream_window: self.config.max_stream_window,
        };
        outliers::Context { limits, judged: self.judged.clone(), inflight: self.inflight.clone() }
    }

    /// Compression for every call: requests read within each service's
    /// limit, responses compressed as configured, file data and images never.
    fn compression(&self) -> Compression {
        use dataport_proto::methods;
        let detect = self.config.max_detect_bytes;
        let limits = Limits {
            default: self.config.max_message_size,
            services: vec![
                (dataport_proto::pb::outliers_server::SERVICE_NAME, detect),
                (dataport_proto::dataport::outliers::v1::outliers_service_server::SERVICE_NAME, detect),
            ],
        };
        let respond = match self.config.response_compression {
            ResponseCompression::None => None,
            ResponseCompression::Gzip => Some(Encoding::Gzip),
            ResponseCompression::Zstd => Some(Encoding::Zstd),
        };
        const PLAIN: &[&str] = &[
            methods::dataport::files::v1::files_service::DOWNLOAD,
            methods::file_srv::DOWNLOAD_FILE,
            methods::google::bytestream::byte_stream::READ,
            methods::idc::indicator_graph::GET_MACD_GRAPH,
        ];
        Compression::new(limits, respond, PLAIN)
    }

    /// What every connection shares: the call layer's settings and the
    /// router.
    fn shared<B>(&self, health: &health::Reporter, drain: &Drain, catalog: &Arc<Catalog>) -> Shared<B>
    where
        B: http_body::Body<Data = prost::bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        Shared {
            compression: self.compression(),
            auth: self.auth.clone(),
            router: self.router(health, drain, catalog),
        }
    }

    /// Serves health alone on `listener` (`health_listen`): plaintext, no
    /// auth, every other service unknown there; until the drain starts.
    fn serve_health(
        &self,
        listener: std::net::TcpListener,
        health: &health::Reporter,
        drain: &Drain,
        limits: connections::Limits,
    ) {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => return tracing::error!(error = %e, "health_listen: cannot serve"),
        };
        let mut router = Router::builder();
        router.add(EndOnDrain::new(health.service(), drain.clone()));
        let shared = Arc::new(Shared { compression: self.compression(), auth: None, router: router.build() });
        let incoming = crate::tls::incoming(listener, None, limits.handshake_timeout);
        let service = move |remote| Connection::new(Arc::clone(&shared), remote);
        let http = connections::http(false, &limits);
        let load = Load::new(limits.max_calls, Observers::default());
        tokio::spawn(connections::serve(incoming, http, limits, load, service, drain.signaled()));
    }

    /// Serves `/metrics` on `listener` (`metrics_listen`), through the
    /// drain too, until the task is aborted.
    fn serve_metrics(
        &self,
        listener: &std::net::TcpListener,
        calls: Arc<CallMetrics>,
        load: Arc<Load>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let listener = match listener.try_clone().and_then(TcpListener::from_std) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, "metrics_listen: cannot serve");
                return None;
            }
        };
        let areas = Areas {
            files: self.files.clone(),
            bars: Arc::clone(&self.bars),
            hub: Arc::clone(&self.hub),
            judged: self.judged.clone(),
            inflight: self.inflight.clone(),
            load,
        };
        let metrics = Arc::new(Metrics::new(calls, areas));
        Some(tokio::spawn(metrics.serve(listener)))
    }

    /// Every service, each under its name.
    fn router<B>(&self, health: &health::Reporter, drain: &Drain, catalog: &Arc<Catalog>) -> Router<B>
    where
        B: http_body::Body<Data = prost::bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        // The largest request message of every service but Detect's.
        let max = self.config.max_message_size;
        let mut router = Router::builder();
        router
            .add(EndOnDrain::new(health.service(), drain.clone()))
            .add(ReflectionV1::server(Arc::clone(catalog)))
            .add(ReflectionV1Alpha::server(Arc::clone(catalog)))
            .add(greeter::compat::greeter(max))
            .add(route::compat::route_guide(Arc::clone(&self.features), max))
            .add(position::compat::position_service(self.positions.clone(), max))
            .add(position::v1::position_service(self.positions.clone(), drain.clone(), max))
            .add(market::compat::indicator(self.market.clone(), max))
            .add(market::compat::indicator_graph(self.market.clone(), max))
            .add(market::v1::market_service(self.market.clone(), max))
            .add(outliers::compat::outliers(self.outliers()))
            .add(outliers::v1::outliers_service(self.outliers(), drain.clone()))
            .add(files::compat::file_srv(self.files.clone(), self.inflight.clone(), max))
            .add(files::compat::file_transfer(self.files.clone(), self.inflight.clone(), max))
            .add(files::bytestream::byte_stream(self.files.clone(), self.inflight.clone(), max))
            .add(files::v1::files_service(self.files.clone(), self.inflight.clone(), max));
        router.build()
    }

    /// Starts what runs beside the calls: the simulated orbit, the
    /// positions' follower, the S3 store's sweep and probe, and, with a
    /// shared store, the health follower; then reports every service SERVING.
    fn start_background(&self, health: &health::Reporter, drain: &Drain) {
        if self.config.simulate_orbit {
            tokio::spawn(position::simulate_orbit(self.positions.clone(), drain.clone()));
        }
        self.positions.follow(drain);
        if let Files::S3(store) = &self.files {
            tokio::spawn(sweep_s3(Arc::clone(store), drain.clone()));
            tokio::spawn(probe_s3(Arc::clone(store), drain.clone()));
        }
        health.set_all(ServingStatus::Serving);
        // Only a shared store can become unreachable.
        if self.config.bars_url.is_some() || self.config.files_url.is_some() {
            tokio::spawn(follow_stores(
                health.clone(),
                drain.clone(),
                Arc::clone(&self.bars),
                self.files.clone(),
            ));
        }
    }

    /// Logs the `listening` line and starts watching the certificate and
    /// token files.
    fn announce(&self, addr: Option<SocketAddr>) {
        let tls = match &self.tls {
            None => "off",
            Some(tls) if tls.mutual() => "mutual",
            Some(_) => "on",
        };
        tracing::info!(
            addr = %DisplayAddr(addr),
            tls,
            auth = self.auth.is_some(),
            data_dir = self.data_dir.as_ref().map(|d| tracing::field::display(d.path().display())),
            features = self.features.len(),
            health_listen = self.health_addr().map(tracing::field::display),
            metrics_listen = self.metrics_addr().map(tracing::field::display),
            otlp_endpoint = self.config.otlp_endpoint.as_deref(),
            "listening"
        );
        if let Some(tls) = &self.tls {
            tls.watch();
        }
        if let Some(auth) = &self.auth {
            auth.watch();
        }
    }

    /// Serves on `listener` until `shutdown` resolves, then reports every
    /// service NOT_SERVING, stops accepting, ends long-lived streams and
    /// waits up to `shutdown_timeout` for in-flight calls.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
        let addr = listener.local_addr().ok();
        let drain = Drain::default();
        let health = health::Reporter::new(SERVICES.iter().copied());

        self.start_background(&health, &drain);
        self.announce(addr);

        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = {
            let (health, drain) = (health.clone(), drain.clone());
            async move {
                shutdown.await;
                tracing::info!("shutting down: draining in-flight calls");
                // Health watchers are told NOT_SERVING before their streams end.
                health.set_all(ServingStatus::NotServing);
                drain.start();
                let _ = draining_tx.send(());
            }
        };
        let limits = self.config.connection_limits();
        let catalog = catalog();
        let calls = self.metrics_listener.as_ref().map(|_| Arc::new(CallMetrics::new(catalog.methods())));
        let observers = Observers { metrics: calls.clone(), spans: self.spans.clone() };
        let load = Load::new(limits.max_calls, observers);
        let metrics = match (self.metrics_listener.as_ref(), calls) {
            (Some(listener), Some(calls)) => self.serve_metrics(listener, calls, Arc::clone(&load)),
            _ => None,
        };
        if let Some(listener) = self.health_listener.as_ref().and_then(|l| l.try_clone().ok()) {
            self.serve_health(listener, &health, &drain, limits);
        }
        let incoming = crate::tls::incoming(listener, self.tls.clone(), limits.handshake_timeout);
        let http = connections::http(self.config.grpc_web, &limits);
        // gRPC-Web, when asked for, in front of the call layer: it turns a
        // browser's call into a gRPC one, which the call layer then sees as
        // any other (auth, deadline, call line). Off, no call pays for it.
        let serve: Pin<Box<dyn Future<Output = ()> + Send>> = match self.config.grpc_web {
            true => {
                let shared = Arc::new(self.shared(&health, &drain, &catalog));
                let cors = crate::web::cors(&self.config.cors_allowed_origins);
                let service = move |remote| {
                    let web = tower::ServiceBuilder::new()
                        .option_layer(cors.clone())
                        .layer(tonic_web::GrpcWebLayer::new())
                        .service(Connection::new(Arc::clone(&shared), remote));
                    TowerToHyperService::new(web)
                };
                Box::pin(connections::serve(incoming, http, limits, load, service, signal))
            }
            false => {
                let shared = Arc::new(self.shared(&health, &drain, &catalog));
                let service = move |remote| Connection::new(Arc::clone(&shared), remote);
                Box::pin(connections::serve(incoming, http, limits, load, service, signal))
            }
        };
        tokio::pin!(serve);
        tokio::select! {
            () = &mut serve => {}
            _ = draining_rx => {
                let grace = self.config.shutdown_timeout;
                if tokio::time::timeout(grace, &mut serve).await.is_err() {
                    tracing::warn!(timeout = ?grace, "calls still running at the shutdown deadline were dropped");
                }
            }
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(spans) = self.spans.clone() {
            // It waits for the exporter to send what is queued.
            let _ = tokio::task::spawn_blocking(move || spans.shutdown()).await;
        }
        tracing::info!("stopped");
    }
}

/// What reflection describes: every served service (health and both
/// reflection versions too, so either client resolves every listed service)
/// and every file they use.
fn catalog() -> Arc<Catalog> {
    let services = SERVICES.iter().copied().chain([
        <HealthServer<health::Health> as NamedService>::NAME,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]);
    let sets = [
        dataport_proto::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    match Catalog::new(sets, services.map(str::to_owned)) {
        Ok(catalog) => Arc::new(catalog),
        Err(e) => {
            panic!("the descriptor sets are compiled in, so they must decode (see the catalog test): {e}")
        }
    }
}

/// Binds `addr`, the setting `key`, if set.
fn bind(key: &'static str, addr: Option<SocketAddr>) -> Result<Option<std::net::TcpListener>, StartError> {
    let Some(addr) = addr else { return Ok(None) };
    let bound = std::net::TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l));
    bound.map(Some).map_err(|source| StartError::Listen { key, addr, source })
}

/// Refuses to serve a non-loopback address without both TLS and auth,
/// unless `insecure` accepts that (with a warning).
fn protected(config: &Config) -> Result<(), StartError> {
    let missing = match (config.tls_cert.is_some(), config.auth_tokens.is_some()) {
        (true, true) => return Ok(()),
        (false, false) => "TLS and auth",
        (false, true) => "TLS",
        (true, false) => "auth",
    };
    let listen = config.listen;
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if config.insecure {
        tracing::warn!(%listen, missing, "serving a non-loopback address without TLS and auth (insecure = true)");
        return Ok(());
    }
    Err(StartError::Unprotected { listen, missing })
}

struct DisplayAddr(Option<SocketAddr>);

impl std::fmt::Display for DisplayAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reflection_catalog_builds() {
        super::catalog();
    }
}
