//! The durable-upload measurement of issue 5: 1 GiB through [`Upload`] in
//! 1 MiB chunks (sha256 included), committed, beside `dd ...
//! conv=fdatasync` of the same size on the same disk. Run with
//! `cargo test -p dataport-store --release -- --ignored --nocapture one_gib`
//! (`DATAPORT_BENCH_DIR` picks the disk; the default is the temp dir).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::super::*;

const GIB: u64 = 1 << 30;

/// The flush intervals measured; `u64::MAX` flushes only at commit.
const SETTINGS: [u64; 4] = [u64::MAX, 256 << 20, 64 << 20, 16 << 20];

#[test]
#[ignore = "writes 1 GiB several times; run by hand"]
fn one_gib_durable_upload_against_dd() {
    let base = std::env::var_os("DATAPORT_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let chunk = random_chunk();
    println!("sha256 alone: {:.0} MB/s", sha256_rate(&chunk));
    // The host caches the virtual disk and its rates drift from second to
    // second: every contender runs once per round, and the medians count.
    let (mut dd_rates, mut raw_rates) = (Vec::new(), Vec::new());
    let mut uploads: Vec<Vec<Upload1Gib>> = vec![Vec::new(); SETTINGS.len()];
    for round in 0..5 {
        dd_rates.push(dd(dir.path()));
        raw_rates.push(raw(dir.path(), &chunk));
        for (i, &sync_every) in SETTINGS.iter().enumerate() {
            uploads[i].push(upload(dir.path(), &chunk, sync_every));
        }
        println!(
            "round {round}: dd {:.0}, random write {:.0}, uploads {:?} MB/s",
            dd_rates[round],
            raw_rates[round],
            uploads.iter().map(|u| u[round].rate.round()).collect::<Vec<_>>()
        );
    }
    let dd_rate = median(dd_rates);
    println!("median dd if=/dev/zero bs=1M count=1024 conv=fdatasync: {dd_rate:.0} MB/s");
    println!("median write(2) of random bytes + one fdatasync, no sha256: {:.0} MB/s", median(raw_rates));
    for (runs, sync_every) in uploads.into_iter().zip(SETTINGS) {
        let every = if sync_every == u64::MAX { "never".into() } else { format!("{} MiB", sync_every >> 20) };
        let rate = median(runs.iter().map(|u| u.rate).collect());
        println!(
            "median upload, flush every {every:>7}: {rate:5.0} MB/s ({:.0}% of dd), final flush and commit {:.0} ms, \
             CPU {:.2} s",
            100.0 * rate / dd_rate,
            median(runs.iter().map(|u| u.commit_ms).collect()),
            median(runs.iter().map(|u| u.cpu_secs).collect())
        );
    }
}

/// Random-looking bytes: xorshift.
fn random_chunk() -> Vec<u8> {
    let mut chunk = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    chunk
}

/// MB/s of sha256 over 1 GiB in memory.
fn sha256_rate(chunk: &[u8]) -> f64 {
    let start = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..1024 {
        hasher.update(chunk);
    }
    let _ = hasher.finalize();
    GIB as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// MB/s of `dd if=/dev/zero bs=1M count=1024 conv=fdatasync` into `dir`.
fn dd(dir: &Path) -> f64 {
    let out = dir.join("dd.out");
    let start = Instant::now();
    let status = std::process::Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", out.display()), "bs=1M", "count=1024", "conv=fdatasync"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let secs = start.elapsed().as_secs_f64();
    std::fs::remove_file(out).unwrap();
    GIB as f64 / secs / 1e6
}

/// MB/s of `write(2)` of `chunk` 1024 times into a file in `dir`, and one
/// fdatasync.
fn raw(dir: &Path, chunk: &[u8]) -> f64 {
    let path = dir.join("raw.out");
    let start = Instant::now();
    let mut file = std::fs::File::create(&path).unwrap();
    for _ in 0..1024 {
        file.write_all(chunk).unwrap();
    }
    file.sync_data().unwrap();
    let rate = GIB as f64 / start.elapsed().as_secs_f64() / 1e6;
    std::fs::remove_file(path).unwrap();
    rate
}

/// This process's CPU time (user + system, all threads), from /proc.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// One upload of 1 GiB, as measured.
#[derive(Clone, Copy)]
struct Upload1Gib {
    /// MB/s, committed.
    rate: f64,
    /// The final flush and commit.
    commit_ms: f64,
    cpu_secs: f64,
}

/// Uploads 1 GiB (`chunk`, changed per chunk so no two are alike) to a
/// store in `dir` flushing every `sync_every` bytes, commits it, and
/// deletes it.
fn upload(dir: &Path, chunk: &[u8], sync_every: u64) -> Upload1Gib {
    let mut chunk = chunk.to_vec();
    let cpu_before = cpu();
    let config = FileStoreConfig { max_file_size: u64::MAX, sync_every, ..Default::default() };
    let store = LocalFileStore::open_with(&dir.join("data"), config).unwrap();
    let start = Instant::now();
    let mut up = store.begin_upload("big", None).unwrap();
    for i in 0..1024u64 {
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        up.write(&chunk).unwrap();
    }
    let streamed = start.elapsed();
    up.commit().unwrap();
    let total = start.elapsed();
    let cpu_secs = cpu() - cpu_before;
    store.delete("big").unwrap();
    Upload1Gib {
        rate: GIB as f64 / total.as_secs_f64() / 1e6,
        commit_ms: (total - streamed).as_secs_f64() * 1e3,
        cpu_secs,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
