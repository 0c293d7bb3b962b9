//! Judging points as they arrive, each against a trailing window of its own
//! series.

use std::collections::HashMap;

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
    /// How many values the window held: the series' earlier points, up to
    /// the window size.
    pub window_points: usize,
    pub outlier: bool,
}

/// Judges each point against the last `window` points of its series before
/// it, with the statistics [`judge`](super::judge) would compute over exactly
/// those values, and then adds the point to the window.
///
/// A point is judged once its window is full: the first `window` points of a
/// series only fill it (a warm-up, as an indicator's lookback), so that no
/// point is judged against a handful of values. Memory is one buffer of at most `2 * window` values
/// per series, and at most `max_series` series. Each judgement costs O(window):
/// two passes for the z-score, selections (not sorts) for the median and the
/// quartiles.
#[derive(Debug)]
pub struct StreamDetector {
    method: Method,
    window: usize,
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
        StreamDetector { method, window, max_series, series: HashMap::new(), scratch: Vec::new() }
    }

    /// Judges `value` against the window of series `name` (when it is full),
    /// then adds it to the window.
    /// `None` when the point was not judged. A point of a new series past
    /// `max_series` is refused and changes nothing.
    pub fn push(&mut self, name: &str, value: f64) -> Result<Option<Verdict>, TooManySeries> {
        if let Some(w) = self.series.get_mut(name) {
            return Ok(step(w, value, &self.method, self.window, &mut self.scratch));
        }
        if self.series.len() >= self.max_series {
            return Err(TooManySeries { limit: self.max_series });
        }
        let w = self.series.entry(name.into()).or_default();
        Ok(step(w, value, &self.method, self.window, &mut self.scratch))
    }

    /// How many series the detector holds.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }
}

fn step(
    w: &mut Window,
    value: f64,
    method: &Method,
    window: usize,
    scratch: &mut Vec<f64>,
) -> Option<Verdict> {
    let values = w.values(window);
    let verdict = (window > 0 && values.len() == window).then(|| {
        let stats = stats_of(values, method, scratch);
        let (score, outlier) = score(&stats, method, value);
        Verdict { score, window_points: values.len(), outlier }
    });
    w.push(value, window);
    verdict
}
