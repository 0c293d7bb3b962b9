//! Daily OHLCV bars, and reading them from CSV.
//!
//! A bars file has a header row naming at least `date`, `open`, `high`,
//! `low` and `close` (any case, any order; `volume` and `adj_close` are
//! optional; other columns are ignored), then one row per trading day in any
//! order. A file is taken whole or not at all: the first bad row refuses it,
//! naming its line.
//!
//! A bar's `adj_close` is its close adjusted for the splits and dividends
//! that came after it; [`adjusted`] scales the whole bar by the same factor,
//! so a series of adjusted bars has no jumps at splits.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

/// A calendar date, ordered chronologically; written `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a date was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date of the form YYYY-MM-DD")]
pub struct DateError(pub String);

impl Date {
    /// The date, if it exists in the proleptic Gregorian calendar (years 1..=9999).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1..=9999).contains(&year) && (1..=days).contains(&day)).then_some(Date { year, month, day })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Date, DateError> {
        let err = || DateError(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u16> {
            let part = &s[r];
            part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
        };
        let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
            return Err(err());
        };
        let (Ok(month), Ok(day)) = (u8::try_from(month), u8::try_from(day)) else {
            return Err(err());
        };
        Date::new(year, month, day).ok_or_else(err)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// One trading day of one symbol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub date: Date,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Shares traded, when known.
    pub volume: Option<f64>,
    /// The close adjusted for later splits and dividends, when known.
    pub adj_close: Option<f64>,
}

impl Bar {
    /// A day on which every price was `price` and the volume is unknown.
    pub fn flat(date: Date, price: f64) -> Bar {
        Bar { date, open: price, high: price, low: price, close: price, volume: None, adj_close: None }
    }

    /// This bar scaled by `factor` (adjusted = raw x factor): the prices
    /// times it, the volume divided by it (so the traded value stays the
    /// same: a 2:1 split halves earlier prices and doubles their volume).
    fn scaled(&self, factor: f64) -> Bar {
        Bar {
            date: self.date,
            open: self.open * factor,
            high: self.high * factor,
            low: self.low * factor,
            close: self.close * factor,
            volume: self.volume.map(|v| v / factor),
            adj_close: self.adj_close,
        }
    }
}

/// The adjusted series of `bars` (sorted by date), or `None` when no bar
/// carries an `adj_close` (there is nothing to adjust by).
///
/// Each bar is scaled by its factor `adj_close / close`, so its close becomes
/// its `adj_close` and its open, high and low move with it. A bar without an
/// `adj_close` takes the factor of the nearest later bar that has one (a
/// factor changes only at a split or dividend, and bars after the last one
/// need none), or 1 when no later bar has one.
pub fn adjusted(bars: &[Bar]) -> Option<Vec<Bar>> {
    if bars.iter().all(|b| b.adj_close.is_none()) {
        return None;
    }
    let mut out = bars.to_vec();
    let mut factor = 1.0;
    for bar in out.iter_mut().rev() {
        if let Some(adj) = bar.adj_close {
            // check_bar keeps close and adj_close above 0.
            factor = adj / bar.close;
        }
        *bar = bar.scaled(factor);
    }
    Some(out)
}

/// The longest symbol, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;

/// Why a symbol was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("symbol must not be empty")]
    Empty,
    #[error("symbol {0:?} is longer than {MAX_SYMBOL_LEN} bytes")]
    TooLong(String),
    #[error("symbol {0:?} may hold only letters, digits, '.', '-' and '_'")]
    BadChar(String),
}

/// A ticker symbol as it is stored: checked by [`validate_symbol`], then
/// upper-cased, so `aapl` and `AAPL` are one symbol.
pub fn symbol(text: &str) -> Result<String, SymbolError> {
    validate_symbol(text)?;
    Ok(text.to_ascii_uppercase())
}

/// Checks a ticker symbol: 1 to [`MAX_SYMBOL_LEN`] ASCII letters, digits,
/// `.`, `-` or `_` (as in `BRK.B` or `RDS-A`).
pub fn validate_symbol(symbol: &str) -> Result<(), SymbolError> {
    if symbol.is_empty() {
        return Err(SymbolError::Empty);
    }
    if symbol.len() > MAX_SYMBOL_LEN {
        return Err(SymbolError::TooLong(symbol.chars().take(MAX_SYMBOL_LEN).collect()));
    }
    if !symbol.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        return Err(SymbolError::BadChar(symbol.to_owned()));
    }
    Ok(())
}

/// Checks one bar's numbers: all finite; the high at or above the low, the
/// open and the close; the low at or below the open and the close; the
/// volume not negative; an adjusted close above 0, and then the close too
/// (the adjustment is their ratio). (Dates are checked when parsed.)
pub fn check_bar(bar: &Bar) -> Result<(), String> {
    let fields = [("open", bar.open), ("high", bar.high), ("low", bar.low), ("close", bar.close)];
    let optional =
        bar.volume.map(|v| ("volume", v)).into_iter().chain(bar.adj_close.map(|v| ("adj_close", v)));
    for (name, value) in fields.into_iter().chain(optional) {
        if !value.is_finite() {
            return Err(format!("{name} {value} is not a finite number"));
        }
    }
    if let Some(adj) = bar.adj_close {
        if adj <= 0.0 {
            return Err(format!("adj_close {adj} is not above 0"));
        }
        if bar.close <= 0.0 {
            return Err(format!("close {} is not above 0, so adj_close {adj} adjusts nothing", bar.close));
        }
    }
    for (name, value) in [("low", bar.low), ("open", bar.open), ("close", bar.close)] {
        if bar.high < value {
            return Err(format!("high {} is below {name} {value}", bar.high));
        }
    }
    for (name, value) in [("open", bar.open), ("close", bar.close)] {
        if bar.low > value {
            return Err(format!("low {} is above {name} {value}", bar.low));
        }
    }
    if let Some(volume) = bar.volume.filter(|v| *v < 0.0) {
        return Err(format!("volume {volume} is negative"));
    }
    Ok(())
}

/// Why a bars file was refused; `line` counts from 1, the header being line 1.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum BarsError {
    #[error("the file is empty: expected a header row naming date, open, high, low and close")]
    Empty,
    #[error(
        "the header has no `{0}` column (it needs date, open, high, low and close; volume and adj_close are optional)"
    )]
    MissingColumn(&'static str),
    #[error("the header names `{0}` twice")]
    DuplicateColumn(String),
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
}

const REQUIRED: [&str; 5] = ["date", "open", "high", "low", "close"];

/// The separator of a file that starts with `start`: whichever of `,`, `;`
/// and tab its first line holds most of (a comma if none).
fn separator(start: &[u8]) -> u8 {
    let line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |sep: u8| line.iter().filter(|&&b| b == sep).count();
    [b';', b'\t'].into_iter().fold(b',', |best, sep| if count(sep) > count(best) { sep } else { best })
}

/// A header name as it is matched: lower case, with spaces, dots and
/// underscores dropped (`Adj Close`, `adj_close` and `Adj. Close` are one).
fn column_key(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, ' ' | '.' | '_')).map(|c| c.to_ascii_lowercase()).collect()
}

/// Reads a whole bars file, its fields separated by commas, semicolons or
/// tabs (whichever the header uses). Rows come back sorted by date; every
/// row is checked ([`check_bar`], a parsable date, no date twice).
pub fn parse_csv(input: impl std::io::Read) -> Result<Vec<Bar>, BarsError> {
    Ok(read(input, false)?.into_values().next().unwrap_or_default())
}

/// Reads a whole file of several symbols' bars: as [`parse_csv`], plus a
/// `symbol` column checked by [`validate_symbol`]; bars come back by symbol.
pub fn parse_csv_by_symbol(input: impl std::io::Read) -> Result<BTreeMap<String, Vec<Bar>>, BarsError> {
    read(input, true)
}

/// Where each field of a bar is in a row.
struct Columns {
    /// date, open, high, low, close ([`REQUIRED`]).
    index: [usize; 5],
    symbol_at: Option<usize>,
    volume_at: Option<usize>,
    adj_close_at: Option<usize>,
}

impl Columns {
    /// From the header row; `symbol` is required `by_symbol`.
    fn find(headers: &csv::StringRecord, by_symbol: bool) -> Result<Columns, BarsError> {
        let mut columns: HashMap<String, usize> = HashMap::new();
        for (i, name) in headers.iter().enumerate() {
            let key = column_key(name.trim());
            let known = REQUIRED.contains(&key.as_str())
                || matches!(key.as_str(), "volume" | "adjclose")
                || (by_symbol && key == "symbol");
            if known && columns.insert(key, i).is_some() {
                return Err(BarsError::DuplicateColumn(name.trim().to_owned()));
            }
        }
        let mut index = [0usize; 5];
        for (slot, name) in index.iter_mut().zip(REQUIRED) {
            *slot = *columns.get(name).ok_or(BarsError::MissingColumn(name))?;
        }
        let symbol_at = match by_symbol {
            true => Some(*columns.get("symbol").ok_or(BarsError::MissingColumn("symbol"))?),
            false => None,
        };
        Ok(Columns {
            index,
            symbol_at,
            volume_at: columns.get("volume").copied(),
            adj_close_at: columns.get("adjclose").copied(),
        })
    }
}

fn read(input: impl std::io::Read, by_symbol: bool) -> Result<BTreeMap<String, Vec<Bar>>, BarsError> {
    let mut input = std::io::BufReader::new(input);
    let start = std::io::BufRead::fill_buf(&mut input)
        .map_err(|e| BarsError::Row { line: 1, reason: e.to_string() })?;
    let delimiter = separator(start);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(true).delimiter(delimiter).from_reader(input);
    let row_error = |line: u64, reason: String| BarsError::Row { line, reason };
    let headers = match reader.headers() {
        Ok(h) if h.iter().any(|f| !f.trim().is_empty()) => h.clone(),
        Ok(_) => return Err(BarsError::Empty),
        Err(e) => return Err(row_error(1, e.to_string())),
    };
    let Columns { index, symbol_at, volume_at, adj_close_at } = Columns::find(&headers, by_symbol)?;

    let mut out: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    let mut seen: HashMap<(String, Date), u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            row_error(line, e.to_string())
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let symbol = match symbol_at {
            Some(at) => self::symbol(field(at)).map_err(|e| row_error(line, e.to_string()))?,
            None => String::new(),
        };
        let date: Date = field(index[0]).parse().map_err(|e: DateError| row_error(line, e.to_string()))?;
        let number = |name: &str, i: usize| -> Result<f64, BarsError> {
            let text = field(i);
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(row_error(line, format!("{name} {text:?} is not a finite number"))),
            }
        };
        let bar = Bar {
            date,
            open: number("open", index[1])?,
            high: number("high", index[2])?,
            low: number("low", index[3])?,
            close: number("close", index[4])?,
            volume: match volume_at {
                Some(i) if !field(i).is_empty() => Some(number("volume", i)?),
                _ => None,
            },
            adj_close: match adj_close_at {
                Some(i) if !field(i).is_empty() => Some(number("adj_close", i)?),
                _ => None,
            },
        };
        check_bar(&bar).map_err(|reason| row_error(line, reason))?;
        if let Some(first) = seen.insert((symbol.clone(), date), line) {
            return Err(row_error(line, format!("date {date} already appears on line {first}")));
        }
        out.entry(symbol).or_default().push(bar);
    }
    for bars in out.values_mut() {
        bars.sort_by_key(|b| b.date);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(text: &str) -> Result<Vec<Bar>, BarsError> {
        parse_csv(text.as_bytes())
    }

    fn row_error(text: &str) -> (u64, String) {
        match parse(text) {
            Err(BarsError::Row { line, reason }) => (line, reason),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn a_bar_whose_high_or_low_does_not_hold_its_open_and_close_is_refused_with_its_line() {
        let header = "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,100\n";
        for (row, reason) in [
            ("2024-01-03,12,11,9,10", "high 11 is below open 12"),
            ("2024-01-03,10,11,9,11.5", "high 11 is below close 11.5"),
            ("2024-01-03,10,11,9.5,9", "low 9.5 is above close 9"),
            ("2024-01-03,9,11,9.5,10", "low 9.5 is above open 9"),
            ("2024-01-03,10,11,9,10,-5", "volume -5 is negative"),
        ] {
            assert_eq!(row_error(&format!("{header}{row}\n")), (3, reason.to_owned()), "{row}");
        }
        // A bar at its high and low is fine.
        assert_eq!(parse(&format!("{header}2024-01-03,11,11,9,9,0\n")).unwrap().len(), 2);
    }

    #[test]
    fn an_adjusted_close_column_is_read_under_any_usual_spelling() {
        for name in ["adj_close", "Adj Close", "AdjClose", "Adj. Close"] {
            let bars = parse(&format!("date,open,high,low,close,{name}\n2024-01-02,10,11,9,10,5\n")).unwrap();
            assert_eq!(bars[0].adj_close, Some(5.0), "{name}");
        }
        let bars = parse("date,open,high,low,close,adj_close\n2024-01-02,10,11,9,10,\n").unwrap();
        assert_eq!(bars[0].adj_close, None, "an empty cell is no adjustment");
        let (line, reason) = row_error("date,open,high,low,close,adj_close\n2024-01-02,10,11,9,10,0\n");
        assert_eq!((line, reason.as_str()), (2, "adj_close 0 is not above 0"));
        let (_, reason) = row_error("date,open,high,low,close,adj_close\n2024-01-02,0,0,0,0,1\n");
        assert_eq!(reason, "close 0 is not above 0, so adj_close 1 adjusts nothing");
    }

    fn bar(date: &str, close: f64, adj_close: Option<f64>) -> Bar {
        let date = date.parse().unwrap();
        Bar { date, open: close, high: close + 2.0, low: close - 2.0, close, volume: Some(100.0), adj_close }
    }

    #[test]
    fn adjusting_scales_each_bar_by_its_factor_and_bars_without_one_take_the_next_later_one() {
        // A 2:1 split between the second and third day: the first two
        // days' adjusted closes are half their closes.
        let raw = [
            bar("2024-01-02", 100.0, Some(50.0)),
            bar("2024-01-03", 102.0, None),
            bar("2024-01-04", 52.0, Some(52.0)),
            bar("2024-01-05", 53.0, None),
        ];
        let adjusted = adjusted(&raw).unwrap();
        let closes: Vec<f64> = adjusted.iter().map(|b| b.close).collect();
        assert_eq!(closes, [50.0, 102.0, 52.0, 53.0], "day 2 takes day 3's factor 1; day 4 none later");
        let first = adjusted[0];
        assert_eq!((first.open, first.high, first.low), (50.0, 51.0, 49.0), "prices move with the close");
        assert_eq!(first.volume, Some(200.0), "volume divides by the factor: the value traded stays");
        assert_eq!(first.adj_close, Some(50.0));
        assert_eq!(adjusted[1..], raw[1..], "factor 1 changes nothing");
        let plain = [bar("2024-01-02", 1.0, None)];
        assert_eq!(super::adjusted(&plain), None, "no adj_close anywhere: nothing to adjust by");
    }

    #[test]
    fn symbols_are_stored_upper_case() {
        assert_eq!(symbol("aapl"), Ok("AAPL".to_owned()));
        assert_eq!(symbol("brk.b"), Ok("BRK.B".to_owned()));
        assert_eq!(symbol("a b"), Err(SymbolError::BadChar("a b".into())));
        let by = parse_csv_by_symbol("symbol,date,open,high,low,close\nmsft,2020-01-02,1,2,1,2\n".as_bytes());
        assert_eq!(by.unwrap().keys().collect::<Vec<_>>(), ["MSFT"]);
    }

    #[test]
    fn semicolon_and_tab_separated_files_read_as_comma_separated_ones() {
        let commas = parse("date,open,high,low,close\n2024-01-02,10,11,9,10.5\n").unwrap();
        for text in [
            "date;open;high;low;close\n2024-01-02;10;11;9;10.5\n",
            "date\topen\thigh\tlow\tclose\n2024-01-02\t10\t11\t9\t10.5\n",
        ] {
            assert_eq!(parse(text).unwrap(), commas, "{text:?}");
        }
    }

    #[test]
    fn dates_parse_strictly_and_order_chronologically() {
        let d: Date = "2024-02-29".parse().unwrap();
        assert_eq!((d.year(), d.month(), d.day()), (2024, 2, 29));
        assert_eq!(d.to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "2024/01/01",
            "",
            "+024-01-01",
            "0000-01-01",
            "2024-04-31",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert!("2000-02-29".parse::<Date>().is_ok());
        assert!("1999-12-31".parse::<Date>().unwrap() < "2000-01-01".parse().unwrap());
    }

    #[test]
    fn headers_are_case_insensitive_in_any_order_and_extra_columns_are_ignored() {
        let bars = parse(
            "Ticker,Close,DATE,Low,High,Open,Notes\nX,2,2020-01-03,1,3,1.5,9\nX,4,2020-01-02,3,5,3.5,9\n",
        )
        .unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].date.to_string(), "2020-01-02", "rows come back in date order");
        assert_eq!(
            (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume),
            (3.5, 5.0, 3.0, 4.0, None)
        );
        let with_volume = parse("date,open,high,low,close,volume\n2020-01-02,1,2,1,2,1500\n").unwrap();
        assert_eq!(with_volume[0].volume, Some(1500.0));
    }

    #[test]
    fn every_bad_row_is_named_by_line_and_reason() {
        let head = "date,open,high,low,close\n";
        let (line, reason) = row_error(&format!("{head}2020-01-02,1,2,1,2\n2020-01-03,1,x,1,2\n"));
        assert_eq!((line, reason.as_str()), (3, "high \"x\" is not a finite number"));
        let (line, reason) = row_error(&format!("{head}2020-01-02,1,1,2,1\n"));
        assert_eq!((line, reason.as_str()), (2, "high 1 is below low 2"));
        let (line, reason) = row_error(&format!("{head}2020-01-02,1,2,1,2\n2020-01-02,1,2,1,2\n"));
        assert_eq!((line, reason.as_str()), (3, "date 2020-01-02 already appears on line 2"));
        let (line, reason) = row_error(&format!("{head}2020-02-30,1,2,1,2\n"));
        assert_eq!((line, reason.as_str()), (2, "\"2020-02-30\" is not a date of the form YYYY-MM-DD"));
        let (_, reason) = row_error(&format!("{head}2020-01-02,1,2,1,NaN\n"));
        assert!(reason.contains("close \"NaN\""), "{reason}");
        let (_, reason) = row_error(&format!("{head}2020-01-02,1,inf,1,2\n"));
        assert!(reason.contains("high \"inf\""), "{reason}");
        let (line, _) = row_error(&format!("{head}2020-01-02,1,2\n"));
        assert_eq!(line, 2, "a short row is missing numbers");
    }

    #[test]
    fn header_problems_are_named() {
        assert_eq!(parse(""), Err(BarsError::Empty));
        assert_eq!(parse("date,open,high,low\n"), Err(BarsError::MissingColumn("close")));
        assert_eq!(
            parse("date,open,high,low,close,Close\n"),
            Err(BarsError::DuplicateColumn("Close".into()))
        );
        assert_eq!(parse("date,open,high,low,close\n").unwrap(), Vec::new());
    }

    #[test]
    fn symbols_follow_the_rules() {
        for ok in ["AAPL", "BRK.B", "RDS-A", "x_1", &"A".repeat(32)] {
            assert_eq!(validate_symbol(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_symbol(""), Err(SymbolError::Empty));
        assert!(matches!(validate_symbol(&"A".repeat(33)), Err(SymbolError::TooLong(_))));
        for bad in ["A B", "A/B", "..\\x", "Ä", "a\n"] {
            assert_eq!(validate_symbol(bad), Err(SymbolError::BadChar(bad.into())), "{bad}");
        }
    }

    #[test]
    fn files_of_several_symbols_group_by_symbol() {
        let text = "symbol,date,open,high,low,close\nB,2020-01-03,1,2,1,2\nA,2020-01-02,1,2,1,2\nB,2020-01-02,1,2,1,2\n";
        let by = parse_csv_by_symbol(text.as_bytes()).unwrap();
        assert_eq!(by.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(
            by["B"].iter().map(|b| b.date.to_string()).collect::<Vec<_>>(),
            ["2020-01-02", "2020-01-03"]
        );
        let missing = parse_csv_by_symbol("date,open,high,low,close\n".as_bytes());
        assert_eq!(missing, Err(BarsError::MissingColumn("symbol")));
        let bad = parse_csv_by_symbol("symbol,date,open,high,low,close\nA B,2020-01-02,1,2,1,2\n".as_bytes());
        assert!(matches!(bad, Err(BarsError::Row { line: 2, .. })), "{bad:?}");
    }

    #[test]
    fn blank_lines_are_skipped() {
        let bars = parse("date,open,high,low,close\n\n2020-01-02,1,2,1,2\n\n").unwrap();
        assert_eq!(bars.len(), 1);
    }

    proptest! {
        #[test]
        fn any_valid_date_round_trips(y in 1u16..=9999, m in 1u8..=12, d in 1u8..=31) {
            if let Some(date) = Date::new(y, m, d) {
                prop_assert_eq!(date.to_string().parse::<Date>().unwrap(), date);
            }
        }

        #[test]
        fn any_text_either_parses_to_a_date_that_prints_back_or_is_refused(s in "\\PC{0,12}") {
            if let Ok(date) = s.parse::<Date>() {
                prop_assert_eq!(date.to_string(), s);
            }
        }
    }
}
