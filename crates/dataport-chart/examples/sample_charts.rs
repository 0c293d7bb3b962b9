//! Draws the sample bars as a few charts into a directory, to look at them:
//! `cargo run --release -p dataport-chart --example sample_charts -- /tmp`
//! writes `/tmp/chart-*.png` (and one `.svg`) and prints how long each took.

use std::time::Instant;

use dataport_chart::{ChartOptions, Format, MacdLines, Panels, render};
use dataport_core::market::bars::{Bar, parse_csv_by_symbol};
use dataport_core::market::{MacdParams, macd};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "/tmp".to_owned());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample/bars.csv.gz");
    let by_symbol = parse_csv_by_symbol(flate2::read::GzDecoder::new(std::fs::File::open(path)?))?;

    let full = |w, h| ChartOptions { width: w, height: h, ..ChartOptions::default() };
    let cases: Vec<(&str, &str, usize, ChartOptions)> = vec![
        ("goog-252", "GOOG", 252, full(1000, 700)),
        ("goog-2000", "GOOG", 2000, full(1000, 700)),
        ("aapl-3270", "AAPL", 3270, full(1000, 700)),
        ("goog-60", "GOOG", 60, full(1000, 700)),
        ("goog-20", "GOOG", 20, full(1000, 700)),
        ("goog-5", "GOOG", 5, full(1000, 700)),
        ("goog-1", "GOOG", 1, full(1000, 700)),
        ("goog-252-500x350", "GOOG", 252, full(500, 350)),
        ("goog-2000-500x350", "GOOG", 2000, full(500, 350)),
        ("goog-20-500x350", "GOOG", 20, full(500, 350)),
        ("goog-252-2000x1400", "GOOG", 252, full(2000, 1400)),
        ("goog-252-200x200", "GOOG", 252, full(200, 200)),
        (
            "goog-252-price",
            "GOOG",
            252,
            ChartOptions { panels: Panels { price: true, volume: false, macd: false }, ..full(1000, 700) },
        ),
        (
            "goog-252-price-macd",
            "GOOG",
            252,
            ChartOptions { panels: Panels { price: true, volume: false, macd: true }, ..full(1000, 700) },
        ),
        (
            "goog-252-volume-macd",
            "GOOG",
            252,
            ChartOptions { panels: Panels { price: false, volume: true, macd: true }, ..full(1000, 700) },
        ),
        ("empty", "GOOG", 0, full(1000, 700)),
        ("goog-252-svg", "GOOG", 252, ChartOptions { format: Format::Svg, ..full(1000, 700) }),
    ];
    let params = MacdParams::new(12, 26, 9)?;
    for (name, symbol, count, mut options) in cases {
        let all: &[Bar] = by_symbol.get(symbol).ok_or("symbol missing from the sample")?;
        let closes: Vec<f64> = all.iter().map(|b| b.close).collect();
        let lines = macd(&closes, params);
        let start = all.len().saturating_sub(count);
        let bars = &all[start..];
        // As the server titles its charts: MACD only where its panel is drawn.
        let dates = match (bars.first(), bars.last()) {
            (Some(first), Some(last)) => format!(", {} to {}", first.date, last.date),
            _ => String::new(),
        };
        let periods = if options.panels.macd { ", MACD(12, 26, 9)" } else { "" };
        options.title = format!("{symbol} daily{dates}{periods}");
        let macd = MacdLines {
            macd: &lines.macd[start..],
            signal: &lines.signal[start..],
            hist: &lines.hist[start..],
        };
        let t = Instant::now();
        let bytes = render(bars, macd, &options)?;
        let took = t.elapsed();
        let ext = if options.format == Format::Svg { "svg" } else { "png" };
        let file = format!("{out}/chart-{name}.{ext}");
        std::fs::write(&file, &bytes)?;
        println!(
            "{file}: {} bars, {}x{}, {} bytes, {took:?}",
            bars.len(),
            options.width,
            options.height,
            bytes.len()
        );
    }
    Ok(())
}
