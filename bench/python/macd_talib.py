"""TA-Lib's side of the MACD benchmark (bench/run; see bench/README.md).

    macd_talib.py CLOSES_FILE REPS

Reads the closes (raw little-endian f64, written by `market-bench closes`),
runs talib.MACD(closes, 12, 26, 9) once untimed, then REPS times timed, and
prints what `market-bench macd` prints: a `rep_ms` line per timed call, then
`check NAME NANS LAST SUM ABS_SUM XOR` for macd, signal and hist (NaN count,
last value, the sum of the values in order, the sum of their magnitudes, the
XOR of their bit patterns; NaNs left out), so that the script can tell both sides computed the same numbers.
"""

import sys
import time

import numpy as np
import talib


def check_line(name, values):
    valid = values[~np.isnan(values)]
    # In order, as the Rust side sums (np.sum would sum pairwise).
    total = float(np.add.accumulate(valid)[-1]) if len(valid) else 0.0
    magnitude = float(np.add.accumulate(np.abs(valid))[-1]) if len(valid) else 0.0
    xor = int(np.bitwise_xor.reduce(valid.view(np.uint64))) if len(valid) else 0
    nans = len(values) - len(valid)
    return f"check {name} {nans} {float(values[-1])!r} {total!r} {magnitude!r} {xor:016x}"


def main():
    path, reps = sys.argv[1], int(sys.argv[2])
    closes = np.fromfile(path, dtype="<f8")
    out = talib.MACD(closes, 12, 26, 9)
    for _ in range(reps):
        # Freeing the previous outputs is not timed (nor is it on the Rust side).
        del out
        t0 = time.perf_counter_ns()
        out = talib.MACD(closes, 12, 26, 9)
        t1 = time.perf_counter_ns()
        print(f"rep_ms {(t1 - t0) / 1e6:.3f}")
    for name, line in zip(("macd", "signal", "hist"), out):
        print(check_line(name, line))


if __name__ == "__main__":
    main()
