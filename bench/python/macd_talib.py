"""TA-Lib's side of the MACD benchmark (bench/run; see bench/README.md).

    macd_talib.py CLOSES_FILE REPS

Reads the closes (raw little-endian f64, written by `market-bench closes`),
runs each way of calling TA-Lib's MACD(12, 26, 9) once untimed, then REPS
rounds of both timed, and prints, as `market-bench macd` does for its side:
- `into_ms`: TA-Lib's C `TA_MACD` (the wheel's own copy, through ctypes)
  writing into three arrays made once, as `macd_into` writes into the
  caller's buffers: neither side allocates;
- `rep_ms`: `talib.MACD`, which allocates its three outputs on every call
  (numpy, on transparent huge pages), as `macd` does: both sides allocate;
then
`check NAME NANS LAST SUM ABS_SUM XOR` for macd, signal and hist (NaN count,
last value, the sum of the values in order, the sum of their magnitudes, the
XOR of their bit patterns; NaNs left out), so that the script can tell both sides computed the same numbers.
"""

import ctypes
import sys
import time

import numpy as np
import talib
import talib._ta_lib

FAST, SLOW, SIGNAL = 12, 26, 9


def ta_macd_into():
    """TA_MACD from the library talib itself calls, as `into(closes, outs)`:
    the outputs' first lookback values stay NaN, as talib.MACD's are."""
    lib = ctypes.CDLL(talib._ta_lib.__file__)
    d = ctypes.POINTER(ctypes.c_double)
    i = ctypes.POINTER(ctypes.c_int)
    lib.TA_MACD.restype = ctypes.c_int
    lib.TA_MACD.argtypes = [ctypes.c_int, ctypes.c_int, d, ctypes.c_int, ctypes.c_int, ctypes.c_int, i, i, d, d, d]
    lib.TA_MACD_Lookback.restype = ctypes.c_int
    lib.TA_MACD_Lookback.argtypes = [ctypes.c_int] * 3
    lookback = lib.TA_MACD_Lookback(FAST, SLOW, SIGNAL)
    begin, count = ctypes.c_int(), ctypes.c_int()

    def into(closes, outs):
        at = [o[lookback:].ctypes.data_as(d) for o in outs]
        code = lib.TA_MACD(
            0, len(closes) - 1, closes.ctypes.data_as(d), FAST, SLOW, SIGNAL, ctypes.byref(begin), ctypes.byref(count), *at
        )
        if code != 0 or begin.value != lookback or count.value != len(closes) - lookback:
            sys.exit(f"TA_MACD answered {code}, begin {begin.value}, {count.value} values")

    return into


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
    into = ta_macd_into()
    outs = [np.full(len(closes), np.nan) for _ in range(3)]
    into(closes, outs)
    out = talib.MACD(closes, FAST, SLOW, SIGNAL)
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        into(closes, outs)
        t1 = time.perf_counter_ns()
        print(f"into_ms {(t1 - t0) / 1e6:.3f}")
        # Freeing the previous outputs is not timed (nor is it on the Rust side).
        del out
        t0 = time.perf_counter_ns()
        out = talib.MACD(closes, FAST, SLOW, SIGNAL)
        t1 = time.perf_counter_ns()
        print(f"rep_ms {(t1 - t0) / 1e6:.3f}")
    if any(not np.array_equal(a.view(np.uint64), b.view(np.uint64)) for a, b in zip(outs, out)):
        sys.exit("TA_MACD into arrays and talib.MACD disagree")
    for name, line in zip(("macd", "signal", "hist"), out):
        print(check_line(name, line))


if __name__ == "__main__":
    main()
