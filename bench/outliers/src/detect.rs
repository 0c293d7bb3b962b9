//! pb.Outliers/Detect over one million metrics: the request, the answer the
//! 2-sigma rule gives, and the timed calls.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use dataport_proto::pb::{Metric, OutliersRequest, OutliersResponse};
use prost::Message;
use prost::bytes::{BufMut, Bytes};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::transport::Endpoint;
use tonic_prost::ProstDecoder;

use crate::rng::SplitMix64;

const SEED: u64 = 0x5eed_0071_1e25;
/// 2023-11-14T22:13:20Z; the metrics are one second apart from there.
const FIRST_SECOND: i64 = 1_700_000_000;
const NAME: &str = "cpu";
/// Outliers planted at known positions, far outside [0, 40).
const PLANTED: [f64; 8] = [1000.0, -1000.0, 1000.0, 1000.0, -1000.0, 1000.0, -1000.0, 1000.0];

/// The request: `n` metrics of one series, values uniform in [0, 40) from a
/// fixed seed, with PLANTED spread evenly; and the positions of the planted
/// ones.
pub fn metrics(n: usize) -> (Vec<Metric>, Vec<usize>) {
    let mut rng = SplitMix64::new(SEED);
    let mut metrics: Vec<Metric> = (0..n)
        .map(|i| Metric {
            time: Some(prost_types::Timestamp { seconds: FIRST_SECOND + i as i64, nanos: 0 }),
            name: NAME.to_owned(),
            value: 40.0 * rng.unit(),
        })
        .collect();
    let step = n / (PLANTED.len() + 1);
    let mut planted = Vec::new();
    if step > 0 {
        for (k, &value) in PLANTED.iter().enumerate() {
            let at = (k + 1) * step + k; // not on round numbers
            metrics[at].value = value;
            planted.push(at);
        }
    }
    (metrics, planted)
}

/// The positions where |x - mean| > 2 sigma (population sigma), as numpy's
/// `np.where(np.abs(data - data.mean()) > 2 * data.std())`. Refuses data where a
/// point lies so near the threshold that the order of summation (numpy sums
/// pairwise, this in order) could change its verdict.
pub fn two_sigma(values: &[f64]) -> anyhow::Result<Vec<usize>> {
    ensure!(!values.is_empty(), "no values");
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sigma = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    let limit = 2.0 * sigma;
    let mut out = Vec::new();
    for (i, x) in values.iter().enumerate() {
        let deviation = (x - mean).abs();
        if (deviation - limit).abs() <= 1e-9 * limit {
            bail!("value {x} at {i} is within 1e-9 of the threshold: pick another seed");
        }
        if deviation > limit {
            out.push(i);
        }
    }
    Ok(out)
}

/// Encodes the request once, connects once, then makes `warmup` untimed and
/// `reps` timed calls, each sending those bytes; prints `metrics N`,
/// `request_bytes B`, `encode_ms X` (what prost encoding the request costs a
/// client that builds it per call, for information), a `rep_ms X` and a
/// `client_cpu_ms X` line per timed call (the CPU time this client spent in
/// the call: framing, HTTP/2, the reply), and `check COUNT I1,I2,...`.
pub async fn run(addr: &str, n: usize, warmup: usize, reps: usize) -> anyhow::Result<()> {
    let (metrics, planted) = metrics(n);
    let values: Vec<f64> = metrics.iter().map(|m| m.value).collect();
    let expected: Vec<i32> = two_sigma(&values)?.into_iter().map(|i| i as i32).collect();
    // The rule must find exactly the planted outliers, or the data is not
    // what the benchmark claims to send.
    ensure!(
        expected.iter().map(|&i| i as usize).eq(planted.iter().copied()),
        "the 2-sigma rule flags {expected:?}, not the planted {planted:?}"
    );
    let template = OutliersRequest { metrics };
    println!("metrics {n}");
    println!("request_bytes {}", template.encoded_len());
    // What encoding costs a client that builds each request anew (the first
    // time pays for faulting in fresh memory): reported, not part of a call.
    for _ in 0..2 {
        let request = template.clone();
        let t0 = Instant::now();
        let encoded = request.encode_to_vec();
        drop(request);
        let elapsed = t0.elapsed();
        drop(encoded);
        println!("encode_ms {:.3}", elapsed.as_secs_f64() * 1e3);
    }
    // Every call sends these same bytes, encoded once, as h2load sends a
    // pre-encoded SayHello: a call is the transfer, the server's work and the
    // reply, the same for both servers.
    let body = Bytes::from(template.encode_to_vec());
    drop(template);

    let channel = Endpoint::from_shared(addr.to_owned())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    let path = http::uri::PathAndQuery::from_static("/pb.Outliers/Detect");
    for rep in 0..warmup + reps {
        let cpu0 = thread_cpu_ns()?;
        let t0 = Instant::now();
        grpc.ready().await.context("the channel is not ready")?;
        let request = tonic::Request::new(body.clone());
        let reply = grpc
            .unary(request, path.clone(), Encoded)
            .await
            .with_context(|| format!("call {}", rep + 1))?
            .into_inner();
        let elapsed = t0.elapsed();
        let cpu = thread_cpu_ns()? - cpu0;
        if reply.indices != expected {
            bail!("call {}: the reply holds indices {:?}; expected {expected:?}", rep + 1, reply.indices);
        }
        if rep >= warmup {
            println!("rep_ms {:.3}", elapsed.as_secs_f64() * 1e3);
            println!("client_cpu_ms {:.3}", cpu as f64 / 1e6);
        }
    }
    let list: Vec<String> = expected.iter().map(i32::to_string).collect();
    println!("check {} {}", expected.len(), list.join(","));
    Ok(())
}

/// Sends an already encoded OutliersRequest; decodes the reply with prost.
struct Encoded;

impl Codec for Encoded {
    type Encode = Bytes;
    type Decode = OutliersResponse;
    type Encoder = Encoded;
    type Decoder = ProstDecoder<OutliersResponse>;

    fn encoder(&mut self) -> Encoded {
        Encoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}

impl Encoder for Encoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put(item);
        Ok(())
    }
}

/// The CPU time this thread has run, in nanoseconds (Linux). The runtime is
/// current-thread, so this is all the client's work on a call.
fn thread_cpu_ns() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").context("cannot read the CPU time")?;
    let first = text.split_whitespace().next().unwrap_or("");
    first.parse().with_context(|| format!("/proc/thread-self/schedstat holds {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_flags_exactly_the_planted_outliers() {
        let (metrics, planted) = metrics(100_000);
        assert_eq!(planted.len(), PLANTED.len());
        let values: Vec<f64> = metrics.iter().map(|m| m.value).collect();
        assert_eq!(two_sigma(&values).unwrap(), planted);
        assert!(values.iter().enumerate().all(|(i, v)| planted.contains(&i) || (0.0..40.0).contains(v)));
    }

    #[test]
    fn the_rule_is_numpys_on_a_small_case() {
        // np.where(np.abs(x - x.mean()) > 2 * x.std())[0] for x = [1, 1, 1, 1, 1, 1, 10]: [6]
        assert_eq!(two_sigma(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0]).unwrap(), vec![6]);
    }
}
