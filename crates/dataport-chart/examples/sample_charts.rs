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
    let mut cases: Vec<(String, &str, usize, ChartOptions)> = Vec::new();
    for (symbol, count) in
        [("GOOG", 252), ("GOOG", 2000), ("AAPL", 3270), ("GOOG", 60), ("GOOG", 20), ("GOOG", 5), ("GOOG", 1)]
    {
        cases.push((format!("{}-{count}", symbol.to_lowercase()), symbol, count, full(1000, 700)));
    }
    for (count, w, h) in
        [(252, 500, 350), (2000, 500, 350), (20, 500, 350), (252, 2000, 1400), (252, 200, 200)]
    {
        cases.push((format!("goog-{count}-{w}x{h}"), "GOOG", count, full(w, h)));
    }
    let panels =
        |price, volume, macd| ChartOptions { panels: Panels { price, volume, macd }, ..full(1000, 700) };
    for (name, options) in [
        ("goog-252-price", panels(true, false, false)),
        ("goog-252-price-macd", panels(true, false, true)),
        ("goog-252-volume-macd", panels(false, true, true)),
        ("goog-252-svg", ChartOptions { format: Format::Svg, ..full(1000, 700) }),
    ] {
        cases.push((name.to_owned(), "GOOG", 252, options));
    }
    cases.push(("empty".to_owned(), "GOOG", 0, full(1000, 700)));
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
