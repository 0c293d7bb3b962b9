//! The 20-year bar store that `dataport serve` answers GetMACD from.

use std::path::Path;

use anyhow::Context;
use dataport_core::market::bars::{Bar, Date};
use dataport_core::market::{MacdParams, macd_lookback};
use dataport_store::bars::{BarStore, SqliteBarStore};

use crate::rng::SplitMix64;

/// Day of the week, 0 = Sunday (Sakamoto's method).
fn weekday(year: u16, month: u8, day: u8) -> u32 {
    const T: [u32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = u32::from(year) - u32::from(month < 3);
    (y + y / 4 - y / 100 + y / 400 + T[usize::from(month - 1)] + u32::from(day)) % 7
}

/// Every weekday of `first_year..first_year + years` (no holidays: about 261
/// bars a year) with a random-walk OHLCV.
pub fn synthetic_bars(first_year: u16, years: u16) -> Vec<Bar> {
    let mut rng = SplitMix64::new(2005);
    let mut close = 50.0_f64;
    let mut bars = Vec::new();
    for year in first_year..first_year + years {
        for month in 1..=12 {
            for day in 1..=31 {
                let Some(date) = Date::new(year, month, day) else { continue };
                if matches!(weekday(year, month, day), 0 | 6) {
                    continue;
                }
                let open = close * (1.0 + 0.005 * rng.signed());
                close = open * (1.0 + 0.02 * rng.signed());
                let high = open.max(close) * (1.0 + 0.01 * rng.unit());
                let low = open.min(close) * (1.0 - 0.01 * rng.unit());
                let volume = Some((1e6 * (1.0 + rng.unit())).round());
                bars.push(Bar { date, open, high, low, close, volume, adj_close: None });
            }
        }
    }
    bars
}

/// Imports the bars into `dir/bars.sqlite3` and prints `bars COUNT FIRST
/// LAST` and `year YEAR START END ROWS`, the last year and how many rows a
/// GetMACD for it must return (its bars past MACD's lookback).
pub fn prepare(dir: &Path, symbol: &str, first_year: u16, years: u16) -> anyhow::Result<()> {
    anyhow::ensure!(years >= 2, "years must be at least 2, so that the last year has a MACD warm-up");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bars = synthetic_bars(first_year, years);
    let store = SqliteBarStore::open(dir)?;
    let written = store.import(symbol, &bars)?;
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else { anyhow::bail!("no bars generated") };
    println!("bars {written} {} {}", first.date, last.date);
    let year = first_year + years - 1;
    let lookback = macd_lookback(MacdParams::default());
    let rows = bars.iter().enumerate().filter(|(i, b)| b.date.year() == year && *i >= lookback).count();
    println!("year {year} {year}-01-01 {year}-12-31 {rows}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_are_right() {
        assert_eq!(weekday(2024, 1, 1), 1); // a Monday
        assert_eq!(weekday(2000, 2, 29), 2); // a Tuesday
        assert_eq!(weekday(2026, 11, 21), 6); // a Saturday
    }

    #[test]
    fn twenty_years_hold_5217_weekdays() {
        let bars = synthetic_bars(2005, 20);
        assert_eq!(bars.len(), 5217);
        assert!(bars.iter().all(|b| b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close)));
    }
}
