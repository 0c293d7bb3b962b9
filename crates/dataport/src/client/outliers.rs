//! `dataport outliers`: which metrics of a CSV file stand out, in one batch
//! (Detect) or as they are read (DetectStream).

use std::io::{BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::client::Channel;
use anyhow::{Context, bail};
use dataport_core::outliers::{self, Sigma};
use dataport_proto::dataport::outliers::v1 as pb;
use dataport_proto::dataport::outliers::v1::outliers_service_client::OutliersServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::rows::{Cell, Format, Printer};

#[derive(Debug, clap::Args)]
pub struct OutliersArgs {
    /// A CSV file of metrics: time,name,value (a header row naming them, in
    /// any order, is optional; time is RFC 3339 or Unix seconds, or empty);
    /// `-` reads stdin.
    file: PathBuf,
    /// How points are judged.
    #[arg(long, value_enum, default_value_t)]
    method: MethodName,
    /// The method's threshold: sigmas for zscore [2], the modified z-score
    /// for modified [3.5], IQRs beyond the quartiles for iqr [1.5].
    #[arg(long, allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// zscore with the sample standard deviation (n - 1), not the population one.
    #[arg(long)]
    sample: bool,
    /// Judge each point against the trailing window of its own series as the
    /// metrics are read, and print each outlier at once (DetectStream).
    /// While a series has fewer points than the window, each point is judged
    /// against the series' points before it, once there are as many as the
    /// method needs to flag anything (5 for zscore at 2): its outliers say
    /// warm_up true. A note on stderr says so once per run (not per series),
    /// naming the first series read.
    #[arg(long)]
    stream: bool,
    /// Points of trailing window per series, with --stream [100].
    #[arg(long, requires = "stream")]
    window: Option<u32>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodName {
    /// |x - mean| > threshold x sigma: the seed service's rule.
    #[default]
    Zscore,
    /// Iglewicz and Hoaglin's modified z-score, from the median and MAD.
    Modified,
    /// Tukey's fences: beyond the quartiles by threshold x IQR.
    Iqr,
}

impl OutliersArgs {
    /// The method the server will judge with, for the warm-up note; `None`
    /// when the server will refuse it (and say why).
    fn core_method(&self) -> Option<outliers::Method> {
        let or = |default| self.threshold.filter(|&t| t != 0.0).unwrap_or(default);
        match self.method {
            MethodName::Zscore => {
                let sigma = if self.sample { Sigma::Sample } else { Sigma::Population };
                outliers::Method::new_z_score(or(outliers::DEFAULT_Z_THRESHOLD), sigma).ok()
            }
            MethodName::Modified => {
                outliers::Method::new_modified_z_score(or(outliers::DEFAULT_MODIFIED_Z_THRESHOLD)).ok()
            }
            MethodName::Iqr => outliers::Method::new_iqr(or(outliers::DEFAULT_IQR_K)).ok(),
        }
    }

    fn method(&self) -> pb::Method {
        use pb::method::Kind;
        let threshold = self.threshold.unwrap_or(0.0);
        let kind = match self.method {
            MethodName::Zscore => Kind::ZScore(pb::ZScore { threshold, sample: self.sample }),
            MethodName::Modified => Kind::ModifiedZScore(pb::ModifiedZScore { threshold }),
            MethodName::Iqr => Kind::Iqr(pb::Iqr { k: threshold }),
        };
        pb::Method { kind: Some(kind) }
    }
}

const HEADER: [&str; 5] = ["index", "time", "name", "value", "score"];
/// A stream's outliers also say whether they were judged during the warm-up.
const STREAM_HEADER: [&str; 6] = ["index", "time", "name", "value", "score", "warm_up"];

pub async fn run(channel: Channel, args: OutliersArgs) -> anyhow::Result<()> {
    if args.sample && args.method != MethodName::Zscore {
        bail!("--sample applies to --method zscore only");
    }
    let client = OutliersServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    if args.stream { stream(client, &args).await } else { batch(client, &args).await }
}

async fn batch(mut client: OutliersServiceClient<Channel>, args: &OutliersArgs) -> anyhow::Result<()> {
    let input = open(&args.file)?;
    let metrics = tokio::task::spawn_blocking(move || {
        let mut metrics = Vec::new();
        read_metrics(input, |m| {
            metrics.push(m);
            Ok(())
        })?;
        anyhow::Ok(metrics)
    })
    .await??;
    let request = pb::DetectRequest { metrics, method: Some(args.method()) };
    // The reply repeats nothing of the request, so keep the metrics to print.
    let reply = client.detect(request.clone()).await?.into_inner();
    let mut printer = Printer::new(std::io::stdout().lock(), args.format, &HEADER);
    for &i in &reply.indices {
        let (Some(metric), Some(&score)) = (request.metrics.get(i as usize), reply.scores.get(i as usize))
        else {
            bail!("the server named metric {i}, but the file holds {}", request.metrics.len());
        };
        printer.row(&row(u64::from(i.unsigned_abs()), metric, score))?;
    }
    printer.finish()?;
    Ok(())
}

/// Metrics per DetectStream message at most; fewer when the input is slow,
/// so that a live feed is judged as it comes.
const STREAM_BATCH: usize = 8192;

async fn stream(mut client: OutliersServiceClient<Channel>, args: &OutliersArgs) -> anyhow::Result<()> {
    let input = open(&args.file)?;
    let (metrics_tx, mut metrics_rx) = mpsc::channel::<pb::Metric>(4 * STREAM_BATCH);
    let mut note = args.core_method().and_then(|m| WarmUpNote::new(&m, args.window));
    // The reader runs on its own thread: a file or pipe is read with blocking I/O.
    let reader = tokio::task::spawn_blocking(move || {
        read_metrics(input, |m| {
            // Every series warms up alike: one note, when the first one starts.
            if let Some(note) = note.take() {
                eprintln!("{}", note.text(&m.name));
            }
            metrics_tx.blocking_send(m).context("the stream ended early")
        })
    });
    let (requests_tx, requests_rx) = mpsc::channel(4);
    let (method, window) = (args.method(), args.window.unwrap_or(0));
    let batcher = tokio::spawn(async move {
        let mut first = Some((method, window));
        while let Some(metric) = metrics_rx.recv().await {
            let mut metrics = vec![metric];
            while metrics.len() < STREAM_BATCH {
                match metrics_rx.try_recv() {
                    Ok(m) => metrics.push(m),
                    Err(_) => break,
                }
            }
            let (method, window) = first.take().map_or((None, 0), |(m, w)| (Some(m), w));
            if requests_tx.send(pb::DetectStreamRequest { method, window, metrics }).await.is_err() {
                return; // the call failed; its status says why
            }
        }
    });
    let mut responses = client.detect_stream(ReceiverStream::new(requests_rx)).await?.into_inner();
    let mut printer = Printer::new(std::io::stdout().lock(), args.format, &STREAM_HEADER);
    while let Some(reply) = responses.message().await? {
        for anomaly in reply.anomalies {
            let metric = anomaly.metric.unwrap_or_default();
            let mut cells = row(anomaly.index, &metric, anomaly.score);
            cells.push(Cell::Bool(anomaly.warm_up));
            printer.row(&cells)?;
        }
        printer.flush()?;
    }
    printer.finish()?;
    batcher.await.context("the batching task failed")?;
    reader.await.context("the reading task failed")??;
    Ok(())
}

/// What `--stream` tells on stderr about the warm-up of a series.
#[derive(Debug, PartialEq)]
struct WarmUpNote {
    /// The positions in a series (from 0) judged during the warm-up.
    judged: Range<usize>,
    /// Whether the window is the default one, which a server may lower.
    default_window: bool,
}

impl WarmUpNote {
    /// `None` when the method needs the whole window: then nothing is judged
    /// before the window is full, and there is no warm-up to tell of.
    fn new(method: &outliers::Method, window: Option<u32>) -> Option<WarmUpNote> {
        // A window of 0 on the wire asks for the default.
        let window = window.filter(|&w| w != 0);
        let size = window.map_or(outliers::DEFAULT_WINDOW, |w| w as usize);
        let judged = outliers::warm_up(method, size);
        (!judged.is_empty()).then_some(WarmUpNote { judged, default_window: window.is_none() })
    }

    fn text(&self, series: &str) -> String {
        let Range { start, end } = self.judged;
        let window = match self.default_window {
            true => format!("the default window of {end} (the server's limit if lower)"),
            false => format!("a window of {end}"),
        };
        let judged = match end - start {
            1 => format!("point {end} is judged against only the {start} points before it"),
            _ => format!("points {} to {end} are judged against only the points before them", start + 1),
        };
        format!(
            "note: series {series:?} is warming up: with {window}, a series' {judged} \
             (outliers marked warm_up), and its first {start} points not at all"
        )
    }
}

fn row(index: u64, metric: &pb::Metric, score: f64) -> Vec<Cell> {
    let time = metric.time.as_ref().map_or(Cell::Empty, |t| {
        let at = Duration::new(t.seconds.unsigned_abs(), t.nanos.unsigned_abs());
        let at = if t.seconds < 0 { UNIX_EPOCH.checked_sub(at) } else { UNIX_EPOCH.checked_add(at) };
        let text = |at| match t.nanos {
            0 => humantime::format_rfc3339(at).to_string(),
            _ => humantime::format_rfc3339_nanos(at).to_string(),
        };
        at.map_or(Cell::Empty, |at| Cell::Text(text(at)))
    });
    vec![
        Cell::Integer(index),
        time,
        Cell::Text(metric.name.clone()),
        Cell::Number(metric.value, 4),
        Cell::Number(score, 3),
    ]
}

fn open(file: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    if file == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(Box::new(f))
}

/// Reads `time,name,value` lines, handing each metric to `each` as soon as
/// its line is read; errors name the line.
fn read_metrics(
    input: impl Read,
    mut each: impl FnMut(pb::Metric) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(256 * 1024, input));
    let mut columns = [0usize, 1, 2];
    let mut record = csv::StringRecord::new();
    let mut first = true;
    while reader.read_record(&mut record).with_context(|| "cannot read the metrics")? {
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if std::mem::take(&mut first) {
            if let Some(header) = header_columns(&record) {
                columns = header;
                continue;
            }
            if looks_like_a_header(&record) {
                let found: Vec<&str> = record.iter().map(str::trim).collect();
                bail!(
                    "line {line}: expected a header with time,name,value (any order), or none; found: {}",
                    found.join(",")
                );
            }
        }
        if record.len() < 3 {
            bail!("line {line}: expected 3 fields (time,name,value), found {}", record.len());
        }
        let field = |i: usize| record.get(columns[i]).unwrap_or("").trim();
        let value: f64 = match field(2).parse() {
            Ok(v) if f64::is_finite(v) => v,
            _ => bail!("line {line}: value {:?} is not a finite number", field(2)),
        };
        let time = parse_time(field(0)).with_context(|| format!("line {line}"))?;
        each(pb::Metric { time, name: field(1).to_owned(), value })?;
    }
    Ok(())
}

/// The positions of time, name and value when `record` is a header row.
fn header_columns(record: &csv::StringRecord) -> Option<[usize; 3]> {
    let at = |name: &str| record.iter().position(|f| f.trim().eq_ignore_ascii_case(name));
    Some([at("time")?, at("name")?, at("value")?])
}

/// Whether a first row that does not name time, name and value is a header
/// all the same: every field text (none empty, none a number), as
/// `timestamp,host,cpu` or `name,value` are, while a data row has a number.
fn looks_like_a_header(record: &csv::StringRecord) -> bool {
    record.iter().map(str::trim).all(|f| !f.is_empty() && f.parse::<f64>().is_err())
}

/// RFC 3339 (`2024-05-01T12:00:00Z`), Unix seconds (`1714564800.25`), or
/// nothing.
fn parse_time(text: &str) -> anyhow::Result<Option<prost_types::Timestamp>> {
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        let whole = seconds.floor();
        return Ok(Some(prost_types::Timestamp {
            seconds: whole as i64,
            nanos: ((seconds - whole) * 1e9).round().min(999_999_999.0) as i32,
        }));
    }
    let at = humantime::parse_rfc3339_weak(text)
        .map_err(|_| anyhow::anyhow!("time {text:?} is neither RFC 3339 nor Unix seconds"))?;
    Ok(Some(prost_types::Timestamp::from(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> anyhow::Result<Vec<pb::Metric>> {
        let mut out = Vec::new();
        read_metrics(text.as_bytes(), |m| {
            out.push(m);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn the_warm_up_note_names_the_points_judged_for_the_method_and_window() {
        use outliers::Method;
        let note = |method: Method, window| WarmUpNote::new(&method, window).map(|n| n.text("cpu"));
        assert_eq!(
            note(Method::SEED, None).unwrap(),
            "note: series \"cpu\" is warming up: with the default window of 100 (the server's limit if \
             lower), a series' points 6 to 100 are judged against only the points before them (outliers \
             marked warm_up), and its first 5 points not at all"
        );
        assert_eq!(note(Method::SEED, Some(0)), note(Method::SEED, None));
        // The minimum follows the threshold: 10 points at 3 sigmas.
        let three = Method::new_z_score(3.0, Sigma::Population).unwrap();
        assert!(note(three, Some(50)).unwrap().contains("points 11 to 50 are judged"));
        assert!(
            note(Method::SEED, Some(6))
                .unwrap()
                .contains("a series' point 6 is judged against only the 5 points before it")
        );
        // No warm-up when the method needs the whole window.
        assert_eq!(note(Method::SEED, Some(5)), None);
        assert_eq!(note(Method::new_iqr(3.5).unwrap(), Some(4)), None);
    }

    #[test]
    fn metrics_read_with_or_without_a_header() {
        let with = read("Value,TIME,name\n1.5,2024-05-01T12:00:00Z,cpu\n2,,mem\n").unwrap();
        assert_eq!(with.len(), 2);
        assert_eq!((with[0].name.as_str(), with[0].value), ("cpu", 1.5));
        assert_eq!(with[0].time.unwrap().seconds, 1_714_564_800);
        assert!(with[1].time.is_none());
        let without = read("1714564800.25,cpu,3\n\n1714564801,cpu,4\n").unwrap();
        assert_eq!(without.len(), 2);
        assert_eq!(
            without[0].time.unwrap(),
            prost_types::Timestamp { seconds: 1_714_564_800, nanos: 250_000_000 }
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let e = read("time,name,value\n,cpu,1\n,cpu,NaN\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: value \"NaN\" is not a finite number");
        let e = read(",cpu,x\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: value \"x\" is not a finite number");
        let e = format!("{:#}", read("yesterday,cpu,1\n").unwrap_err());
        assert_eq!(e, "line 1: time \"yesterday\" is neither RFC 3339 nor Unix seconds");
        let e = read("time,name,value\n,cpu,1\n,cpu\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: expected 3 fields (time,name,value), found 2");
    }

    #[test]
    fn a_header_that_does_not_name_the_columns_is_named_with_what_is_expected() {
        for (header, found) in [
            ("timestamp,host,cpu\n1714564800,a,1\n", "timestamp,host,cpu"),
            ("name,value\ncpu,1\n", "name,value"),
            ("Time ; Name ; Value\n", "Time ; Name ; Value"),
        ] {
            let e = read(header).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "line 1: expected a header with time,name,value (any order), or none; found: {found}"
                )
            );
        }
    }
}
