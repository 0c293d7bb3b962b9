//! Market analytics: `idc.Indicator` (compat) over the bar store, and the
//! bundled sample bars.

use std::sync::Arc;

use dataport_core::market::bars::{self, Bar, Date};
use dataport_core::market::{MacdParams, macd};
use dataport_proto::idc;
use dataport_store::bars::{BarStore, BarStoreError};
use tonic::{Request, Response, Status};

/// AAPL, GOOG, IBM and MSFT daily bars, 2000-2013 (see data/README.md).
const SAMPLE_BARS: &[u8] = include_bytes!("../../../data/sample/bars.csv.gz");

/// Loads the sample bars into `store`; returns (symbols, bars) loaded.
pub fn load_sample(store: &dyn BarStore) -> Result<(usize, usize), String> {
    let by_symbol = bars::parse_csv_by_symbol(flate2::read::GzDecoder::new(SAMPLE_BARS))
        .map_err(|e| format!("the bundled sample bars do not parse: {e}"))?;
    let mut total = 0;
    for (symbol, bars) in &by_symbol {
        total += store.import(symbol, bars).map_err(|e| e.to_string())?;
    }
    Ok((by_symbol.len(), total))
}

/// What every market service shares.
#[derive(Clone)]
pub struct Market {
    store: Arc<dyn BarStore>,
    default_symbol: Option<String>,
}

impl std::fmt::Debug for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Market").field("default_symbol", &self.default_symbol).finish_non_exhaustive()
    }
}

impl Market {
    pub fn new(store: Arc<dyn BarStore>, default_symbol: Option<String>) -> Self {
        Market { store, default_symbol }
    }

    /// The symbol a request means: the one it names, else the configured
    /// default, else the only stored one. Blocking (reads the store).
    fn symbol(&self, requested: &str) -> Result<String, Status> {
        if !requested.is_empty() {
            bars::validate_symbol(requested).map_err(|e| Status::invalid_argument(e.to_string()))?;
            return Ok(requested.to_owned());
        }
        if let Some(symbol) = &self.default_symbol {
            return Ok(symbol.clone());
        }
        let stored = self.stored_symbols()?;
        match stored.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Status::failed_precondition("symbol is empty and the bar store holds no symbols")),
            many => Err(Status::invalid_argument(format!(
                "symbol is empty and there is no default symbol; choose one of: {}",
                many.join(", ")
            ))),
        }
    }

    /// Every stored bar of `symbol`, or NOT_FOUND naming the stored symbols.
    fn bars(&self, symbol: &str) -> Result<Vec<Bar>, Status> {
        match self.store.bars(symbol).map_err(internal)? {
            Some(bars) => Ok(bars),
            None => {
                let stored = self.stored_symbols()?.join(", ");
                Err(Status::not_found(format!("symbol {symbol:?} is not stored (stored: {stored})")))
            }
        }
    }

    /// The stored symbols, by name.
    fn stored_symbols(&self) -> Result<Vec<String>, Status> {
        Ok(self.store.symbols().map_err(internal)?.into_iter().map(|s| s.symbol).collect())
    }
}

fn internal(e: BarStoreError) -> Status {
    tracing::error!(error = %e, "bar store failed");
    Status::internal(format!("the bar store failed: {e}"))
}

/// Parses a request date; `field` names it in the error.
fn date(field: &str, value: &str) -> Result<Date, Status> {
    value.parse().map_err(|_| {
        Status::invalid_argument(format!("{field} {value:?} is not a date of the form YYYY-MM-DD"))
    })
}

/// Checks a start/end pair.
fn range(start: &str, end: &str) -> Result<(Date, Date), Status> {
    let (start_date, end_date) = (date("start_date", start)?, date("end_date", end)?);
    if start_date > end_date {
        return Err(Status::invalid_argument(format!("start_date {start} is after end_date {end}")));
    }
    Ok((start_date, end_date))
}

/// Runs blocking store work off the reactor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
}

// ---- idc.Indicator (compat) ----

pub fn indicator_compat(market: Market) -> idc::indicator_server::IndicatorServer<Market> {
    idc::indicator_server::IndicatorServer::new(market)
}

#[tonic::async_trait]
impl idc::indicator_server::Indicator for Market {
    async fn get_macd(&self, request: Request<idc::MacdRequest>) -> Result<Response<idc::MacdReply>, Status> {
        let req = request.into_inner();
        let (start, end) = range(&req.start_date, &req.end_date)?;
        let market = self.clone();
        let rows = blocking(move || {
            let symbol = market.symbol(&req.symbol)?;
            let bars = market.bars(&symbol)?;
            // Over the whole history, so the warm-up comes from bars before start.
            let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
            let m = macd(&closes, MacdParams::default());
            let rows = bars
                .iter()
                .enumerate()
                .filter(|(i, b)| (start..=end).contains(&b.date) && !m.macd[*i].is_nan())
                .map(|(i, b)| idc::MacdData {
                    date: b.date.to_string(),
                    open: b.open as f32,
                    close: b.close as f32,
                    high: b.high as f32,
                    low: b.low as f32,
                    macd: m.macd[i] as f32,
                    signal: m.signal[i] as f32,
                    histogram: m.hist[i] as f32,
                })
                .collect();
            Ok(rows)
        })
        .await?;
        Ok(Response::new(idc::MacdReply { macd: rows }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sample_holds_four_symbols() {
        let by = bars::parse_csv_by_symbol(flate2::read::GzDecoder::new(SAMPLE_BARS)).unwrap();
        let counts: Vec<(&str, usize)> = by.iter().map(|(s, b)| (s.as_str(), b.len())).collect();
        assert_eq!(counts, [("AAPL", 3270), ("GOOG", 2148), ("IBM", 3270), ("MSFT", 3270)]);
    }

    #[test]
    fn ranges_name_the_bad_field() {
        assert!(range("2020-01-01", "2020-01-01").is_ok());
        let e = range("2020-13-01", "2020-01-01").unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::InvalidArgument, "start_date \"2020-13-01\" is not a date of the form YYYY-MM-DD")
        );
        let e = range("2020-01-01", "").unwrap_err();
        assert!(e.message().starts_with("end_date \"\""), "{}", e.message());
        let e = range("2020-02-01", "2020-01-01").unwrap_err();
        assert_eq!(e.message(), "start_date 2020-02-01 is after end_date 2020-01-01");
    }
}
