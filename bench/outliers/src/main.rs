//! `outliers-bench`: the Rust side of the outlier benchmarks that `bench/run`
//! drives (see bench/README.md). It calls `pb.Outliers/Detect` with one
//! million metrics on a running server (dataport or the Python original) and
//! times each call end to end; it writes the CSV that `dataport outliers
//! --stream` sends through DetectStream, and checks what the CLI printed.
//!
//! It measures and checks; it never judges: the ratios and verdicts are the
//! script's, computed from both sides of one run.

mod detect;
// The same generator as the market benchmarks (which also use `signed`).
#[path = "../../market/src/rng.rs"]
#[allow(dead_code)]
mod rng;
mod stream;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "The Rust side of the outlier benchmarks (run by bench/run)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calls pb.Outliers/Detect with N metrics of one series (uniform in
    /// [0, 40), a few planted outliers) over one HTTP/2 connection: WARMUP
    /// untimed calls, then REPS timed ones (`rep_ms` lines), each reply
    /// checked against the 2-sigma rule computed here; then a `check` line
    /// with the indices every reply held.
    Detect {
        /// e.g. http://127.0.0.1:50051
        #[arg(long)]
        addr: String,
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Writes N metrics of SERIES interleaved series as `time,name,value` CSV
    /// (what `dataport outliers` reads), with outliers planted far apart;
    /// prints `metrics N`, then `planted INDEX` for each.
    StreamCsv {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 2_000_000)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        series: usize,
    },
    /// Reads the anomalies `dataport outliers --stream --format csv` printed
    /// and the `planted` lines of stream-csv; fails unless every planted
    /// outlier is among the anomalies; prints `anomalies COUNT PLANTED_FOUND
    /// PLANTED OTHERS`.
    StreamCheck {
        #[arg(long)]
        planted: PathBuf,
        #[arg(long)]
        anomalies: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Detect { addr, n, warmup, reps } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(detect::run(&addr, n, warmup, reps))
        }
        Command::StreamCsv { out, n, series } => stream::write_csv(&out, n, series),
        Command::StreamCheck { planted, anomalies } => stream::check(&planted, &anomalies),
    }
}
