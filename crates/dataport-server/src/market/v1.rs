//! `dataport.market.v1.MarketService`.

use dataport_chart::{ChartOptions, Format, Panels};
use dataport_core::market::bars::{self, Bar, Date};
use dataport_core::market::{BollingerParams, Indicator, MacdParams, Period};
use dataport_proto::dataport::market::v1::{self as pb, market_service_server};
use dataport_store::bars::SymbolSummary;
use futures_util::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{ChartRequest, DateRange, Market, blocking, chunks, computed, status, stored_symbol};
use crate::Reply;
use crate::inflight::{Held, Inflight};
use crate::logging::Audit;
use crate::tonic_fixes::BodyEnd;

/// The most CSV bytes one import takes.
pub const MAX_IMPORT_CSV_BYTES: usize = 64 * 1024 * 1024;
/// The most bars one import takes (4,000 years of trading days).
pub const MAX_IMPORT_BARS: usize = 1_000_000;
/// The most indicators one ComputeIndicators call asks for.
pub const MAX_INDICATORS: usize = 64;

/// `dataport.market.v1.MarketService`.
#[derive(Clone, Debug)]
pub struct MarketService {
    market: Market,
}

/// `dataport.market.v1.MarketService` over `market`; ImportBars tells a
/// finished stream from a reset one by its [`BodyEnd`].
pub fn market_service(
    market: Market,
    max_message: usize,
) -> market_service_server::MarketServiceServer<MarketService> {
    market_service_server::MarketServiceServer::new(MarketService { market })
        .max_decoding_message_size(max_message)
}

type ChartStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::RenderChartResponse, Status>>>;

#[tonic::async_trait]
impl market_service_server::MarketService for MarketService {
    async fn import_bars(
        &self,
        request: Request<Streaming<pb::ImportBarsRequest>>,
    ) -> Reply<pb::ImportBarsResponse> {
        let end = request.extensions().get::<BodyEnd>().cloned();
        let audit = Audit::of(request.extensions());
        // The room the import's data takes, held until it is stored.
        let mut held = Held::default();
        let upload = Upload::receive(request.into_inner(), &self.market.inflight, &mut held).await?;
        audit.object(&upload.symbol);
        if end.is_some_and(|e| e.failed()) {
            return Err(Status::cancelled("the import stream was reset before it ended; nothing was stored"));
        }
        let market = self.market.clone();
        let response = blocking(move || {
            let symbol = upload.symbol.clone();
            let bars = upload.into_bars()?;
            let imported = market.store.import(&symbol, &bars).map_err(status)?;
            let summary = market.store.symbols().map_err(status)?.into_iter().find(|s| s.symbol == symbol);
            tracing::info!(symbol, imported, "imported bars");
            Ok(pb::ImportBarsResponse { symbol, imported: imported as u64, summary: summary.map(summary_pb) })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn list_symbols(
        &self,
        _request: Request<pb::ListSymbolsRequest>,
    ) -> Reply<pb::ListSymbolsResponse> {
        let market = self.market.clone();
        let symbols = blocking(move || market.store.symbols().map_err(status)).await?;
        Ok(Response::new(pb::ListSymbolsResponse { symbols: symbols.into_iter().map(summary_pb).collect() }))
    }

    async fn get_bars(&self, request: Request<pb::GetBarsRequest>) -> Reply<pb::GetBarsResponse> {
        let req = request.into_inner();
        let (symbol, range) = symbol_range(&req.symbol, &req.start_date, &req.end_date)?;
        let response = self.market.over(symbol, range, req.adjusted.unwrap_or(true), |s| {
            pb::GetBarsResponse { bars: s.bars[s.shown].iter().map(bar_pb).collect(), adjusted: s.adjusted }
        });
        Ok(Response::new(response.await?))
    }

    async fn compute_indicators(
        &self,
        request: Request<pb::ComputeIndicatorsRequest>,
    ) -> Reply<pb::ComputeIndicatorsResponse> {
        let req = request.into_inner();
        let (symbol, range) = symbol_range(&req.symbol, &req.start_date, &req.end_date)?;
        let indicators = indicators(&req.indicators)?;
        let response = self.market.over(symbol, range, req.adjusted.unwrap_or(true), move |s| {
            // Over the whole history, so the warm-up comes from bars before start.
            let columns = indicators
                .iter()
                .flat_map(|indicator| indicator.columns(s.bars))
                .map(|c| pb::Column { name: c.name, values: c.values[s.shown.clone()].to_vec() })
                .collect();
            let dates = s.bars[s.shown].iter().map(|b| b.date.to_string()).collect();
            pb::ComputeIndicatorsResponse { symbol: s.symbol, dates, columns, adjusted: s.adjusted }
        });
        Ok(Response::new(response.await?))
    }

    type RenderChartStream = ChartStream;

    async fn render_chart(&self, request: Request<pb::RenderChartRequest>) -> Reply<ChartStream> {
        let req = request.into_inner();
        let chart = ChartRequest {
            symbol: stored_symbol(&req.symbol)?,
            range: DateRange::open(&req.start_date, &req.end_date)?,
            macd: match &req.macd {
                Some(m) => macd_params("macd", m)?,
                None => MacdParams::default(),
            },
            adjusted: req.adjusted.unwrap_or(true),
            options: chart_options(&req)?,
        };
        let content_type = match chart.options.format {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        };
        let market = self.market.clone();
        let (image, adjusted) = computed(move || market.chart(chart)).await?;
        let replies: Vec<_> = chunks(image)
            .enumerate()
            .map(|(i, chunk)| {
                let first = i == 0;
                let content_type = if first { content_type.to_owned() } else { String::new() };
                Ok(pb::RenderChartResponse { chunk, content_type, adjusted: first && adjusted })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(replies)))
    }

    async fn delete_symbol(
        &self,
        request: Request<pb::DeleteSymbolRequest>,
    ) -> Reply<pb::DeleteSymbolResponse> {
        let audit = Audit::of(request.extensions());
        let symbol = stored_symbol(&request.into_inner().symbol)?;
        audit.object(&symbol);
        let market = self.market.clone();
        let response = blocking(move || {
            let deleted = market.store.delete(&symbol).map_err(status)?;
            if deleted == 0 {
                // Answered as a lookup of an unknown symbol is: naming those stored.
                market.bars(&symbol)?;
            }
            tracing::info!(symbol, deleted, "deleted a symbol's bars");
            Ok(pb::DeleteSymbolResponse { symbol, deleted })
        })
        .await?;
        Ok(Response::new(response))
    }
}

/// What an import stream carried, before parsing.
struct Upload {
    symbol: String,
    csv: Vec<u8>,
    bars: Vec<pb::Bar>,
}

impl Upload {
    /// Reads the whole stream, checking the symbol and the limits as it
    /// comes, `held` taking room for what it gathers.
    async fn receive(
        mut stream: Streaming<pb::ImportBarsRequest>,
        inflight: &Inflight,
        held: &mut Held,
    ) -> Result<Upload, Status> {
        let mut upload = Upload { symbol: String::new(), csv: Vec::new(), bars: Vec::new() };
        let mut first = true;
        while let Some(message) = stream.next().await {
            let message = message?;
            if first {
                upload.symbol = stored_symbol(&message.symbol)?;
                first = false;
            } else if !message.symbol.is_empty() && !message.symbol.eq_ignore_ascii_case(&upload.symbol) {
                return Err(Status::invalid_argument(format!(
                    "symbol {:?} differs from {:?} named in the first message: one stream imports one symbol",
                    message.symbol, upload.symbol
                )));
            }
            upload.csv.extend_from_slice(&message.csv);
            upload.bars.extend(message.bars);
            inflight
                .hold(held, upload.csv.len() + upload.bars.len() * std::mem::size_of::<pb::Bar>())
                .await?;
            if !upload.csv.is_empty() && !upload.bars.is_empty() {
                return Err(Status::invalid_argument(
                    "the stream sends both csv and bars: send one or the other",
                ));
            }
            if upload.csv.len() > MAX_IMPORT_CSV_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "csv is larger than the import limit of {MAX_IMPORT_CSV_BYTES} bytes: split it into several imports"
                )));
            }
            if upload.bars.len() > MAX_IMPORT_BARS {
                return Err(Status::resource_exhausted(format!(
                    "bars hold more than the import limit of {MAX_IMPORT_BARS}: split them into several imports"
                )));
            }
        }
        if first {
            return Err(Status::invalid_argument("the stream is empty: send a symbol and csv or bars"));
        }
        if upload.csv.is_empty() && upload.bars.is_empty() {
            return Err(Status::invalid_argument(format!(
                "no csv and no bars for {}: nothing to import",
                upload.symbol
            )));
        }
        Ok(upload)
    }

    /// Parses and checks every bar; sorted by date. Blocking (CPU).
    fn into_bars(self) -> Result<Vec<Bar>, Status> {
        if self.bars.is_empty() {
            let bars = bars::parse_csv(self.csv.as_slice())
                .map_err(|e| Status::invalid_argument(format!("csv: {e}")))?;
            if bars.is_empty() {
                return Err(Status::invalid_argument("csv has a header but no rows: nothing to import"));
            }
            return Ok(bars);
        }
        let mut out = Vec::with_capacity(self.bars.len());
        let mut seen = std::collections::HashMap::new();
        for (i, b) in self.bars.into_iter().enumerate() {
            let refuse = |reason: String| Status::invalid_argument(format!("bars[{i}]: {reason}"));
            let date: Date = b.date.parse().map_err(|e: bars::DateError| refuse(e.to_string()))?;
            let pb::Bar { date: _, open, high, low, close, volume, adj_close } = b;
            let bar = Bar { date, open, high, low, close, volume, adj_close };
            bars::check_bar(&bar).map_err(|reason| refuse(format!("({date}) {reason}")))?;
            if let Some(first) = seen.insert(date, i) {
                return Err(refuse(format!("date {date} already appears in bars[{first}]")));
            }
            out.push(bar);
        }
        out.sort_by_key(|b| b.date);
        Ok(out)
    }
}

/// A v1 request's symbol and date range.
fn symbol_range(symbol: &str, start: &str, end: &str) -> Result<(String, DateRange), Status> {
    Ok((stored_symbol(symbol)?, DateRange::open(start, end)?))
}

fn summary_pb(s: SymbolSummary) -> pb::SymbolSummary {
    pb::SymbolSummary {
        symbol: s.symbol,
        bars: s.bars,
        first_date: s.first.to_string(),
        last_date: s.last.to_string(),
        adjusted: s.adjusted,
    }
}

fn bar_pb(b: &Bar) -> pb::Bar {
    let Bar { date, open, high, low, close, volume, adj_close } = *b;
    pb::Bar { date: date.to_string(), open, high, low, close, volume, adj_close }
}

// TA-Lib's defaults, taken by a parameter left at 0.
const DEFAULT_MA_PERIOD: u32 = 30;
const DEFAULT_RSI_ATR_PERIOD: u32 = 14;
const DEFAULT_BANDS: (u32, f64) = (5, 2.0);

/// A period field: 0 takes `default`; `field` names it in the error.
fn period(field: &str, value: u32, default: u32) -> Result<Period, Status> {
    let bars = if value == 0 { default } else { value };
    Period::new(bars as usize).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

fn macd_params(field: &str, m: &pb::Macd) -> Result<MacdParams, Status> {
    let d = MacdParams::default();
    Ok(MacdParams {
        fast: period(&format!("{field}.fast_period"), m.fast_period, d.fast.get() as u32)?,
        slow: period(&format!("{field}.slow_period"), m.slow_period, d.slow.get() as u32)?,
        signal: period(&format!("{field}.signal_period"), m.signal_period, d.signal.get() as u32)?,
    })
}

/// The requested indicators, each checked; errors name `indicators[i]` and the field.
fn indicators(requested: &[pb::Indicator]) -> Result<Vec<Indicator>, Status> {
    use pb::indicator::Kind;
    if requested.is_empty() {
        return Err(Status::invalid_argument(
            "indicators is empty: ask for at least one of sma, ema, macd, rsi, bollinger, atr",
        ));
    }
    if requested.len() > MAX_INDICATORS {
        return Err(Status::invalid_argument(format!(
            "indicators holds {} entries; at most {MAX_INDICATORS} per call",
            requested.len()
        )));
    }
    requested
        .iter()
        .enumerate()
        .map(|(i, indicator)| {
            let at = |name: &str| format!("indicators[{i}].{name}");
            Ok(match &indicator.kind {
                None => {
                    return Err(Status::invalid_argument(format!(
                        "indicators[{i}] names no indicator: set one of sma, ema, macd, rsi, bollinger, atr"
                    )));
                }
                Some(Kind::Sma(p)) => Indicator::Sma(period(&at("sma.period"), p.period, DEFAULT_MA_PERIOD)?),
                Some(Kind::Ema(p)) => Indicator::Ema(period(&at("ema.period"), p.period, DEFAULT_MA_PERIOD)?),
                Some(Kind::Rsi(p)) => {
                    Indicator::Rsi(period(&at("rsi.period"), p.period, DEFAULT_RSI_ATR_PERIOD)?)
                }
                Some(Kind::Atr(p)) => {
                    Indicator::Atr(period(&at("atr.period"), p.period, DEFAULT_RSI_ATR_PERIOD)?)
                }
                Some(Kind::Macd(m)) => Indicator::Macd(macd_params(&at("macd"), m)?),
                Some(Kind::Bollinger(b)) => {
                    let deviations = |name: &str, value: f64| {
                        if !value.is_finite() || value < 0.0 {
                            return Err(Status::invalid_argument(format!(
                                "{} {value} must be a finite number of standard deviations, 0 or more",
                                at(&format!("bollinger.{name}"))
                            )));
                        }
                        Ok(if value == 0.0 { DEFAULT_BANDS.1 } else { value })
                    };
                    Indicator::Bollinger(BollingerParams {
                        period: period(&at("bollinger.period"), b.period, DEFAULT_BANDS.0)?,
                        dev_up: deviations("dev_up", b.dev_up)?,
                        dev_down: deviations("dev_down", b.dev_down)?,
                    })
                }
            })
        })
        .collect()
}

/// The image format, size and panels a RenderChart request asks for.
fn chart_options(req: &pb::RenderChartRequest) -> Result<ChartOptions, Status> {
    let defaults = ChartOptions::default();
    let format = match pb::Format::try_from(req.format) {
        Ok(pb::Format::Unspecified | pb::Format::Png) => Format::Png,
        Ok(pb::Format::Svg) => Format::Svg,
        Err(_) => {
            return Err(Status::invalid_argument(format!("format {} is not a known Format", req.format)));
        }
    };
    // The chart checks the size; 0 takes the default.
    let or_default = |value: u32, default: u32| if value == 0 { default } else { value };
    let panels = if req.panels.is_empty() {
        Panels::default()
    } else {
        let mut panels = Panels { price: false, volume: false, macd: false };
        for (i, &panel) in req.panels.iter().enumerate() {
            match pb::Panel::try_from(panel) {
                Ok(pb::Panel::Price) => panels.price = true,
                Ok(pb::Panel::Volume) => panels.volume = true,
                Ok(pb::Panel::Macd) => panels.macd = true,
                Ok(pb::Panel::Unspecified) | Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "panels[{i}] {panel} is not a panel: use PANEL_PRICE, PANEL_VOLUME or PANEL_MACD"
                    )));
                }
            }
        }
        panels
    };
    Ok(ChartOptions {
        width: or_default(req.width, defaults.width),
        height: or_default(req.height, defaults.height),
        format,
        panels,
        title: String::new(),
    })
}
