//! Metrics in Prometheus' text format, on `metrics_listen` at `/metrics`:
//! the calls ([`calls`], under go-grpc-middleware's names), what the areas
//! hold ([`Areas`]: stored files and bytes, uploads, bar symbols and the
//! cache, Detect points, positions and watchers, connections and calls
//! shed) and the process ([`process`]). Everything but the call counters
//! is read at the scrape, so only a call pays, and only a few atomic adds.

mod calls;
mod process;

use std::convert::Infallible;
use std::sync::Arc;

use dataport_store::bars::{BarStore, CachedBarStore};
use dataport_store::files::{FileStore as _, Files};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use calls::{CallMetrics, Handled, MethodId};

use crate::connections::Load;
use crate::inflight::Inflight;
use crate::outliers::Judged;
use crate::position::Hub;

/// Everything `/metrics` shows.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(calls: Arc<CallMetrics>, areas: Areas) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(calls));
        registry.register_collector(Box::new(areas));
        registry.register_collector(Box::new(process::Process));
        Metrics { registry }
    }

    /// The text a scrape gets. It reads the stores: call it off the runtime.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; a collector's error ends the
        // text where it failed, and the scrape shows what came before.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// Serves `/metrics` over HTTP/1.1 on `listener`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: the next try may do better.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = Arc::clone(&self);
            let service = hyper::service::service_fn(move |request| answer(Arc::clone(&metrics), request));
            tokio::spawn(async move {
                // The timer bounds how long a request's head may take (30 s).
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new());
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }
}

async fn answer<B>(
    metrics: Arc<Metrics>,
    request: http::Request<B>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let response = |status: http::StatusCode, content_type: &'static str, body: String| {
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        response
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    if request.uri().path() != "/metrics" {
        return Ok(response(
            http::StatusCode::NOT_FOUND,
            PLAIN,
            "not found: the metrics are at /metrics\n".into(),
        ));
    }
    if !matches!(*request.method(), http::Method::GET | http::Method::HEAD) {
        return Ok(response(http::StatusCode::METHOD_NOT_ALLOWED, PLAIN, "GET /metrics\n".into()));
    }
    Ok(match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => {
            response(http::StatusCode::OK, prometheus_client::encoding::prometheus_text::CONTENT_TYPE, text)
        }
        Err(_) => {
            response(http::StatusCode::INTERNAL_SERVER_ERROR, PLAIN, "the metrics could not be read\n".into())
        }
    })
}

/// What the areas hold, read at each scrape.
#[derive(Debug)]
pub struct Areas {
    pub files: Files,
    pub bars: Arc<CachedBarStore<Box<dyn BarStore>>>,
    pub hub: Arc<Hub>,
    pub judged: Judged,
    pub inflight: Inflight,
    pub load: Arc<Load>,
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

impl Collector for Areas {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        match self.files.usage() {
            Ok(usage) => {
                gauge(e, "dataport_files_stored", "Files stored.", usage.files)?;
                gauge(e, "dataport_files_stored_bytes", "Bytes of the files stored.", usage.bytes)?;
                gauge(e, "dataport_uploads_in_progress", "Uploads being written now.", usage.uploading)?;
                let help = "Resumable uploads not finished: being written, or waiting to be resumed.";
                gauge(e, "dataport_resumable_uploads_pending", help, usage.resumable)?;
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot read the file store's usage"),
        }
        match self.bars.symbols() {
            Ok(symbols) => {
                gauge(e, "dataport_bar_symbols", "Symbols with bars stored.", symbols.len() as u64)?
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot count the bar store's symbols"),
        }
        let cache = self.bars.stats();
        counter(e, "dataport_bar_cache_hits", "Bar reads answered from memory.", cache.hits)?;
        counter(e, "dataport_bar_cache_misses", "Bar reads that went to the store.", cache.misses)?;
        let reads = cache.hits + cache.misses;
        let ratio = if reads == 0 { 0.0 } else { cache.hits as f64 / reads as f64 };
        let hit_ratio = ConstGauge::new(ratio);
        hit_ratio.encode(e.encode_descriptor(
            "dataport_bar_cache_hit_ratio",
            "Bar reads answered from memory, as a share of all since the start.",
            None,
            hit_ratio.metric_type(),
        )?)?;
        gauge(e, "dataport_bar_cache_bars", "Bars held in memory.", cache.bars)?;
        counter(
            e,
            "dataport_detect_points_judged",
            "Points Detect and DetectStream have judged.",
            self.judged.get(),
        )?;
        let (entities, watchers) = self.hub.counts();
        gauge(e, "dataport_position_entities", "Entities with a position.", entities as u64)?;
        gauge(e, "dataport_position_watchers", "Position watchers (streams) open.", watchers as u64)?;
        let load = self.load.counts();
        gauge(e, "dataport_connections_open", "Client connections open.", load.connections)?;
        gauge(e, "dataport_calls_in_flight", "Calls under way.", load.calls)?;
        counter(
            e,
            "dataport_calls_shed",
            "Calls refused UNAVAILABLE at once because max_calls were under way.",
            load.shed,
        )?;
        let help = "Request data held now across calls (Detect batches, imports, upload pieces).";
        gauge(e, "dataport_inflight_bytes", help, self.inflight.held() as u64)?;
        let help = "The most request data held at once (max_inflight_bytes).";
        gauge(e, "dataport_inflight_bytes_max", help, self.inflight.max() as u64)?;
        let help = "Connections closed at once because max_connections were open.";
        counter(e, "dataport_connections_refused", help, load.refused)?;
        Ok(())
    }
}
