//! `dataport route ...`.

use std::io::BufRead;
use std::str::FromStr;

use crate::client::Channel;
use dataport_core::route;
use dataport_proto::routeguide::route_guide_client::RouteGuideClient;
use dataport_proto::routeguide::{Feature, Point, Rectangle, RouteNote};
use tokio_stream::StreamExt;

#[derive(Debug, clap::Subcommand)]
pub enum RouteCommand {
    /// Show the feature at exactly LATITUDE LONGITUDE: decimal degrees
    /// (48.8583701) or the wire's whole degrees x 1e7 (488583701).
    #[command(allow_negative_numbers = true)]
    Feature {
        #[arg(value_parser = coordinate)]
        latitude: i32,
        #[arg(value_parser = coordinate)]
        longitude: i32,
    },
    /// List the features inside a rectangle given by two opposite corners
    /// (each coordinate as for `feature`).
    #[command(allow_negative_numbers = true)]
    List {
        #[arg(value_parser = coordinate)]
        lat1: i32,
        #[arg(value_parser = coordinate)]
        lon1: i32,
        #[arg(value_parser = coordinate)]
        lat2: i32,
        #[arg(value_parser = coordinate)]
        lon2: i32,
    },
    /// Record a route through POINTs (LAT,LON each, as for `feature`), or
    /// through the points on stdin, one per line, when none are given.
    #[command(allow_negative_numbers = true)]
    Record { points: Vec<LatLon> },
    /// Chat: send NOTEs (LAT,LON:MESSAGE each) and print every earlier note at
    /// the same place that the server answers with.
    #[command(allow_negative_numbers = true)]
    Chat {
        #[arg(required = true)]
        notes: Vec<Note>,
    },
}

/// A coordinate as the wire has it, degrees x 1e7, from decimal degrees
/// (`48.8583701`, with a `.`) or from the wire's whole number (`488583701`).
fn coordinate(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if !s.contains('.') {
        return s.parse().map_err(|_| {
            format!("{s:?} is neither decimal degrees (48.8583701) nor degrees x 1e7 (488583701)")
        });
    }
    let degrees: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of degrees"))?;
    let wire = (degrees * 1e7).round();
    if !wire.is_finite() || wire.abs() > 1_800_000_000.0 {
        return Err(format!("{s} degrees is outside -180..180"));
    }
    Ok(wire as i32)
}

/// A point written `LAT,LON`, each as [`coordinate`] reads it.
#[derive(Clone, Copy, Debug)]
pub struct LatLon(Point);

impl FromStr for LatLon {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (lat, lon) = s
            .split_once(',')
            .ok_or_else(|| format!("{s:?} is not LAT,LON (decimal degrees, or degrees x 1e7)"))?;
        Ok(LatLon(Point { latitude: coordinate(lat)?, longitude: coordinate(lon)? }))
    }
}

/// A note written `LAT,LON:MESSAGE`.
#[derive(Clone, Debug)]
pub struct Note(RouteNote);

impl FromStr for Note {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (at, message) = s.split_once(':').ok_or_else(|| format!("{s:?} is not LAT,LON:MESSAGE"))?;
        let LatLon(location) = at.parse()?;
        Ok(Note(RouteNote { location: Some(location), message: message.to_owned() }))
    }
}

fn show(p: Option<&Point>) -> String {
    let p = p.copied().unwrap_or_default();
    format!("{} ({}, {})", route::Point::new(p.latitude, p.longitude), p.latitude, p.longitude)
}

fn show_feature(f: &Feature) -> String {
    let name = if f.name.is_empty() { "(no feature)" } else { &f.name };
    format!("{name} at {}", show(f.location.as_ref()))
}

pub async fn run(channel: Channel, command: RouteCommand) -> anyhow::Result<()> {
    let mut client = RouteGuideClient::new(channel);
    match command {
        RouteCommand::Feature { latitude, longitude } => {
            let feature = client.get_feature(Point { latitude, longitude }).await?.into_inner();
            println!("{}", show_feature(&feature));
        }
        RouteCommand::List { lat1, lon1, lat2, lon2 } => {
            let rect = Rectangle {
                lo: Some(Point { latitude: lat1, longitude: lon1 }),
                hi: Some(Point { latitude: lat2, longitude: lon2 }),
            };
            let mut features = client.list_features(rect).await?.into_inner();
            while let Some(feature) = features.next().await {
                println!("{}", show_feature(&feature?));
            }
        }
        RouteCommand::Record { points } => {
            let points = if points.is_empty() { read_points()? } else { points };
            let stream = tokio_stream::iter(points.into_iter().map(|LatLon(p)| p));
            let s = client.record_route(stream).await?.into_inner();
            println!(
                "{} points, {} features, {} m, {} s",
                s.point_count, s.feature_count, s.distance, s.elapsed_time
            );
        }
        RouteCommand::Chat { notes } => {
            let stream = tokio_stream::iter(notes.into_iter().map(|Note(n)| n));
            let mut replies = client.route_chat(stream).await?.into_inner();
            while let Some(note) = replies.next().await {
                let note = note?;
                println!("{}: {}", show(note.location.as_ref()), note.message);
            }
        }
    }
    Ok(())
}

fn read_points() -> anyhow::Result<Vec<LatLon>> {
    let mut points = Vec::new();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        points.push(line.parse().map_err(|e| anyhow::anyhow!("stdin line {}: {e}", i + 1))?);
    }
    Ok(points)
}
