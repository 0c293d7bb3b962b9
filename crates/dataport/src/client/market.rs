//! `dataport macd`.

use dataport_proto::idc::MacdRequest;
use dataport_proto::idc::indicator_client::IndicatorClient;
use tonic::transport::Channel;

/// How `dataport macd` prints its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    #[default]
    Table,
    Csv,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct MacdArgs {
    /// The symbol (default: the server's default symbol, or its only one).
    #[arg(long, default_value = "")]
    symbol: String,
    /// The first day, YYYY-MM-DD.
    #[arg(long)]
    start: String,
    /// The last day, YYYY-MM-DD.
    #[arg(long)]
    end: String,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn macd(channel: Channel, args: MacdArgs) -> anyhow::Result<()> {
    let request = MacdRequest { start_date: args.start, end_date: args.end, symbol: args.symbol };
    let rows = IndicatorClient::new(channel).get_macd(request).await?.into_inner().macd;
    match args.format {
        Format::Table => {
            println!(
                "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "date", "open", "high", "low", "close", "macd", "signal", "histogram"
            );
            for r in &rows {
                println!(
                    "{:<10} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.4} {:>10.4} {:>10.4}",
                    r.date, r.open, r.high, r.low, r.close, r.macd, r.signal, r.histogram
                );
            }
        }
        Format::Csv => {
            println!("date,open,high,low,close,macd,signal,histogram");
            for r in &rows {
                println!(
                    "{},{},{},{},{},{},{},{}",
                    r.date, r.open, r.high, r.low, r.close, r.macd, r.signal, r.histogram
                );
            }
        }
        Format::Json => {
            for r in &rows {
                let row = serde_json::json!({
                    "date": r.date, "open": r.open, "high": r.high, "low": r.low, "close": r.close,
                    "macd": r.macd, "signal": r.signal, "histogram": r.histogram,
                });
                println!("{row}");
            }
        }
    }
    Ok(())
}
