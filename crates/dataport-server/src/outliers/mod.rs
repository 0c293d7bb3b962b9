//! Outlier detection: the seed `pb.Outliers` (compat.rs) and
//! `dataport.outliers.v1.OutliersService` (v1.rs), both over the rules in
//! `dataport_core::outliers`, both with their Detect read off the wire
//! (wire.rs) within the [`Limits`] they share.

pub mod compat;
pub mod v1;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dataport_core::outliers::Columns;
use tonic::Status;
use wire::{BatchDetect, Detector, MetricBatch};

use dataport_wire::Lean;

use crate::inflight::Inflight;

/// What the outlier services share: the limits from the configuration,
/// the count of points judged, and the room for request data.
#[derive(Clone, Debug)]
pub struct Context {
    pub limits: Limits,
    pub judged: Judged,
    pub inflight: Inflight,
}

/// The outlier limits from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest Detect request, in bytes.
    pub max_detect_bytes: usize,
    /// The most series one DetectStream call may keep windows for.
    pub max_stream_series: usize,
    /// The largest window a DetectStream call may ask for.
    pub max_stream_window: usize,
}

/// The points Detect and DetectStream have judged, for the metrics.
#[derive(Clone, Debug, Default)]
pub struct Judged(Arc<AtomicU64>);

impl Judged {
    fn add(&self, points: usize) {
        self.0.fetch_add(points as u64, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The generated server `S` with its Detect served by `D` off the wire
/// ([`wire`]).
type LeanDetect<S, D> = Lean<S, Detector<D>>;

/// `generated` with its Detect served by `detect`, reading requests of at
/// most `max_detect_bytes` within the room `cx` has, counting the points.
fn lean_detect<S, D: BatchDetect>(generated: S, detect: D, cx: Context) -> LeanDetect<S, D> {
    Lean::new(generated, Detector { detect, cx })
}

/// Refuses a batch with a value that is not finite, naming its position.
fn check_finite(batch: &MetricBatch) -> Result<(), Status> {
    match batch.first_non_finite {
        None => Ok(()),
        Some(i) => Err(Status::invalid_argument(format!("metrics[{i}].value is not a finite number"))),
    }
}

fn columns(batch: &MetricBatch) -> Columns<'_> {
    Columns { values: &batch.values, series: &batch.series, names: &batch.names }
}
