//! The call metrics, under go-grpc-middleware's names and labels, so that
//! dashboards made for grpc-go servers work unchanged:
//! `grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_msg_received_total`, `grpc_server_msg_sent_total` and the
//! `grpc_server_handling_seconds` histogram, each labelled `grpc_type`,
//! `grpc_service`, `grpc_method` (and `grpc_code`), plus
//! `dataport_calls_by_caller_total` where calls have a known caller.
//!
//! A call costs a hash of its path (at its start) and a few atomic adds, on
//! counters no other thread writes: each thread counts into one of
//! [`STRIPES`] copies, and a scrape adds the copies up. Shared counters
//! would have every call on two cores pass one cache line back and forth.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::reflection::Method;

/// The status codes as grpc-go names them (`codes.Code.String()`), which
/// go-grpc-middleware puts in `grpc_code`.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The histogram's upper bounds: Prometheus' default buckets (`DefBuckets`,
/// as go-grpc-middleware uses them), in microseconds.
const BUCKETS_US: [u64; 11] =
    [5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000];

/// Copies of the counters; threads take one each, in turn.
const STRIPES: usize = 8;

/// A method the server serves, as [`CallMetrics::method`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MethodId(u16);

#[derive(Debug)]
struct Labels {
    service: String,
    method: String,
    /// go-grpc-middleware's `grpc_type`.
    kind: &'static str,
}

impl Labels {
    fn of(&self) -> [(&'static str, &str); 3] {
        [("grpc_type", self.kind), ("grpc_service", &self.service), ("grpc_method", &self.method)]
    }
}

/// One method's counters: in one stripe (`Counts<AtomicU64>`, aligned so
/// that no two share a cache line), or added up for a scrape ([`Totals`]).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Counts<N> {
    started: N,
    handled: [N; CODES.len()],
    received: N,
    sent: N,
    /// Calls by the first bucket their duration fits; the last holds those
    /// beyond every bound.
    buckets: [N; BUCKETS_US.len() + 1],
    micros: N,
}

/// A method's counters across the stripes.
type Totals = Counts<u64>;

/// Calls with a known caller, by caller, method and code.
type ByCaller = HashMap<(Arc<str>, MethodId, u8), u64>;

#[derive(Debug)]
struct Stripe {
    methods: Box<[Counts<AtomicU64>]>,
    callers: Mutex<ByCaller>,
}

/// The counters of every served method.
#[derive(Debug)]
pub struct CallMetrics {
    labels: Vec<Labels>,
    /// `/service/Method` -> its id.
    index: HashMap<String, MethodId>,
    stripes: Box<[Stripe]>,
}

/// What one finished call adds.
#[derive(Clone, Copy, Debug)]
pub struct Handled<'a> {
    pub code: tonic::Code,
    pub elapsed: Duration,
    pub received: u64,
    pub sent: u64,
    pub caller: Option<&'a Arc<str>>,
}

impl CallMetrics {
    pub fn new<'a>(methods: impl IntoIterator<Item = &'a Method>) -> CallMetrics {
        let mut labels = Vec::new();
        let mut index = HashMap::new();
        for m in methods {
            let Ok(id) = u16::try_from(labels.len()) else { break };
            if index.insert(format!("/{}/{}", m.service, m.name), MethodId(id)).is_some() {
                continue;
            }
            let kind = match (m.client_streaming, m.server_streaming) {
                (false, false) => "unary",
                (true, false) => "client_stream",
                (false, true) => "server_stream",
                (true, true) => "bidi_stream",
            };
            labels.push(Labels { service: m.service.clone(), method: m.name.clone(), kind });
        }
        let stripes = (0..STRIPES)
            .map(|_| Stripe {
                methods: labels.iter().map(|_| Counts::default()).collect(),
                callers: Mutex::default(),
            })
            .collect();
        CallMetrics { labels, index, stripes }
    }

    /// The served method at `path`; none for a path nothing serves.
    pub fn method(&self, path: &str) -> Option<MethodId> {
        self.index.get(path).copied()
    }

    fn counts(&self, id: MethodId) -> (&Stripe, &Counts<AtomicU64>) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
        }
        let stripe = &self.stripes[STRIPE.with(|s| *s)];
        (stripe, &stripe.methods[usize::from(id.0)])
    }

    pub fn started(&self, id: MethodId) {
        self.counts(id).1.started.fetch_add(1, Relaxed);
    }

    pub fn handled(&self, id: MethodId, call: Handled<'_>) {
        let (stripe, counts) = self.counts(id);
        let code = (call.code as usize).min(CODES.len() - 1);
        counts.handled[code].fetch_add(1, Relaxed);
        if call.received > 0 {
            counts.received.fetch_add(call.received, Relaxed);
        }
        if call.sent > 0 {
            counts.sent.fetch_add(call.sent, Relaxed);
        }
        let micros = u64::try_from(call.elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.iter().position(|&upper| micros <= upper).unwrap_or(BUCKETS_US.len());
        counts.buckets[bucket].fetch_add(1, Relaxed);
        counts.micros.fetch_add(micros, Relaxed);
        if let Some(caller) = call.caller {
            let mut callers = stripe.callers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *callers.entry((Arc::clone(caller), id, code as u8)).or_default() += 1;
        }
    }

    /// Every method's counters, the stripes added up.
    fn totals(&self) -> Vec<Totals> {
        let mut totals: Vec<Totals> = self.labels.iter().map(|_| Totals::default()).collect();
        for stripe in &self.stripes {
            for (total, counts) in totals.iter_mut().zip(&stripe.methods) {
                total.add(counts);
            }
        }
        totals
    }

    fn by_caller(&self) -> ByCaller {
        let mut all = ByCaller::new();
        for stripe in &self.stripes {
            let callers = stripe.callers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key, n) in callers.iter() {
                *all.entry(key.clone()).or_default() += n;
            }
        }
        all
    }
}

impl Totals {
    fn add(&mut self, counts: &Counts<AtomicU64>) {
        self.started += counts.started.load(Relaxed);
        for (total, n) in self.handled.iter_mut().zip(&counts.handled) {
            *total += n.load(Relaxed);
        }
        self.received += counts.received.load(Relaxed);
        self.sent += counts.sent.load(Relaxed);
        for (total, n) in self.buckets.iter_mut().zip(&counts.buckets) {
            *total += n.load(Relaxed);
        }
        self.micros += counts.micros.load(Relaxed);
    }

    fn calls(&self) -> u64 {
        self.handled.iter().sum()
    }
}

/// A counter of every method: its name, its help, and its value in the totals.
type PerMethod = (&'static str, &'static str, fn(&Totals) -> u64);

impl Collector for CallMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let totals = self.totals();
        let methods = || self.labels.iter().zip(&totals);
        let counters: [PerMethod; 3] = [
            ("grpc_server_started", "Total number of RPCs started on the server.", |t| t.started),
            (
                "grpc_server_msg_received",
                "Total number of RPC stream messages received on the server.",
                |t| t.received,
            ),
            ("grpc_server_msg_sent", "Total number of gRPC stream messages sent by the server.", |t| t.sent),
        ];
        for (name, help, value) in counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (l, t) in methods() {
                metric.encode_family(&l.of())?.encode_counter::<NoLabelSet, _, u64>(&value(t), None)?;
            }
        }

        let help = "Total number of RPCs completed on the server, regardless of success or failure.";
        let mut metric = encoder.encode_descriptor("grpc_server_handled", help, None, MetricType::Counter)?;
        for (l, t) in methods() {
            for (code, n) in CODES.iter().zip(t.handled) {
                if n > 0 {
                    let [kind, service, method] = l.of();
                    let labels = [kind, service, method, ("grpc_code", *code)];
                    metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }

        let help = "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.";
        let mut metric =
            encoder.encode_descriptor("grpc_server_handling_seconds", help, None, MetricType::Histogram)?;
        let bounds = BUCKETS_US.map(|us| us as f64 / 1e6);
        for (l, t) in methods().filter(|(_, t)| t.calls() > 0) {
            let buckets: Vec<(f64, u64)> = bounds.iter().copied().zip(t.buckets).collect();
            let sum = t.micros as f64 / 1e6;
            metric.encode_family(&l.of())?.encode_histogram::<NoLabelSet>(sum, t.calls(), &buckets, None)?;
        }

        let by_caller = self.by_caller();
        if !by_caller.is_empty() {
            let help = "Calls completed, by who called (a token's or a client certificate's name).";
            let mut metric =
                encoder.encode_descriptor("dataport_calls_by_caller", help, None, MetricType::Counter)?;
            let mut rows: Vec<_> = by_caller.into_iter().collect();
            rows.sort();
            for ((caller, id, code), n) in rows {
                let l = &self.labels[usize::from(id.0)];
                let labels = [
                    ("caller", &*caller),
                    ("grpc_service", l.service.as_str()),
                    ("grpc_method", l.method.as_str()),
                    ("grpc_code", CODES[usize::from(code)]),
                ];
                metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        Ok(())
    }
}
