//! Release-mode measurements, ignored by default:
//! `cargo test --release -p dataport-chart -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use dataport_core::market::bars::{Bar, parse_csv_by_symbol};
use dataport_core::market::{MacdParams, macd};

use crate::{ChartOptions, MacdLines, draw_rgb, encode_png, encode_png_with};

/// GOOG's 2012 bars from the sample data, with MACD(12, 26, 9) over the whole history.
fn goog_2012() -> (Vec<Bar>, crate::tests_support::Lines) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample/bars.csv.gz");
    let file = std::fs::File::open(path).expect("the sample bars are in the repository");
    let mut by_symbol =
        parse_csv_by_symbol(flate2::read::GzDecoder::new(file)).expect("the sample bars parse");
    let all = by_symbol.remove("GOOG").expect("GOOG is in the sample");
    let closes: Vec<f64> = all.iter().map(|b| b.close).collect();
    let params = MacdParams::new(12, 26, 9).expect("12, 26, 9 are valid periods");
    let lines = macd(&closes, params);
    let keep: Vec<usize> = (0..all.len()).filter(|&i| all[i].date.year() == 2012).collect();
    let (start, end) = (keep[0], keep[keep.len() - 1] + 1);
    let lines = crate::tests_support::Lines {
        macd: lines.macd[start..end].to_vec(),
        signal: lines.signal[start..end].to_vec(),
        hist: lines.hist[start..end].to_vec(),
    };
    (all[start..end].to_vec(), lines)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn render_and_encode_time() {
    let (bars, lines) = goog_2012();
    let macd = MacdLines { macd: &lines.macd, signal: &lines.signal, hist: &lines.hist };
    let options =
        ChartOptions { title: "GOOG daily, 2012, MACD(12, 26, 9)".into(), ..ChartOptions::default() };
    let _ = draw_rgb(&bars, macd, &options).expect("draws");
    let (mut render, mut encode) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let rgb = draw_rgb(&bars, macd, &options).expect("draws");
        render.push(t.elapsed());
        let t = Instant::now();
        size = encode_png(&rgb, options.width, options.height).expect("encodes").len();
        encode.push(t.elapsed());
    }
    println!(
        "{} bars {}x{}: render {:?}, encode {:?} (medians of 30), PNG {} bytes",
        bars.len(),
        options.width,
        options.height,
        median(render),
        median(encode),
        size
    );
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn png_settings() {
    let (bars, lines) = goog_2012();
    let macd = MacdLines { macd: &lines.macd, signal: &lines.signal, hist: &lines.hist };
    let options = ChartOptions::default();
    let rgb = draw_rgb(&bars, macd, &options).expect("draws");
    use png::{DeflateCompression as D, Filter as F};
    let deflates = [D::FdeflateUltraFast, D::Level(1), D::Level(2), D::Level(3), D::Level(6), D::Level(9)];
    for deflate in deflates {
        for filter in [F::NoFilter, F::Sub, F::Up, F::Paeth, F::Adaptive] {
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..25 {
                let t = Instant::now();
                size = encode_png_with(&rgb, options.width, options.height, deflate, filter)
                    .expect("encodes")
                    .len();
                times.push(t.elapsed());
            }
            println!("{deflate:?}/{filter:?}: {size} bytes, {:?}", median(times));
        }
    }
}
