use proptest::prelude::*;

use super::*;

// Golden values come from numpy 2.4.6 in tests/oracle/.venv; `np` below is
// `import numpy as np`, and `r` is `repr`.

const SAMPLE_2: Method = Method::ZScore { threshold: 2.0, sigma: Sigma::Sample };
const MODIFIED: Method = Method::ModifiedZScore { threshold: DEFAULT_MODIFIED_Z_THRESHOLD };
const IQR: Method = Method::Iqr { k: DEFAULT_IQR_K };
const ALL_DEFAULTS: [Method; 4] = [Method::SEED, SAMPLE_2, MODIFIED, IQR];

fn z_stats(j: &Judgement) -> (f64, f64) {
    match j.stats {
        Stats::ZScore { mean, sigma } => (mean, sigma),
        other => panic!("z-score stats expected, got {other:?}"),
    }
}

// --- Methods and their parameters -----------------------------------------

#[test]
fn constructors_refuse_parameters_that_are_not_finite_and_above_zero() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(Method::new_z_score(bad, Sigma::Population).is_err(), "{bad}");
        assert!(Method::new_modified_z_score(bad).is_err(), "{bad}");
        assert!(Method::new_iqr(bad).is_err(), "{bad}");
    }
    let err = Method::new_z_score(0.0, Sigma::Sample).unwrap_err();
    assert_eq!(err, MethodError::NotPositive { parameter: "threshold", value: 0.0 });
    assert_eq!(err.to_string(), "threshold must be a finite number above 0, got 0");
    assert_eq!(Method::new_iqr(-1.5).unwrap_err().to_string(), "k must be a finite number above 0, got -1.5");
    assert_eq!(
        Method::new_modified_z_score(f64::NAN).unwrap_err().to_string(),
        "threshold must be a finite number above 0, got NaN"
    );
    assert_eq!(Method::new_iqr(0.25), Ok(Method::Iqr { k: 0.25 }));
    assert_eq!(Method::new_modified_z_score(1e-300), Ok(Method::ModifiedZScore { threshold: 1e-300 }));
}

#[test]
fn the_seed_and_the_default_are_the_population_z_score_at_2() {
    assert_eq!(Method::SEED, Method::ZScore { threshold: 2.0, sigma: Sigma::Population });
    assert_eq!(Method::default(), Method::SEED);
    assert_eq!(Method::new_z_score(DEFAULT_Z_THRESHOLD, Sigma::Population), Ok(Method::SEED));
}

// --- min_points ------------------------------------------------------------

#[test]
fn min_points_at_the_usual_parameters() {
    assert_eq!(Method::SEED.min_points(), 5);
    assert_eq!(SAMPLE_2.min_points(), 6);
    assert_eq!(Method::ZScore { threshold: 3.0, sigma: Sigma::Population }.min_points(), 10);
    assert_eq!(Method::ZScore { threshold: 3.0, sigma: Sigma::Sample }.min_points(), 11);
    assert_eq!(Method::ZScore { threshold: 0.5, sigma: Sigma::Population }.min_points(), 2);
    assert_eq!(MODIFIED.min_points(), 3);
    assert_eq!(Method::ModifiedZScore { threshold: 0.6745 }.min_points(), 2);
    assert_eq!(Method::ModifiedZScore { threshold: 0.68 }.min_points(), 3);
    assert_eq!(IQR.min_points(), 4);
    // At k = 3 exactly the bound of four points equals k, and equality counts.
    assert_eq!(Method::Iqr { k: 3.0 }.min_points(), 4);
    assert_eq!(Method::Iqr { k: 3.5 }.min_points(), 5);
    assert_eq!(Method::Iqr { k: 0.9 }.min_points(), 3);
    assert_eq!(Method::Iqr { k: 0.5 }.min_points(), 2);
    assert_eq!(Method::Iqr { k: 1e300 }.min_points(), 5);
}

#[test]
fn min_points_saturates_for_thresholds_no_series_can_reach_and_nan() {
    for sigma in [Sigma::Population, Sigma::Sample] {
        assert_eq!(Method::ZScore { threshold: 1e10, sigma }.min_points(), usize::MAX);
        assert_eq!(Method::ZScore { threshold: f64::MAX, sigma }.min_points(), usize::MAX);
        assert_eq!(Method::ZScore { threshold: f64::NAN, sigma }.min_points(), usize::MAX);
    }
    assert_eq!(Method::ModifiedZScore { threshold: f64::NAN }.min_points(), usize::MAX);
    assert_eq!(Method::Iqr { k: f64::NAN }.min_points(), usize::MAX);
    // sqrt(1_001_000) < 1000.5 < sqrt(1_001_001).
    assert_eq!(Method::ZScore { threshold: 1000.5, sigma: Sigma::Population }.min_points(), 1_001_002);
}

#[test]
fn an_extreme_series_of_min_points_values_is_flagged() {
    // n - 1 equal values and one other: the series with the largest score.
    let extreme = |n: usize| {
        let mut v = vec![0.0; n - 1];
        v.push(1.0);
        v
    };
    assert_eq!(judge(&extreme(6), &Method::SEED).outliers, [5]);
    assert_eq!(judge(&extreme(6), &SAMPLE_2).outliers, [5]);
    assert_eq!(judge(&extreme(5), &SAMPLE_2).outliers, [] as [usize; 0]);
    assert_eq!(judge(&[0.0, 1.0, 100.0], &MODIFIED).outliers, [2]);
    assert_eq!(judge(&extreme(4), &IQR).outliers, [3]);
    assert_eq!(judge(&extreme(5), &Method::Iqr { k: 3.0 }).outliers, [4]);
    assert_eq!(judge(&extreme(4), &Method::Iqr { k: 3.0 }).outliers, [] as [usize; 0]);
}

#[test]
fn the_seed_can_flag_five_points_because_numpy_rounds_past_the_bound() {
    // Exactly, the fifth point of [c, c, c, c, c + d] scores 2 = sqrt(5 - 1).
    // python -c "import numpy as np; x = np.array([-49., -49, -49, -68, -49]);
    //   print(np.where(np.abs(x - x.mean()) > 2 * x.std()))"   -> [3]
    assert_eq!(judge(&[-49.0, -49.0, -49.0, -68.0, -49.0], &Method::SEED).outliers, [3]);
}

/// The smallest n >= 2 whose bound reaches the threshold, found by counting.
fn min_points_by_search(method: &Method) -> usize {
    (2..).find(|&n| reaches(bound(method, n), threshold_of(method))).unwrap()
}

fn threshold_of(method: &Method) -> f64 {
    match *method {
        Method::ZScore { threshold, .. } | Method::ModifiedZScore { threshold } => threshold,
        Method::Iqr { k } => k,
    }
}

/// B(n), the largest score n points can give, as the docs state it.
fn bound(method: &Method, n: usize) -> f64 {
    match *method {
        Method::ZScore { sigma, .. } => z_bound(n, sigma),
        Method::ModifiedZScore { .. } => [0.6745, f64::INFINITY][(n - 2).min(1)],
        Method::Iqr { .. } => [0.5, 1.0, 3.0, f64::INFINITY][(n - 2).min(3)],
    }
}

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        (0.05f64..40.0).prop_map(|threshold| Method::ZScore { threshold, sigma: Sigma::Population }),
        (0.05f64..40.0).prop_map(|threshold| Method::ZScore { threshold, sigma: Sigma::Sample }),
        (0.05f64..8.0).prop_map(|threshold| Method::ModifiedZScore { threshold }),
        (0.05f64..6.0).prop_map(|k| Method::Iqr { k }),
        prop::sample::select(vec![
            Method::SEED,
            SAMPLE_2,
            MODIFIED,
            IQR,
            Method::ModifiedZScore { threshold: 0.6745 },
            Method::Iqr { k: 0.5 },
            Method::Iqr { k: 1.0 },
            Method::Iqr { k: 3.0 },
            Method::ZScore { threshold: 3.0, sigma: Sigma::Population },
        ]),
    ]
}

/// Series whose values differ in their leading digits, where rounding cannot
/// swallow the deviations: small integers, scaled and shifted.
fn well_conditioned(len: usize) -> impl Strategy<Value = Vec<f64>> {
    (
        prop::collection::vec(prop_oneof![3 => Just(0i32), 2 => -1000i32..1000], len),
        -20i32..20,
        -1000i32..1000,
    )
        .prop_map(|(v, exp, shift)| v.into_iter().map(|x| f64::from(x + shift) * 2f64.powi(exp)).collect())
}

proptest! {
    #[test]
    fn min_points_is_the_smallest_series_whose_bound_reaches_the_threshold(method in any_method()) {
        prop_assert_eq!(method.min_points(), min_points_by_search(&method));
    }

    #[test]
    fn a_series_shorter_than_min_points_flags_nothing(
        (method, x) in any_method().prop_flat_map(|m| (Just(m), well_conditioned(m.min_points() - 1)))
    ) {
        prop_assert_eq!(judge(&x, &method).outliers, Vec::<usize>::new());
        // The extreme shape too: all equal but one.
        let mut extreme = vec![3.0; x.len()];
        if let Some(last) = extreme.last_mut() { *last = 1000.0; }
        prop_assert_eq!(judge(&extreme, &method).outliers, Vec::<usize>::new());
    }
}

// --- numpy's arithmetic ----------------------------------------------------

#[test]
fn sums_are_numpys_pairwise_sums() {
    // python -c "import numpy as np; print(r(np.add.reduce(np.full(10, 0.1))), r(sum([0.1] * 10)))"
    //   -> 1.0 0.9999999999999999
    assert_eq!(numpy::sum(&[0.1; 10]), 1.0);
    assert_eq!([0.1f64; 10].iter().sum::<f64>(), 0.9999999999999999);
    // y = np.array([0.1 * i for i in range(1, 201)]); np.add.reduce(y), y.mean(),
    // y.std(), y.std(ddof=1) -> 2010.0 10.05 5.773430522661549 5.787918451395114
    // (a plain loop gives 2010.0000000000002).
    let y: Vec<f64> = (1..=200).map(|i| 0.1 * f64::from(i)).collect();
    assert_eq!(numpy::sum(&y), 2010.0);
    assert_eq!(numpy::mean(&y), 10.05);
    assert_eq!(numpy::std(&y, 0), 5.773430522661549);
    assert_eq!(numpy::std(&y, 1), 5.787918451395114);
}

#[test]
fn a_sum_of_negative_zeros_is_positive_zero_as_in_numpy() {
    // python -c "import numpy as np; print(np.add.reduce(np.array([-0.0, -0.0])))"  -> 0.0
    assert_eq!(numpy::sum(&[-0.0, -0.0]).to_bits(), 0.0f64.to_bits());
    assert_eq!(numpy::sum(&[]).to_bits(), 0.0f64.to_bits());
    assert_eq!(numpy::median_in_place(&mut [-0.0]).to_bits(), 0.0f64.to_bits());
}

#[test]
fn quartiles_and_medians_are_numpys() {
    // python -c "import numpy as np
    // for n in range(1, 11):
    //     z = np.array([float(i * i % 7) + 0.1 * i for i in range(n)])
    //     print(n, r(np.percentile(z, [25, 75])), r(np.median(z)))"
    let want = [
        (0.0, 0.0, 0.0),
        (0.275, 0.8250000000000001, 0.55),
        (0.55, 2.6500000000000004, 1.1),
        (0.8250000000000001, 2.775, 1.7),
        (1.1, 2.4, 2.3),
        (1.4, 3.75, 2.3499999999999996),
        (1.35, 3.3, 2.3),
        (1.0, 2.85, 1.95),
        (1.1, 2.4, 1.8),
        (1.225, 3.75, 2.05),
    ];
    for (n, &(q1, q3, median)) in (1..=10).zip(&want) {
        let z: Vec<f64> = (0..n).map(|i| f64::from(i * i % 7) + 0.1 * f64::from(i)).collect();
        assert_eq!(numpy::quartiles_in_place(&mut z.clone()), (q1, q3), "n = {n}");
        assert_eq!(numpy::median_in_place(&mut z.clone()), median, "n = {n}");
    }
    assert!(numpy::median_in_place(&mut []).is_nan());
    let (q1, q3) = numpy::quartiles_in_place(&mut []);
    assert!(q1.is_nan() && q3.is_nan());
}

// --- z-score ---------------------------------------------------------------

#[test]
fn the_seed_rule_matches_numpy_on_a_small_batch() {
    // x = np.array([10, 12, 11, 13, 12, 40, 11, 12.]); m, s = x.mean(), x.std()
    // -> 15.125 9.439776215567825, np.where(np.abs(x - m) > 2 * s) -> [5],
    //    (x - m) / s -> [-0.5429154127137027, -0.3310459833620138, ...]
    let j = judge(&[10.0, 12.0, 11.0, 13.0, 12.0, 40.0, 11.0, 12.0], &Method::SEED);
    assert_eq!(z_stats(&j), (15.125, 9.439776215567825));
    assert_eq!(j.outliers, [5]);
    assert_eq!(j.scores[..2], [-0.5429154127137027, -0.3310459833620138]);
}

#[test]
fn the_seed_flags_exactly_where_numpy_does_at_the_boundary() {
    // Found with: for [c, c, c, c, c + d], c in -100..100, d in 1..100, compare
    // np.abs(x - x.mean())[4] with 2 * x.std().
    // Exactly equal: not an outlier (strict >).
    for c in [[36.0, 125.0], [15.0, 92.0], [-89.0, -59.0]] {
        let x = [c[0], c[0], c[0], c[0], c[1]];
        let j = judge(&x, &Method::SEED);
        let (mean, sigma) = z_stats(&j);
        assert_eq!((x[4] - mean).abs(), 2.0 * sigma, "{x:?}");
        assert_eq!(j.outliers, [] as [usize; 0], "{x:?}");
    }
    // One ulp above: an outlier, though |score| rounds to 2 or just above.
    // x = [66, 66, 66, 66, 89]: |x - m| 18.400000000000006 > 2s 18.400000000000002,
    // mean 70.6, std 9.200000000000001, score 2.0000000000000004.
    for c in [[66.0, 89.0], [87.0, 171.0], [32.0, 71.0]] {
        let x = [c[0], c[0], c[0], c[0], c[1]];
        assert_eq!(judge(&x, &Method::SEED).outliers, [4], "{x:?}");
    }
    let j = judge(&[66.0, 66.0, 66.0, 66.0, 89.0], &Method::SEED);
    assert_eq!(z_stats(&j), (70.6, 9.200000000000001));
    assert_eq!(j.scores[4], 2.0000000000000004);
    // One ulp below: not an outlier. [88, 88, 88, 88, 150]: 49.599999999999994 < 49.6.
    for c in [[88.0, 150.0], [-77.0, -30.0], [63.0, 94.0]] {
        let x = [c[0], c[0], c[0], c[0], c[1]];
        assert_eq!(judge(&x, &Method::SEED).outliers, [] as [usize; 0], "{x:?}");
    }
}

#[test]
fn sigma_zero_gives_zero_scores_and_no_outliers() {
    let j = judge(&[5.0; 10], &Method::SEED);
    assert_eq!(j.stats, Stats::ZScore { mean: 5.0, sigma: 0.0 });
    assert_eq!(j.scores, [0.0; 10]);
    assert!(j.outliers.is_empty());
}

#[test]
fn a_sigma_that_underflows_to_zero_flags_every_point_off_the_mean_as_numpy_does() {
    // x = np.array([0.0, 1e-200]); x.std() -> 0.0 (the squares underflow), and
    // np.where(np.abs(x - x.mean()) > 2 * x.std()) -> [0, 1].
    let j = judge(&[0.0, 1e-200], &Method::SEED);
    assert_eq!(z_stats(&j).1, 0.0);
    assert_eq!(j.scores, [f64::NEG_INFINITY, f64::INFINITY]);
    assert_eq!(j.outliers, [0, 1]);
    // [1e-200, 2e-200, 3e-200] -> numpy [0, 2]: the middle point is the mean.
    let j = judge(&[1e-200, 2e-200, 3e-200], &Method::SEED);
    assert_eq!(j.outliers, [0, 2]);
    assert_eq!(j.scores[1], 0.0);
}

#[test]
fn the_sample_sigma_of_one_point_is_zero_not_numpys_nan() {
    let j = judge(&[7.0], &SAMPLE_2);
    assert_eq!(j.stats, Stats::ZScore { mean: 7.0, sigma: 0.0 });
    assert_eq!(j.scores, [0.0]);
}

#[test]
fn the_sample_sigma_divides_by_n_minus_1() {
    // Deviations -1.5, -0.5, 0.5, 1.5: squares sum to 5.
    let j = judge(&[1.0, 2.0, 3.0, 4.0], &SAMPLE_2);
    assert_eq!(j.stats, Stats::ZScore { mean: 2.5, sigma: (5.0f64 / 3.0).sqrt() });
    let j = judge(&[1.0, 2.0, 3.0, 4.0], &Method::SEED);
    assert_eq!(j.stats, Stats::ZScore { mean: 2.5, sigma: 1.25f64.sqrt() });
}

// --- every method: empty and one point ---------------------------------------

#[test]
fn an_empty_series_has_nan_stats_and_no_scores() {
    for method in ALL_DEFAULTS {
        let j = judge(&[], &method);
        assert!(j.scores.is_empty() && j.outliers.is_empty(), "{method:?}");
        let all_nan = match j.stats {
            Stats::ZScore { mean, sigma } => mean.is_nan() && sigma.is_nan(),
            Stats::ModifiedZScore { median, mad, mean_abs_dev } => {
                median.is_nan() && mad.is_nan() && mean_abs_dev.is_nan()
            }
            Stats::Iqr { q1, q3, lower_fence, upper_fence } => {
                q1.is_nan() && q3.is_nan() && lower_fence.is_nan() && upper_fence.is_nan()
            }
        };
        assert!(all_nan, "{method:?}: {:?}", j.stats);
    }
}

#[test]
fn one_point_scores_zero_and_is_no_outlier() {
    for method in ALL_DEFAULTS {
        let j = judge(&[-3.5], &method);
        assert_eq!(j.scores, [0.0], "{method:?}");
        assert!(j.outliers.is_empty(), "{method:?}");
    }
    assert_eq!(
        judge(&[-3.5], &MODIFIED).stats,
        Stats::ModifiedZScore { median: -3.5, mad: 0.0, mean_abs_dev: 0.0 }
    );
    assert_eq!(
        judge(&[-3.5], &IQR).stats,
        Stats::Iqr { q1: -3.5, q3: -3.5, lower_fence: -3.5, upper_fence: -3.5 }
    );
}

// --- modified z-score --------------------------------------------------------

#[test]
fn the_modified_z_score_matches_numpy() {
    // b = np.array([2., 4, 4, 5, 7, 9, 30, 3]); med = np.median(b); d = np.abs(b - med)
    // mad = np.median(d); s = 0.6745 * (b - med) / mad
    // -> med 4.5, mad 2.0, np.mean(d) 4.75, s[6] 8.599874999999999, outliers [6]
    let j = judge(&[2.0, 4.0, 4.0, 5.0, 7.0, 9.0, 30.0, 3.0], &MODIFIED);
    assert_eq!(j.stats, Stats::ModifiedZScore { median: 4.5, mad: 2.0, mean_abs_dev: 4.75 });
    assert_eq!(
        j.scores,
        [-0.843125, -0.168625, -0.168625, 0.168625, 0.843125, 1.517625, 8.599874999999999, -0.505875]
    );
    assert_eq!(j.outliers, [6]);
}

#[test]
fn a_mad_of_zero_falls_back_to_the_mean_absolute_deviation() {
    // a = np.array([1, 1, 1, 1, 10.]); med 1.0, mad 0.0, np.mean(np.abs(a - med)) 1.8,
    // (a - med) / (1.253314 * 1.8) -> [0, 0, 0, 0, 3.9894232411031867]
    let j = judge(&[1.0, 1.0, 1.0, 1.0, 10.0], &MODIFIED);
    assert_eq!(j.stats, Stats::ModifiedZScore { median: 1.0, mad: 0.0, mean_abs_dev: 1.8 });
    assert_eq!(j.scores, [0.0, 0.0, 0.0, 0.0, 3.9894232411031867]);
    assert_eq!(j.outliers, [4]);
    assert_eq!(
        judge(&[1.0, 1.0, 1.0, 1.0, 10.0], &Method::ModifiedZScore { threshold: 4.0 }).outliers,
        [] as [usize; 0]
    );
}

#[test]
fn all_equal_points_give_modified_scores_of_zero() {
    let j = judge(&[2.5; 7], &MODIFIED);
    assert_eq!(j.stats, Stats::ModifiedZScore { median: 2.5, mad: 0.0, mean_abs_dev: 0.0 });
    assert_eq!(j.scores, [0.0; 7]);
    assert!(j.outliers.is_empty());
}

// --- IQR -------------------------------------------------------------------

#[test]
fn tukeys_fences_match_numpy_percentiles() {
    // c = np.array([1, 2, 3, 4, 5, 6, 7, 100.]); q1, q3 = np.percentile(c, [25, 75])
    // -> 2.75 6.25, fences -2.5 11.5, (100 - q3) / (q3 - q1) 26.785714285714285, outliers [7]
    let j = judge(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0], &IQR);
    assert_eq!(j.stats, Stats::Iqr { q1: 2.75, q3: 6.25, lower_fence: -2.5, upper_fence: 11.5 });
    assert_eq!(j.scores[7], 26.785714285714285);
    assert_eq!(j.scores[..7], [-1.75 / 3.5, -0.75 / 3.5, 0.0, 0.0, 0.0, 0.0, 0.75 / 3.5]);
    assert_eq!(j.outliers, [7]);
}

#[test]
fn an_iqr_of_zero_gives_infinite_scores_outside_the_quartiles() {
    let j = judge(&[5.0, 5.0, 7.0, 5.0, 5.0, 5.0, 3.0], &IQR);
    assert_eq!(j.stats, Stats::Iqr { q1: 5.0, q3: 5.0, lower_fence: 5.0, upper_fence: 5.0 });
    assert_eq!(j.scores, [0.0, 0.0, f64::INFINITY, 0.0, 0.0, 0.0, f64::NEG_INFINITY]);
    assert_eq!(j.outliers, [2, 6]);
}

#[test]
fn a_point_on_a_fence_is_not_an_outlier() {
    // [0, 0, 0, 1]: q1 0, q3 0.25, IQR 0.25; with k = 3 the upper fence is exactly 1.
    let j = judge(&[0.0, 0.0, 0.0, 1.0], &Method::Iqr { k: 3.0 });
    assert_eq!(j.stats, Stats::Iqr { q1: 0.0, q3: 0.25, lower_fence: -0.75, upper_fence: 1.0 });
    assert_eq!(j.scores[3], 3.0);
    assert!(j.outliers.is_empty());
}

// --- batches -----------------------------------------------------------------

#[test]
fn grouping_by_name_keeps_batch_positions() {
    let mut batch = Vec::new();
    for i in 0..12 {
        batch.push(("cpu", 10.0 + f64::from(i % 3)));
        batch.push(("mem", 500.0 + f64::from(i % 2)));
    }
    batch[2 * 7].1 = 90.0; // cpu's eighth point, batch position 14
    batch[2 * 3 + 1].1 = 9.0; // mem's fourth point, batch position 7
    let d = detect(batch.iter().copied(), &Method::SEED);
    assert_eq!(d.indices, [7, 14]);
    assert_eq!(d.scores.len(), 24);
    let names: Vec<&str> = d.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cpu", "mem"]);
    let cpu: Vec<f64> = batch.iter().filter(|p| p.0 == "cpu").map(|p| p.1).collect();
    let j = judge(&cpu, &Method::SEED);
    assert_eq!(d.series[0], SeriesResult { name: "cpu".into(), count: 12, outliers: 1, stats: j.stats });
    assert_eq!(d.series[1].count, 12);
    assert_eq!(d.series[1].outliers, 1);
    let cpu_scores: Vec<f64> = d.scores.iter().step_by(2).copied().collect();
    assert_eq!(cpu_scores, j.scores);
}

#[test]
fn series_are_listed_by_name_whatever_the_batch_order() {
    let d = detect([("b", 1.0), ("a", 2.0), ("c", 3.0), ("a", 4.0)], &MODIFIED);
    let got: Vec<(&str, usize)> = d.series.iter().map(|s| (s.name.as_str(), s.count)).collect();
    assert_eq!(got, [("a", 2), ("b", 1), ("c", 1)]);
}

#[test]
fn an_empty_batch_detects_nothing() {
    let d = detect(std::iter::empty(), &Method::SEED);
    assert_eq!(d, Detection { indices: vec![], scores: vec![], series: vec![] });
}

#[test]
fn first_non_finite_finds_nan_and_infinities() {
    assert_eq!(first_non_finite([1.0, 2.0]), None);
    assert_eq!(first_non_finite([1.0, f64::NAN, f64::INFINITY]), Some(1));
    assert_eq!(first_non_finite([f64::NEG_INFINITY]), Some(0));
    assert_eq!(first_non_finite([1.0, -0.0, f64::MAX, f64::INFINITY].iter().copied()), Some(3));
}

#[test]
fn non_finite_values_do_not_panic() {
    for method in ALL_DEFAULTS {
        let j = judge(&[1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.0, 3.0], &method);
        assert_eq!(j.scores.len(), 6);
    }
}

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![-1e6f64..1e6, (-50i32..50).prop_map(f64::from)], 0..200)
}

proptest! {
    #[test]
    fn detect_on_a_single_name_equals_judge(x in values(), method in any_method()) {
        let d = detect(x.iter().map(|&v| ("only", v)), &method);
        let j = judge(&x, &method);
        prop_assert_eq!(&d.indices, &j.outliers);
        prop_assert_eq!(d.scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                        j.scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>());
        if x.is_empty() {
            prop_assert!(d.series.is_empty());
        } else {
            prop_assert_eq!(d.series.len(), 1);
            prop_assert_eq!(d.series[0].count, x.len());
            prop_assert_eq!(d.series[0].outliers, j.outliers.len());
            prop_assert_eq!(format!("{:?}", d.series[0].stats), format!("{:?}", j.stats));
        }
    }

    #[test]
    fn detect_judges_each_series_on_its_own_values(
        points in prop::collection::vec((0usize..4, -1e3f64..1e3), 0..300), method in any_method(),
    ) {
        const NAMES: [&str; 4] = ["a", "b", "c", "d"];
        let d = detect(points.iter().map(|&(n, v)| (NAMES[n], v)), &method);
        let mut indices = Vec::new();
        for s in &d.series {
            let positions: Vec<usize> =
                (0..points.len()).filter(|&i| NAMES[points[i].0] == s.name).collect();
            let x: Vec<f64> = positions.iter().map(|&i| points[i].1).collect();
            let j = judge(&x, &method);
            prop_assert_eq!(s.count, x.len());
            prop_assert_eq!(s.stats, j.stats);
            for (k, &p) in positions.iter().enumerate() {
                prop_assert_eq!(d.scores[p].to_bits(), j.scores[k].to_bits());
            }
            indices.extend(j.outliers.iter().map(|&k| positions[k]));
        }
        indices.sort_unstable();
        prop_assert_eq!(d.indices, indices);
    }

    #[test]
    fn columns_give_what_named_points_give(
        points in prop::collection::vec((0usize..5, -1e3f64..1e3), 0..300), method in any_method(),
    ) {
        // Series numbered in order of first appearance, as a wire reader numbers them;
        // name 4 is listed but has no point.
        let all = ["d", "b", "e", "a", "unused"];
        let mut names: Vec<String> = Vec::new();
        let mut series = Vec::new();
        for &(n, _) in &points {
            let n = n.min(3);
            let s = names.iter().position(|x| x == all[n]).unwrap_or_else(|| {
                names.push(all[n].to_owned());
                names.len() - 1
            });
            series.push(u32::try_from(s).unwrap());
        }
        names.push(all[4].to_owned());
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        let columns = Columns { values: &values, series: &series, names: &names };
        let got = detect_columns(columns, &method);
        let want = detect(points.iter().map(|&(n, v)| (all[n.min(3)], v)), &method);
        prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
        prop_assert_eq!(outlier_positions(columns, &method), want.indices);
    }

    #[test]
    fn one_name_needs_no_series_column(values in prop::collection::vec(-1e3f64..1e3, 0..300), method in any_method()) {
        let names = ["cpu".to_owned()];
        let columns = Columns { values: &values, series: &[], names: &names };
        let want = detect(values.iter().map(|&v| ("cpu", v)), &method);
        prop_assert_eq!(format!("{:?}", detect_columns(columns, &method)), format!("{want:?}"));
        prop_assert_eq!(outlier_positions(columns, &method), want.indices);
    }

    #[test]
    fn quartiles_and_medians_agree_with_a_full_sort(x in prop::collection::vec(-1e3f64..1e3, 1..100)) {
        let mut sorted = x.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let at = |q: f64| {
            let v = (n - 1) as f64 * q;
            let j = v.floor() as usize;
            let (a, b) = (sorted[j], sorted[(j + 1).min(n - 1)]);
            let t = v - v.floor();
            if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t }
        };
        prop_assert_eq!(numpy::quartiles_in_place(&mut x.clone()), (at(0.25), at(0.75)));
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        prop_assert_eq!(numpy::median_in_place(&mut x.clone()), 0.0 + median);
    }
}

// --- streams -----------------------------------------------------------------

#[test]
fn a_stream_judges_each_point_against_the_window_before_it() {
    let mut s = StreamDetector::new(Method::SEED, 5, 10);
    let xs = [10.0, 11.0, 10.0, 12.0, 11.0, 10.0, 30.0, 11.0];
    let verdicts: Vec<Option<Verdict>> = xs.iter().map(|&x| s.push("cpu", x).unwrap()).collect();
    // The seed rule needs 5 points to flag anything, the whole window here:
    // the first five points fill it unjudged.
    assert!(verdicts[..5].iter().all(Option::is_none));
    for i in 5..xs.len() {
        let window = &xs[i - 5..i];
        let stats = judge(window, &Method::SEED).stats;
        let (score, outlier) = score(&stats, &Method::SEED, xs[i]);
        assert_eq!(
            verdicts[i],
            Some(Verdict { score, window_points: 5, outlier, warm_up: false }),
            "point {i}"
        );
    }
    assert!(verdicts[6].unwrap().outlier);
    assert!(!verdicts[7].unwrap().outlier);
}

#[test]
fn a_stream_keeps_series_apart() {
    let mut s = StreamDetector::new(IQR, 4, 10);
    for i in 0..4 {
        assert_eq!(s.push("a", f64::from(i)).unwrap(), None);
        assert_eq!(s.push("b", 100.0).unwrap(), None);
    }
    let a = s.push("a", 1000.0).unwrap().unwrap();
    assert!(a.outlier && a.window_points == 4);
    let b = s.push("b", 100.0).unwrap().unwrap();
    assert!(!b.outlier && b.score == 0.0);
    assert_eq!(s.series_count(), 2);
}

#[test]
fn a_stream_refuses_a_new_series_past_its_limit() {
    let mut s = StreamDetector::new(Method::SEED, 10, 2);
    s.push("a", 1.0).unwrap();
    s.push("b", 1.0).unwrap();
    let err = s.push("c", 1.0).unwrap_err();
    assert_eq!(err, TooManySeries { limit: 2 });
    assert_eq!(err.to_string(), "a stream holds at most 2 series; a point of one more was refused");
    // Known series go on, and the refused one left nothing behind.
    assert_eq!(s.push("a", 2.0), Ok(None));
    assert_eq!(s.series_count(), 2);
    assert_eq!(StreamDetector::new(Method::SEED, 10, 0).push("a", 1.0), Err(TooManySeries { limit: 0 }));
}

#[test]
fn nothing_is_judged_until_the_window_is_full_when_the_method_needs_more_points_than_it() {
    // The seed rule needs 5 points: a window of 4 has no warm-up.
    assert_eq!(warm_up(&Method::SEED, 4), 4..4);
    let mut s = StreamDetector::new(Method::SEED, 4, 1);
    for i in 0..4 {
        assert_eq!(s.push("a", f64::from(i * i)), Ok(None));
    }
    assert!(s.push("a", 100.0).unwrap().is_some_and(|v| v.outlier && v.window_points == 4));
    // A window of 0 holds nothing and judges nothing.
    let mut s = StreamDetector::new(Method::SEED, 0, 1);
    assert!((0..50).all(|i| s.push("a", f64::from(i)) == Ok(None)));
}

#[test]
fn a_spike_at_point_50_is_flagged_by_a_batch_and_by_a_stream_with_a_window_of_100() {
    // A wobble with one spike, at point 50 of the series.
    let xs: Vec<f64> = (0..60).map(|i| if i == 50 { 30.0 } else { 10.0 + f64::from(i % 4) * 0.5 }).collect();
    for method in ALL_DEFAULTS {
        assert_eq!(judge(&xs, &method).outliers, [50], "{method:?}: batch");
        let mut s = StreamDetector::new(method, 100, 1);
        let flagged: Vec<(usize, Verdict)> = xs
            .iter()
            .enumerate()
            .filter_map(|(i, &x)| s.push("cpu", x).unwrap().filter(|v| v.outlier).map(|v| (i, v)))
            .collect();
        let [(at, verdict)] = flagged.as_slice() else { panic!("{method:?}: {flagged:?}") };
        assert_eq!((*at, verdict.window_points, verdict.warm_up), (50, 50, true), "{method:?}");
        // Judged against exactly the 50 points before it.
        assert_eq!(verdict.score, score(&judge(&xs[..50], &method).stats, &method, 30.0).0);
    }
}

#[test]
fn points_before_the_methods_min_points_are_never_judged() {
    let methods = [
        Method::SEED,
        SAMPLE_2,
        MODIFIED,
        IQR,
        Method::ZScore { threshold: 3.0, sigma: Sigma::Population },
        Method::ZScore { threshold: 4.5, sigma: Sigma::Sample },
        Method::ModifiedZScore { threshold: 0.5 },
        Method::Iqr { k: 0.5 },
        Method::Iqr { k: 1.0 },
        Method::Iqr { k: 3.5 },
    ];
    // Each threshold has its own minimum, computed, not assumed.
    let mins: Vec<usize> = methods.iter().map(Method::min_points).collect();
    assert_eq!(mins, [5, 6, 3, 4, 10, 23, 2, 2, 3, 5]);
    for (method, min) in methods.into_iter().zip(mins) {
        assert_eq!(warm_up(&method, 100), min..100, "{method:?}");
        let mut s = StreamDetector::new(method, 100, 1);
        // Even an enormous jump is not judged before `min` points.
        for i in 0..min {
            let x = if i + 1 == min { 1e9 } else { f64::from(i as u32 % 2) };
            assert_eq!(s.push("a", x), Ok(None), "{method:?} point {i}");
        }
        let v = s.push("a", 5.0).unwrap().expect("judged from min_points on");
        assert_eq!((v.window_points, v.warm_up), (min, true), "{method:?}");
    }
}

#[test]
fn warm_up_verdicts_are_marked_and_count_the_points_before_them() {
    let window = 20;
    let mut s = StreamDetector::new(IQR, window, 2);
    for i in 0..60usize {
        for name in ["a", "b"] {
            let v = s.push(name, (i % 7) as f64).unwrap();
            match i {
                ..4 => assert_eq!(v, None, "point {i}"),
                4..20 => assert!(v.is_some_and(|v| v.warm_up && v.window_points == i), "point {i}: {v:?}"),
                _ => assert!(v.is_some_and(|v| !v.warm_up && v.window_points == window), "point {i}: {v:?}"),
            }
        }
    }
}

#[test]
fn once_the_window_is_full_verdicts_are_those_of_the_window_alone() {
    // The same points after a warm-up full of spikes and after a quiet one:
    // once the window is full, only the last `window` points count.
    let window = 10;
    let tail: Vec<f64> = (0..40).map(|i| if i % 13 == 5 { 50.0 } else { f64::from(i % 3) }).collect();
    let verdicts = |head: &[f64]| {
        let mut s = StreamDetector::new(Method::SEED, window, 1);
        for &x in head {
            s.push("a", x).unwrap();
        }
        tail.iter().map(|&x| s.push("a", x).unwrap()).collect::<Vec<_>>()
    };
    let spiky = verdicts(&[0.0, 900.0, -900.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    let quiet = verdicts(&[1.0; 10]);
    for (i, x) in tail.iter().enumerate().skip(window) {
        let w = &tail[i - window..i];
        let (score, outlier) = score(&judge(w, &Method::SEED).stats, &Method::SEED, *x);
        let want = Some(Verdict { score, window_points: window, outlier, warm_up: false });
        assert_eq!((spiky[i], quiet[i]), (want, want), "point {i}");
    }
}

proptest! {
    #[test]
    fn stream_verdicts_are_batch_judgements_of_the_trailing_window(
        xs in prop::collection::vec((0usize..3, (-100i32..100).prop_map(f64::from)), 0..400),
        window in 1usize..40,
        method in any_method(),
    ) {
        let mut s = StreamDetector::new(method, window, 3);
        let mut history: [Vec<f64>; 3] = Default::default();
        for &(name, x) in &xs {
            let got = s.push(["a", "b", "c"][name], x).unwrap();
            let h = &history[name];
            let w = &h[h.len().saturating_sub(window)..];
            let judged = w.len() == window || w.len() >= method.min_points();
            let want = judged.then(|| {
                let (score, outlier) = score(&judge(w, &method).stats, &method, x);
                Verdict { score, window_points: w.len(), outlier, warm_up: w.len() < window }
            });
            prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
            history[name].push(x);
        }
    }
}

/// Points per second through one StreamDetector, per method, on one core:
///
///   cargo test --release -p dataport-core --lib -- --ignored --nocapture stream_throughput
#[test]
#[ignore = "a measurement, not a check: run it in release"]
fn stream_throughput() {
    const POINTS: usize = 2_000_000;
    const SERIES: usize = 100;
    let names: Vec<String> = (0..SERIES).map(|i| format!("host-{i}.cpu")).collect();
    // A cheap deterministic wobble with a spike now and then.
    let value = |i: usize| {
        let v = ((i * 7919) % 1000) as f64 * 0.01;
        if i.is_multiple_of(997) { v + 50.0 } else { v }
    };
    for (label, method) in [("z-score", Method::SEED), ("modified z", MODIFIED), ("iqr", IQR)] {
        for window in [100, 1000] {
            let mut s = StreamDetector::new(method, window, SERIES);
            // Fill every window first, so that every measured point is judged.
            for i in 0..SERIES * window {
                s.push(&names[i % SERIES], value(i)).unwrap();
            }
            let start = std::time::Instant::now();
            let mut outliers = 0usize;
            for i in 0..POINTS {
                if let Some(v) = s.push(&names[i % SERIES], value(i)).unwrap() {
                    outliers += usize::from(v.outlier);
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let rate = POINTS as f64 / secs;
            println!(
                "stream {label:<10} window {window:>4}: {:>6.2} M points/s ({outliers} outliers)",
                rate / 1e6
            );
        }
    }
}
