//! Where the axes get their ticks, and how tick values are written.
//!
//! The x axis counts trading days (bar indices), so its ticks sit on the first
//! bar of a calendar period (a week, a month, a year) or on every bar for short
//! ranges; [`x_ticks`] picks the finest spacing whose labels do not collide.
//! The y axes use "nice" steps of 1, 2 or 5 times a power of ten, so every
//! label of an axis is written with the same number of decimals; the volume
//! axis counts from 0 and shows at least three labels wherever they fit.

use dataport_core::market::bars::{Bar, Date};

/// One labelled tick on the x axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XTick {
    pub index: usize,
    pub label: String,
}

/// How finely the x axis is labelled, finest first in [`SCHEMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// Every `n`th bar, labelled with its date.
    Bars(usize),
    /// The first bar of every `n`th ISO week (Monday first), labelled with its date.
    Weeks(i64),
    /// The first bar of every `n`th month, labelled like "Mar 2013".
    Months(i64),
    /// The first bar of every `n`th year, labelled like "2013".
    Years(i64),
}

const SCHEMES: &[Scheme] = &[
    Scheme::Bars(1),
    Scheme::Bars(2),
    Scheme::Weeks(1),
    Scheme::Weeks(2),
    Scheme::Months(1),
    Scheme::Months(2),
    Scheme::Months(3),
    Scheme::Months(6),
    Scheme::Years(1),
    Scheme::Years(2),
    Scheme::Years(5),
    Scheme::Years(10),
    Scheme::Years(20),
    Scheme::Years(50),
    Scheme::Years(100),
    Scheme::Years(1000),
];

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days(date: Date) -> i64 {
    let (y, m, d) = (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Scheme {
    /// The period a date falls in; a tick goes where the period changes.
    fn period(self, date: Date) -> i64 {
        match self {
            Scheme::Bars(_) => 0,
            // 1970-01-01 was a Thursday: shifting by 3 starts weeks on Monday.
            Scheme::Weeks(_) => (days(date) + 3).div_euclid(7),
            Scheme::Months(_) => i64::from(date.year()) * 12 + i64::from(date.month()) - 1,
            Scheme::Years(_) => i64::from(date.year()),
        }
    }

    fn step(self) -> i64 {
        match self {
            Scheme::Bars(n) => n as i64,
            Scheme::Weeks(n) | Scheme::Months(n) | Scheme::Years(n) => n,
        }
    }

    /// Whether the first bar shown is (very likely) the first trading day of
    /// its period: the range may start mid-month, and a "Mar 2013" tick on
    /// 2013-03-20 would mislead. Weekends and holidays can push the first
    /// trading day to the 4th (2012-01-03, say), hence the slack.
    fn starts_period(self, date: Date) -> bool {
        match self {
            Scheme::Bars(_) => true,
            Scheme::Weeks(_) => (days(date) + 3).rem_euclid(7) <= 1,
            Scheme::Months(_) => date.day() <= 4,
            Scheme::Years(_) => date.month() == 1 && date.day() <= 4,
        }
    }

    fn label(self, date: Date) -> String {
        match self {
            Scheme::Bars(_) | Scheme::Weeks(_) => date.to_string(),
            Scheme::Months(_) => {
                format!("{} {}", MONTHS[usize::from(date.month().clamp(1, 12)) - 1], date.year())
            }
            Scheme::Years(_) => date.year().to_string(),
        }
    }

    fn ticks(self, bars: &[Bar]) -> Vec<usize> {
        if let Scheme::Bars(n) = self {
            return (0..bars.len()).step_by(n.max(1)).collect();
        }
        let step = self.step();
        let mut out = Vec::new();
        let mut previous = None;
        for (i, bar) in bars.iter().enumerate() {
            let period = self.period(bar.date);
            let new_period = match previous {
                None => self.starts_period(bar.date),
                Some(p) => p != period,
            };
            if new_period && period.rem_euclid(step) == 0 {
                out.push(i);
            }
            previous = Some(period);
        }
        out
    }
}

/// Picks the finest labelling of the x axis whose labels keep at least `gap`
/// pixels between each other and stay inside `left..right`. `x_of` maps a bar
/// index to its pixel column; `width_of` measures a label in pixels.
pub(crate) fn x_ticks(
    bars: &[Bar],
    x_of: impl Fn(usize) -> f64,
    width_of: impl Fn(&str) -> f64,
    gap: f64,
    (left, right): (f64, f64),
) -> Vec<XTick> {
    let Some(first) = bars.first() else {
        return Vec::new();
    };
    let span = right - left;
    for &scheme in SCHEMES {
        let indices = scheme.ticks(bars);
        if indices.is_empty() {
            continue;
        }
        // Labels of one scheme have nearly the same width: a cheap count check
        // keeps 2,000 bars from being measured one by one.
        let typical = width_of(&scheme.label(bars[indices[0]].date));
        if indices.len() > 1 && (typical + gap) * (indices.len() - 1) as f64 > span {
            continue;
        }
        let ticks: Vec<(f64, f64, XTick)> = indices
            .into_iter()
            .map(|index| {
                let label = scheme.label(bars[index].date);
                (x_of(index), width_of(&label), XTick { index, label })
            })
            .filter(|(x, w, _)| x - w / 2.0 >= left && x + w / 2.0 <= right)
            .collect();
        if ticks.is_empty() {
            continue;
        }
        let fits = ticks.windows(2).all(|pair| {
            let (x0, w0, _) = &pair[0];
            let (x1, w1, _) = &pair[1];
            (x1 - w1 / 2.0) - (x0 + w0 / 2.0) >= gap
        });
        if fits {
            return ticks.into_iter().map(|(_, _, tick)| tick).collect();
        }
    }
    // Too narrow even for one calendar label: name the first bar only.
    vec![XTick { index: 0, label: first.date.to_string() }]
}

/// Ticks on `lo..=hi` at a nice step (1, 2 or 5 times a power of ten), about
/// `target` of them; returns the ticks and the step.
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (Vec::new(), 1.0);
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let step = magnitude
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Multiply, never accumulate: 0.1 + 0.2 drifts, 3.0 * 0.1 is as close as it gets.
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// The next nice step below `step` (a nice step itself): 5 -> 2 -> 1 -> 0.5.
fn smaller_step(step: f64) -> f64 {
    let e = step.log10().floor() as i32;
    let magnitude = 10f64.powi(e);
    // Rounded: log10 may land a hair below an exact power of ten (m = 10).
    match (step / magnitude).round() as i64 {
        5 => 2.0 * magnitude,
        2 => magnitude,
        10 => 5.0 * magnitude,
        _ => 5.0 * 10f64.powi(e - 1),
    }
}

/// Ticks of an axis from 0 (a volume axis: its columns stand on 0) up to
/// `top`, the highest value a label may sit at: 0 and the multiples of a
/// nice step, about `target` of them, and at least three wherever labels
/// `min_gap` apart (in values) fit, since one label alone gives no scale.
/// Returns the ticks and the step; none if `top` is not a positive number.
pub(crate) fn zero_based_ticks(top: f64, target: usize, min_gap: f64) -> (Vec<f64>, f64) {
    if !(top.is_finite() && top > 0.0) {
        return (Vec::new(), 1.0);
    }
    let count = |step: f64| (top / step).floor() as i64 + 1;
    let (_, mut step) = nice_ticks(0.0, top, target);
    while count(step) < 3 {
        let smaller = smaller_step(step);
        if smaller < min_gap || smaller <= 0.0 {
            break;
        }
        step = smaller;
    }
    // Multiply, never accumulate (as in nice_ticks).
    ((0..count(step)).map(|k| k as f64 * step).collect(), step)
}

/// Decimals that write every multiple of `step` exactly (step is 1, 2 or 5 × 10^k).
pub(crate) fn decimals(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    let k = step.log10().floor() as i64;
    // A step like 5e-3 needs 3 decimals; 0.2 needs 1; 20 needs none.
    (-k).clamp(0, 10) as usize
}

/// A price or indicator value with a fixed number of decimals, never "-0.00".
pub(crate) fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_owned()
    } else {
        text
    }
}

/// Volume in compact units (950K, 1.5M, 2B), with the decimals the step needs
/// in the unit of the largest tick.
pub(crate) fn compact(value: f64, step: f64, largest: f64) -> String {
    let (unit, suffix) = if largest >= 1e9 {
        (1e9, "B")
    } else if largest >= 1e6 {
        (1e6, "M")
    } else if largest >= 1e3 {
        (1e3, "K")
    } else {
        (1.0, "")
    };
    if value == 0.0 {
        return "0".to_owned();
    }
    format!("{}{suffix}", fixed(value / unit, decimals(step / unit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(date: &str) -> Bar {
        Bar::flat(date.parse().expect("test date"), 1.0)
    }

    #[test]
    fn days_counts_from_the_unix_epoch() {
        assert_eq!(days("1970-01-01".parse().expect("date")), 0);
        assert_eq!(days("2000-03-01".parse().expect("date")), 11_017);
        assert_eq!(days("1969-12-31".parse().expect("date")), -1);
    }

    #[test]
    fn month_ticks_skip_a_range_that_starts_mid_month() {
        let bars = [bar("2013-01-15"), bar("2013-01-16"), bar("2013-02-01"), bar("2013-03-01")];
        assert_eq!(Scheme::Months(1).ticks(&bars), vec![2, 3]);
        let bars = [bar("2012-01-03"), bar("2012-02-01")];
        assert_eq!(Scheme::Months(1).ticks(&bars), vec![0, 1]);
    }

    #[test]
    fn week_ticks_fall_on_the_first_trading_day_of_the_week() {
        // 2013-03-01 is a Friday, 2013-03-04 a Monday, 2013-03-12 a Tuesday.
        let bars = [bar("2013-03-01"), bar("2013-03-04"), bar("2013-03-05"), bar("2013-03-12")];
        assert_eq!(Scheme::Weeks(1).ticks(&bars), vec![1, 3]);
    }

    #[test]
    fn x_ticks_coarsen_until_labels_do_not_collide() {
        let mut bars = Vec::new();
        for year in 2000..2008u16 {
            for month in 1..=12u8 {
                for day in [1u8, 10, 20] {
                    if let Some(date) = Date::new(year, month, day) {
                        bars.push(Bar::flat(date, 1.0));
                    }
                }
            }
        }
        let n = bars.len() as f64;
        let ticks =
            x_ticks(&bars, |i| 100.0 + 800.0 * i as f64 / n, |s| 7.0 * s.len() as f64, 10.0, (0.0, 1000.0));
        assert!(ticks.iter().all(|t| t.label.len() == 4), "{ticks:?}");
        assert_eq!(ticks.len(), 8);
    }

    #[test]
    fn nice_ticks_use_round_steps() {
        let (ticks, step) = nice_ticks(0.13, 0.97, 5);
        assert_eq!(step, 0.2);
        assert_eq!(
            ticks.iter().map(|t| fixed(*t, decimals(step))).collect::<Vec<_>>(),
            ["0.2", "0.4", "0.6", "0.8"]
        );
        assert!(nice_ticks(1.0, 1.0, 5).0.is_empty());
        assert!(nice_ticks(f64::NAN, 1.0, 5).0.is_empty());
    }

    /// A volume axis's labels, as the chart writes them.
    fn volume_labels(top: f64, target: usize, min_gap: f64) -> Vec<String> {
        let (ticks, step) = zero_based_ticks(top, target, min_gap);
        let largest = ticks.iter().copied().fold(0.0, f64::max);
        ticks.iter().map(|v| compact(*v, step, largest)).collect()
    }

    #[test]
    fn volume_axes_get_at_least_three_labels_from_zero() {
        // From a fraction of a share to tens of trillions, at about the
        // label count a short volume strip asks for (3) and a tall one (10),
        // with room for ten labels above each other (min_gap top / 10).
        let tops = [
            0.004, 0.75, 1.0, 2.9, 3.0, 7.5, 40.0, 999.0, 1_000.0, 12_345.0, 650_000.0, 2.5e6, 6.5e6, 3.2e7,
            9.99e7, 1e8, 1.2e8, 4.4e9, 1e12, 7.7e13,
        ];
        for top in tops {
            for target in [3, 5, 10] {
                let (ticks, step) = zero_based_ticks(top, target, top / 10.0);
                assert!(ticks.len() >= 3, "top {top}, target {target}: {ticks:?}");
                assert!(ticks.len() <= target.max(5) + 1, "top {top}, target {target}: {ticks:?}");
                assert_eq!(ticks[0], 0.0);
                assert!(ticks.iter().all(|t| *t <= top), "top {top}: {ticks:?}");
                // A nice step: 1, 2 or 5 times a power of ten.
                let mantissa = step / 10f64.powi(step.log10().floor() as i32);
                assert!(
                    [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-9),
                    "top {top}: step {step}"
                );
                let labels = volume_labels(top, target, top / 10.0);
                let mut distinct = labels.clone();
                distinct.dedup();
                assert_eq!(distinct, labels, "top {top}");
                assert!(labels.iter().all(|l| l.len() <= 6), "top {top}: {labels:?}");
            }
        }
    }

    #[test]
    fn volume_labels_read_as_round_numbers() {
        // A short strip (target 3) whose old labelling showed one label, 5M.
        assert_eq!(volume_labels(6.5e6, 3, 6.5e5), ["0", "2M", "4M", "6M"]);
        assert_eq!(volume_labels(1.1e8, 3, 1.1e7), ["0", "50M", "100M"]);
        assert_eq!(volume_labels(2.2e7, 3, 2.2e6), ["0", "10M", "20M"]);
        assert_eq!(volume_labels(3.0, 3, 0.3), ["0", "1", "2", "3"]);
        assert_eq!(volume_labels(0.004, 3, 0.0004), ["0", "0.002", "0.004"]);
        assert_eq!(volume_labels(4.4e9, 3, 4.4e8), ["0", "2B", "4B"]);
        assert_eq!(volume_labels(1.8e6, 3, 1.8e5), ["0", "0.5M", "1.0M", "1.5M"]);
    }

    #[test]
    fn volume_labels_never_crowd_a_strip_too_short_for_three() {
        // Labels must stay 30M apart: 0 and 50M only, not 0, 20M, 40M, 60M.
        let (ticks, step) = zero_based_ticks(6.5e7, 3, 3e7);
        assert_eq!((ticks, step), (vec![0.0, 5e7], 5e7));
        assert!(zero_based_ticks(0.0, 3, 1.0).0.is_empty());
        assert!(zero_based_ticks(f64::NAN, 3, 1.0).0.is_empty());
        assert!(zero_based_ticks(f64::INFINITY, 3, 1.0).0.is_empty());
    }

    #[test]
    fn compact_volume_keeps_one_unit_per_axis() {
        assert_eq!(compact(1_500_000.0, 500_000.0, 3_000_000.0), "1.5M");
        assert_eq!(compact(3_000_000.0, 500_000.0, 3_000_000.0), "3.0M");
        assert_eq!(compact(40_000_000.0, 20_000_000.0, 80_000_000.0), "40M");
        assert_eq!(compact(950_000.0, 50_000.0, 950_000.0), "950K");
        assert_eq!(compact(2e9, 1e9, 2e9), "2B");
        assert_eq!(compact(0.0, 1e6, 2e6), "0");
    }

    #[test]
    fn fixed_never_writes_negative_zero() {
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(-0.5, 1), "-0.5");
    }
}
