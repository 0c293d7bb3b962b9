//! Judging points as they arrive, each against a trailing window of its own
//! series (while the window fills, against the series so far).

use std::collections::HashMap;
use std::ops::Range;

use super::{Method, score, stats_of};

/// Refused: a point of a new series when the detector already holds its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a stream holds at most {limit} series; a point of one more was refused")]
pub struct TooManySeries {
    pub limit: usize,
}

/// How a point compared with the window before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The point's score against the window's statistics.
    pub score: f64,
    /// How many values the window held: the window size, or during the
    /// series' warm-up all its earlier points.
    pub window_points: usize,
    pub outlier: bool,
    /// Judged while the series' window was still filling: against fewer
    /// than `window` points (`window_points` of them).
    pub warm_up: bool,
}

/// Judges each point against the last `window` points of its series before
/// it, with the statistics [`judge`](super::judge) would compute over exactly
/// those values, and then adds the point to the window.
///
/// While a series has fewer than `window` points (its warm-up), a point is
/// judged against all the points of the series before it, once there are at
/// least [`Method::min_points`] of them: fewer can flag nothing, so earlier
/// points are not judged at all. Such verdicts say [`Verdict::warm_up`]; a
/// spike at point 50 is then found with a window of 100, as a batch finds it.
/// Once a series has `window` points, each point is judged against exactly
/// the last `window`. [`warm_up`] gives the positions in a series
/// judged during the warm-up.
///
/// Memory is one buffer of at most `2 * window` values per series, and at
/// most `max_series` series. Each judgement costs O(window): two passes for
/// the z-score, selections (not sorts) for the median and the quartiles.
#[derive(Debug)]
pub struct StreamDetector {
    method: Method,
    window: usize,
    /// The fewest earlier points a point is judged against: the method's
    /// `min_points`, or the window when that is smaller (`usize::MAX` for a
    /// window of 0, which judges nothing).
    judge_from: usize,
    max_series: usize,
    series: HashMap<Box<str>, Window>,
    /// Reused by the selections, so a judgement does not allocate.
    scratch: Vec<f64>,
}

/// The last values of one series, oldest first: `buf[buf.len() - window..]`.
/// Values are appended and, when the buffer reaches `2 * window`, the newest
/// `window` are moved to the front, so the window is always one slice and
/// each push costs O(1) amortised.
#[derive(Debug, Default)]
struct Window {
    buf: Vec<f64>,
}

impl Window {
    fn values(&self, window: usize) -> &[f64] {
        &self.buf[self.buf.len().saturating_sub(window)..]
    }

    fn push(&mut self, value: f64, window: usize) {
        if window == 0 {
            return;
        }
        let full = window.saturating_mul(2);
        if self.buf.len() >= full {
            let keep = self.buf.len() - window;
            self.buf.copy_within(keep.., 0);
            self.buf.truncate(window);
        } else if self.buf.len() == self.buf.capacity() {
            // Grow by doubling, but never past 2 * window.
            let more = self.buf.capacity().max(8).min(full - self.buf.len());
            self.buf.reserve_exact(more);
        }
        self.buf.push(value);
    }
}

impl StreamDetector {
    pub fn new(method: Method, window: usize, max_series: usize) -> StreamDetector {
        let judge_from = match window {
            0 => usize::MAX,
            _ => warm_up(&method, window).start,
        };
        StreamDetector { method, window, judge_from, max_series, series: HashMap::new(), scratch: Vec::new() }
    }

    /// Judges `value` against the window of series `name` (during the
    /// warm-up, against what it holds so far), then adds it to the window.
    /// `None` when the point was not judged. A point of a new series past
    /// `max_series` is refused and changes nothing.
    pub fn push(&mut self, name: &str, value: f64) -> Result<Option<Verdict>, TooManySeries> {
        if let Some(w) = self.series.get_mut(name) {
            return Ok(step(w, value, &self.method, self.window, self.judge_from, &mut self.scratch));
        }
        if self.series.len() >= self.max_series {
            return Err(TooManySeries { limit: self.max_series });
        }
        let w = self.series.entry(name.into()).or_default();
        Ok(step(w, value, &self.method, self.window, self.judge_from, &mut self.scratch))
    }

    /// How many series the detector holds.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }
}

/// The positions in a series (counted from 0) that a [`StreamDetector`]
/// with this method and window judges during the warm-up, against fewer
/// than `window` earlier points: from [`Method::min_points`] up to the
/// window. Empty when the method needs the whole window or more to flag
/// anything: then the first `window` points are not judged.
pub fn warm_up(method: &Method, window: usize) -> Range<usize> {
    method.min_points().min(window)..window
}

fn step(
    w: &mut Window,
    value: f64,
    method: &Method,
    window: usize,
    judge_from: usize,
    scratch: &mut Vec<f64>,
) -> Option<Verdict> {
    let values = w.values(window);
    // One comparison whether the window is full or warming up: `values`
    // never holds more than `window` points.
    let verdict = (values.len() >= judge_from).then(|| {
        let stats = stats_of(values, method, scratch);
        let (score, outlier) = score(&stats, method, value);
        Verdict { score, window_points: values.len(), outlier, warm_up: values.len() < window }
    });
    w.push(value, window);
    verdict
}
