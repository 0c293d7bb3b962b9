//! The MACD chart: dataport-chart's `render` of the sample GOOG data, and the
//! same numbers written out for matplotlib to draw.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use dataport_chart::{ChartOptions, Format, MacdLines, Panels, render};
use dataport_core::market::bars::parse_csv_by_symbol;
use dataport_core::market::{MacdParams, macd};

/// AAPL, GOOG, IBM and MSFT daily bars, 2000-2013 (see data/README.md).
const SAMPLE_BARS: &[u8] = include_bytes!("../../../data/sample/bars.csv.gz");
const SYMBOL: &str = "GOOG";

#[derive(Debug)]
pub struct Setup {
    pub png: Option<PathBuf>,
    pub input_csv: Option<PathBuf>,
    pub bars: usize,
    pub width: u32,
    pub height: u32,
    pub warmup: usize,
    pub reps: usize,
}

/// Renders the chart of the last `setup.bars` GOOG bars (MACD computed over
/// the whole history, as the server does): writes the inputs and one PNG if
/// asked, then `warmup` untimed and `reps` timed renders, printing a
/// `rep_ms` line for each timed one.
pub fn time_chart(setup: &Setup) -> anyhow::Result<()> {
    let mut by_symbol = parse_csv_by_symbol(flate2::read::GzDecoder::new(SAMPLE_BARS))?;
    let all = by_symbol.remove(SYMBOL).context("the sample bars hold no GOOG")?;
    anyhow::ensure!(all.len() >= setup.bars, "GOOG has {} bars, fewer than {}", all.len(), setup.bars);
    let closes: Vec<f64> = all.iter().map(|b| b.close).collect();
    let lines = macd(&closes, MacdParams::new(12, 26, 9)?);
    let from = all.len() - setup.bars;
    let bars = &all[from..];
    let lines =
        MacdLines { macd: &lines.macd[from..], signal: &lines.signal[from..], hist: &lines.hist[from..] };
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else { anyhow::bail!("no bars to draw") };
    let options = ChartOptions {
        width: setup.width,
        height: setup.height,
        format: Format::Png,
        panels: Panels::default(),
        title: format!("{SYMBOL} daily, {} to {}, MACD(12, 26, 9)", first.date, last.date),
    };

    if let Some(path) = &setup.input_csv {
        let mut csv = String::from("symbol,date,open,high,low,close,volume,macd,signal,hist\n");
        for (i, b) in bars.iter().enumerate() {
            let volume = b.volume.unwrap_or(f64::NAN);
            let (m, s, h) = (lines.macd[i], lines.signal[i], lines.hist[i]);
            writeln!(
                csv,
                "{SYMBOL},{},{},{},{},{},{volume},{m},{s},{h}",
                b.date, b.open, b.high, b.low, b.close
            )?;
        }
        std::fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &setup.png {
        let png = render(bars, lines, &options)?;
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))?;
    }
    for _ in 0..setup.warmup {
        black_box(render(black_box(bars), lines, &options)?);
    }
    for _ in 0..setup.reps {
        let t0 = Instant::now();
        let png = render(black_box(bars), lines, &options)?;
        let elapsed = t0.elapsed();
        black_box(png);
        println!("rep_ms {:.3}", elapsed.as_secs_f64() * 1e3);
    }
    Ok(())
}
