//! The DetectStream input (a CSV for `dataport outliers --stream`) and the
//! check of what the CLI printed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail, ensure};

use crate::rng::SplitMix64;

const SEED: u64 = 0x5eed_5742_ea11;
/// 2023-11-14T22:13:20Z; each round of the series is one second later.
const FIRST_SECOND: u64 = 1_700_000_000;
/// One planted outlier every PLANTED_EVERY + 1 metrics, the first half that
/// far in: with 10 series, 4,000 points of a series apart (so that no window
/// of the default 100 points ever holds two of them), each on the next series.
const PLANTED_EVERY: usize = 40_000;

/// Writes `n` metrics: round r holds one point of each of `series` series
/// (`s0`, `s1`, ...), all at time FIRST_SECOND + r, values uniform in
/// [0, 40) with 4 decimals, but +-1000 at the planted positions.
pub fn write_csv(out: &Path, n: usize, series: usize) -> anyhow::Result<()> {
    ensure!(series >= 1, "need at least one series");
    let file = File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = SplitMix64::new(SEED);
    let mut planted = Vec::new();
    let mut next = PLANTED_EVERY / 2;
    writeln!(w, "time,name,value")?;
    for i in 0..n {
        let value = rng.unit() * 40.0;
        let (time, name) = (FIRST_SECOND + (i / series) as u64, i % series);
        if i == next {
            let value = if planted.len() % 2 == 0 { 1000.0 } else { -1000.0 };
            writeln!(w, "{time},s{name},{value:.4}")?;
            planted.push((i, value));
            next += PLANTED_EVERY + 1;
        } else {
            writeln!(w, "{time},s{name},{value:.4}")?;
        }
    }
    w.flush()?;
    println!("metrics {n}");
    println!("series {series}");
    for (i, value) in planted {
        println!("planted {i} {value}");
    }
    Ok(())
}

/// Fails unless every planted outlier (the `planted INDEX VALUE` lines of
/// `planted`) is among the anomalies in `anomalies` (the CLI's CSV: index,
/// time, name, value, score, warm_up) with its value; prints `anomalies COUNT
/// PLANTED_FOUND PLANTED OTHERS`.
pub fn check(planted: &Path, anomalies: &Path) -> anyhow::Result<()> {
    let mut want = Vec::new();
    let file = File::open(planted).with_context(|| format!("cannot read {}", planted.display()))?;
    for line in BufReader::new(file).lines() {
        let line = line?;
        let mut fields = line.split_whitespace();
        if fields.next() != Some("planted") {
            continue;
        }
        let (Some(i), Some(v)) = (fields.next(), fields.next()) else { bail!("bad line {line:?}") };
        want.push((i.parse::<u64>()?, v.parse::<f64>()?));
    }
    ensure!(!want.is_empty(), "{} names no planted outlier", planted.display());

    let mut reader =
        csv::Reader::from_path(anomalies).with_context(|| format!("cannot read {}", anomalies.display()))?;
    let header = reader.headers()?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no {name} column in {}", anomalies.display()))
    };
    let (index_at, value_at) = (column("index")?, column("value")?);
    let mut found: HashMap<u64, f64> = HashMap::new();
    for record in reader.records() {
        let record = record?;
        let field = |at: usize| record.get(at).unwrap_or("");
        found.insert(field(index_at).parse()?, field(value_at).parse()?);
    }
    let mut hits = 0;
    for &(i, v) in &want {
        match found.get(&i) {
            Some(&got) if got == v => hits += 1,
            Some(&got) => bail!("anomaly {i} has value {got}; {v} was planted there"),
            None => bail!("the planted outlier {i} ({v}) is not among the {} anomalies printed", found.len()),
        }
    }
    println!("anomalies {} {hits} {} {}", found.len(), want.len(), found.len() - hits);
    Ok(())
}
