//! The seed `pb.Outliers` service: the 2-sigma rule per series.

use dataport_core::outliers::{Method, outlier_positions};
use dataport_proto::pb::{self, outliers_server};
use dataport_wire::route::shadowed;
use tonic::{Request, Status};

use super::wire::{BatchDetect, MetricBatch};
use super::{Context, LeanDetect, check_finite, columns, lean_detect};
use crate::Reply;
use crate::compute::compute;

/// `pb.Outliers`.
#[derive(Clone, Copy, Debug)]
pub struct Outliers;

/// `pb.Outliers`; Detect reads its request with [`super::wire`].
pub fn outliers(cx: Context) -> LeanDetect<outliers_server::OutliersServer<Outliers>, Outliers> {
    let generated = outliers_server::OutliersServer::new(Outliers);
    lean_detect(generated.max_decoding_message_size(cx.limits.max_detect_bytes), Outliers, cx)
}

impl BatchDetect for Outliers {
    type Response = pb::OutliersResponse;
    const PATH: &'static str = dataport_proto::methods::pb::outliers::DETECT;

    /// |x - mean| > 2 sigma (population), each series by name, as the numpy
    /// service computed it.
    async fn detect(&self, batch: MetricBatch) -> Result<pb::OutliersResponse, Status> {
        check_finite(&batch)?;
        let positions = compute(move || outlier_positions(columns(&batch), &Method::SEED)).await?;
        // A request under the size limit holds far fewer than 2^31 metrics.
        let indices = positions.into_iter().map(|i| i as i32).collect();
        Ok(pb::OutliersResponse { indices })
    }
}

/// Detect is served off the wire.
#[tonic::async_trait]
impl outliers_server::Outliers for Outliers {
    async fn detect(&self, _: Request<pb::OutliersRequest>) -> Reply<pb::OutliersResponse> {
        Err(shadowed(Self::PATH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_generated_detect_says_it_is_served_off_the_wire() {
        let e = outliers_server::Outliers::detect(&Outliers, Request::new(pb::OutliersRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal);
        assert!(e.message().starts_with("/pb.Outliers/Detect is served off the wire"), "{e:?}");
    }
}
