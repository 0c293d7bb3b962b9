//! Compares the outlier rules with numpy's answers, written by tests/oracle/outliers.py.
//!
//! `tests/oracle/run` makes the files and runs this test with
//! DATAPORT_OUTLIERS_ORACLE_FILE naming the JSON (the arrays are in the `.f64`
//! file beside it); the test is ignored otherwise, so a plain `cargo test`
//! needs no Python.
//!
//! What "the same" means: sums, means, sigmas, medians, MADs, quartiles and
//! fences bit for bit (a zero of the other sign counts as a mismatch too),
//! outlier sets exactly, and scores to 1e-12 relative (reported: how many are
//! bit-identical).

use std::collections::{BTreeMap, HashMap};

use dataport_core::outliers::{Method, Sigma, Stats, StreamDetector, detect, judge, numpy};
use serde::Deserialize;

const SCORE_REL_TOL: f64 = 1e-12;

/// A double as Python's repr, so that it parses to exactly numpy's; null is NaN.
type Num = Option<String>;

#[derive(Deserialize)]
struct Oracle {
    numpy: String,
    blob: String,
    arrays: HashMap<String, (usize, usize)>,
    reductions: Vec<Reduction>,
    judgements: Vec<JudgementCase>,
    batches: Vec<Batch>,
    streams: Vec<Stream>,
}

#[derive(Deserialize)]
struct Reduction {
    series: String,
    sum: Num,
    #[serde(default)]
    mean: Num,
    #[serde(default)]
    std0: Num,
    #[serde(default)]
    std1: Num,
    #[serde(default)]
    median: Num,
    #[serde(default)]
    q1: Num,
    #[serde(default)]
    q3: Num,
}

#[derive(Deserialize)]
struct MethodSpec {
    kind: String,
    threshold: Num,
    sigma: Option<String>,
    k: Num,
}

#[derive(Deserialize)]
struct JudgementCase {
    series: String,
    method: MethodSpec,
    stats: BTreeMap<String, Num>,
    scores: String,
    outliers: Vec<usize>,
}

#[derive(Deserialize)]
struct Batch {
    label: String,
    names: Vec<String>,
    values: String,
    method: MethodSpec,
    indices: Vec<usize>,
    scores: String,
    series: Vec<BatchSeries>,
}

#[derive(Deserialize)]
struct BatchSeries {
    name: String,
    count: usize,
    outliers: usize,
    stats: BTreeMap<String, Num>,
}

#[derive(Deserialize)]
struct Stream {
    names: Vec<String>,
    values: String,
    method: MethodSpec,
    window: usize,
    min_points: usize,
    /// [position in the stream, score, window points, outlier, warm-up]
    verdicts: Vec<(usize, Num, usize, bool, bool)>,
}

fn num(v: &Num) -> f64 {
    v.as_deref().map_or(f64::NAN, |s| {
        s.parse().unwrap_or_else(|e| panic!("the oracle file holds {s:?}, not a number: {e}"))
    })
}

fn method(m: &MethodSpec) -> Method {
    match m.kind.as_str() {
        "z" => {
            let sigma = match m.sigma.as_deref() {
                Some("population") => Sigma::Population,
                Some("sample") => Sigma::Sample,
                other => panic!("the oracle names a sigma this test does not know: {other:?}"),
            };
            Method::ZScore { threshold: num(&m.threshold), sigma }
        }
        "modified" => Method::ModifiedZScore { threshold: num(&m.threshold) },
        "iqr" => Method::Iqr { k: num(&m.k) },
        other => panic!("the oracle names a method this test does not know: {other}"),
    }
}

fn label(m: &MethodSpec) -> String {
    match m.kind.as_str() {
        "z" => format!("z({}, {})", m.threshold.as_deref().unwrap_or("?"), m.sigma.as_deref().unwrap_or("?")),
        "modified" => format!("modified({})", m.threshold.as_deref().unwrap_or("?")),
        _ => format!("iqr({})", m.k.as_deref().unwrap_or("?")),
    }
}

fn stats_map(s: &Stats) -> BTreeMap<String, f64> {
    let pairs: Vec<(&str, f64)> = match *s {
        Stats::ZScore { mean, sigma } => vec![("mean", mean), ("sigma", sigma)],
        Stats::ModifiedZScore { median, mad, mean_abs_dev } => {
            vec![("median", median), ("mad", mad), ("mean_abs_dev", mean_abs_dev)]
        }
        Stats::Iqr { q1, q3, lower_fence, upper_fence } => {
            vec![("q1", q1), ("q3", q3), ("lower_fence", lower_fence), ("upper_fence", upper_fence)]
        }
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn identical(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Counts of what matched, one per kind of value, printed at the end.
#[derive(Default)]
struct Tally {
    values: usize,
    identical: usize,
    max_rel: f64,
    mismatches: Vec<String>,
}

impl Tally {
    /// Bit for bit.
    fn exact(&mut self, what: impl FnOnce() -> String, ours: f64, numpy: f64) {
        self.values += 1;
        if identical(ours, numpy) {
            self.identical += 1;
        } else {
            self.mismatches.push(format!("{}: ours {ours:?}, numpy {numpy:?}", what()));
        }
    }

    /// To SCORE_REL_TOL relative.
    fn close(&mut self, what: impl FnOnce() -> String, ours: f64, numpy: f64) {
        self.values += 1;
        if identical(ours, numpy) {
            self.identical += 1;
            return;
        }
        let rel = if ours.is_finite() && numpy.is_finite() {
            (ours - numpy).abs() / ours.abs().max(numpy.abs())
        } else {
            f64::INFINITY
        };
        self.max_rel = self.max_rel.max(rel);
        if rel > SCORE_REL_TOL {
            self.mismatches.push(format!("{}: ours {ours:?}, numpy {numpy:?}", what()));
        }
    }

    fn same_set(&mut self, what: impl FnOnce() -> String, ours: &[usize], numpy: &[usize]) {
        self.values += 1;
        if ours == numpy {
            self.identical += 1;
        } else {
            self.mismatches.push(format!("{}: ours {ours:?}, numpy {numpy:?}", what()));
        }
    }
}

struct Arrays {
    blob: Vec<f64>,
    index: HashMap<String, (usize, usize)>,
}

impl Arrays {
    fn get(&self, name: &str) -> &[f64] {
        let &(offset, len) =
            self.index.get(name).unwrap_or_else(|| panic!("the oracle file has no array {name:?}"));
        &self.blob[offset..offset + len]
    }
}

type Tallies = BTreeMap<&'static str, Tally>;

/// Reductions: checked against numpy, tallied; returns the longest series summed.
fn check_reductions(oracle: &Oracle, arrays: &Arrays, tallies: &mut Tallies) -> usize {
    let mut largest_sum = 0;
    for red in &oracle.reductions {
        let x = arrays.get(&red.series);
        let s = &red.series;
        largest_sum = largest_sum.max(x.len());
        let mut sorted = x.to_vec();
        let t = tallies.entry("sum").or_default();
        t.exact(|| format!("{s} sum"), numpy::sum(x), num(&red.sum));
        if x.is_empty() {
            continue;
        }
        let t = tallies.entry("mean, std").or_default();
        t.exact(|| format!("{s} mean"), numpy::mean(x), num(&red.mean));
        t.exact(|| format!("{s} std"), numpy::std(x, 0), num(&red.std0));
        if x.len() > 1 {
            t.exact(|| format!("{s} std ddof 1"), numpy::std(x, 1), num(&red.std1));
        }
        let t = tallies.entry("median, quartiles").or_default();
        t.exact(|| format!("{s} median"), numpy::median_in_place(&mut sorted), num(&red.median));
        let (q1, q3) = numpy::quartiles_in_place(&mut sorted);
        t.exact(|| format!("{s} q1"), q1, num(&red.q1));
        t.exact(|| format!("{s} q3"), q3, num(&red.q3));
    }
    largest_sum
}

/// Judgements: checked against numpy, tallied.
fn check_judgements(oracle: &Oracle, arrays: &Arrays, tallies: &mut Tallies) {
    for case in &oracle.judgements {
        let m = method(&case.method);
        let x = arrays.get(&case.series);
        let name = || format!("{} {}", case.series, label(&case.method));
        let j = judge(x, &m);
        let ours = stats_map(&j.stats);
        assert_eq!(ours.keys().collect::<Vec<_>>(), case.stats.keys().collect::<Vec<_>>(), "{}", name());
        let t = tallies.entry("judge: stats").or_default();
        for (k, want) in &case.stats {
            t.exact(|| format!("{} {k}", name()), ours[k], num(want));
        }
        tallies.entry("judge: outlier sets").or_default().same_set(name, &j.outliers, &case.outliers);
        let want = arrays.get(&case.scores);
        assert_eq!(j.scores.len(), want.len(), "{}: scores", name());
        let t = tallies.entry("judge: scores").or_default();
        for (i, (&g, &w)) in j.scores.iter().zip(want).enumerate() {
            t.close(|| format!("{} score {i}", name()), g, w);
        }
    }
}

/// Batches: checked against numpy, tallied.
fn check_batches(oracle: &Oracle, arrays: &Arrays, tallies: &mut Tallies) {
    for b in &oracle.batches {
        let m = method(&b.method);
        let values = arrays.get(&b.values);
        assert_eq!(values.len(), b.names.len(), "batch {}", b.label);
        let name = || format!("batch {} {}", b.label, label(&b.method));
        let d = detect(b.names.iter().map(String::as_str).zip(values.iter().copied()), &m);
        tallies.entry("detect: outlier sets").or_default().same_set(name, &d.indices, &b.indices);
        let t = tallies.entry("detect: scores").or_default();
        for (i, (&g, &w)) in d.scores.iter().zip(arrays.get(&b.scores)).enumerate() {
            t.close(|| format!("{} score {i}", name()), g, w);
        }
        let got: Vec<(&str, usize, usize)> =
            d.series.iter().map(|s| (s.name.as_str(), s.count, s.outliers)).collect();
        let want: Vec<(&str, usize, usize)> =
            b.series.iter().map(|s| (s.name.as_str(), s.count, s.outliers)).collect();
        assert_eq!(got, want, "{}: series", name());
        let t = tallies.entry("detect: stats").or_default();
        for (ours, theirs) in d.series.iter().zip(&b.series) {
            let ours = stats_map(&ours.stats);
            for (k, want) in &theirs.stats {
                t.exact(|| format!("{} {} {k}", name(), theirs.name), ours[k], num(want));
            }
        }
    }
}

/// Streams: checked against numpy, tallied.
fn check_streams(oracle: &Oracle, arrays: &Arrays, tallies: &mut Tallies) {
    for s in &oracle.streams {
        let m = method(&s.method);
        let name = || format!("stream {} window {}", label(&s.method), s.window);
        assert_eq!(m.min_points(), s.min_points, "{}: min_points", name());
        let mut det = StreamDetector::new(m, s.window, 16);
        let values = arrays.get(&s.values);
        let mut got = Vec::new();
        for (i, (n, &v)) in s.names.iter().zip(values).enumerate() {
            if let Some(verdict) = det.push(n, v).expect("a point the stream takes") {
                got.push((i, verdict));
            }
        }
        let ours: Vec<usize> = got.iter().map(|(i, _)| *i).collect();
        let theirs: Vec<usize> = s.verdicts.iter().map(|v| v.0).collect();
        assert_eq!(ours, theirs, "{}: which points were judged", name());
        let flagged = |it: &mut dyn Iterator<Item = (usize, bool)>| -> Vec<usize> {
            it.filter(|&(_, o)| o).map(|(i, _)| i).collect()
        };
        let ours_flagged = flagged(&mut got.iter().map(|(i, v)| (*i, v.outlier)));
        let theirs_flagged = flagged(&mut s.verdicts.iter().map(|v| (v.0, v.3)));
        tallies.entry("stream: outlier sets").or_default().same_set(name, &ours_flagged, &theirs_flagged);
        let t = tallies.entry("stream: scores").or_default();
        for ((i, v), want) in got.iter().zip(&s.verdicts) {
            assert_eq!(v.window_points, want.2, "{} point {i}: window points", name());
            assert_eq!(v.warm_up, want.4, "{} point {i}: warm-up", name());
            t.close(|| format!("{} point {i}", name()), v.score, num(&want.1));
        }
    }
}

#[test]
#[ignore = "needs numpy's answers: run tests/oracle/run, which makes them and runs this"]
fn outlier_rules_match_numpy_on_every_oracle_case() {
    let path = std::env::var_os("DATAPORT_OUTLIERS_ORACLE_FILE")
        .expect("DATAPORT_OUTLIERS_ORACLE_FILE names numpy's answers; tests/oracle/run sets it");
    let path = std::path::PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read DATAPORT_OUTLIERS_ORACLE_FILE {}: {e}", path.display()));
    let mut oracle: Oracle = serde_json::from_str(&text).unwrap();
    let blob_path = path.with_file_name(&oracle.blob);
    let bytes =
        std::fs::read(&blob_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", blob_path.display()));
    let blob = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
    let arrays = Arrays { blob, index: std::mem::take(&mut oracle.arrays) };
    let mut tallies = Tallies::new();
    let largest_sum = check_reductions(&oracle, &arrays, &mut tallies);
    check_judgements(&oracle, &arrays, &mut tallies);
    check_batches(&oracle, &arrays, &mut tallies);
    check_streams(&oracle, &arrays, &mut tallies);

    println!(
        "oracle: numpy {}, {} reductions (up to {largest_sum} values), {} judgements, {} batches, {} streams",
        oracle.numpy,
        oracle.reductions.len(),
        oracle.judgements.len(),
        oracle.batches.len(),
        oracle.streams.len()
    );
    let mut failed = 0;
    for (what, t) in &tallies {
        println!(
            "oracle: {what:<22} {:>9} compared, {:>9} bit-identical, max rel err {:.1e}, {} mismatches",
            t.values,
            t.identical,
            t.max_rel,
            t.mismatches.len()
        );
        for m in t.mismatches.iter().take(10) {
            println!("  MISMATCH {m}");
        }
        failed += t.mismatches.len();
    }
    for what in ["sum", "judge: outlier sets", "detect: outlier sets", "stream: outlier sets"] {
        assert!(tallies.get(what).is_some_and(|t| t.values > 0), "the oracle file has nothing for {what}");
    }
    assert_eq!(failed, 0, "{failed} values differ from numpy");
}
