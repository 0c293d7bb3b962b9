//! Market analytics over the bar store: the seed `idc.Indicator` and
//! `idc.IndicatorGraph` (compat.rs), `dataport.market.v1.MarketService`
//! (v1.rs), and the bundled sample bars. Every service holds a [`Market`],
//! through which it resolves symbols and ranges, reads bars and draws charts.

pub mod compat;
pub mod v1;

use std::sync::Arc;

use dataport_chart::{ChartError, ChartOptions, MacdLines};
use dataport_core::market::bars::{self, Bar, Date};
use dataport_core::market::{MacdParams, macd};
use dataport_store::bars::{BarStore, BarStoreError};
use tonic::Status;

use crate::inflight::Inflight;

/// AAPL, GOOG, IBM and MSFT daily bars, 2000-2013 (see data/README.md).
const SAMPLE_BARS: &[u8] = include_bytes!("../../../../data/sample/bars.csv.gz");

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

/// What every market service shares: the bar store, the configured default
/// symbol, whether the seed services answer over adjusted prices, and the
/// room for request data (imports take theirs).
#[derive(Clone)]
pub struct Market {
    store: Arc<dyn BarStore>,
    default_symbol: Option<String>,
    compat_adjusted: bool,
    inflight: Inflight,
}

impl std::fmt::Debug for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Market")
            .field("default_symbol", &self.default_symbol)
            .field("compat_adjusted", &self.compat_adjusted)
            .finish_non_exhaustive()
    }
}

impl Market {
    pub fn new(
        store: Arc<dyn BarStore>,
        default_symbol: Option<String>,
        compat_adjusted: bool,
        inflight: Inflight,
    ) -> Self {
        Market { store, default_symbol, compat_adjusted, inflight }
    }

    /// The symbol a request means: the one it names (upper-cased), else the
    /// configured default, else the only stored one. Blocking (reads the store).
    fn symbol(&self, requested: &str) -> Result<String, Status> {
        if !requested.is_empty() {
            return stored_symbol(requested);
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
    fn bars(&self, symbol: &str) -> Result<Arc<[Bar]>, Status> {
        match self.store.bars(symbol).map_err(status)? {
            Some(bars) => Ok(bars),
            None => {
                let stored = self.stored_symbols()?.join(", ");
                Err(Status::not_found(format!("symbol {symbol:?} is not stored (stored: {stored})")))
            }
        }
    }

    /// Every stored bar of `symbol`, adjusted when `adjusted` asks for it and
    /// the bars carry adjustments; the flag says whether they were adjusted.
    fn series(&self, symbol: &str, adjusted: bool) -> Result<(Arc<[Bar]>, bool), Status> {
        let bars = self.bars(symbol)?;
        match adjusted.then(|| bars::adjusted(&bars)).flatten() {
            Some(adjusted) => Ok((adjusted.into(), true)),
            None => Ok((bars, false)),
        }
    }

    /// Runs `answer` off the reactor over every stored bar of `symbol`
    /// (adjusted as [`Self::series`] does) and the indices of those inside
    /// `range`.
    async fn over<T: Send + 'static>(
        &self,
        symbol: String,
        range: DateRange,
        adjusted: bool,
        answer: impl FnOnce(Series<'_>) -> T + Send + 'static,
    ) -> Result<T, Status> {
        let market = self.clone();
        computed(move || {
            let (bars, adjusted) = market.series(&symbol, adjusted)?;
            let shown = range.indices(&bars);
            Ok(answer(Series { symbol, bars: &bars, shown, adjusted }))
        })
        .await
    }

    /// The stored symbols, by name.
    fn stored_symbols(&self) -> Result<Vec<String>, Status> {
        Ok(self.store.symbols().map_err(status)?.into_iter().map(|s| s.symbol).collect())
    }
}

/// A symbol's bars as a call answers over them.
struct Series<'a> {
    symbol: String,
    /// Every stored bar, so indicators warm up on the bars before the range.
    bars: &'a [Bar],
    /// The indices of `bars` inside the range asked for.
    shown: std::ops::Range<usize>,
    /// Whether `bars` are adjusted prices.
    adjusted: bool,
}

/// A symbol named by a request, as it is stored: checked and upper-cased.
fn stored_symbol(requested: &str) -> Result<String, Status> {
    bars::symbol(requested).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The one mapping from a bar store error to the status a client sees.
fn status(e: BarStoreError) -> Status {
    match &e {
        BarStoreError::DiskFull { db } => {
            tracing::warn!(db, "disk full: bar write refused");
            return Status::resource_exhausted("the server's disk is full; no bars were changed");
        }
        BarStoreError::Database(dataport_store::postgres::DbError::Unreachable { .. }) => {
            tracing::warn!(error = %e, "bar store unreachable");
            return Status::unavailable(format!("{e}; try again"));
        }
        _ => {}
    }
    tracing::error!(error = %e, "bar store failed");
    Status::internal(format!("the bar store failed: {e}"))
}

/// Parses a request date; `field` names it in the error.
fn date(field: &str, value: &str) -> Result<Date, Status> {
    value.parse().map_err(|_| {
        Status::invalid_argument(format!("{field} {value:?} is not a date of the form YYYY-MM-DD"))
    })
}

/// An inclusive range of dates; an open end takes every stored bar that way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DateRange {
    start: Option<Date>,
    end: Option<Date>,
}

impl DateRange {
    /// Both dates required (the seed contracts).
    fn closed(start: &str, end: &str) -> Result<DateRange, Status> {
        DateRange::checked(Some(date("start_date", start)?), Some(date("end_date", end)?))
    }

    /// An empty date leaves that end open (dataport.market.v1).
    fn open(start: &str, end: &str) -> Result<DateRange, Status> {
        let optional = |field, value: &str| match value {
            "" => Ok(None),
            value => date(field, value).map(Some),
        };
        DateRange::checked(optional("start_date", start)?, optional("end_date", end)?)
    }

    fn checked(start: Option<Date>, end: Option<Date>) -> Result<DateRange, Status> {
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(Status::invalid_argument(format!("start_date {s} is after end_date {e}")));
        }
        Ok(DateRange { start, end })
    }

    /// The indices of `bars` (sorted by date) inside the range.
    fn indices(&self, bars: &[Bar]) -> std::ops::Range<usize> {
        let from = bars.partition_point(|b| self.start.is_some_and(|s| b.date < s));
        let to = bars.partition_point(|b| self.end.is_none_or(|e| b.date <= e));
        from..to.max(from)
    }
}

/// The most bytes one chart response message carries.
const CHART_CHUNK: usize = 64 * 1024;

/// A chart request after validation.
struct ChartRequest {
    symbol: String,
    range: DateRange,
    macd: MacdParams,
    adjusted: bool,
    options: ChartOptions,
}

impl Market {
    /// Draws the chart of `req.range`, with MACD over the whole history;
    /// answers the image and whether its prices are adjusted. Blocking
    /// (reads the store and renders).
    fn chart(&self, req: ChartRequest) -> Result<(Vec<u8>, bool), Status> {
        let (bars, adjusted) = self.series(&req.symbol, req.adjusted)?;
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let m = macd(&closes, req.macd);
        let shown = req.range.indices(&bars);
        let lines = MacdLines {
            macd: &m.macd[shown.clone()],
            signal: &m.signal[shown.clone()],
            hist: &m.hist[shown.clone()],
        };
        let mut options = req.options;
        if options.title.is_empty() {
            let macd = options.panels.macd.then_some(req.macd);
            options.title = chart_title(&req.symbol, &bars[shown.clone()], req.range, macd, adjusted);
        }
        let image = dataport_chart::render(&bars[shown], lines, &options).map_err(|e| match e {
            ChartError::Drawing(_) => Status::internal(e.to_string()),
            ChartError::Size { .. } | ChartError::NoPanel | ChartError::Length { .. } => {
                Status::invalid_argument(e.to_string())
            }
        })?;
        Ok((image, adjusted))
    }
}

/// "GOOG daily, adjusted, 2012-01-03 to 2012-12-31, MACD(12, 26, 9)": which
/// prices, the dates of the bars shown (else of the range asked for), and
/// the MACD periods when the MACD panel is drawn (`macd` is none otherwise),
/// so the title names only what the picture shows.
fn chart_title(
    symbol: &str,
    shown: &[Bar],
    range: DateRange,
    macd: Option<MacdParams>,
    adjusted: bool,
) -> String {
    let or_open = |d: Option<Date>| d.map_or_else(|| "…".to_owned(), |d| d.to_string());
    let (from, to) = match shown {
        [first, .., last] => (first.date.to_string(), last.date.to_string()),
        [only] => (only.date.to_string(), only.date.to_string()),
        [] => (or_open(range.start), or_open(range.end)),
    };
    let prices = if adjusted { "adjusted" } else { "as traded" };
    match macd {
        Some(MacdParams { fast, slow, signal }) => {
            format!("{symbol} daily, {prices}, {from} to {to}, MACD({fast}, {slow}, {signal})")
        }
        None => format!("{symbol} daily, {prices}, {from} to {to}"),
    }
}

/// Splits an image into response-sized pieces.
fn chunks(image: Vec<u8>) -> impl Iterator<Item = Vec<u8>> {
    let count = image.len().div_ceil(CHART_CHUNK).max(1);
    (0..count).map(move |i| image[i * CHART_CHUNK..((i + 1) * CHART_CHUNK).min(image.len())].to_vec())
}

/// Runs blocking store or drawing work off the reactor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    crate::off_reactor(work).await?
}

/// Runs CPU-bound market work (indicators, charts, over bars the cache
/// mostly holds) on the compute pool.
async fn computed<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    crate::compute::compute(work).await?
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
        assert!(DateRange::closed("2020-01-01", "2020-01-01").is_ok());
        let e = DateRange::closed("2020-13-01", "2020-01-01").unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (tonic::Code::InvalidArgument, "start_date \"2020-13-01\" is not a date of the form YYYY-MM-DD")
        );
        let e = DateRange::closed("2020-01-01", "").unwrap_err();
        assert!(e.message().starts_with("end_date \"\""), "{}", e.message());
        let e = DateRange::closed("2020-02-01", "2020-01-01").unwrap_err();
        assert_eq!(e.message(), "start_date 2020-02-01 is after end_date 2020-01-01");
        let e = DateRange::open("2020-02-01", "2020-01-01").unwrap_err();
        assert_eq!(e.message(), "start_date 2020-02-01 is after end_date 2020-01-01");
        let e = DateRange::open("", "2020-1-1").unwrap_err();
        assert!(e.message().starts_with("end_date \"2020-1-1\""), "{}", e.message());
    }

    #[test]
    fn open_ends_take_every_bar_that_way() {
        let day = |d: u8| Bar::flat(Date::new(2024, 1, d).unwrap(), 1.0);
        let bars = [day(2), day(3), day(5), day(8)];
        let indices = |s: &str, e: &str| DateRange::open(s, e).unwrap().indices(&bars);
        assert_eq!(indices("", ""), 0..4);
        assert_eq!(indices("2024-01-03", ""), 1..4);
        assert_eq!(indices("", "2024-01-04"), 0..2);
        assert_eq!(indices("2024-01-04", "2024-01-04"), 2..2);
        assert_eq!(indices("2024-01-09", ""), 4..4);
        assert_eq!(DateRange::closed("2024-01-03", "2024-01-05").unwrap().indices(&bars), 1..3);
    }

    #[test]
    fn chart_titles_say_which_prices_and_name_macd_only_when_its_panel_is_drawn() {
        let by = bars::parse_csv_by_symbol(flate2::read::GzDecoder::new(SAMPLE_BARS)).unwrap();
        let range = DateRange::open("2012-01-01", "2012-12-31").unwrap();
        let shown = &by["AAPL"][range.indices(&by["AAPL"])];
        let params = MacdParams::new(12, 26, 9).unwrap();
        assert_eq!(
            chart_title("AAPL", shown, range, Some(params), true),
            "AAPL daily, adjusted, 2012-01-03 to 2012-12-31, MACD(12, 26, 9)"
        );
        assert_eq!(
            chart_title("AAPL", shown, range, None, false),
            "AAPL daily, as traded, 2012-01-03 to 2012-12-31"
        );
        assert_eq!(
            chart_title("AAPL", &shown[..1], range, None, true),
            "AAPL daily, adjusted, 2012-01-03 to 2012-01-03"
        );
        // No bars in the range: the dates asked for, an open end as "…".
        let open = DateRange::open("2014-01-01", "").unwrap();
        assert_eq!(chart_title("AAPL", &[], open, None, false), "AAPL daily, as traded, 2014-01-01 to …");
        let short = MacdParams::new(5, 10, 3).unwrap();
        assert_eq!(
            chart_title("AAPL", &[], open, Some(short), false),
            "AAPL daily, as traded, 2014-01-01 to …, MACD(5, 10, 3)"
        );
    }

    #[test]
    fn images_split_into_chunks_of_at_most_64_kib() {
        let sizes = |n: usize| chunks(vec![7; n]).map(|c| c.len()).collect::<Vec<_>>();
        assert_eq!(sizes(0), [0]);
        assert_eq!(sizes(10), [10]);
        assert_eq!(sizes(CHART_CHUNK), [CHART_CHUNK]);
        assert_eq!(sizes(2 * CHART_CHUNK + 1), [CHART_CHUNK, CHART_CHUNK, 1]);
    }
}
