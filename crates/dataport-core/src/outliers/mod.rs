//! Outlier rules: which values of a series stand out from it.
//!
//! Three rules ([`Method`]), each judging every value of a series against
//! statistics of the whole series ([`judge`]); a batch of named points is
//! split into series by name, each judged on its own values ([`detect`]); and
//! a stream judges each point against a trailing window of its own series that
//! does not include it, and while that window fills, against the series' points
//! so far once they can flag anything ([`StreamDetector`], [`warm_up`]).
//!
//! The seed service answered `np.where(np.abs(data - data.mean()) > 2 *
//! data.std())`, so the arithmetic is numpy's, operation for operation
//! ([`numpy`]): for the seed rule the outliers are numpy's to the bit, at the
//! boundary included, and so are the statistics of every rule
//! (`tests/oracle/run` checks). Values must be finite; callers check with
//! [`first_non_finite`] (with a NaN or an infinity the answer is whatever the
//! arithmetic gives, never a panic).
//!
//! The definitions, for a series `x` of `n` points:
//!
//! - **z-score** ([`Method::ZScore`]): `score = (x - mean) / sigma`, with
//!   sigma the population (ddof 0, the seed's) or sample (ddof 1) standard
//!   deviation; an outlier when `|x - mean| > threshold * sigma`, which is the
//!   seed's comparison (it can differ from `|score| > threshold` in the last
//!   bit). With sigma 0 the comparison flags every point off the mean, as
//!   numpy does (a constant series has none; a series whose squared
//!   deviations underflow, deviations below about 1e-162, has sigma 0 and
//!   points off the mean), and their scores are ±infinity; a point on the
//!   mean scores 0. The sample sigma of a single point is 0 (numpy: NaN),
//!   which flags nothing, as numpy's NaN comparison does.
//! - **modified z-score** ([`Method::ModifiedZScore`], Iglewicz and Hoaglin):
//!   `score = 0.6745 * (x - median) / MAD`, evaluated left to right, MAD the
//!   median of `|x - median|` (numpy's median: the mean of the two middle
//!   values for even n); when MAD is 0, `score = (x - median) / (1.253314 *
//!   mean absolute deviation from the median)`, and when that is 0 too every
//!   score is 0. An outlier when `|score| > threshold`.
//! - **IQR** ([`Method::Iqr`], Tukey's fences): `q1`, `q3` as
//!   `np.percentile(x, [25, 75])` (linear), `IQR = q3 - q1`, fences `q1 - k *
//!   IQR` and `q3 + k * IQR`; an outlier when strictly outside a fence.
//!   `score = (x - q3) / IQR` above q3, `(x - q1) / IQR` below q1, else 0
//!   (±infinity outside the quartiles when IQR is 0).
//!
//! A series that is too short can flag nothing at all; [`Method::min_points`]
//! says how short, for any threshold.

pub mod numpy;
mod stream;

use std::collections::HashMap;

pub use stream::{StreamDetector, TooManySeries, Verdict, warm_up};

/// The z-score threshold when none is given: the seed's 2.
pub const DEFAULT_Z_THRESHOLD: f64 = 2.0;
/// The modified z-score threshold when none is given: Iglewicz and Hoaglin's 3.5.
pub const DEFAULT_MODIFIED_Z_THRESHOLD: f64 = 3.5;
/// Tukey's k when none is given: 1.5.
pub const DEFAULT_IQR_K: f64 = 1.5;
/// The trailing window of a stream when none is given, in points per series
/// (a server lowers it to its limit when that is smaller).
pub const DEFAULT_WINDOW: usize = 100;

/// The modified z-score's factor on `(x - median) / MAD`: the 0.75 quantile
/// of the standard normal, so that the score is about a z-score for normal data.
const MAD_FACTOR: f64 = 0.6745;
/// The factor on the mean absolute deviation when MAD is 0: sqrt(pi / 2),
/// for the same reason.
const MEAN_AD_FACTOR: f64 = 1.253314;

/// How much rounding [`Method::min_points`] allows for: a series whose exact
/// largest score reaches the threshold to within this relative margin counts
/// as able to flag (rounding tips points over at equality).
const ROUNDING_MARGIN: f64 = 1e-9;

/// Which standard deviation a z-score divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sigma {
    /// Divide the squared deviations by n (`np.std(x)`, the seed's).
    Population,
    /// Divide by n - 1 (`np.std(x, ddof=1)`).
    Sample,
}

impl Sigma {
    fn ddof(self) -> usize {
        match self {
            Sigma::Population => 0,
            Sigma::Sample => 1,
        }
    }
}

/// How the points of a series are judged (definitions in the [module
/// docs](self)). Build it with the `new_*` constructors, which refuse
/// parameters that are not finite and above 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    ZScore { threshold: f64, sigma: Sigma },
    ModifiedZScore { threshold: f64 },
    Iqr { k: f64 },
}

/// A refused [`Method`] parameter.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum MethodError {
    #[error("{parameter} must be a finite number above 0, got {value}")]
    NotPositive { parameter: &'static str, value: f64 },
}

fn positive(parameter: &'static str, value: f64) -> Result<f64, MethodError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(MethodError::NotPositive { parameter, value })
    }
}

impl Method {
    /// The seed service's rule: z-score, threshold 2, population sigma.
    pub const SEED: Method = Method::ZScore { threshold: DEFAULT_Z_THRESHOLD, sigma: Sigma::Population };

    pub fn new_z_score(threshold: f64, sigma: Sigma) -> Result<Method, MethodError> {
        Ok(Method::ZScore { threshold: positive("threshold", threshold)?, sigma })
    }

    pub fn new_modified_z_score(threshold: f64) -> Result<Method, MethodError> {
        Ok(Method::ModifiedZScore { threshold: positive("threshold", threshold)? })
    }

    pub fn new_iqr(k: f64) -> Result<Method, MethodError> {
        Ok(Method::Iqr { k: positive("k", k)? })
    }

    /// The smallest series in which any point can be an outlier: in every
    /// shorter series nothing is flagged, whatever the values.
    ///
    /// With B(n) the largest |score| any series of n points can give in exact
    /// arithmetic, this is the smallest n with B(n) >= threshold, where
    /// equality counts because rounding tips an extreme point over the
    /// threshold about as often as not (numpy flags `-68` in `[-49, -49, -49,
    /// -68, -49]` with the seed rule although its exact score is 2), and
    /// B(n) within 1e-9 of the threshold counts as reaching it:
    ///
    /// - z-score, population sigma: B(n) = sqrt(n - 1) (Samuelson's
    ///   inequality), so n >= 5 at threshold 2;
    /// - z-score, sample sigma: B(n) = (n - 1) / sqrt(n), so n >= 6 at 2;
    /// - modified z-score: B(2) = 0.6745 and B(3) is unbounded, so 3 for any
    ///   threshold above 0.6745, else 2 (two points score ±0.6745);
    /// - IQR: B(2) = 0.5, B(3) = 1, B(4) = 3 and B(5) is unbounded (IQR 0
    ///   with a point outside the quartiles), so 4 for 1 < k <= 3 (the
    ///   default 1.5 included) and 5 above 3.
    ///
    /// A series whose values agree in all but their last few digits (such as
    /// `[1e16, 1e16 + 2]`) loses the deviations themselves to rounding, and
    /// this bound does not hold for it. A NaN threshold flags nothing:
    /// `usize::MAX`.
    pub fn min_points(&self) -> usize {
        match *self {
            Method::ZScore { threshold, sigma } => z_min_points(threshold, sigma),
            Method::ModifiedZScore { threshold } => smallest_reaching(&[MAD_FACTOR], 3, threshold),
            Method::Iqr { k } => smallest_reaching(&[0.5, 1.0, 3.0], 5, k),
        }
    }
}

impl Default for Method {
    fn default() -> Self {
        Method::SEED
    }
}

/// Whether a series whose exact largest score is `bound` can flag a point at
/// `threshold`, allowing for rounding.
fn reaches(bound: f64, threshold: f64) -> bool {
    bound >= threshold * (1.0 - ROUNDING_MARGIN)
}

/// The smallest n >= 2 whose bound (`bounds[n - 2]`) reaches `threshold`,
/// or `unbounded` when none of them does.
fn smallest_reaching(bounds: &[f64], unbounded: usize, threshold: f64) -> usize {
    if threshold.is_nan() {
        return usize::MAX;
    }
    bounds.iter().position(|&b| reaches(b, threshold)).map_or(unbounded, |i| i + 2)
}

/// B(n) for the z-score: the largest |score| among n points.
fn z_bound(n: usize, sigma: Sigma) -> f64 {
    let n = n as f64;
    match sigma {
        Sigma::Population => (n - 1.0).sqrt(),
        Sigma::Sample => (n - 1.0) / n.sqrt(),
    }
}

fn z_min_points(threshold: f64, sigma: Sigma) -> usize {
    if threshold.is_nan() {
        return usize::MAX;
    }
    // One point has sigma 0: nothing below 2 can flag.
    if reaches(z_bound(2, sigma), threshold) {
        return 2;
    }
    // Solve B(n) = t: n = t^2 + 1, or sqrt(n) = (t + sqrt(t^2 + 4)) / 2.
    let t = threshold * (1.0 - ROUNDING_MARGIN);
    let estimate = match sigma {
        Sigma::Population => t * t + 1.0,
        Sigma::Sample => {
            let root = (t + (t * t + 4.0).sqrt()) / 2.0;
            root * root
        }
    }
    .ceil();
    // Beyond 2^52 points no window or batch exists, and f64 counts stop being exact.
    if estimate >= 4_503_599_627_370_496.0 {
        return usize::MAX;
    }
    let mut n = (estimate as usize).max(2);
    // The estimate is within a point or two; settle it on B itself.
    while n > 2 && reaches(z_bound(n - 1, sigma), threshold) {
        n -= 1;
    }
    while !reaches(z_bound(n, sigma), threshold) {
        n += 1;
    }
    n
}

/// What a series was judged against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stats {
    /// `mean` is `np.mean(x)`, `sigma` is `np.std(x, ddof)` (0 for a single
    /// point with the sample sigma).
    ZScore { mean: f64, sigma: f64 },
    /// `median` is `np.median(x)`, `mad` is `np.median(|x - median|)`,
    /// `mean_abs_dev` is `np.mean(|x - median|)`.
    ModifiedZScore { median: f64, mad: f64, mean_abs_dev: f64 },
    /// `q1`, `q3` are `np.percentile(x, [25, 75])`; the fences are `q1 - k *
    /// (q3 - q1)` and `q3 + k * (q3 - q1)`.
    Iqr { q1: f64, q3: f64, lower_fence: f64, upper_fence: f64 },
}

/// The statistics of `values` for `method`, NaN for an empty series.
/// `scratch` holds copies for the selections of the median and quartiles.
pub(crate) fn stats_of(values: &[f64], method: &Method, scratch: &mut Vec<f64>) -> Stats {
    let n = values.len() as f64;
    match *method {
        Method::ZScore { sigma, .. } => {
            let mean = numpy::mean(values);
            let sigma = match values.len() {
                0 => f64::NAN,
                len if len <= sigma.ddof() => 0.0,
                _ => numpy::std_around(values, mean, sigma.ddof()),
            };
            Stats::ZScore { mean, sigma }
        }
        Method::ModifiedZScore { .. } => {
            scratch.clear();
            scratch.extend_from_slice(values);
            let median = numpy::median_in_place(scratch);
            scratch.clear();
            scratch.extend(values.iter().map(|&x| (x - median).abs()));
            // Summed in series order, before the selection reorders them.
            let mean_abs_dev = numpy::sum(scratch) / n;
            let mad = numpy::median_in_place(scratch);
            Stats::ModifiedZScore { median, mad, mean_abs_dev }
        }
        Method::Iqr { k } => {
            scratch.clear();
            scratch.extend_from_slice(values);
            let (q1, q3) = numpy::quartiles_in_place(scratch);
            let iqr = q3 - q1;
            Stats::Iqr { q1, q3, lower_fence: q1 - k * iqr, upper_fence: q3 + k * iqr }
        }
    }
}

/// The score of `x` against `stats`, and whether it is an outlier.
pub(crate) fn score(stats: &Stats, method: &Method, x: f64) -> (f64, bool) {
    match (*stats, *method) {
        (Stats::ZScore { mean, sigma }, Method::ZScore { threshold, .. }) => {
            // The seed's comparison, literally, also when sigma is 0: numpy's
            // sigma underflows to 0 for deviations below 1e-162 and it then
            // flags every point off the mean.
            let d = x - mean;
            let s = match (d == 0.0, sigma == 0.0) {
                (true, _) => 0.0,
                (false, true) => f64::INFINITY.copysign(d),
                (false, false) => d / sigma,
            };
            (s, d.abs() > threshold * sigma)
        }
        (Stats::ModifiedZScore { median, mad, mean_abs_dev }, Method::ModifiedZScore { threshold }) => {
            let s = if mad != 0.0 {
                MAD_FACTOR * (x - median) / mad
            } else if mean_abs_dev != 0.0 {
                (x - median) / (MEAN_AD_FACTOR * mean_abs_dev)
            } else {
                0.0
            };
            (s, s.abs() > threshold)
        }
        (Stats::Iqr { q1, q3, lower_fence, upper_fence }, Method::Iqr { .. }) => {
            let iqr = q3 - q1;
            let s = if x > q3 {
                (x - q3) / iqr
            } else if x < q1 {
                (x - q1) / iqr
            } else {
                0.0
            };
            (s, x < lower_fence || x > upper_fence)
        }
        _ => unreachable!("stats are always computed for the method that judges with them"),
    }
}

/// One series judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub stats: Stats,
    /// One per value, in series order.
    pub scores: Vec<f64>,
    /// Positions of the outliers in the series, ascending.
    pub outliers: Vec<usize>,
}

/// Judges every value of one series against the statistics of the whole
/// series. Values must be finite (see [`first_non_finite`]). An empty series
/// has NaN statistics and no scores.
pub fn judge(values: &[f64], method: &Method) -> Judgement {
    let stats = stats_of(values, method, &mut Vec::new());
    let mut scores = Vec::with_capacity(values.len());
    let mut outliers = Vec::new();
    for (i, &x) in values.iter().enumerate() {
        let (s, outlier) = score(&stats, method, x);
        scores.push(s);
        if outlier {
            outliers.push(i);
        }
    }
    Judgement { stats, scores, outliers }
}

/// One series of a batch, judged.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesResult {
    pub name: String,
    /// Points of the batch in this series.
    pub count: usize,
    /// How many of them are outliers.
    pub outliers: usize,
    pub stats: Stats,
}

/// A batch judged series by series.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Positions in the batch of the outliers, ascending.
    pub indices: Vec<usize>,
    /// The score of every point, in batch order.
    pub scores: Vec<f64>,
    /// Every series of the batch, by name (ascending bytes).
    pub series: Vec<SeriesResult>,
}

/// Groups a batch of `(name, value)` points into series by name and judges
/// each series on its own values, as [`judge`] would; positions stay those of
/// the batch. Values must be finite (see [`first_non_finite`]).
pub fn detect<'a>(points: impl IntoIterator<Item = (&'a str, f64)>, method: &Method) -> Detection {
    let mut values = Vec::new();
    let mut series = Vec::new();
    let mut names: Vec<&'a str> = Vec::new();
    let mut by_name: HashMap<&'a str, usize> = HashMap::new();
    // Batches often hold runs of one name: skip the hash for a repeat.
    let mut last: Option<(&'a str, usize)> = None;
    for (name, value) in points {
        let s = match last {
            Some((n, s)) if n == name => s,
            _ => *by_name.entry(name).or_insert_with(|| {
                names.push(name);
                names.len() - 1
            }),
        };
        last = Some((name, s));
        values.push(value);
        series.push(s);
    }
    detect_grouped(&values, &series, |s| s, &names, method, true)
}

/// A batch as columns: point `i` has value `values[i]` and belongs to the
/// series named `names[series[i]]`. Each name appears once in `names`; a
/// name no point refers to is left out of the answer. With one name,
/// `series` may be empty: every point is in that series.
#[derive(Debug)]
pub struct Columns<'a, S: AsRef<str> = String> {
    pub values: &'a [f64],
    pub series: &'a [u32],
    pub names: &'a [S],
}

// By hand: the fields are references, so no `S: Copy` is needed.
impl<S: AsRef<str>> Clone for Columns<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: AsRef<str>> Copy for Columns<'_, S> {}

/// [`detect`] over a batch already split into columns, with the same
/// answer: what a server that reads requests in place has, without a
/// `(name, value)` per point.
///
/// # Panics
///
/// When `values` and `series` differ in length, or a series number is not
/// below `names.len()`: the caller built the columns wrong.
pub fn detect_columns<S: AsRef<str>>(columns: Columns<'_, S>, method: &Method) -> Detection {
    columns_grouped(columns, method, true)
}

/// The outliers' positions of [`detect_columns`], without a score per point:
/// what the seed contract answers, for a fraction of the memory.
pub fn outlier_positions<S: AsRef<str>>(columns: Columns<'_, S>, method: &Method) -> Vec<usize> {
    columns_grouped(columns, method, false).indices
}

fn columns_grouped<S: AsRef<str>>(columns: Columns<'_, S>, method: &Method, scores: bool) -> Detection {
    let Columns { values, series, names } = columns;
    if let ([], [name]) = (series, names) {
        let mut out = Detection { indices: Vec::new(), scores: Vec::new(), series: Vec::new() };
        if !values.is_empty() {
            out.scores = if scores { vec![0.0; values.len()] } else { Vec::new() };
            let result = judge_series(name.as_ref(), values, None, method, &mut out, &mut Vec::new());
            out.series.push(result);
        }
        return out;
    }
    detect_grouped(values, series, |s| s as usize, names, method, scores)
}

/// [`detect_columns`] with series numbers of any type, turned into `usize` by
/// `index`; `scores` false leaves [`Detection::scores`] empty.
fn detect_grouped<I: Copy, S: AsRef<str>>(
    values: &[f64],
    series: &[I],
    index: impl Fn(I) -> usize,
    names: &[S],
    method: &Method,
    scores: bool,
) -> Detection {
    assert_eq!(values.len(), series.len(), "Columns: one series number per value");
    let total = values.len();
    // Points grouped by series, in batch order within each: a counting sort.
    let mut counts = vec![0usize; names.len()];
    for &s in series {
        let s = index(s);
        assert!(s < names.len(), "Columns: series number {s} but only {} names", names.len());
        counts[s] += 1;
    }
    let mut starts = Vec::with_capacity(names.len() + 1);
    let mut at = 0;
    for &c in &counts {
        starts.push(at);
        at += c;
    }
    starts.push(at);
    // One series, the common case, is judged in place.
    let single = counts.iter().filter(|&&c| c > 0).count() == 1;
    let (positions, grouped) = if single {
        (Vec::new(), Vec::new())
    } else {
        let mut next = starts.clone();
        let mut positions = vec![0usize; total];
        let mut grouped = vec![0.0; total];
        for (i, (&s, &v)) in series.iter().zip(values).enumerate() {
            let slot = &mut next[index(s)];
            positions[*slot] = i;
            grouped[*slot] = v;
            *slot += 1;
        }
        (positions, grouped)
    };

    let mut order: Vec<usize> = (0..names.len()).filter(|&s| counts[s] > 0).collect();
    order.sort_unstable_by(|&a, &b| names[a].as_ref().cmp(names[b].as_ref()));

    let mut out = Detection {
        indices: Vec::new(),
        scores: if scores { vec![0.0; total] } else { Vec::new() },
        series: Vec::with_capacity(order.len()),
    };
    let mut scratch = Vec::new();
    for s in order {
        let range = starts[s]..starts[s + 1];
        let (x, at) =
            if single { (values, None) } else { (&grouped[range.clone()], Some(&positions[range])) };
        let result = judge_series(names[s].as_ref(), x, at, method, &mut out, &mut scratch);
        out.series.push(result);
    }
    out.indices.sort_unstable();
    out
}

/// Judges one series `x` whose points sit at `positions` in the batch (at
/// their own index when `None`), adding its outliers to `out.indices` and
/// its scores to `out.scores` when that holds one per point.
fn judge_series(
    name: &str,
    x: &[f64],
    positions: Option<&[usize]>,
    method: &Method,
    out: &mut Detection,
    scratch: &mut Vec<f64>,
) -> SeriesResult {
    let stats = stats_of(x, method, scratch);
    let mut outliers = 0;
    for (k, &v) in x.iter().enumerate() {
        let position = positions.map_or(k, |p| p[k]);
        let (score, outlier) = score(&stats, method, v);
        if let Some(slot) = out.scores.get_mut(position) {
            *slot = score;
        }
        if outlier {
            out.indices.push(position);
            outliers += 1;
        }
    }
    SeriesResult { name: name.to_owned(), count: x.len(), outliers, stats }
}

/// The position of the first value that is NaN or infinite, if any.
pub fn first_non_finite(values: impl IntoIterator<Item = f64>) -> Option<usize> {
    values.into_iter().position(|v| !v.is_finite())
}

#[cfg(test)]
mod tests;
