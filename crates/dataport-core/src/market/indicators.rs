//! SMA, EMA, MACD, RSI, Bollinger Bands and ATR, seeded exactly as TA-Lib seeds them.

use std::fmt;

/// The largest period any indicator accepts, TA-Lib's own limit.
pub const MAX_PERIOD: usize = 100_000;

/// A refused indicator input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndicatorError {
    #[error("period {0} is outside 1..={MAX_PERIOD}")]
    Period(usize),
    #[error("high, low and close must hold one value per bar, got {high}, {low} and {close} values")]
    LengthMismatch { high: usize, low: usize, close: usize },
}

/// A window length in bars, 1..=[`MAX_PERIOD`].
///
/// TA-Lib itself refuses 1 for RSI, Bollinger Bands and the MACD EMAs; here 1
/// means what the formulas say (RSI(1) is 100 after a rise, 0 after a fall or
/// no change; Bollinger(1) bands equal the input; a 1-bar EMA is the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(usize);

impl Period {
    pub const fn new(bars: usize) -> Result<Self, IndicatorError> {
        if bars == 0 || bars > MAX_PERIOD {
            return Err(IndicatorError::Period(bars));
        }
        Ok(Period(bars))
    }

    pub const fn get(self) -> usize {
        self.0
    }

    fn as_f64(self) -> f64 {
        // Exact: a period is at most MAX_PERIOD, far below 2^53.
        self.0 as f64
    }

    /// TA-Lib's smoothing factor for an EMA of this period, 2 / (n + 1).
    fn ema_k(self) -> f64 {
        2.0 / (self.as_f64() + 1.0)
    }
}

impl TryFrom<usize> for Period {
    type Error = IndicatorError;

    fn try_from(bars: usize) -> Result<Self, IndicatorError> {
        Period::new(bars)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The index of the first bar at which every series holds a number (the
/// length when none does): TA-Lib's Python wrapper starts there.
fn first_valid(series: &[&[f64]]) -> usize {
    let len = series.iter().map(|s| s.len()).min().unwrap_or(0);
    (0..len).find(|&i| series.iter().all(|s| !s[i].is_nan())).unwrap_or(len)
}

fn nans(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}

// --- SMA -------------------------------------------------------------------

/// Bars without an SMA value: `period - 1`.
pub fn sma_lookback(period: Period) -> usize {
    period.get() - 1
}

/// Simple moving average; the first value, at bar `period - 1`, is the mean of
/// bars `0..period`, and the sum then rolls (add the new bar, drop the oldest)
/// as TA-Lib's does.
pub fn sma(values: &[f64], period: Period) -> Vec<f64> {
    from_first_valid(values, |x, out| sma_into(x, period, out))
}

/// `fill` run on `values` from its first valid bar on, writing into a
/// column of NaNs as long as `values`: the bars before stay NaN.
fn from_first_valid(values: &[f64], fill: impl FnOnce(&[f64], &mut [f64])) -> Vec<f64> {
    let mut out = nans(values.len());
    let start = first_valid(&[values]);
    fill(&values[start..], &mut out[start..]);
    out
}

fn sma_into(x: &[f64], period: Period, out: &mut [f64]) {
    let n = period.get();
    if x.len() < n {
        return;
    }
    let mut total: f64 = x[..n - 1].iter().sum();
    for i in n - 1..x.len() {
        total += x[i];
        out[i] = total / period.as_f64();
        total -= x[i + 1 - n];
    }
}

// --- EMA -------------------------------------------------------------------

/// Bars without an EMA value: `period - 1`.
pub fn ema_lookback(period: Period) -> usize {
    period.get() - 1
}

/// Exponential moving average with k = 2 / (period + 1), seeded at bar
/// `period - 1` with the SMA of bars `0..period`.
///
/// A 1-bar EMA is the input itself, NaNs included, as in TA-Lib.
pub fn ema(values: &[f64], period: Period) -> Vec<f64> {
    if period.get() == 1 {
        return values.to_vec();
    }
    from_first_valid(values, |x, out| ema_into(x, period, out))
}

/// Writes an EMA of `x` into `out[n - 1..]`, seeded at bar `n - 1` with the
/// mean of the first `n` bars.
fn ema_into(x: &[f64], period: Period, out: &mut [f64]) {
    let n = period.get();
    if x.len() < n {
        return;
    }
    let seed: f64 = x[..n].iter().sum();
    out[n - 1] = seed / period.as_f64();
    ema_tail(&x[n..], period.ema_k(), out[n - 1], &mut out[n..]);
}

/// The EMA recurrence from `prev` on; FMA as in [`macd_tail`].
#[multiversion::multiversion(targets("x86_64+fma"))]
fn ema_tail(x: &[f64], k: f64, mut prev: f64, out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        // Fused, as the TA-Lib build we compare with computes it: bit for bit equal.
        prev = (v - prev).mul_add(k, prev);
        *o = prev;
    }
}

// --- MACD ------------------------------------------------------------------

/// MACD periods; `Default` is TA-Lib's 12 / 26 / 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacdParams {
    pub fast: Period,
    pub slow: Period,
    pub signal: Period,
}

impl MacdParams {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Self, IndicatorError> {
        Ok(MacdParams { fast: Period::new(fast)?, slow: Period::new(slow)?, signal: Period::new(signal)? })
    }

    /// TA-Lib swaps a fast period longer than the slow one.
    fn ordered(self) -> (Period, Period) {
        if self.slow < self.fast { (self.slow, self.fast) } else { (self.fast, self.slow) }
    }
}

impl Default for MacdParams {
    fn default() -> Self {
        MacdParams { fast: Period(12), slow: Period(26), signal: Period(9) }
    }
}

/// The three MACD lines, each as long as the input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Macd {
    pub macd: Vec<f64>,
    pub signal: Vec<f64>,
    pub hist: Vec<f64>,
}

/// Bars without MACD values: `(slow - 1) + (signal - 1)`, 33 for 12 / 26 / 9.
pub fn macd_lookback(params: MacdParams) -> usize {
    let (_, slow) = params.ordered();
    (slow.get() - 1) + (params.signal.get() - 1)
}

/// MACD = EMA(fast) - EMA(slow), both with k = 2 / (n + 1) and both seeded at
/// bar `slow - 1` with the mean of the `n` bars ending there; the signal is an
/// EMA of the MACD seeded at bar `slow + signal - 2` with the mean of the MACD
/// since bar `slow - 1`; hist = macd - signal.
///
/// A fast period longer than the slow one is swapped, as TA-Lib does. As in
/// TA-Lib, all three lines start at [`macd_lookback`], though the MACD line
/// alone would be defined `signal - 1` bars earlier.
pub fn macd(values: &[f64], params: MacdParams) -> Macd {
    let mut out = Macd::default();
    macd_into(values, params, &mut out);
    out
}

/// [`macd`] into `out`, reusing its buffers: what TA-Lib's C `TA_MACD` does
/// with the caller's arrays. Whatever `out` held is replaced.
///
/// One pass: the fast, slow and signal EMAs are three independent
/// multiply-add chains per bar, so they overlap in the CPU; no buffer but the
/// three outputs is touched.
pub fn macd_into(values: &[f64], params: MacdParams, out: &mut Macd) {
    let len = values.len();
    let start = first_valid(&[values]);
    let x = &values[start..];
    let lookback = macd_lookback(params);
    for line in [&mut out.macd, &mut out.signal, &mut out.hist] {
        line.clear();
        line.reserve(len);
        line.resize(start + lookback.min(x.len()), f64::NAN);
    }
    if x.len() <= lookback {
        for line in [&mut out.macd, &mut out.signal, &mut out.hist] {
            line.resize(len, f64::NAN);
        }
        return;
    }
    let (fast, slow) = params.ordered();
    let seed_at = slow.get() - 1;
    let mean = |p: Period| x[seed_at + 1 - p.get()..=seed_at].iter().sum::<f64>() / p.as_f64();
    let mut state = MacdState {
        fast: mean(fast),
        slow: mean(slow),
        signal: 0.0,
        k: [fast.ema_k(), slow.ema_k(), params.signal.ema_k()],
    };
    // The MACD line from its first bar up to the lookback only seeds the signal.
    let mut line_sum = state.fast - state.slow;
    for &v in &x[seed_at + 1..=lookback] {
        state.step_line(v);
        line_sum += state.fast - state.slow;
    }
    state.signal = line_sum / params.signal.as_f64();
    let line = state.fast - state.slow;
    out.macd.push(line);
    out.signal.push(state.signal);
    out.hist.push(line - state.signal);
    macd_tail(&x[lookback + 1..], &mut state, out);
}

/// The running EMAs of [`macd_into`] and their factors (fast, slow, signal).
#[derive(Clone, Copy)]
struct MacdState {
    fast: f64,
    slow: f64,
    signal: f64,
    k: [f64; 3],
}

impl MacdState {
    /// Fused, as the TA-Lib build we compare with computes it: bit for bit equal.
    #[inline(always)]
    fn step_line(&mut self, v: f64) {
        self.fast = (v - self.fast).mul_add(self.k[0], self.fast);
        self.slow = (v - self.slow).mul_add(self.k[1], self.slow);
    }
}

/// The bars after the lookback. Compiled twice on x86-64: with the FMA
/// instruction, chosen at run time when the CPU has it, and without, where
/// `mul_add` calls the C library's exact `fma` (same result, slower).
#[multiversion::multiversion(targets("x86_64+fma"))]
fn macd_tail(x: &[f64], state: &mut MacdState, out: &mut Macd) {
    let mut s = *state;
    for &v in x {
        s.step_line(v);
        let line = s.fast - s.slow;
        s.signal = (line - s.signal).mul_add(s.k[2], s.signal);
        out.macd.push(line);
        out.signal.push(s.signal);
        out.hist.push(line - s.signal);
    }
    *state = s;
}

// --- RSI -------------------------------------------------------------------

/// Bars without an RSI value: `period` (it needs `period` changes).
pub fn rsi_lookback(period: Period) -> usize {
    period.get()
}

/// Wilder's relative strength index: the average gain and loss are seeded at
/// bar `period` with the plain means of the first `period` changes, then
/// smoothed as (avg * (period - 1) + change) / period.
///
/// RSI = 100 * gain / (gain + loss), and 0 when both are 0 (a flat series).
/// As in TA-Lib, a NaN after the first valid bar makes every later value 0,
/// not NaN, because the zero test fails for NaN.
pub fn rsi(values: &[f64], period: Period) -> Vec<f64> {
    from_first_valid(values, |x, o| {
        let n = period.get();
        if x.len() <= n {
            return;
        }
        let inverse = 1.0 / period.as_f64();
        let (mut gain, mut loss) = (0.0, 0.0);
        for i in 1..x.len() {
            let change = x[i] - x[i - 1];
            if i > n {
                gain *= (n - 1) as f64;
                loss *= (n - 1) as f64;
            }
            // A NaN change counts as a gain, as in TA-Lib.
            if change < 0.0 {
                loss -= change
            } else {
                gain += change
            }
            if i >= n {
                // Times the reciprocal, as the TA-Lib build we compare with computes it.
                gain *= inverse;
                loss *= inverse;
                o[i] = rsi_value(gain, loss);
            }
        }
    })
}

fn rsi_value(gain: f64, loss: f64) -> f64 {
    let total = gain + loss;
    // `>` rather than `!=` so that NaN gives 0, as TA-Lib's does.
    if total > 0.0 { 100.0 * (gain / total) } else { 0.0 }
}

// --- Bollinger Bands -------------------------------------------------------

/// Bollinger parameters; `Default` is TA-Lib's 5 bars, 2 deviations up and down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BollingerParams {
    pub period: Period,
    /// Standard deviations above the middle band.
    pub dev_up: f64,
    /// Standard deviations below the middle band.
    pub dev_down: f64,
}

impl Default for BollingerParams {
    fn default() -> Self {
        BollingerParams { period: Period(5), dev_up: 2.0, dev_down: 2.0 }
    }
}

/// The three Bollinger bands, each as long as the input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bands {
    pub upper: Vec<f64>,
    pub middle: Vec<f64>,
    pub lower: Vec<f64>,
}

/// Bars without bands: `period - 1`.
pub fn bollinger_lookback(params: BollingerParams) -> usize {
    params.period.get() - 1
}

/// Bollinger Bands: the middle band is the [`sma`], and the bands lie
/// `dev_up` / `dev_down` population standard deviations (divided by `period`,
/// not `period - 1`) of the same window above and below it, first at bar
/// `period - 1`.
///
/// The deviation is computed in two passes per window; TA-Lib's own differs
/// from it by about 1e-11 relative at worst on the sample prices, far inside
/// 1e-9. Cost: O(bars x period).
pub fn bollinger(values: &[f64], params: BollingerParams) -> Bands {
    let len = values.len();
    let mut out = Bands { upper: nans(len), middle: nans(len), lower: nans(len) };
    let start = first_valid(&[values]);
    let x = &values[start..];
    let n = params.period.get();
    if x.len() < n {
        return out;
    }
    sma_into(x, params.period, &mut out.middle[start..]);
    for i in n - 1..x.len() {
        let (mid, sd) = (out.middle[start + i], population_std_dev(&x[i + 1 - n..=i]));
        out.upper[start + i] = mid + params.dev_up * sd;
        out.lower[start + i] = mid - params.dev_down * sd;
    }
    out
}

/// Two passes over the window, O(period) per bar. Rolling sums (of squares,
/// or Welford's update) are O(1) but leave an absolute error in the variance
/// that the square root magnifies: on a flat window of prices near 30 they gave
/// a deviation of 2e-8 where TA-Lib and the truth give 0.
fn population_std_dev(window: &[f64]) -> f64 {
    let n = window.len() as f64;
    let mean = window.iter().sum::<f64>() / n;
    (window.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

// --- ATR -------------------------------------------------------------------

/// Bars without an ATR value: `period` (the first true range needs a previous close).
pub fn atr_lookback(period: Period) -> usize {
    period.get()
}

/// Wilder's average true range: seeded at bar `period` with the mean of the
/// true ranges of bars `1..=period`, then (atr * (period - 1) + tr) / period.
///
/// The true range of bar i is the largest of high - low, |close[i-1] - high|
/// and |close[i-1] - low|, compared in that order as TA-Lib does: a NaN
/// previous close is passed over, a NaN high or low poisons every later value.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: Period) -> Result<Vec<f64>, IndicatorError> {
    if high.len() != low.len() || low.len() != close.len() {
        return Err(IndicatorError::LengthMismatch { high: high.len(), low: low.len(), close: close.len() });
    }
    let mut out = nans(close.len());
    let start = first_valid(&[high, low, close]);
    let (h, l, c) = (&high[start..], &low[start..], &close[start..]);
    let o = &mut out[start..];
    let n = period.get();
    if c.len() <= n {
        return Ok(out);
    }
    let tr = |i: usize| true_range(h[i], l[i], c[i - 1]);
    let seed: f64 = (1..=n).map(tr).sum();
    let mut prev = seed / period.as_f64();
    o[n] = prev;
    let keep = (n - 1) as f64;
    for (i, slot) in o.iter_mut().enumerate().skip(n + 1) {
        prev = (prev * keep + tr(i)) / period.as_f64();
        *slot = prev;
    }
    Ok(out)
}

fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    // Explicit comparisons, not f64::max: the NaN behaviour must be TA-Lib's.
    let mut range = high - low;
    let to_high = (prev_close - high).abs();
    if to_high > range {
        range = to_high;
    }
    let to_low = (prev_close - low).abs();
    if to_low > range {
        range = to_low;
    }
    range
}
