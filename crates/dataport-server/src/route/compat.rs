//! The seed `routeguide.RouteGuide`.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use dataport_core::route::{self, ChatLog, FeatureDb, Rect, RouteTally};
use dataport_proto::routeguide::route_guide_server::{self, RouteGuideServer};
use dataport_proto::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::Reply;

/// How many replies a streaming call may have queued before it waits for the
/// client to read them.
const STREAM_BUFFER: usize = 32;
/// The most note text RouteChat keeps for one call.
pub const CHAT_MAX_BYTES: usize = 16 << 20;

/// `routeguide.RouteGuide`.
#[derive(Clone, Debug)]
pub struct RouteGuide {
    features: Arc<FeatureDb>,
}

/// `routeguide.RouteGuide` over `features`.
pub fn route_guide(features: Arc<FeatureDb>, max_message: usize) -> RouteGuideServer<RouteGuide> {
    RouteGuideServer::new(RouteGuide { features }).max_decoding_message_size(max_message)
}

/// Converts a wire point, refusing a missing one or one off the Earth;
/// `field` names it in the error.
fn point(p: Option<Point>, field: &dyn fmt::Display) -> Result<route::Point, Status> {
    let p = p.ok_or_else(|| Status::invalid_argument(format!("{field} is required")))?;
    route::Point::new(p.latitude, p.longitude)
        .validate()
        .map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

fn wire_point(p: route::Point) -> Point {
    Point { latitude: p.latitude, longitude: p.longitude }
}

fn wire_feature(f: &route::Feature) -> Feature {
    Feature { name: f.name.clone(), location: Some(wire_point(f.location)) }
}

type ResponseStream<T> = ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl route_guide_server::RouteGuide for RouteGuide {
    async fn get_feature(&self, request: Request<Point>) -> Reply<Feature> {
        let p = point(Some(request.into_inner()), &"point")?;
        let feature = match self.features.at(p) {
            Some(f) => wire_feature(f),
            None => Feature { name: String::new(), location: Some(wire_point(p)) },
        };
        Ok(Response::new(feature))
    }

    type ListFeaturesStream = ResponseStream<Feature>;

    async fn list_features(&self, request: Request<Rectangle>) -> Reply<Self::ListFeaturesStream> {
        let rect = request.into_inner();
        let rect = Rect::from_corners(point(rect.lo, &"lo")?, point(rect.hi, &"hi")?);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let features = Arc::clone(&self.features);
        tokio::spawn(async move {
            for f in features.within(rect) {
                if tx.send(Ok(wire_feature(f))).await.is_err() {
                    break; // the client went away
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn record_route(&self, request: Request<Streaming<Point>>) -> Reply<RouteSummary> {
        let start = Instant::now();
        let mut points = request.into_inner();
        let mut tally = RouteTally::default();
        let mut index = 0usize;
        while let Some(p) = points.next().await {
            tally.add(point(Some(p?), &format_args!("point {index}"))?, &self.features);
            index += 1;
        }
        let s = tally.summary(start.elapsed().as_secs());
        Ok(Response::new(RouteSummary {
            point_count: s.point_count,
            feature_count: s.feature_count,
            distance: s.distance_m,
            elapsed_time: s.elapsed_secs,
        }))
    }

    type RouteChatStream = ResponseStream<RouteNote>;

    async fn route_chat(&self, request: Request<Streaming<RouteNote>>) -> Reply<Self::RouteChatStream> {
        let mut notes = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let mut log = ChatLog::new(CHAT_MAX_BYTES);
            let mut index = 0usize;
            while let Some(note) = notes.next().await {
                let answered = async {
                    let note = note?;
                    let at = point(note.location, &format_args!("note {index}: location"))?;
                    for message in log.earlier(at) {
                        let earlier = RouteNote { location: Some(wire_point(at)), message: message.clone() };
                        if tx.send(Ok(earlier)).await.is_err() {
                            return Ok(false);
                        }
                    }
                    log.remember(at, note.message).map_err(|e| Status::resource_exhausted(e.to_string()))?;
                    Ok::<_, Status>(true)
                };
                match answered.await {
                    Ok(true) => index += 1,
                    Ok(false) => break,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
