//! Outlier detection: the seed `pb.Outliers` (compat) and
//! `dataport.outliers.v1` (v1), both over the rules in
//! `dataport_core::outliers`.

mod compat;
mod v1;
mod wire;

pub use compat::{OutliersCompat, compat};
pub use v1::{OutliersV1, v1};

use dataport_core::outliers::Columns;
use tonic::Status;
use wire::MetricBatch;

/// What the outlier services share: the limits from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest Detect request, in bytes.
    pub max_detect_bytes: usize,
    /// The most series one DetectStream call may keep windows for.
    pub max_stream_series: usize,
    /// The largest window a DetectStream call may ask for.
    pub max_stream_window: usize,
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
