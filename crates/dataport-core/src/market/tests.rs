use proptest::prelude::*;

use super::*;

const NAN: f64 = f64::NAN;

fn p(bars: usize) -> Period {
    Period::new(bars).unwrap()
}

/// Equal to 1e-9 relative, and NaN exactly where the other is NaN.
fn same(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(&g, &w)| {
            (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-9 * g.abs().max(w.abs())
        })
}

macro_rules! assert_same {
    ($got:expr, $want:expr) => {{
        let (got, want): (&[f64], &[f64]) = (&$got, &$want);
        assert!(same(got, want), "got  {got:?}\nwant {want:?}");
    }};
}

/// The first 40 closes of matplotlib's sample goog.npz
/// (`matplotlib/mpl-data/sample_data/goog.npz`, key `price_data`, field `close`).
const GOOG_NPZ_CLOSE: [f64; 40] = [
    100.34, 108.31, 109.4, 104.87, 106.0, 107.91, 106.15, 102.01, 102.37, 100.25, 101.51, 100.01, 101.58,
    102.3, 102.31, 105.33, 107.5, 111.49, 112.0, 113.97, 117.49, 119.36, 117.84, 118.38, 120.82, 119.83,
    118.26, 126.86, 131.08, 129.6, 132.58, 135.06, 138.37, 137.08, 138.85, 137.73, 135.26, 137.4, 140.9,
    142.0,
];

// --- Periods and errors ----------------------------------------------------

#[test]
fn period_refuses_zero_and_more_than_talib_allows() {
    assert_eq!(Period::new(0), Err(IndicatorError::Period(0)));
    assert_eq!(Period::try_from(MAX_PERIOD + 1), Err(IndicatorError::Period(MAX_PERIOD + 1)));
    assert_eq!(Period::new(MAX_PERIOD).map(Period::get), Ok(MAX_PERIOD));
    assert_eq!(IndicatorError::Period(0).to_string(), "period 0 is outside 1..=100000");
    assert_eq!(MacdParams::new(12, 0, 9), Err(IndicatorError::Period(0)));
}

#[test]
fn atr_refuses_series_of_different_lengths() {
    let err = atr(&[2.0, 3.0], &[1.0], &[1.5, 2.5], p(1)).unwrap_err();
    assert_eq!(err, IndicatorError::LengthMismatch { high: 2, low: 1, close: 2 });
    assert_eq!(err.to_string(), "high, low and close must hold one value per bar, got 2, 1 and 2 values");
}

#[test]
fn lookbacks_are_talibs() {
    assert_eq!(sma_lookback(p(30)), 29);
    assert_eq!(ema_lookback(p(30)), 29);
    assert_eq!(macd_lookback(MacdParams::default()), 33);
    assert_eq!(macd_lookback(MacdParams::new(26, 12, 9).unwrap()), 33);
    assert_eq!(rsi_lookback(p(14)), 14);
    assert_eq!(bollinger_lookback(BollingerParams::default()), 4);
    assert_eq!(atr_lookback(p(14)), 14);
    assert_eq!(atr_lookback(p(1)), 1);
}

// --- Hand-checked small cases ----------------------------------------------

#[test]
fn sma_is_the_mean_of_the_last_n_bars() {
    assert_same!(sma(&[1.0, 2.0, 3.0, 4.0, 5.0], p(3)), [NAN, NAN, 2.0, 3.0, 4.0]);
}

#[test]
fn ema_is_seeded_with_the_sma_then_smoothed() {
    // k = 2/4 = 0.5: seed (1+2+3)/3 = 2, then 2 + (6-2)/2 = 4, then 4 + (0-4)/2 = 2.
    assert_same!(ema(&[1.0, 2.0, 3.0, 6.0, 0.0], p(3)), [NAN, NAN, 2.0, 4.0, 2.0]);
}

#[test]
fn rsi_uses_wilder_smoothing_after_a_plain_mean() {
    // Changes +2, -1, +3, -2. Seed (n = 2) at bar 2: gain 1, loss 0.5 -> 66.67.
    // Bar 3: gain (1 + 3)/2 = 2, loss 0.5/2 = 0.25 -> 88.89.
    // Bar 4: gain 2/2 = 1, loss (0.25 + 2)/2 = 1.125 -> 47.06.
    let got = rsi(&[10.0, 12.0, 11.0, 14.0, 12.0], p(2));
    assert_same!(got, [NAN, NAN, 100.0 / 1.5, 100.0 * 2.0 / 2.25, 100.0 / 2.125]);
}

#[test]
fn rsi_of_a_flat_series_is_zero_and_of_a_rising_one_is_100() {
    let flat = rsi(&[5.0; 20], p(14));
    assert!(flat[..14].iter().all(|v| v.is_nan()));
    assert!(flat[14..].iter().all(|&v| v == 0.0));
    let rising: Vec<f64> = (0..20).map(f64::from).collect();
    assert!(rsi(&rising, p(14))[14..].iter().all(|&v| v == 100.0));
}

#[test]
fn bollinger_bands_use_the_population_deviation() {
    // Window 2, 4, 6: mean 4, population variance 8/3.
    let b = bollinger(&[2.0, 4.0, 6.0], BollingerParams { period: p(3), dev_up: 2.0, dev_down: 1.0 });
    let sd = (8.0f64 / 3.0).sqrt();
    assert_same!(b.middle, [NAN, NAN, 4.0]);
    assert_same!(b.upper, [NAN, NAN, 4.0 + 2.0 * sd]);
    assert_same!(b.lower, [NAN, NAN, 4.0 - sd]);
}

#[test]
fn atr_seeds_with_the_mean_true_range_from_bar_1() {
    let high = [10.0, 12.0, 11.0, 15.0];
    let low = [9.0, 10.0, 8.0, 13.0];
    let close = [9.5, 11.0, 9.0, 14.0];
    // True ranges: bar 1 max(2, 2.5, 0.5) = 2.5; bar 2 max(3, 0, 3) = 3; bar 3 max(2, 6, 4) = 6.
    // Seed (n = 2) at bar 2: 2.75; bar 3: (2.75 + 6)/2 = 4.375.
    assert_same!(atr(&high, &low, &close, p(2)).unwrap(), [NAN, NAN, 2.75, 4.375]);
    assert_same!(atr(&high, &low, &close, p(1)).unwrap(), [NAN, 2.5, 3.0, 6.0]);
}

#[test]
fn macd_seeds_both_emas_at_the_slow_lookback() {
    // fast 2, slow 3, signal 2 on 1, 2, 4, 8, 16:
    // bar 2: slow (1+2+4)/3, fast (2+4)/2 = 3; then k = 1/2 (slow) and 2/3 (fast).
    let x = [1.0, 2.0, 4.0, 8.0, 16.0];
    let (mut slow, mut fast) = (7.0 / 3.0, 3.0);
    let mut line = vec![fast - slow];
    for v in &x[3..] {
        slow += (v - slow) * 0.5;
        fast += (v - fast) * (2.0 / 3.0);
        line.push(fast - slow);
    }
    let signal3 = (line[0] + line[1]) / 2.0;
    let signal4 = signal3 + (line[2] - signal3) * (2.0 / 3.0);
    let m = macd(&x, MacdParams::new(2, 3, 2).unwrap());
    assert_same!(m.macd, [NAN, NAN, NAN, line[1], line[2]]);
    assert_same!(m.signal, [NAN, NAN, NAN, signal3, signal4]);
    assert_same!(m.hist, [NAN, NAN, NAN, line[1] - signal3, line[2] - signal4]);
}

#[test]
fn macd_into_replaces_whatever_the_buffers_held() {
    let x: Vec<f64> = (0..60).map(|i| 100.0 + f64::from(i % 7) - f64::from(i % 5) * 0.5).collect();
    let params = MacdParams::default();
    let want = macd(&x, params);
    let mut out = Macd { macd: vec![1.0; 500], signal: vec![2.0; 3], hist: Vec::new() };
    macd_into(&x, params, &mut out);
    assert_same!(out.macd, want.macd);
    assert_same!(out.signal, want.signal);
    assert_same!(out.hist, want.hist);
    // A shorter input after a longer one, and one inside the lookback.
    macd_into(&x[..40], params, &mut out);
    assert_same!(out.macd, want.macd[..40]);
    macd_into(&x[..10], params, &mut out);
    assert_eq!((out.macd.len(), out.signal.len(), out.hist.len()), (10, 10, 10));
    assert!(out.macd.iter().chain(&out.signal).chain(&out.hist).all(|v| v.is_nan()));
}

// --- Golden values ---------------------------------------------------------

#[test]
fn macd_matches_talib_on_goog_npz() {
    // python -c "import numpy as np, talib; c = np.load('goog.npz')['price_data']['close'].astype(float);
    //   print(*(repr(v[i]) for i in (33, 39) for v in talib.MACD(c, 12, 26, 9)))"   (TA-Lib 0.8.2)
    let m = macd(&GOOG_NPZ_CLOSE, MacdParams::default());
    assert!(m.macd[..33].iter().chain(&m.signal[..33]).chain(&m.hist[..33]).all(|v| v.is_nan()));
    assert_same!(
        [m.macd[33], m.signal[33], m.hist[33]],
        [8.737891142265553, 7.027451141146195, 1.7104400011193581]
    );
    assert_same!(
        [m.macd[39], m.signal[39], m.hist[39]],
        [8.51061972602264, 8.182250298995552, 0.3283694270270878]
    );
}

#[test]
fn other_indicators_match_talib_on_goog_npz() {
    // c = the first 40 closes above; TA-Lib 0.8.2:
    // talib.RSI(c, 14)[39], talib.EMA(c, 10)[39], talib.SMA(c, 10)[39], talib.BBANDS(c, 20, 2, 2)[i][39]
    let c = &GOOG_NPZ_CLOSE;
    assert_same!([rsi(c, p(14))[39]], [75.75203521919236]);
    assert_same!([ema(c, p(10))[39]], [136.41943630221695]);
    assert_same!([sma(c, p(10))[39]], [137.52300000000005]);
    let b = bollinger(c, BollingerParams { period: p(20), dev_up: 2.0, dev_down: 2.0 });
    assert_same!(
        [b.upper[39], b.middle[39], b.lower[39]],
        [147.19426244324814, 129.7375, 112.28073755675187]
    );
}

// --- Edge cases ------------------------------------------------------------

#[test]
fn input_shorter_than_the_lookback_gives_only_nan() {
    let x = [1.0, 2.0, 3.0];
    assert!(sma(&x, p(4)).iter().all(|v| v.is_nan()));
    assert!(ema(&x, p(4)).iter().all(|v| v.is_nan()));
    assert!(rsi(&x, p(3)).iter().all(|v| v.is_nan()));
    assert!(atr(&x, &x, &x, p(3)).unwrap().iter().all(|v| v.is_nan()));
    let b = bollinger(&x, BollingerParams { period: p(4), ..Default::default() });
    assert!(b.upper.iter().chain(&b.middle).chain(&b.lower).all(|v| v.is_nan()));
    let m = macd(&GOOG_NPZ_CLOSE[..33], MacdParams::default());
    assert_eq!(m.macd.len(), 33);
    assert!(m.macd.iter().chain(&m.signal).chain(&m.hist).all(|v| v.is_nan()));
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(sma(&[], p(3)).is_empty());
    assert!(ema(&[], p(3)).is_empty());
    assert!(rsi(&[], p(3)).is_empty());
    assert!(atr(&[], &[], &[], p(3)).unwrap().is_empty());
    assert_eq!(macd(&[], MacdParams::default()), Macd::default());
    assert_eq!(bollinger(&[], BollingerParams::default()), Bands::default());
}

#[test]
fn period_one_gives_the_input_back() {
    let x = [3.0, 1.0, 4.0, 1.5, 5.0];
    assert_eq!(sma(&x, p(1)), x);
    assert_eq!(ema(&x, p(1)), x);
    let b = bollinger(&x, BollingerParams { period: p(1), ..Default::default() });
    assert_eq!((b.upper, b.lower), (x.to_vec(), x.to_vec()));
    // RSI(1) sees a single change: all gain or all loss.
    assert_same!(rsi(&x, p(1)), [NAN, 0.0, 100.0, 0.0, 100.0]);
}

#[test]
fn flat_series_gives_flat_indicators() {
    let x = [7.25; 40];
    assert!(sma(&x, p(5))[4..].iter().all(|&v| v == 7.25));
    assert!(ema(&x, p(5))[4..].iter().all(|&v| v == 7.25));
    let m = macd(&x, MacdParams::default());
    assert!(m.macd[33..].iter().chain(&m.signal[33..]).chain(&m.hist[33..]).all(|&v| v == 0.0));
    let b = bollinger(&x, BollingerParams::default());
    assert!(b.upper[4..].iter().chain(&b.lower[4..]).all(|&v| v == 7.25));
    assert!(atr(&x, &x, &x, p(3)).unwrap()[3..].iter().all(|&v| v == 0.0));
}

#[test]
fn leading_nans_are_skipped_like_talibs_python_wrapper() {
    let x = [NAN, NAN, 1.0, 2.0, 3.0, 4.0];
    assert_same!(sma(&x, p(3)), [NAN, NAN, NAN, NAN, 2.0, 3.0]);
    assert_same!(rsi(&x, p(2)), [NAN, NAN, NAN, NAN, 100.0, 100.0]);
    assert!(sma(&[NAN; 4], p(1)).iter().all(|v| v.is_nan()));
}

#[test]
fn a_nan_after_the_start_poisons_later_values_as_in_talib() {
    let x = [1.0, 2.0, 3.0, NAN, 5.0, 6.0, 7.0, 8.0, 9.0];
    assert_same!(sma(&x, p(2)), [NAN, 1.5, 2.5, NAN, NAN, NAN, NAN, NAN, NAN]);
    assert_same!(ema(&x, p(2)), [NAN, 1.5, 2.5, NAN, NAN, NAN, NAN, NAN, NAN]);
    // TA-Lib answers a 1-bar EMA with the input, so the gap spoils one bar only.
    assert_same!(ema(&x, p(1)), x);
    // TA-Lib's RSI turns NaN averages into 0, not NaN.
    assert_same!(rsi(&x, p(2)), [NAN, NAN, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let b = bollinger(&x, BollingerParams { period: p(2), ..Default::default() });
    assert!(b.upper[3..].iter().chain(&b.middle[3..]).chain(&b.lower[3..]).all(|v| v.is_nan()));
}

#[test]
fn atr_passes_over_a_nan_close_but_not_a_nan_high() {
    // From TA-Lib 0.8.2: talib.ATR(h, l, c, 3) with h = 2..12, l = 0..10, c = 1..11.
    let high: Vec<f64> = (0..10).map(|i| f64::from(i) + 2.0).collect();
    let low: Vec<f64> = (0..10).map(f64::from).collect();
    let mut close: Vec<f64> = (0..10).map(|i| f64::from(i) + 1.0).collect();
    close[4] = NAN;
    assert_same!(atr(&high, &low, &close, p(3)).unwrap(), [NAN, NAN, NAN, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]);
    close[4] = 5.0;
    let mut high_gap = high.clone();
    high_gap[4] = NAN;
    let got = atr(&high_gap, &low, &close, p(3)).unwrap();
    assert_same!(got, [NAN, NAN, NAN, 2.0, NAN, NAN, NAN, NAN, NAN, NAN]);
    // ATR(1) still smooths (atr * 0 + tr) / 1, so the gap spoils it too.
    let got = atr(&high_gap, &low, &close, p(1)).unwrap();
    assert_same!(got, [NAN, 2.0, 2.0, 2.0, NAN, NAN, NAN, NAN, NAN, NAN]);
}

#[test]
fn macd_swaps_a_fast_period_longer_than_the_slow() {
    let (got, want) = (
        macd(&GOOG_NPZ_CLOSE, MacdParams::new(26, 12, 9).unwrap()),
        macd(&GOOG_NPZ_CLOSE, MacdParams::default()),
    );
    assert_same!(got.macd, want.macd);
    assert_same!(got.signal, want.signal);
    assert_same!(got.hist, want.hist);
}

// --- Properties ------------------------------------------------------------

fn prices() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(1.0f64..1000.0, 0..120)
}

/// The population standard deviation of each window, by two passes.
fn reference_std_dev(x: &[f64], n: usize) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            if i + 1 < n {
                return NAN;
            }
            let w = &x[i + 1 - n..=i];
            let mean = w.iter().sum::<f64>() / n as f64;
            (w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt()
        })
        .collect()
}

proptest! {
    #[test]
    fn outputs_are_as_long_as_the_input_and_nan_exactly_for_the_lookback(
        x in prices(), n in 1usize..30, signal in 1usize..10,
    ) {
        let period = p(n);
        let defined = |out: &[f64], lookback: usize| {
            out.len() == x.len() && out.iter().enumerate().all(|(i, v)| v.is_nan() == (i < lookback))
        };
        prop_assert!(defined(&sma(&x, period), sma_lookback(period)));
        prop_assert!(defined(&ema(&x, period), ema_lookback(period)));
        prop_assert!(defined(&rsi(&x, period), rsi_lookback(period)));
        prop_assert!(defined(&atr(&x, &x, &x, period).unwrap(), atr_lookback(period)));
        let bp = BollingerParams { period, ..Default::default() };
        let b = bollinger(&x, bp);
        for band in [&b.upper, &b.middle, &b.lower] {
            prop_assert!(defined(band, bollinger_lookback(bp)));
        }
        let mp = MacdParams { fast: p(n.div_ceil(2)), slow: period, signal: p(signal) };
        let m = macd(&x, mp);
        for line in [&m.macd, &m.signal, &m.hist] {
            prop_assert!(defined(line, macd_lookback(mp)));
        }
    }

    #[test]
    fn sma_and_ema_stay_within_the_range_of_the_input(x in prices(), n in 1usize..30) {
        let (lo, hi) = x.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let slack = 1e-9 * hi.abs();
        for v in sma(&x, p(n)).into_iter().chain(ema(&x, p(n))).filter(|v| !v.is_nan()) {
            prop_assert!(v >= lo - slack && v <= hi + slack, "{v} outside {lo}..={hi}");
        }
    }

    #[test]
    fn rsi_lies_between_0_and_100(x in prices(), n in 1usize..30) {
        prop_assert!(rsi(&x, p(n)).iter().filter(|v| !v.is_nan()).all(|v| (0.0..=100.0).contains(v)));
    }

    #[test]
    fn bollinger_deviation_matches_two_passes_per_window(
        x in prop::collection::vec(-1e4f64..1e4, 0..300), n in 1usize..40, dev in 0.0f64..4.0,
    ) {
        let b = bollinger(&x, BollingerParams { period: p(n), dev_up: dev, dev_down: dev });
        let want = reference_std_dev(&x, n);
        for (i, want) in want.iter().enumerate().filter(|(_, w)| !w.is_nan()) {
            let got = (b.upper[i] - b.lower[i]) / 2.0;
            let scale = b.middle[i].abs().max(1.0);
            prop_assert!((got - dev * want).abs() <= 1e-9 * scale, "bar {i}: {got} vs {}", dev * want);
            prop_assert!(b.lower[i] <= b.middle[i] && b.middle[i] <= b.upper[i]);
        }
    }

    #[test]
    fn atr_is_never_negative(
        bars in prop::collection::vec((1.0f64..1000.0, 0.0f64..50.0, 0.0f64..1.0), 0..100), n in 1usize..20,
    ) {
        // A bar is (low, range, where the close sits in the range).
        let low: Vec<f64> = bars.iter().map(|b| b.0).collect();
        let high: Vec<f64> = bars.iter().map(|b| b.0 + b.1).collect();
        let close: Vec<f64> = bars.iter().map(|b| b.0 + b.1 * b.2).collect();
        prop_assert!(atr(&high, &low, &close, p(n)).unwrap().iter().filter(|v| !v.is_nan()).all(|&v| v >= 0.0));
    }

    #[test]
    fn macd_hist_is_macd_minus_signal(x in prices(), fast in 1usize..15, slow in 1usize..30, signal in 1usize..10) {
        let m = macd(&x, MacdParams::new(fast, slow, signal).unwrap());
        for i in 0..x.len() {
            prop_assert!(m.hist[i].is_nan() || m.hist[i] == m.macd[i] - m.signal[i]);
        }
    }

    #[test]
    fn leading_nans_shift_the_output(x in prices(), gap in 0usize..5, n in 1usize..20) {
        let mut padded = vec![NAN; gap];
        padded.extend_from_slice(&x);
        let mut want = vec![NAN; gap];
        want.extend(rsi(&x, p(n)));
        prop_assert!(same(&rsi(&padded, p(n)), &want));
    }
}
