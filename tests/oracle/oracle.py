"""Writes what TA-Lib says every indicator should be, for the Rust oracle test.

    python tests/oracle/oracle.py OUT.json

For every symbol in data/sample/bars.csv.gz, as traded and adjusted by its
adj_close (SYMBOL-adjusted: every price times adj_close / close, computed
here), and for a few synthetic series that pin the odd cases (flat, rising,
NaN gaps, too short), computes SMA, EMA, MACD, RSI, Bollinger Bands and ATR
with TA-Lib under several parameter sets, the defaults among them. An
adjusted series also carries the prices as traded (`raw`): the Rust side
adjusts them itself, checks its series equals this one, and computes over its
own. crates/dataport-core/tests/oracle.rs reads OUT.json
(named by DATAPORT_ORACLE_FILE) and compares.

Numbers are written as strings, Python's shortest round-trip repr, so the
Rust side parses back exactly the doubles TA-Lib produced (serde_json's default
float parser may be off by one ulp); NaN is null.
"""

import csv
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
import talib

ROOT = Path(__file__).resolve().parents[2]
BARS = ROOT / "data/sample/bars.csv.gz"

# (indicator, params): TA-Lib's defaults first in each group.
CASES = [
    *(("sma", {"period": n}) for n in (30, 1, 2, 5, 200)),
    *(("ema", {"period": n}) for n in (30, 1, 2, 12, 200)),
    *(
        ("macd", {"fast": f, "slow": s, "signal": g})
        for f, s, g in ((12, 26, 9), (26, 12, 9), (5, 35, 5), (2, 3, 1), (10, 10, 4), (12, 26, 1), (50, 200, 20))
    ),
    *(("rsi", {"period": n}) for n in (14, 2, 30, 100)),
    *(
        ("bollinger", {"period": n, "dev_up": u, "dev_down": d})
        for n, u, d in ((5, 2.0, 2.0), (20, 2.0, 2.0), (20, 1.0, 1.0), (10, 1.5, 2.5), (2, 0.5, 3.0), (50, 0.0, 1.0))
    ),
    *(("atr", {"period": n}) for n in (14, 1, 2, 50)),
]


def run(indicator, params, s):
    """TA-Lib's outputs for one case, by output name."""
    c = s["close"]
    if indicator == "sma":
        return {"out": talib.SMA(c, params["period"])}
    if indicator == "ema":
        return {"out": talib.EMA(c, params["period"])}
    if indicator == "rsi":
        return {"out": talib.RSI(c, params["period"])}
    if indicator == "atr":
        return {"out": talib.ATR(s["high"], s["low"], c, params["period"])}
    if indicator == "macd":
        m, g, h = talib.MACD(c, params["fast"], params["slow"], params["signal"])
        return {"macd": m, "signal": g, "hist": h}
    if indicator == "bollinger":
        u, m, l = talib.BBANDS(c, params["period"], params["dev_up"], params["dev_down"], 0)
        return {"upper": u, "middle": m, "lower": l}
    raise ValueError(indicator)


def load_bars():
    """Each symbol as traded, and adjusted (with its prices as traded beside)."""
    raw = {}
    with gzip.open(BARS, "rt", newline="") as f:
        for r in csv.DictReader(f):
            s = raw.setdefault(r["symbol"], {"high": [], "low": [], "close": [], "adj_close": []})
            for k in s:
                s[k].append(float(r[k]))
    series = {}
    for symbol, s in raw.items():
        series[symbol] = {k: s[k] for k in ("high", "low", "close")}
        factors = [a / c for a, c in zip(s["adj_close"], s["close"])]
        adjusted = {k: [v * f for v, f in zip(s[k], factors)] for k in ("high", "low", "close")}
        series[f"{symbol}-adjusted"] = {**adjusted, "raw": s}
    return series


def synthetic():
    """Small series for the cases real prices never show."""
    n = 80
    close = [100 + 10 * math.sin(i / 7) + 0.1 * i for i in range(n)]
    high = [v + 1 + i % 3 for i, v in enumerate(close)]
    low = [v - 1 - i % 2 for i, v in enumerate(close)]
    base = {"high": high, "low": low, "close": close}

    def with_nan(key, at):
        s = {k: list(v) for k, v in base.items()}
        s[key][at] = math.nan
        return s

    return {
        "flat": {k: [5.0] * 60 for k in base},
        "rising": {"high": [i + 1.0 for i in range(60)], "low": [i - 1.0 for i in range(60)],
                   "close": [float(i) for i in range(60)]},
        "wave": base,
        "wave-short": {k: v[:12] for k, v in base.items()},
        "wave-nan-close": with_nan("close", 50),
        "wave-nan-high": with_nan("high", 50),
        "wave-leading-nan": {k: [math.nan] * 3 + v[3:] for k, v in base.items()},
    }


def encode(values):
    return [None if math.isnan(v) else repr(float(v)) for v in values]


def encode_series(s):
    return {k: encode_series(v) if k == "raw" else encode(v) for k, v in s.items()}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: oracle.py OUT.json")
    out = Path(sys.argv[1])
    series = {**load_bars(), **synthetic()}
    arrays = {
        name: {k: np.asarray(v, dtype=np.float64) for k, v in s.items() if k != "raw"}
        for name, s in series.items()
    }
    cases = []
    for name, s in arrays.items():
        for indicator, params in CASES:
            outputs = run(indicator, params, s)
            cases.append({
                "series": name,
                "indicator": indicator,
                "params": params,
                "outputs": {k: encode(v) for k, v in outputs.items()},
            })
    doc = {
        "talib": talib.__version__,
        "series": {name: encode_series(s) for name, s in series.items()},
        "cases": cases,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, separators=(",", ":")))
    values = sum(len(v) for c in cases for v in c["outputs"].values())
    print(f"oracle: TA-Lib {talib.__version__}, {len(series)} series, {len(cases)} cases, "
          f"{values} values -> {out}")


if __name__ == "__main__":
    main()
