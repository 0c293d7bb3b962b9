//! Load for `idc.Indicator/GetMACD`: many calls of one request, each reply
//! checked, with the latency the client saw.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dataport_proto::idc::MacdRequest;
use dataport_proto::idc::indicator_client::IndicatorClient;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug)]
pub struct Load {
    pub addr: String,
    pub symbol: String,
    pub start: String,
    pub end: String,
    pub calls: usize,
    pub concurrency: usize,
    pub expect_rows: usize,
}

/// Makes `load.calls` calls over `load.concurrency` concurrent streams and
/// prints `getmacd CALLS CONCURRENCY SECONDS CALLS_PER_S P50_US P99_US`
/// (client-side latency). Fails on the first error or wrong reply.
pub async fn run(load: Load) -> anyhow::Result<()> {
    anyhow::ensure!(
        load.concurrency >= 1 && load.calls >= load.concurrency,
        "need calls >= concurrency >= 1"
    );
    let channel = Endpoint::from_shared(load.addr.clone())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", load.addr))?;
    let request = MacdRequest {
        start_date: load.start.clone(),
        end_date: load.end.clone(),
        symbol: load.symbol.clone(),
    };
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..load.concurrency {
        // Spread the calls evenly: the first `calls % concurrency` workers make one more.
        let n = load.calls / load.concurrency + usize::from(worker < load.calls % load.concurrency);
        let (client, request) = (IndicatorClient::new(channel.clone()), request.clone());
        let (start, end, rows) = (load.start.clone(), load.end.clone(), load.expect_rows);
        tasks.spawn(calls(client, request, n, start, end, rows));
    }
    let mut latencies = Vec::with_capacity(load.calls);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let seconds = t0.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    println!(
        "getmacd {} {} {seconds:.3} {:.1} {} {}",
        latencies.len(),
        load.concurrency,
        latencies.len() as f64 / seconds,
        pct(0.50).as_micros(),
        pct(0.99).as_micros()
    );
    Ok(())
}

async fn calls(
    mut client: IndicatorClient<Channel>,
    request: MacdRequest,
    n: usize,
    start: String,
    end: String,
    expect_rows: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let reply = client.get_macd(request.clone()).await?.into_inner();
        latencies.push(t0.elapsed());
        let rows = &reply.macd;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { bail!("a reply held no rows") };
        if rows.len() != expect_rows || first.date < start || last.date > end {
            bail!(
                "a reply held {} rows from {} to {}; expected {expect_rows} within {start}..{end}",
                rows.len(),
                first.date,
                last.date
            );
        }
    }
    Ok(latencies)
}
