//! `market-bench`: the Rust side of the market benchmarks that `bench/run`
//! drives (see bench/README.md). Each subcommand does one step and prints
//! plain `key value...` lines for the script to read: it makes the inputs
//! (the 10M closes, the 20-year bar store), times the core's MACD and the
//! chart renderer, and calls `idc.Indicator/GetMACD` on a running server.
//!
//! It measures and checks; it never judges: the ratios and verdicts are the
//! script's, computed from both sides of one run.

mod chart;
mod getmacd;
mod macd;
mod rng;
mod store;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "The Rust side of the market benchmarks (run by bench/run)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes N closes of a deterministic random walk as raw little-endian f64.
    Closes {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10_000_000)]
        n: usize,
    },
    /// Times MACD(12,26,9) over the closes in FILE: one untimed warm-up, then
    /// REPS timed runs (`rep_ms` lines), then a `check` line per output line.
    Macd {
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Fills the bar store in DIR (`bars.sqlite3`, as `dataport serve
    /// --data-dir DIR` opens it) with YEARS years of synthetic weekday bars of
    /// SYMBOL, and prints how many rows a GetMACD for the last year returns.
    PrepareStore {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "SYN")]
        symbol: String,
        #[arg(long, default_value_t = 2005)]
        first_year: u16,
        #[arg(long, default_value_t = 20)]
        years: u16,
    },
    /// Calls idc.Indicator/GetMACD CALLS times over CONCURRENCY streams of one
    /// HTTP/2 connection; refuses any reply without exactly EXPECT_ROWS rows
    /// inside the range.
    Getmacd {
        /// e.g. http://127.0.0.1:50051
        #[arg(long)]
        addr: String,
        #[arg(long, default_value = "")]
        symbol: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        end: String,
        #[arg(long)]
        calls: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long)]
        expect_rows: usize,
    },
    /// Times the MACD chart of the last BARS bars of the sample GOOG data:
    /// writes the chart's inputs to INPUT_CSV (for matplotlib) and one PNG to
    /// PNG if given, then makes WARMUP untimed and REPS timed renders
    /// (`rep_ms` lines).
    Chart {
        #[arg(long)]
        png: Option<PathBuf>,
        #[arg(long)]
        input_csv: Option<PathBuf>,
        #[arg(long, default_value_t = 252)]
        bars: usize,
        #[arg(long, default_value_t = 1000)]
        width: u32,
        #[arg(long, default_value_t = 700)]
        height: u32,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        #[arg(long, default_value_t = 20)]
        reps: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Closes { out, n } => macd::write_closes(&out, n),
        Command::Macd { input, reps } => macd::time_macd(&input, reps),
        Command::PrepareStore { dir, symbol, first_year, years } => {
            store::prepare(&dir, &symbol, first_year, years)
        }
        Command::Getmacd { addr, symbol, start, end, calls, concurrency, expect_rows } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(getmacd::run(getmacd::Load {
                addr,
                symbol,
                start,
                end,
                calls,
                concurrency,
                expect_rows,
            }))
        }
        Command::Chart { png, input_csv, bars, width, height, warmup, reps } => {
            chart::time_chart(&chart::Setup { png, input_csv, bars, width, height, warmup, reps })
        }
    }
}
