//! The bars CSV parser on any bytes (`parse_csv`, `parse_csv_by_symbol`):
//! it never panics, and what it accepts holds its promises: bars sorted by
//! date with no date twice, each passing `check_bar`, symbols valid and
//! upper-cased; written back as CSV, the bars parse to the same bars.
#![no_main]

use std::fmt::Write;

use dataport_core::market::bars::{Bar, check_bar, parse_csv, parse_csv_by_symbol, validate_symbol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bars) = parse_csv(data) {
        holds(&bars);
        let text = written(bars.iter().map(|bar| ("", bar)), false);
        let again = parse_csv(text.as_bytes()).unwrap_or_else(|e| panic!("written back: {e}\n{text}"));
        assert_eq!(again, bars, "written back as\n{text}");
    }
    if let Ok(by_symbol) = parse_csv_by_symbol(data) {
        for (symbol, bars) in &by_symbol {
            assert!(validate_symbol(symbol).is_ok(), "symbol {symbol:?} was accepted");
            assert_eq!(*symbol, symbol.to_ascii_uppercase(), "symbols are upper-cased");
            assert!(!bars.is_empty(), "symbol {symbol:?} came back with no bars");
            holds(bars);
        }
        let all =
            by_symbol.iter().flat_map(|(symbol, bars)| bars.iter().map(move |bar| (symbol.as_str(), bar)));
        let text = written(all, true);
        let again =
            parse_csv_by_symbol(text.as_bytes()).unwrap_or_else(|e| panic!("written back: {e}\n{text}"));
        assert_eq!(again, by_symbol, "written back as\n{text}");
    }
});

/// One symbol's bars: in date order, no date twice, every bar checked.
fn holds(bars: &[Bar]) {
    for pair in bars.windows(2) {
        assert!(
            pair[0].date < pair[1].date,
            "dates out of order or twice: {} then {}",
            pair[0].date,
            pair[1].date
        );
    }
    for bar in bars {
        if let Err(reason) = check_bar(bar) {
            panic!("accepted a bar that check_bar refuses ({reason}): {bar:?}");
        }
    }
}

/// The bars as a comma-separated file; `{}` writes the shortest text that
/// reads back as the same f64.
fn written<'a>(bars: impl Iterator<Item = (&'a str, &'a Bar)>, by_symbol: bool) -> String {
    let mut text = String::from(if by_symbol { "symbol," } else { "" });
    text.push_str("date,open,high,low,close,volume,adj_close\n");
    let optional = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for (symbol, bar) in bars {
        if by_symbol {
            text.push_str(symbol);
            text.push(',');
        }
        let Bar { date, open, high, low, close, volume, adj_close } = *bar;
        let (volume, adj_close) = (optional(volume), optional(adj_close));
        let _ = writeln!(text, "{date},{open},{high},{low},{close},{volume},{adj_close}");
    }
    text
}
