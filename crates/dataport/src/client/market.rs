//! `dataport macd`, `dataport bars`, `dataport indicators` and `dataport chart`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::client::Channel;
use anyhow::{Context, bail};
use dataport_proto::dataport::market::v1 as pb;
use dataport_proto::dataport::market::v1::market_service_client::MarketServiceClient;

use super::rows::{Cell, Format, Printer, print_rows};

#[derive(Debug, clap::Args)]
pub struct MacdArgs {
    #[command(flatten)]
    query: Query,
}

pub async fn macd(channel: Channel, args: MacdArgs) -> anyhow::Result<()> {
    let Query { symbol, range, format } = args.query;
    let macd = pb::Indicator { kind: Some(pb::indicator::Kind::Macd(pb::Macd::default())) };
    let (bars, reply) = bars_and_indicators(channel, symbol, &range, vec![macd]).await?;
    let header = ["date", "open", "high", "low", "close", "macd", "signal", "histogram"];
    let rows = bars.iter().enumerate().map(|(i, b)| {
        let prices = [b.open, b.high, b.low, b.close].map(|v| Cell::Number(v, 2));
        let lines =
            reply.columns.iter().map(|c| c.values.get(i).map_or(Cell::Empty, |&v| Cell::Number(v, 4)));
        std::iter::once(Cell::Text(b.date.clone())).chain(prices).chain(lines).collect()
    });
    print_rows(format, &header, rows)
}

/// The bars of a range and indicators over them, asked for side by side;
/// notes on stderr when the range runs past the stored bars.
async fn bars_and_indicators(
    channel: Channel,
    symbol: String,
    range: &Range,
    indicators: Vec<pb::Indicator>,
) -> anyhow::Result<(Vec<pb::Bar>, pb::ComputeIndicatorsResponse)> {
    let mut client = MarketServiceClient::new(channel);
    let bars = pb::GetBarsRequest {
        symbol: symbol.clone(),
        start_date: range.start.clone(),
        end_date: range.end.clone(),
        adjusted: range.adjusted(),
    };
    let request = pb::ComputeIndicatorsRequest {
        symbol: symbol.clone(),
        start_date: range.start.clone(),
        end_date: range.end.clone(),
        indicators,
        adjusted: range.adjusted(),
    };
    let (mut bars_client, mut indicators_client) = (client.clone(), client.clone());
    let (bars, reply) =
        tokio::try_join!(bars_client.get_bars(bars), indicators_client.compute_indicators(request))?;
    let (bars, reply) = (bars.into_inner().bars, reply.into_inner());
    // Rows pair a bar with the indicators at its index: an import between
    // the two calls could shift one against the other.
    if !bars.iter().map(|b| &b.date).eq(&reply.dates) {
        anyhow::bail!("the bars of {symbol} changed between two calls (an import?); run the command again");
    }
    range.note_past_end(&mut client, &symbol).await?;
    Ok((bars, reply))
}

#[derive(Debug, clap::Subcommand)]
pub enum BarsCommand {
    /// Import a CSV file of daily bars (date, open, high, low, close and
    /// optionally volume and adj_close, separated by commas, semicolons or
    /// tabs); `-` reads stdin. All or nothing: a bad row refuses the file.
    /// Dates already stored are replaced.
    Import {
        /// The symbol to store the bars under: 1 to 32 letters, digits, '.',
        /// '-' or '_', stored upper-case.
        #[arg(long)]
        symbol: String,
        file: PathBuf,
    },
    /// List the stored symbols with their bar counts, date spans and whether
    /// they carry adjusted closes.
    List,
    /// Print the stored bars of a symbol.
    Get(Query),
    /// Remove every stored bar of each symbol named.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        symbols: Vec<String>,
    },
}

/// A symbol, a date range and how to print the rows.
#[derive(Debug, clap::Args)]
pub struct Query {
    /// The symbol, as `dataport bars list` shows it (any case).
    #[arg(long)]
    symbol: String,
    #[command(flatten)]
    range: Range,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// A date range, either end of which may be left open, and which prices.
#[derive(Debug, clap::Args)]
pub struct Range {
    /// The first day, YYYY-MM-DD (default: the first stored).
    #[arg(long, default_value = "", hide_default_value = true)]
    start: String,
    /// The last day, YYYY-MM-DD (default: the last stored).
    #[arg(long, default_value = "", hide_default_value = true)]
    end: String,
    /// Prices as traded. By default prices are adjusted for splits and
    /// dividends where the stored bars carry an adjusted close (as the
    /// bundled sample does), so a split shows no crash.
    #[arg(long)]
    raw: bool,
}

impl Range {
    fn adjusted(&self) -> Option<bool> {
        Some(!self.raw)
    }

    /// Says on stderr when the range asked for runs past the symbol's last
    /// stored bar, which a range answer alone does not tell from a weekend.
    async fn note_past_end(
        &self,
        client: &mut MarketServiceClient<Channel>,
        symbol: &str,
    ) -> anyhow::Result<()> {
        let asked = self.end.as_str().max(self.start.as_str());
        if asked.is_empty() {
            return Ok(());
        }
        let symbols = client.list_symbols(pb::ListSymbolsRequest {}).await?.into_inner().symbols;
        if let Some(stored) = symbols.iter().find(|s| s.symbol.eq_ignore_ascii_case(symbol))
            && asked > stored.last_date.as_str()
        {
            eprintln!(
                "note: the last stored bar of {} is {}; the range asked for runs to {asked}",
                stored.symbol, stored.last_date
            );
        }
        Ok(())
    }
}

/// CSV bytes per import message: well under the 4 MiB message limit.
const IMPORT_CHUNK: usize = 256 * 1024;

pub async fn bars(channel: Channel, command: BarsCommand) -> anyhow::Result<()> {
    let mut client = MarketServiceClient::new(channel);
    match command {
        BarsCommand::Import { symbol, file } => {
            let csv = read_input(&file)?;
            let messages: Vec<pb::ImportBarsRequest> = csv
                .chunks(IMPORT_CHUNK)
                .enumerate()
                .map(|(i, piece)| pb::ImportBarsRequest {
                    symbol: if i == 0 { symbol.clone() } else { String::new() },
                    csv: piece.to_vec(),
                    bars: Vec::new(),
                })
                .collect();
            let reply = client.import_bars(tokio_stream::iter(messages)).await?.into_inner();
            match reply.summary {
                Some(s) => println!(
                    "imported {} bars of {}; it now holds {} bars, {} to {}",
                    reply.imported, reply.symbol, s.bars, s.first_date, s.last_date
                ),
                None => println!("imported {} bars of {}", reply.imported, reply.symbol),
            }
        }
        BarsCommand::List => {
            let symbols = client.list_symbols(pb::ListSymbolsRequest {}).await?.into_inner().symbols;
            let rows = symbols.into_iter().map(|s| {
                vec![
                    Cell::Text(s.symbol),
                    Cell::Integer(s.bars),
                    Cell::Text(s.first_date),
                    Cell::Text(s.last_date),
                    Cell::Text(if s.adjusted { "yes" } else { "no" }.to_owned()),
                ]
            });
            print_rows(Format::Table, &["symbol", "bars", "first", "last", "adjusted"], rows)?;
        }
        BarsCommand::Get(Query { symbol, range, format }) => {
            let request = pb::GetBarsRequest {
                symbol: symbol.clone(),
                start_date: range.start.clone(),
                end_date: range.end.clone(),
                adjusted: range.adjusted(),
            };
            let bars = client.get_bars(request).await?.into_inner().bars;
            range.note_past_end(&mut client, &symbol).await?;
            // As traded, the adjusted close is the one number not shown.
            let header: &[&str] = match range.raw {
                true => &["date", "open", "high", "low", "close", "volume", "adj_close"],
                false => &["date", "open", "high", "low", "close", "volume"],
            };
            let rows = bars.into_iter().map(|b| {
                let prices = [b.open, b.high, b.low, b.close].map(|v| Cell::Number(v, 2));
                let optional =
                    |v: Option<f64>, decimals| v.map_or(Cell::Empty, |v| Cell::Number(v, decimals));
                let adj_close = range.raw.then(|| optional(b.adj_close, 2));
                std::iter::once(Cell::Text(b.date))
                    .chain(prices)
                    .chain([optional(b.volume, 0)])
                    .chain(adj_close)
                    .collect()
            });
            print_rows(format, header, rows)?;
        }
        BarsCommand::Rm { symbols } => {
            for symbol in symbols {
                let reply = client.delete_symbol(pb::DeleteSymbolRequest { symbol }).await?.into_inner();
                println!("removed {} ({} bars)", reply.symbol, reply.deleted);
            }
        }
    }
    Ok(())
}

fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).context("cannot read stdin")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    Ok(bytes)
}

#[derive(Debug, clap::Args)]
pub struct IndicatorsArgs {
    #[command(flatten)]
    query: Query,
    /// Indicators, each NAME or NAME:PARAMS: sma:PERIOD, ema:PERIOD,
    /// macd:FAST,SLOW,SIGNAL, rsi:PERIOD, bollinger:PERIOD,DEV_UP,DEV_DOWN,
    /// atr:PERIOD. Left out, a parameter takes TA-Lib's default (sma and ema
    /// 30; macd 12,26,9; rsi and atr 14; bollinger 5,2,2).
    #[arg(required = true, value_parser = parse_indicator)]
    indicators: Vec<pb::Indicator>,
    /// Print every column in a table, however wide (by default the columns
    /// that do not fit 120 characters are left out, with a note).
    #[arg(long)]
    wide: bool,
}

/// Parses `name[:p1,p2,...]` into an indicator request.
fn parse_indicator(spec: &str) -> Result<pb::Indicator, String> {
    use pb::indicator::Kind;
    let (name, params) = spec.split_once(':').unwrap_or((spec, ""));
    let numbers: Vec<&str> = if params.is_empty() { Vec::new() } else { params.split(',').collect() };
    let at_most = |n: usize, what: &str| {
        if numbers.len() > n {
            return Err(format!("{name} takes at most {n} parameters ({what}), got {params:?}"));
        }
        Ok(())
    };
    // On the wire 0 means "TA-Lib's default": a 0 given here would be
    // silently replaced, so it is refused, and leaving the value out asks
    // for the default.
    let period = |i: usize| -> Result<u32, String> {
        numbers.get(i).map_or(Ok(0), |p| match p.trim().parse() {
            Ok(0) => Err(format!("{spec:?}: a period is 1 or more; leave it out for TA-Lib's default")),
            Ok(period) => Ok(period),
            Err(_) => Err(format!("{p:?} in {spec:?} is not a period")),
        })
    };
    let deviations = |i: usize| -> Result<f64, String> {
        numbers.get(i).map_or(Ok(0.0), |p| match p.trim().parse::<f64>() {
            Ok(d) if d > 0.0 && d.is_finite() => Ok(d),
            Ok(_) => Err(format!(
                "{spec:?}: a number of deviations is more than 0; leave it out for TA-Lib's default"
            )),
            Err(_) => Err(format!("{p:?} in {spec:?} is not a number of deviations")),
        })
    };
    let kind = match name.to_ascii_lowercase().as_str() {
        "sma" => at_most(1, "period").and_then(|()| Ok(Kind::Sma(pb::Sma { period: period(0)? })))?,
        "ema" => at_most(1, "period").and_then(|()| Ok(Kind::Ema(pb::Ema { period: period(0)? })))?,
        "rsi" => at_most(1, "period").and_then(|()| Ok(Kind::Rsi(pb::Rsi { period: period(0)? })))?,
        "atr" => at_most(1, "period").and_then(|()| Ok(Kind::Atr(pb::Atr { period: period(0)? })))?,
        "macd" => at_most(3, "fast, slow, signal").and_then(|()| {
            Ok(Kind::Macd(pb::Macd {
                fast_period: period(0)?,
                slow_period: period(1)?,
                signal_period: period(2)?,
            }))
        })?,
        "bollinger" | "bbands" => at_most(3, "period, dev_up, dev_down").and_then(|()| {
            Ok(Kind::Bollinger(pb::Bollinger {
                period: period(0)?,
                dev_up: deviations(1)?,
                dev_down: deviations(2)?,
            }))
        })?,
        _ => return Err(format!("unknown indicator {name:?}: use sma, ema, macd, rsi, bollinger or atr")),
    };
    Ok(pb::Indicator { kind: Some(kind) })
}

pub async fn indicators(channel: Channel, args: IndicatorsArgs) -> anyhow::Result<()> {
    let Query { symbol, range, format } = args.query;
    let (bars, reply) = bars_and_indicators(channel, symbol, &range, args.indicators).await?;
    let header: Vec<&str> =
        ["date", "close"].into_iter().chain(reply.columns.iter().map(|c| c.name.as_str())).collect();
    let rows = bars.iter().enumerate().map(|(i, bar)| {
        [Cell::Text(bar.date.clone()), Cell::Number(bar.close, 2)]
            .into_iter()
            .chain(reply.columns.iter().map(|c| c.values.get(i).map_or(Cell::Empty, |&v| Cell::Number(v, 4))))
            .collect()
    });
    let width = if args.wide { None } else { Some(TABLE_WIDTH) };
    let printer = Printer::new(std::io::BufWriter::new(std::io::stdout().lock()), format, &header).fit(width);
    let left_out = printer.print(rows)?;
    if !left_out.is_empty() {
        eprintln!(
            "note: {} left out to fit {TABLE_WIDTH} characters: --wide shows every column (so do --format csv and json)",
            left_out.join(", ")
        );
    }
    Ok(())
}

/// The widest line an indicators table prints unless told `--wide`.
const TABLE_WIDTH: usize = 120;

#[derive(Debug, clap::Args)]
pub struct ChartArgs {
    /// The symbol, as `dataport bars list` shows it.
    #[arg(long)]
    symbol: String,
    #[command(flatten)]
    range: Range,
    /// Where to write the image; `-` writes to stdout.
    #[arg(short, long)]
    output: PathBuf,
    /// png or svg (default: from the output's extension, .png or .svg;
    /// png when it has none).
    #[arg(long, value_enum)]
    format: Option<ImageFormat>,
    /// Pixels (default 1000).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    width: u32,
    /// Pixels (default 700).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    height: u32,
    /// The panels to draw (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    panels: Vec<ChartPanel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    Png,
    Svg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartPanel {
    /// Candlesticks.
    Price,
    Volume,
    Macd,
}

pub async fn chart(channel: Channel, args: ChartArgs) -> anyhow::Result<()> {
    let format = match (args.format, args.output.extension()) {
        (Some(format), _) => format,
        (None, None) => ImageFormat::Png,
        (None, Some(e)) if e.eq_ignore_ascii_case("png") => ImageFormat::Png,
        (None, Some(e)) if e.eq_ignore_ascii_case("svg") => ImageFormat::Svg,
        (None, Some(e)) => bail!(
            "-o {}: a chart is drawn as PNG or SVG, not {}; name the file .png or .svg (or give --format)",
            args.output.display(),
            e.to_string_lossy()
        ),
    };
    let format = match format {
        ImageFormat::Png => pb::Format::Png,
        ImageFormat::Svg => pb::Format::Svg,
    };
    let panels = args.panels.iter().map(|p| match p {
        ChartPanel::Price => pb::Panel::Price as i32,
        ChartPanel::Volume => pb::Panel::Volume as i32,
        ChartPanel::Macd => pb::Panel::Macd as i32,
    });
    let request = pb::RenderChartRequest {
        symbol: args.symbol.clone(),
        start_date: args.range.start.clone(),
        end_date: args.range.end.clone(),
        format: format as i32,
        width: args.width,
        height: args.height,
        panels: panels.collect(),
        macd: None,
        adjusted: args.range.adjusted(),
    };
    let mut client = MarketServiceClient::new(channel);
    let mut stream = client.render_chart(request).await?.into_inner();
    let mut image = Vec::new();
    while let Some(reply) = stream.message().await? {
        image.extend_from_slice(&reply.chunk);
    }
    args.range.note_past_end(&mut client, &args.symbol).await?;
    if args.output == Path::new("-") {
        std::io::stdout().write_all(&image).context("cannot write to stdout")?;
        return Ok(());
    }
    write_atomically(&args.output, &image)?;
    eprintln!("wrote {} ({} bytes)", args.output.display(), image.len());
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: a reader never sees half an image.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    let mut temp = name.to_os_string();
    temp.push(format!(".{}.part", std::process::id()));
    let temp = dir.join(temp);
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
