//! 1 GiB through an [`S3Upload`] in 1 MiB chunks (sha256 included),
//! committed, against the S3 server of `DATAPORT_TEST_S3` (versitygw on
//! this machine's disk, `tests/s3/server`), for each setting of
//! [`S3Options::parts_in_flight`] measured: the rate, the commit's share of
//! the time (the parts still on their way, then CompleteMultipartUpload,
//! which versitygw's posix back end answers by copying every part into the
//! object), and this process's CPU time. Run with
//! `cargo test -p dataport-store --release --lib -- --ignored --nocapture one_gib_to_s3`.
//! (The memory an upload holds is measured on the server, whose peak RSS
//! `bench/scaling/run` reads: in one test process, later uploads reuse the
//! memory earlier ones freed.)

use std::time::{Duration, Instant};

use super::*;

const GIB: u64 = 1 << 30;

/// The settings of [`S3Options::parts_in_flight`] measured.
const IN_FLIGHT: [usize; 4] = [1, 2, 3, 4];

/// This process's CPU seconds (user + system), from /proc.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

#[test]
#[ignore = "uploads 1 GiB to S3 a dozen times; run by hand"]
fn one_gib_to_s3() {
    let chunk = pattern(7, MIB);
    let config = FileStoreConfig { max_file_size: u64::MAX, ..FileStoreConfig::default() };
    // The disk's rate drifts as the page cache fills: every setting runs
    // once per round, and the medians count.
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); IN_FLIGHT.len()];
    for round in 0..3 {
        for (i, &parts_in_flight) in IN_FLIGHT.iter().enumerate() {
            // No grace: the sweep after each upload frees its gigabyte.
            let options = S3Options { parts_in_flight, delete_grace: Duration::ZERO, ..options() };
            let store = S3FileStore::open_with(&fresh_url(), config.clone(), options).unwrap();
            let run = upload(&store, &chunk);
            println!(
                "round {round}, {parts_in_flight} in flight: {:.0} MB/s; commit {:.2} s of {:.2} s; CPU {:.2} s",
                run.rate, run.commit, run.total, run.cpu
            );
            runs[i].push(run);
        }
    }
    for (runs, parts_in_flight) in runs.iter().zip(IN_FLIGHT) {
        let median = |f: fn(&Run) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "median, {parts_in_flight} in flight: {:.0} MB/s, commit {:.0}% of the time, CPU {:.2} s",
            median(|r| r.rate),
            median(|r| 100.0 * r.commit / r.total),
            median(|r| r.cpu)
        );
    }
}

/// One upload of 1 GiB, as measured: MB/s, seconds of the commit and of
/// the whole, and this process's CPU seconds.
#[derive(Clone, Copy)]
struct Run {
    rate: f64,
    commit: f64,
    total: f64,
    cpu: f64,
}

/// Uploads 1 GiB of `chunk` (changed per chunk so no two are alike),
/// commits it, deletes it and sweeps its data away.
fn upload(store: &S3FileStore, chunk: &[u8]) -> Run {
    let mut chunk = chunk.to_vec();
    let cpu_before = cpu();
    let start = Instant::now();
    let mut up = store.begin_upload("big", None).unwrap();
    for i in 0..1024u64 {
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        up.write(&chunk).unwrap();
    }
    let streamed = start.elapsed().as_secs_f64();
    up.commit().unwrap();
    let total = start.elapsed().as_secs_f64();
    let cpu = cpu() - cpu_before;
    store.delete("big").unwrap();
    store.sweep().unwrap();
    Run { rate: GIB as f64 / total / 1e6, commit: total - streamed, total, cpu }
}
