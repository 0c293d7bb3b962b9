//! The seed `pb.Outliers` service: the 2-sigma rule per series.

use dataport_core::outliers::{Method, outlier_positions};
use dataport_proto::pb;
use tonic::{Request, Response, Status};

use super::wire::{BatchDetect, Detector, MetricBatch};
use super::{Limits, check_finite, columns};
use crate::off_reactor;
use dataport_wire::Lean;

#[derive(Clone, Copy, Debug)]
pub struct OutliersCompat;

/// The service; Detect reads its request with [`super::wire`].
pub fn compat(
    limits: Limits,
) -> Lean<pb::outliers_server::OutliersServer<OutliersCompat>, Detector<OutliersCompat>> {
    let generated = pb::outliers_server::OutliersServer::new(OutliersCompat)
        .max_decoding_message_size(limits.max_detect_bytes);
    Lean::new(generated, Detector { detect: OutliersCompat, limit: limits.max_detect_bytes })
}

impl BatchDetect for OutliersCompat {
    type Response = pb::OutliersResponse;
    const PATH: &'static str = dataport_proto::methods::pb::outliers::DETECT;

    /// |x - mean| > 2 sigma (population), each series by name, as the numpy
    /// service computed it.
    async fn detect(&self, batch: MetricBatch) -> Result<pb::OutliersResponse, Status> {
        check_finite(&batch)?;
        let positions = off_reactor(move || outlier_positions(columns(&batch), &Method::SEED)).await?;
        // A request under the size limit holds far fewer than 2^31 metrics.
        let indices = positions.into_iter().map(|i| i as i32).collect();
        Ok(pb::OutliersResponse { indices })
    }
}

/// Reached only if [`Lean`] is bypassed; the same answer from decoded messages.
#[tonic::async_trait]
impl pb::outliers_server::Outliers for OutliersCompat {
    async fn detect(
        &self,
        request: Request<pb::OutliersRequest>,
    ) -> Result<Response<pb::OutliersResponse>, Status> {
        let metrics = request.into_inner().metrics;
        let batch = MetricBatch::from_points(metrics.iter().map(|m| (m.name.as_str(), m.value)));
        BatchDetect::detect(self, batch).await.map(Response::new)
    }
}
