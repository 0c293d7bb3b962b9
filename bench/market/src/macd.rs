//! MACD over 10M closes: the input file and the timed core call.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use dataport_core::market::{Macd, MacdParams, macd, macd_into};

use crate::rng::SplitMix64;

/// Writes `n` closes as raw little-endian f64 (what `numpy.fromfile` reads).
///
/// The walk is in log space and pulled gently back to 100 (an AR(1) with
/// coefficient 0.9999), so that ten million steps neither vanish nor blow up:
/// prices stay within about 50..200 and keep every bit of their precision.
pub fn write_closes(path: &Path, n: usize) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(20_261_121);
    let mut x = 0.0_f64;
    let mut bytes = Vec::with_capacity(n * 8);
    for _ in 0..n {
        x = 0.9999 * x + 0.01 * rng.signed();
        bytes.extend_from_slice(&(100.0 * x.exp()).to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    println!("closes {n}");
    Ok(())
}

fn read_closes(path: &Path) -> anyhow::Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() % 8 != 0 {
        bail!("{} holds {} bytes, not a whole number of f64", path.display(), bytes.len());
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect())
}

/// One untimed warm-up, then `reps` timed rounds of the core's MACD, each
/// timing two calls:
/// - `rep_ms`: `macd_into` into the same three output buffers every time,
///   compared with TA-Lib's C `TA_MACD` writing into arrays made once;
/// - `fresh_ms`: `macd`, which allocates its outputs (240 MB of fresh pages
///   that the kernel faults in 4 KiB at a time), compared with `talib.MACD`,
///   which allocates too (numpy asks for transparent huge pages).
pub fn time_macd(input: &Path, reps: usize) -> anyhow::Result<()> {
    let closes = read_closes(input)?;
    let params = MacdParams::new(12, 26, 9)?;
    let mut out = macd(black_box(&closes), params);
    for _ in 0..reps {
        let t0 = Instant::now();
        macd_into(black_box(&closes), params, &mut out);
        let reused = t0.elapsed();
        black_box(&out);
        let t0 = Instant::now();
        let fresh = macd(black_box(&closes), params);
        let fresh_elapsed = t0.elapsed();
        let bits = |m: &Macd| {
            [&m.macd, &m.signal, &m.hist].map(|l| l.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        };
        if bits(&fresh) != bits(&out) {
            bail!("macd and macd_into disagree");
        }
        drop(fresh);
        println!("rep_ms {:.3}", reused.as_secs_f64() * 1e3);
        println!("fresh_ms {:.3}", fresh_elapsed.as_secs_f64() * 1e3);
    }
    for (name, line) in [("macd", &out.macd), ("signal", &out.signal), ("hist", &out.hist)] {
        println!("{}", check_line(name, line));
    }
    Ok(())
}

/// `check NAME NANS LAST SUM ABS_SUM XOR`: the NaN count, the last value, the
/// sum of the values in order, the sum of their magnitudes (the scale the
/// sum is compared at) and the XOR of their bit patterns (NaNs left out), as
/// `bench/python/macd_talib.py` prints them, so that the script can tell
/// that both sides computed the same numbers (and whether bit for bit).
fn check_line(name: &str, values: &[f64]) -> String {
    let (mut nans, mut sum, mut abs_sum, mut xor) = (0_usize, 0.0_f64, 0.0_f64, 0_u64);
    for &v in values {
        if v.is_nan() {
            nans += 1;
        } else {
            sum += v;
            abs_sum += v.abs();
            xor ^= v.to_bits();
        }
    }
    let last = values.last().copied().unwrap_or(f64::NAN);
    format!("check {name} {nans} {last:?} {sum:?} {abs_sum:?} {xor:016x}")
}
