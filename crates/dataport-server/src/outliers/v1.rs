//! `dataport.outliers.v1.OutliersService`.

use dataport_core::outliers::{self, Method, Sigma, Stats, StreamDetector, detect_columns};
use dataport_proto::dataport::outliers::v1::{self as pb, outliers_service_server};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::wire::{BatchDetect, MetricBatch};
use super::{Context, Judged, LeanDetect, Limits, check_finite, columns, lean_detect};
use crate::Reply;
use crate::compute::compute;
use crate::drain::Drain;

/// `dataport.outliers.v1.OutliersService`.
#[derive(Clone, Debug)]
pub struct OutliersService {
    cx: Context,
    drain: Drain,
}

/// `dataport.outliers.v1.OutliersService`; Detect reads its request with
/// [`super::wire`], and DetectStream ends when the drain starts.
pub fn outliers_service(
    cx: Context,
    drain: Drain,
) -> LeanDetect<outliers_service_server::OutliersServiceServer<OutliersService>, OutliersService> {
    let service = OutliersService { cx: cx.clone(), drain };
    let generated = outliers_service_server::OutliersServiceServer::new(service.clone());
    lean_detect(generated.max_decoding_message_size(cx.limits.max_detect_bytes), service, cx)
}

impl BatchDetect for OutliersService {
    type Response = pb::DetectResponse;
    const PATH: &'static str = dataport_proto::methods::dataport::outliers::v1::outliers_service::DETECT;

    async fn detect(&self, batch: MetricBatch) -> Result<pb::DetectResponse, Status> {
        let method = method(batch.method.as_ref())?;
        check_finite(&batch)?;
        let detection = compute(move || detect_columns(columns(&batch), &method)).await?;
        Ok(pb::DetectResponse {
            // A request under the size limit holds far fewer than 2^31 metrics.
            indices: detection.indices.into_iter().map(|i| i as i32).collect(),
            scores: detection.scores,
            series: detection.series.into_iter().map(series_pb).collect(),
        })
    }
}

type AnomalyStream = ReceiverStream<Result<pb::DetectStreamResponse, Status>>;

#[tonic::async_trait]
impl outliers_service_server::OutliersService for OutliersService {
    /// Served off the wire.
    async fn detect(&self, _: Request<pb::DetectRequest>) -> Reply<pb::DetectResponse> {
        Err(dataport_wire::route::shadowed(<Self as BatchDetect>::PATH))
    }

    type DetectStreamStream = AnomalyStream;

    async fn detect_stream(
        &self,
        request: Request<Streaming<pb::DetectStreamRequest>>,
    ) -> Reply<AnomalyStream> {
        let input = request.into_inner();
        // A few messages of anomalies in flight: a client that stops reading
        // stops this call reading its metrics, nothing else.
        let (tx, rx) = mpsc::channel(4);
        let (limits, drain, judged) = (self.cx.limits, self.drain.clone(), self.cx.judged.clone());
        tokio::spawn(async move {
            if let Err(status) = judge_stream(input, &tx, limits, drain, &judged).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Reads metrics until the client ends the stream, sending the anomalies of
/// each message as soon as the message is judged.
async fn judge_stream(
    mut input: Streaming<pb::DetectStreamRequest>,
    tx: &mpsc::Sender<Result<pb::DetectStreamResponse, Status>>,
    limits: Limits,
    drain: Drain,
    judged: &Judged,
) -> Result<(), Status> {
    let drained = drain.signaled();
    tokio::pin!(drained);
    let mut detector: Option<StreamDetector> = None;
    let mut index: u64 = 0;
    loop {
        let message = tokio::select! {
            message = input.message() => message?,
            () = &mut drained => {
                return Err(Status::unavailable("the server is shutting down: reconnect and send the rest"));
            }
        };
        let Some(message) = message else {
            return Ok(());
        };
        let detector = match &mut detector {
            Some(detector) => {
                if message.method.is_some() || message.window != 0 {
                    return Err(Status::invalid_argument(
                        "method and window are read from the first message only: leave them unset in later ones",
                    ));
                }
                detector
            }
            None => detector.insert(stream_detector(&message, limits)?),
        };
        let mut anomalies = Vec::new();
        let mut refused = None;
        let from = index;
        for metric in message.metrics {
            if !metric.value.is_finite() {
                refused = Some(Status::invalid_argument(format!(
                    "metric {index} of the stream (series {:?}) has a value that is not a finite number",
                    metric.name
                )));
                break;
            }
            match detector.push(&metric.name, metric.value) {
                Ok(Some(verdict)) if verdict.outlier => anomalies.push(pb::Anomaly {
                    index,
                    score: verdict.score,
                    window_points: verdict.window_points as u32,
                    warm_up: verdict.warm_up,
                    metric: Some(metric),
                }),
                Ok(_) => {}
                Err(e) => {
                    refused = Some(Status::resource_exhausted(format!("metric {index}: {e}")));
                    break;
                }
            }
            index += 1;
        }
        judged.add((index - from) as usize);
        // What was found before a refusal still goes out, first.
        if !anomalies.is_empty() && tx.send(Ok(pb::DetectStreamResponse { anomalies })).await.is_err() {
            return Ok(()); // the client is gone
        }
        if let Some(status) = refused {
            return Err(status);
        }
    }
}

fn stream_detector(first: &pb::DetectStreamRequest, limits: Limits) -> Result<StreamDetector, Status> {
    let method = method(first.method.as_ref())?;
    let window = match first.window as usize {
        // No window asked for: the default, or the server's limit when smaller.
        0 => outliers::DEFAULT_WINDOW.min(limits.max_stream_window),
        w if w > limits.max_stream_window => {
            return Err(Status::invalid_argument(format!(
                "window {w} is larger than the server's limit of {} points",
                limits.max_stream_window
            )));
        }
        1 => return Err(Status::invalid_argument("window 1 is too small: a window needs at least 2 points")),
        w => w,
    };
    Ok(StreamDetector::new(method, window, limits.max_stream_series))
}

/// The method a request asks for: the seed's rule when unset, the documented
/// defaults for parameters left at 0.
fn method(requested: Option<&pb::Method>) -> Result<Method, Status> {
    use pb::method::Kind;
    let or = |value: f64, default: f64| if value == 0.0 { default } else { value };
    let invalid =
        |kind: &str, e: outliers::MethodError| Status::invalid_argument(format!("method.{kind}.{e}"));
    match requested.and_then(|m| m.kind.as_ref()) {
        None => Ok(Method::SEED),
        Some(Kind::ZScore(z)) => {
            let sigma = if z.sample { Sigma::Sample } else { Sigma::Population };
            Method::new_z_score(or(z.threshold, outliers::DEFAULT_Z_THRESHOLD), sigma)
                .map_err(|e| invalid("z_score", e))
        }
        Some(Kind::ModifiedZScore(m)) => {
            Method::new_modified_z_score(or(m.threshold, outliers::DEFAULT_MODIFIED_Z_THRESHOLD))
                .map_err(|e| invalid("modified_z_score", e))
        }
        Some(Kind::Iqr(i)) => {
            Method::new_iqr(or(i.k, outliers::DEFAULT_IQR_K)).map_err(|e| invalid("iqr", e))
        }
    }
}

fn series_pb(s: outliers::SeriesResult) -> pb::SeriesStats {
    use pb::series_stats::Stats as Wire;
    let stats = match s.stats {
        Stats::ZScore { mean, sigma } => Wire::ZScore(pb::ZScoreStats { mean, sigma }),
        Stats::ModifiedZScore { median, mad, mean_abs_dev } => {
            Wire::ModifiedZScore(pb::ModifiedZScoreStats {
                median,
                mad,
                mean_absolute_deviation: mean_abs_dev,
            })
        }
        Stats::Iqr { q1, q3, lower_fence, upper_fence } => {
            Wire::Iqr(pb::IqrStats { q1, q3, lower_fence, upper_fence })
        }
    };
    pb::SeriesStats { name: s.name, count: s.count as u64, outliers: s.outliers as u64, stats: Some(stats) }
}
