//! numpy's float64 arithmetic, replicated operation for operation, so that our
//! sums, means, deviations, medians and percentiles are numpy's to the bit.
//!
//! The reference is numpy 2.4.6 (`tests/oracle/requirements.txt`); the oracle
//! (`tests/oracle/run`) checks every function here against it, sums of up to
//! 1,000,000 values included. File and line references are to numpy's v2.4.6
//! tag.
//!
//! - `np.add.reduce` of a contiguous float64 array ([`sum`]) starts from the
//!   ufunc's identity, +0.0 (`ufunc_object.c:1652`, used as the initial value
//!   by `reduction.c:328`), and adds to it one call of the pairwise summation
//!   (`loops_utils.h.src:81-145`, called from `loops_arithm_fp.dispatch.c.src:54`)
//!   over the whole array: a contiguous, aligned array needs no buffering, and
//!   with `NPY_ITER_GROWINNER` (`reduction.c:217`) the iterator then hands the
//!   loop every element at once (`nditer_constr.c:2313` caps the inner
//!   size at the 8192-element buffer only when buffering), so there is no
//!   chunking. A sum of only `-0.0` is therefore `+0.0`.
//! - `mean` (`_methods.py:115-146`) is that sum divided by n; `std`
//!   (`_methods.py:148-229`) subtracts the mean, squares, sums the same way,
//!   divides by `n - ddof` and takes the square root.
//! - `median` (`_function_base_impl.py:3991-4043`) is the `mean` of the middle
//!   value, or of the two middle values, of the partitioned array.
//! - `percentile` with the default `linear` method (`_function_base_impl.py:
//!   4714-4810`): virtual index `(n - 1) * q`, the two neighbouring order
//!   statistics, and `_lerp` (4582-4602): `a + (b - a) * t`, replaced by
//!   `b - (b - a) * (1 - t)` where `t >= 0.5`.
//!
//! Rust neither reassociates nor fuses floating-point operations, so writing
//! the same operations in the same order gives the same bits.

use std::cmp::Ordering;

/// numpy's `PW_BLOCKSIZE` (`loops_utils.h.src:63`).
const PW_BLOCKSIZE: usize = 128;

/// numpy's `DOUBLE_pairwise_sum` (`loops_utils.h.src:81-145`) over `f(x)` for
/// each `x`, in order.
///
/// Below 8 values a plain loop from `-0.0`; up to 128, eight accumulators over
/// strides of 8, combined as `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 +
/// r7))`, then the remainder added one by one; above 128, split at half the
/// length rounded down to a multiple of 8, each half summed the same way.
/// Mapping on the fly gives the same bits as numpy summing an array of the
/// mapped values.
#[inline]
fn pairwise_sum_by(x: &[f64], f: &impl Fn(f64) -> f64) -> f64 {
    let n = x.len();
    if n < 8 {
        // -0.0 so that a sum of only -0.0 stays -0.0 (numpy's comment).
        let mut res = -0.0;
        for &v in x {
            res += f(v);
        }
        res
    } else if n <= PW_BLOCKSIZE {
        let mut r = [0.0f64; 8];
        for (acc, &v) in r.iter_mut().zip(&x[..8]) {
            *acc = f(v);
        }
        let whole = n - n % 8;
        for chunk in x[8..whole].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc += f(v);
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &x[whole..] {
            res += f(v);
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum_by(&x[..n2], f) + pairwise_sum_by(&x[n2..], f)
    }
}

/// `np.add.reduce(x)`: `0.0 + pairwise_sum(x)`. The sum of nothing is 0.
pub fn sum(x: &[f64]) -> f64 {
    sum_by(x, |v| v)
}

/// `np.add.reduce` of `f` applied to each value of `x`.
#[inline]
pub(crate) fn sum_by(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    0.0 + pairwise_sum_by(x, &f)
}

/// A count as numpy divides by it (an `intp` cast to float64): exact below 2^53.
fn count(n: usize) -> f64 {
    n as f64
}

/// `np.mean(x)`: [`sum`] divided by the count; NaN when `x` is empty.
pub fn mean(x: &[f64]) -> f64 {
    sum(x) / count(x.len())
}

/// `np.std(x, ddof=ddof)`: the square root of the sum of squared deviations
/// from [`mean`], summed as [`sum`] sums, divided by `n - ddof`.
///
/// As in numpy, an empty `x` gives NaN, and so does `n <= ddof` with `n > 0`
/// (0 divided by 0).
pub fn std(x: &[f64], ddof: usize) -> f64 {
    std_around(x, mean(x), ddof)
}

/// [`std`] with the mean already known.
pub(crate) fn std_around(x: &[f64], mean: f64, ddof: usize) -> f64 {
    let squares = sum_by(x, |v| {
        let d = v - mean;
        d * d
    });
    (squares / count(x.len().saturating_sub(ddof))).sqrt()
}

/// The order used to select order statistics. numpy's partition compares
/// with `<`, where `-0.0 == 0.0`; a total order places `-0.0` first, which can
/// change only the sign of a zero median or quartile.
fn order(a: &f64, b: &f64) -> Ordering {
    a.total_cmp(b)
}

/// The smallest value of a non-empty slice, in [`order`].
fn least(x: &[f64]) -> f64 {
    x.iter().copied().min_by(order).unwrap_or(f64::NAN)
}

/// `np.median(x)`, reordering `x`: the middle value for odd n, the mean of the
/// two middle values for even n, each through `np.mean` (so `0.0 + (-0.0 +
/// a)` or `(0.0 + ((-0.0 + a) + b)) / 2`, which turns a median of `-0.0` into
/// `0.0`). NaN when `x` is empty. O(n): a selection, not a sort.
pub fn median_in_place(x: &mut [f64]) -> f64 {
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    if n % 2 == 1 {
        let (_, &mut m, _) = x.select_nth_unstable_by(mid, order);
        (0.0 + (-0.0 + m)) / 1.0
    } else {
        let (_, &mut a, above) = x.select_nth_unstable_by(mid - 1, order);
        let b = least(above);
        (0.0 + ((-0.0 + a) + b)) / 2.0
    }
}

/// numpy's `_lerp(a, b, t)` (`_function_base_impl.py:4582-4602`).
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// `np.percentile(x, [25, 75])` with the default `linear` method, reordering
/// `x`: the first and third quartiles. Both NaN when `x` is empty.
///
/// For quantile q (0.25 and 0.75, exactly `25 / 100` and `75 / 100`), the
/// virtual index is `v = (n - 1) * q`, `j = floor(v)`, `t = v - j`, and the
/// quartile is `lerp(s[j], s[j + 1], t)` over the sorted values `s`. With one
/// value, numpy takes `j` and `j + 1` both as the last value and `t = v + 1`
/// (`_get_indexes`, `_function_base_impl.py:4679-4711`), which is the value.
/// O(n): two selections, not a sort.
pub fn quartiles_in_place(x: &mut [f64]) -> (f64, f64) {
    let n = x.len();
    match n {
        0 => return (f64::NAN, f64::NAN),
        1 => {
            let v = x[0];
            return (lerp(v, v, 1.0), lerp(v, v, 1.0));
        }
        _ => {}
    }
    // The virtual indexes, exact for any n below 2^53.
    let last = count(n - 1);
    let (v1, v3) = (last * 0.25, last * 0.75);
    let (j1, j3) = (v1.floor(), v3.floor());
    let (t1, t3) = (v1 - j1, v3 - j3);
    let (j1, j3) = (j1 as usize, j3 as usize);
    // v < n - 1 for n >= 2, so j + 1 < n.
    let (_, &mut a1, above) = x.select_nth_unstable_by(j1, order);
    let b1 = least(above);
    let (a3, b3) = if j3 == j1 {
        (a1, b1)
    } else {
        // Order statistic j3 of x is order statistic j3 - j1 - 1 of `above`.
        let (_, &mut a3, above3) = above.select_nth_unstable_by(j3 - j1 - 1, order);
        (a3, least(above3))
    };
    (lerp(a1, b1, t1), lerp(a3, b3, t3))
}
