//! Compares every indicator with TA-Lib's answers, written by tests/oracle/oracle.py.
//!
//! `tests/oracle/run` makes the file and runs this test with DATAPORT_ORACLE_FILE
//! naming it; without the variable the test says so and passes, so a plain
//! `cargo test` needs no Python.

use std::collections::{BTreeMap, HashMap};

use dataport_core::market::bars::{self, Bar, Date};
use dataport_core::market::{BollingerParams, MacdParams, Period, atr, bollinger, ema, macd, rsi, sma};
use serde::Deserialize;

/// What "the same" means: NaN exactly where TA-Lib has NaN, and otherwise
/// |ours - talib| <= REL_TOL * max(|ours|, |talib|).
const REL_TOL: f64 = 1e-9;

/// Numbers arrive as strings (Python's round-trip repr) so that they parse to
/// exactly TA-Lib's doubles; null is NaN.
type Column = Vec<Option<String>>;

#[derive(Deserialize)]
struct Oracle {
    talib: String,
    series: HashMap<String, Series>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Series {
    high: Column,
    low: Column,
    close: Column,
    /// For an adjusted series, the prices as traded it was adjusted from.
    raw: Option<Raw>,
}

#[derive(Deserialize)]
struct Raw {
    high: Column,
    low: Column,
    close: Column,
    adj_close: Column,
}

impl Series {
    /// The high, low and close the indicators run over: the oracle's, or for
    /// an adjusted series our own adjustment of its raw prices, checked
    /// against the oracle's to the bit (both multiply by adj_close / close).
    fn columns(&self, name: &str) -> [Vec<f64>; 3] {
        let theirs = [parse(&self.high), parse(&self.low), parse(&self.close)];
        let Some(raw) = &self.raw else {
            return theirs;
        };
        let [high, low, close, adj_close] = [&raw.high, &raw.low, &raw.close, &raw.adj_close].map(parse);
        let date = Date::new(2000, 1, 3).expect("a date");
        let bars: Vec<Bar> = (0..close.len())
            .map(|i| Bar {
                date,
                open: close[i],
                high: high[i],
                low: low[i],
                close: close[i],
                volume: None,
                adj_close: Some(adj_close[i]),
            })
            .collect();
        let adjusted = bars::adjusted(&bars).expect("every bar carries adj_close");
        let ours = [
            adjusted.iter().map(|b| b.high).collect::<Vec<_>>(),
            adjusted.iter().map(|b| b.low).collect(),
            adjusted.iter().map(|b| b.close).collect(),
        ];
        for (column, (o, t)) in ["high", "low", "close"].iter().zip(ours.iter().zip(&theirs)) {
            let differ = o.iter().zip(t).position(|(o, t)| o.to_bits() != t.to_bits());
            assert!(
                differ.is_none(),
                "{name}: our adjusted {column} differs from the oracle's at bar {differ:?}"
            );
        }
        ours
    }
}

#[derive(Deserialize)]
struct Case {
    series: String,
    indicator: String,
    params: Params,
    outputs: BTreeMap<String, Column>,
}

#[derive(Debug, Deserialize)]
struct Params {
    period: Option<usize>,
    fast: Option<usize>,
    slow: Option<usize>,
    signal: Option<usize>,
    dev_up: Option<f64>,
    dev_down: Option<f64>,
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole =
            [("period", self.period), ("fast", self.fast), ("slow", self.slow), ("signal", self.signal)];
        let real = [("dev_up", self.dev_up), ("dev_down", self.dev_down)];
        let parts: Vec<String> = whole
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
            .chain(real.iter().filter_map(|(k, v)| v.map(|v| format!("{k} {v}"))))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn parse(column: &Column) -> Vec<f64> {
    column
        .iter()
        .map(|v| {
            v.as_deref().map_or(f64::NAN, |s| {
                s.parse().unwrap_or_else(|e| panic!("the oracle file holds {s:?}, not a number: {e}"))
            })
        })
        .collect()
}

fn period(p: Option<usize>) -> Period {
    let bars = p.expect("the oracle case lacks a period");
    Period::new(bars).unwrap_or_else(|e| panic!("the oracle case's period: {e}"))
}

/// Our outputs for one case, by TA-Lib's output names.
fn ours(case: &Case, columns: &[Vec<f64>; 3]) -> BTreeMap<String, Vec<f64>> {
    let [high, low, close] = columns;
    let p = &case.params;
    let named = |pairs: Vec<(&str, Vec<f64>)>| pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    match case.indicator.as_str() {
        "sma" => named(vec![("out", sma(close, period(p.period)))]),
        "ema" => named(vec![("out", ema(close, period(p.period)))]),
        "rsi" => named(vec![("out", rsi(close, period(p.period)))]),
        "atr" => named(vec![(
            "out",
            atr(high, low, close, period(p.period)).expect("the oracle series' columns differ in length"),
        )]),
        "macd" => {
            let params = MacdParams { fast: period(p.fast), slow: period(p.slow), signal: period(p.signal) };
            let m = macd(close, params);
            named(vec![("macd", m.macd), ("signal", m.signal), ("hist", m.hist)])
        }
        "bollinger" => {
            let params = BollingerParams {
                period: period(p.period),
                dev_up: p.dev_up.expect("the oracle case lacks dev_up"),
                dev_down: p.dev_down.expect("the oracle case lacks dev_down"),
            };
            let b = bollinger(close, params);
            named(vec![("upper", b.upper), ("middle", b.middle), ("lower", b.lower)])
        }
        other => panic!("the oracle file names an indicator this test does not know: {other}"),
    }
}

#[derive(Default)]
struct Tally {
    values: usize,
    identical: usize,
    max_rel: f64,
    max_rel_at: String,
    mismatches: Vec<String>,
}

#[test]
#[ignore = "needs TA-Lib's answers: run tests/oracle/run, which makes them and runs this"]
fn indicators_match_talib_on_every_oracle_case() {
    let path = std::env::var_os("DATAPORT_ORACLE_FILE")
        .expect("DATAPORT_ORACLE_FILE names TA-Lib's answers; tests/oracle/run sets it");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read DATAPORT_ORACLE_FILE {}: {e}", path.display()));
    let oracle: Oracle = serde_json::from_str(&text).unwrap();
    assert!(!oracle.cases.is_empty(), "the oracle file holds no case");

    let columns: HashMap<&str, [Vec<f64>; 3]> =
        oracle.series.iter().map(|(name, s)| (name.as_str(), s.columns(name))).collect();
    let adjusted = oracle.series.values().filter(|s| s.raw.is_some()).count();
    assert!(adjusted >= 4, "the oracle file holds {adjusted} adjusted series; every sample symbol has one");
    let mut per_indicator: BTreeMap<&str, Tally> = BTreeMap::new();
    for case in &oracle.cases {
        let got = ours(case, &columns[case.series.as_str()]);
        let tally = per_indicator.entry(case.indicator.as_str()).or_default();
        let label = format!("{} {}({})", case.series, case.indicator, case.params);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            case.outputs.keys().collect::<Vec<_>>(),
            "{label}: outputs differ"
        );
        for (name, want) in &case.outputs {
            let (want, got) = (parse(want), &got[name]);
            assert_eq!(got.len(), want.len(), "{label} {name}: length");
            for (bar, (&g, &w)) in got.iter().zip(&want).enumerate() {
                tally.values += 1;
                let ok = if g.is_nan() || w.is_nan() {
                    g.is_nan() && w.is_nan()
                } else {
                    let rel = if g == w { 0.0 } else { (g - w).abs() / g.abs().max(w.abs()) };
                    if rel > tally.max_rel {
                        tally.max_rel = rel;
                        tally.max_rel_at = format!("{label} {name} bar {bar}");
                    }
                    rel <= REL_TOL
                };
                if g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) {
                    tally.identical += 1;
                }
                if !ok {
                    tally.mismatches.push(format!("{label} {name} bar {bar}: ours {g:?}, TA-Lib {w:?}"));
                }
            }
        }
    }

    println!("oracle: TA-Lib {}, {} series, {} cases", oracle.talib, oracle.series.len(), oracle.cases.len());
    let mut failed = 0;
    for (indicator, t) in &per_indicator {
        println!(
            "oracle: {indicator:<10} {:>7} values, {:>7} bit-identical, max rel err {:.1e}{}, {} mismatches",
            t.values,
            t.identical,
            t.max_rel,
            if t.max_rel > 0.0 { format!(" ({})", t.max_rel_at) } else { String::new() },
            t.mismatches.len()
        );
        for m in t.mismatches.iter().take(10) {
            println!("  MISMATCH {m}");
        }
        failed += t.mismatches.len();
    }
    for indicator in ["sma", "ema", "macd", "rsi", "bollinger", "atr"] {
        assert!(per_indicator.contains_key(indicator), "the oracle file has no {indicator} case");
    }
    assert_eq!(failed, 0, "{failed} values differ from TA-Lib by more than {REL_TOL:e} relative");
}
