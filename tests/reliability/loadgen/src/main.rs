//! The reliability suite's load generator: one gRPC method called over raw
//! HTTP/2 (the h2 crate, as light per call as h2load), open loop at a set
//! rate or closed loop at a set concurrency, with latencies kept apart by
//! outcome (answered OK, shed at once, anything else), a health Check on a
//! connection of its own every 100 ms, and the server's resident memory
//! sampled from /proc. It prints one line of `key=value` figures.
//!
//! ```text
//! loadgen ADDR CALLS SECONDS (rate=R | streams=S) [connections=N] [pid=P]
//! CALLS: CALL[*WEIGHT],... taken in a fixed shuffled rotation; CALL is
//!   hello | features (ListFeatures, a stream back) | record:POINTS
//!   (RecordRoute, a stream in) | chat:NOTES (RouteChat, both ways) |
//!   macd (AAPL's GetMACD for 2012) | graph (AAPL's MACD chart, a PNG) |
//!   detect:POINTS | upload:BYTES
//!   (FileSrv UploadFile, in 1 MiB chunks)
//! ```
//!
//! A mix prints a line per call after the line of all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use prost::bytes::Bytes;
use tokio::net::TcpStream;

type Sender = h2::client::SendRequest<Bytes>;

/// What one call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    /// UNAVAILABLE or RESOURCE_EXHAUSTED: refused by the server's bounds.
    Shed,
    Other,
}

/// Latencies by call (its index in `Args::calls`) and outcome.
type Tally = BTreeMap<(usize, Outcome), Vec<u32>>;

/// A call to make: its name in the output, its method, its request body.
#[derive(Clone)]
struct Call {
    name: String,
    path: &'static str,
    body: Bytes,
}

struct Args {
    addr: SocketAddr,
    calls: Vec<Call>,
    /// Which call each scheduled one is, in turn.
    rotation: Vec<usize>,
    seconds: u64,
    rate: Option<u64>,
    streams: usize,
    connections: usize,
    pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!("usage: loadgen ADDR CALL[*WEIGHT],... SECONDS (rate=R|streams=S) [connections=N] [pid=P]");
    eprintln!(
        "CALL: hello | features | record:POINTS | chat:NOTES | macd | graph | detect:POINTS | upload:BYTES"
    );
    std::process::exit(2)
}

fn frame(out: &mut Vec<u8>, message: &impl Message) {
    out.push(0);
    out.extend_from_slice(&u32::try_from(message.encoded_len()).unwrap_or(u32::MAX).to_be_bytes());
    message.encode(out).unwrap_or_else(|_| usage());
}

fn framed(message: &impl Message) -> Bytes {
    let mut out = Vec::new();
    frame(&mut out, message);
    Bytes::from(out)
}

/// Several messages, one after the other: a client stream.
fn stream<M: Message>(messages: impl IntoIterator<Item = M>) -> Bytes {
    let mut out = Vec::new();
    for message in messages {
        frame(&mut out, &message);
    }
    Bytes::from(out)
}

fn point(i: usize) -> dataport_proto::routeguide::Point {
    let i = i32::try_from(i).unwrap_or(i32::MAX);
    dataport_proto::routeguide::Point {
        latitude: 400_000_000 + i % 1000 * 1000,
        longitude: -740_000_000 + i % 1000 * 1000,
    }
}

/// The call `spec` names.
fn call_of(spec: &str) -> Call {
    use dataport_proto::{file_srv, idc, pb, routeguide};
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, "0"));
    let n: usize = arg.parse().unwrap_or_else(|_| usage());
    let (path, body) = match kind {
        "hello" => (
            "/helloworld.Greeter/SayHello",
            framed(&dataport_proto::helloworld::HelloRequest { name: "load".into() }),
        ),
        "features" => (
            "/routeguide.RouteGuide/ListFeatures",
            framed(&routeguide::Rectangle {
                lo: Some(routeguide::Point { latitude: -900_000_000, longitude: -1_800_000_000 }),
                hi: Some(routeguide::Point { latitude: 900_000_000, longitude: 1_800_000_000 }),
            }),
        ),
        "record" => ("/routeguide.RouteGuide/RecordRoute", stream((0..n).map(point))),
        "chat" => (
            "/routeguide.RouteGuide/RouteChat",
            stream(
                (0..n)
                    .map(|i| routeguide::RouteNote { location: Some(point(i % 3)), message: "note".into() }),
            ),
        ),
        "macd" => (
            "/idc.Indicator/GetMACD",
            framed(&idc::MacdRequest {
                symbol: "AAPL".into(),
                start_date: "2012-01-01".into(),
                end_date: "2012-12-31".into(),
            }),
        ),
        "graph" => (
            "/idc.IndicatorGraph/GetMACDGraph",
            framed(&idc::MacdGraphRequest {
                symbol: "AAPL".into(),
                start_date: "2020-01-01".into(),
                end_date: "2020-12-31".into(),
            }),
        ),
        "detect" => (
            "/pb.Outliers/Detect",
            framed(&pb::OutliersRequest {
                metrics: (0..n)
                    .map(|i| pb::Metric {
                        time: Some(prost_types::Timestamp { seconds: i as i64, nanos: 0 }),
                        name: "cpu".into(),
                        value: (i % 17) as f64,
                    })
                    .collect(),
            }),
        ),
        "upload" => {
            use file_srv::upload_request::Request;
            const CHUNK: usize = 1 << 20;
            let header =
                Request::Header(file_srv::FileHeader { filename: "load".into(), extension: ".bin".into() });
            let chunks = (0..n.div_ceil(CHUNK))
                .map(|i| Request::ChunkData(vec![(i % 251) as u8; (n - i * CHUNK).min(CHUNK)].into()));
            let messages = std::iter::once(header).chain(chunks);
            ("/FileSrv/UploadFile", stream(messages.map(|r| file_srv::UploadRequest { request: Some(r) })))
        }
        _ => usage(),
    };
    Call { name: spec.to_owned(), path, body }
}

fn parse() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() < 4 {
        usage();
    }
    let addr = argv[0].parse().unwrap_or_else(|_| usage());
    let mut calls = Vec::new();
    let mut rotation = Vec::new();
    for part in argv[1].split(',') {
        let (spec, weight) = part.split_once('*').unwrap_or((part, "1"));
        let weight: usize = weight.parse().unwrap_or_else(|_| usage());
        rotation.extend(std::iter::repeat_n(calls.len(), weight));
        calls.push(call_of(spec));
    }
    // A fixed shuffle (an LCG), so that the heavy calls are spread out.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..rotation.len()).rev() {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        rotation.swap(i, (state >> 33) as usize % (i + 1));
    }
    let seconds = argv[2].parse().unwrap_or_else(|_| usage());
    let mut args = Args { addr, calls, rotation, seconds, rate: None, streams: 0, connections: 4, pid: None };
    for kv in &argv[3..] {
        match kv.split_once('=') {
            Some(("rate", v)) => args.rate = Some(v.parse().unwrap_or_else(|_| usage())),
            Some(("streams", v)) => args.streams = v.parse().unwrap_or_else(|_| usage()),
            Some(("connections", v)) => args.connections = v.parse().unwrap_or_else(|_| usage()),
            Some(("pid", v)) => args.pid = Some(v.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if args.rate.is_none() == (args.streams == 0) {
        usage();
    }
    args
}

async fn connect(addr: SocketAddr) -> Sender {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    tcp.set_nodelay(true).expect("nodelay");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    tokio::spawn(connection);
    sender
}

/// One call: its outcome, by the grpc-status in its headers or trailers,
/// and when its request went (latency counts from then, once the connection
/// took it: a generator that falls behind is not the server's delay).
async fn call(sender: Sender, addr: SocketAddr, path: &str, body: Bytes) -> (Outcome, Instant) {
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    let Ok(mut ready) = sender.ready().await else { return (Outcome::Other, Instant::now()) };
    let sent = Instant::now();
    (exchange(&mut ready, request, body).await, sent)
}

async fn exchange(sender: &mut Sender, request: http::Request<()>, body: Bytes) -> Outcome {
    let Ok((response, mut send)) = sender.send_request(request, false) else { return Outcome::Other };
    if send.send_data(body, true).is_err() {
        return Outcome::Other;
    }
    let Ok(response) = response.await else { return Outcome::Other };
    let status = |headers: &http::HeaderMap| headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
    let mut code = status(response.headers());
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let Ok(data) = data else { return Outcome::Other };
        let _ = body.flow_control().release_capacity(data.len());
    }
    if code.is_none() {
        code = body.trailers().await.ok().flatten().as_ref().and_then(status);
    }
    match code.as_deref() {
        Some(b"0") => Outcome::Ok,
        Some(b"8" | b"14") => Outcome::Shed,
        _ => Outcome::Other,
    }
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let args = parse();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut senders = Vec::new();
    for _ in 0..args.connections {
        senders.push(connect(args.addr).await);
    }
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let record = {
        let tally = Arc::clone(&tally);
        move |which: usize, (outcome, since): (Outcome, Instant)| {
            let micros = u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX);
            tally.lock().expect("tally").entry((which, outcome)).or_default().push(micros);
        }
    };

    let health = watch_health(connect(args.addr).await, args.addr, end);
    let memory = args.pid.map(|pid| sample_memory(pid, end));

    let start = Instant::now();
    let mut tasks = Vec::new();
    match args.rate {
        // Open loop: calls start on schedule whether or not earlier ones
        // answered.
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate as f64);
            let mut next = Instant::now();
            let mut i = 0usize;
            while next < end {
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep(next - now).await;
                }
                let which = args.rotation[i % args.rotation.len()];
                let Call { path, body, .. } = args.calls[which].clone();
                let (sender, addr, record) = (senders[i % senders.len()].clone(), args.addr, record.clone());
                tokio::spawn(async move { record(which, call(sender, addr, path, body).await) });
                i += 1;
                next += interval;
            }
        }
        None => {
            for i in 0..args.streams * args.connections {
                let (sender, addr, record) = (senders[i % senders.len()].clone(), args.addr, record.clone());
                let (calls, rotation) = (args.calls.clone(), args.rotation.clone());
                tasks.push(tokio::spawn(async move {
                    let mut turn = i;
                    while Instant::now() < end {
                        let which = rotation[turn % rotation.len()];
                        let Call { path, body, .. } = &calls[which];
                        record(which, call(sender.clone(), addr, path, body.clone()).await);
                        turn += 1;
                    }
                }));
            }
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    // Calls still under way get a moment to finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let (checks, serving) = health.await.unwrap_or_default();
    let memory = match memory {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    report(&args, &tally.lock().expect("tally"), elapsed, (checks, serving), &memory);
}

/// Checks health on `sender`'s connection every 100 ms until `end`: the
/// checks made and those answered SERVING.
fn watch_health(sender: Sender, addr: SocketAddr, end: Instant) -> tokio::task::JoinHandle<(u32, u32)> {
    tokio::spawn(async move {
        let (mut checks, mut serving) = (0u32, 0u32);
        let check = framed(&dataport_proto::grpc::health::v1::HealthCheckRequest::default());
        while Instant::now() < end {
            checks += 1;
            let answer = tokio::time::timeout(
                Duration::from_secs(1),
                call(sender.clone(), addr, "/grpc.health.v1.Health/Check", check.clone()),
            )
            .await;
            serving += u32::from(matches!(answer, Ok((Outcome::Ok, _))));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (checks, serving)
    })
}

/// The RSS of `pid` in MiB every 250 ms until `end`.
fn sample_memory(pid: u32, end: Instant) -> tokio::task::JoinHandle<Vec<f64>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < end {
            samples.extend(rss_mib(pid));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        samples
    })
}

/// Prints the run's line and, with several calls, a line per call.
fn report(args: &Args, tally: &Tally, elapsed: f64, (checks, serving): (u32, u32), memory: &[f64]) {
    let mut all: BTreeMap<Outcome, Vec<u32>> = BTreeMap::new();
    for ((_, outcome), latencies) in tally.iter() {
        all.entry(*outcome).or_default().extend(latencies);
    }
    let mut line = vec![format!("seconds={elapsed:.1}")];
    line.extend(figures(&mut all, elapsed));
    line.push(format!("health_checks={checks} health_serving={serving}"));
    if let (Some(first), Some(last)) = (memory.first(), memory.last()) {
        let max = memory.iter().copied().fold(0.0, f64::max);
        line.push(format!("rss_first_mib={first:.1} rss_max_mib={max:.1} rss_last_mib={last:.1}"));
        // The median of each tenth of the run: growth shows apart from peaks.
        let tenths = memory.chunks(memory.len().div_ceil(10)).map(|tenth| {
            let mut tenth = tenth.to_vec();
            tenth.sort_by(f64::total_cmp);
            format!("{:.1}", tenth[tenth.len() / 2])
        });
        line.push(format!("rss_tenths_mib={}", tenths.collect::<Vec<_>>().join("/")));
    }
    println!("{}", line.join(" "));
    if args.calls.len() > 1 {
        for (which, call) in args.calls.iter().enumerate() {
            let mut mine: BTreeMap<Outcome, Vec<u32>> =
                tally.iter().filter(|((w, _), _)| *w == which).map(|((_, o), l)| (*o, l.clone())).collect();
            println!("call={} {}", call.name, figures(&mut mine, elapsed).join(" "));
        }
    }
}

/// Count, rate, p50 and p99 of each outcome.
fn figures(latencies: &mut BTreeMap<Outcome, Vec<u32>>, elapsed: f64) -> Vec<String> {
    let mut out = Vec::new();
    for (outcome, name) in [(Outcome::Ok, "ok"), (Outcome::Shed, "shed"), (Outcome::Other, "other")] {
        let latencies = latencies.entry(outcome).or_default();
        latencies.sort_unstable();
        out.push(format!("{name}={}", latencies.len()));
        out.push(format!("{name}_per_s={:.0}", latencies.len() as f64 / elapsed));
        out.push(format!("{name}_p50_ms={:.2}", percentile(latencies, 0.50)));
        out.push(format!("{name}_p99_ms={:.2}", percentile(latencies, 0.99)));
    }
    out
}
