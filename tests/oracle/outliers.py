"""Writes what numpy says the outlier rules give, for the Rust oracle test.

    python tests/oracle/outliers.py OUT.json

Writes OUT.json and, next to it, OUT.f64: every array (series values and
expected scores) as little-endian float64, concatenated; OUT.json names each
array's offset and length in it. crates/dataport-core/tests/oracle_outliers.rs
reads both (DATAPORT_OUTLIERS_ORACLE_FILE names OUT.json) and compares with
dataport_core::outliers.

What is checked:
- reductions: np.add.reduce, mean, std (ddof 0 and 1), median and
  percentile([25, 75]) of arrays of 0..=1,000,000 values (around every size
  where numpy's pairwise summation or its 8192-element buffer could change
  the order), bit for bit;
- judgements: every rule under several parameters on the sample data (closes,
  volumes and returns per symbol), random series and crafted ones: the
  seed rule on [c, c, c, c, c + d] where |x - mean| == 2 * sigma exactly or
  one ulp either side, thresholds and k set so that a point sits exactly on
  the threshold or a fence or a few ulps either side, ties, constant and
  tiny series, a sigma that underflows;
- batches: named points grouped by name (positions in the batch kept);
- streams: each point against the trailing window of its own series (while
  it fills, against the series so far, once it has min_points points).

Numbers are written as strings, Python's shortest round-trip repr, so the
Rust side parses back exactly numpy's doubles; NaN is null.

The reference rules below are the definitions in dataport-core's outliers
module written with numpy; where that module departs from plain numpy (a
sigma of 0, which numpy can reach by underflow while deviations are not 0, and
the sample sigma of one point, which numpy makes NaN) it says so.
"""

import csv
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BARS = ROOT / "data/sample/bars.csv.gz"

MAD_FACTOR = 0.6745
MEAN_AD_FACTOR = 1.253314
ROUNDING_MARGIN = 1e-9


def r(v):
    v = float(v)
    return None if math.isnan(v) else repr(v)


# --- The rules ---------------------------------------------------------------

def stats_of(x, method):
    n = len(x)
    kind = method["kind"]
    if kind == "z":
        ddof = 1 if method["sigma"] == "sample" else 0
        if n == 0:
            return {"mean": math.nan, "sigma": math.nan}
        mean = x.mean()
        # Ours: the sample sigma of one point is 0 (numpy: NaN).
        sigma = 0.0 if n <= ddof else x.std(ddof=ddof)
        return {"mean": mean, "sigma": sigma}
    if kind == "modified":
        if n == 0:
            return {"median": math.nan, "mad": math.nan, "mean_abs_dev": math.nan}
        med = np.median(x)
        dev = np.abs(x - med)
        return {"median": med, "mad": np.median(dev), "mean_abs_dev": np.mean(dev)}
    if kind == "iqr":
        if n == 0:
            return {"q1": math.nan, "q3": math.nan, "lower_fence": math.nan, "upper_fence": math.nan}
        q1, q3 = np.percentile(x, [25, 75])
        iqr = q3 - q1
        k = method["k"]
        return {"q1": q1, "q3": q3, "lower_fence": q1 - k * iqr, "upper_fence": q3 + k * iqr}
    raise ValueError(kind)


def score_all(x, method, st):
    """Scores and the outlier mask of every value of x against the stats st."""
    kind = method["kind"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "z":
            d = x - st["mean"]
            # Scores: +-inf off the mean when sigma is 0, 0 on it.
            s = np.where(d == 0, 0.0, d / st["sigma"]) if st["sigma"] == 0 else d / st["sigma"]
            # The seed's comparison, also when sigma is 0: np.abs(data - mean) > 2 * std.
            return s, np.abs(d) > method["threshold"] * st["sigma"]
        if kind == "modified":
            med, mad, mad_mean = st["median"], st["mad"], st["mean_abs_dev"]
            if mad != 0:
                s = MAD_FACTOR * (x - med) / mad
            elif mad_mean != 0:
                s = (x - med) / (MEAN_AD_FACTOR * mad_mean)
            else:
                s = np.zeros(len(x))
            return s, np.abs(s) > method["threshold"]
        if kind == "iqr":
            q1, q3 = st["q1"], st["q3"]
            iqr = q3 - q1
            s = np.where(x > q3, (x - q3) / iqr, np.where(x < q1, (x - q1) / iqr, 0.0))
            return s, (x < st["lower_fence"]) | (x > st["upper_fence"])
    raise ValueError(kind)


def min_points(method):
    """The documented smallest series that can flag anything, by search."""
    t = method["threshold"] if "threshold" in method else method["k"]

    def reaches(b):
        return b >= t * (1 - ROUNDING_MARGIN)

    n = 2
    while True:
        if method["kind"] == "z":
            b = math.sqrt(n - 1) if method["sigma"] == "population" else (n - 1) / math.sqrt(n)
        elif method["kind"] == "modified":
            b = [MAD_FACTOR, math.inf][min(n - 2, 1)]
        else:
            b = [0.5, 1.0, 3.0, math.inf][min(n - 2, 3)]
        if reaches(b):
            return n
        n += 1


def z(threshold, sigma="population"):
    return {"kind": "z", "threshold": float(threshold), "sigma": sigma}


def modified(threshold):
    return {"kind": "modified", "threshold": float(threshold)}


def iqr(k):
    return {"kind": "iqr", "k": float(k)}


SEED = z(2)
METHODS = [SEED, z(3), z(2, "sample"), z(2.5, "sample"), modified(3.5), modified(2), iqr(1.5), iqr(3), iqr(0.5)]


def encode_method(m):
    return {k: (r(v) if isinstance(v, float) else v) for k, v in m.items()}


# --- Output ------------------------------------------------------------------

class Blob:
    """Arrays for the binary file, by name."""

    def __init__(self):
        self.parts, self.index, self.offset = [], {}, 0

    def add(self, name, values):
        a = np.ascontiguousarray(values, dtype="<f8")
        assert name not in self.index, name
        self.index[name] = [self.offset, len(a)]
        self.parts.append(a)
        self.offset += len(a)
        return name

    def write(self, path):
        (np.concatenate(self.parts) if self.parts else np.zeros(0, "<f8")).tofile(path)


# --- Data ----------------------------------------------------------------------

def sample_series():
    cols = {}
    with gzip.open(BARS, "rt", newline="") as f:
        for row in csv.DictReader(f):
            s = cols.setdefault(row["symbol"], {"close": [], "volume": [], "date": []})
            s["close"].append(float(row["close"]))
            s["volume"].append(float(row["volume"]))
            s["date"].append(row["date"])
    out = {}
    for sym, s in cols.items():
        c = np.array(s["close"])
        out[f"{sym}.close"] = c
        out[f"{sym}.volume"] = np.array(s["volume"])
        out[f"{sym}.return"] = np.diff(c) / c[:-1]
    return out, cols


def random_series(rng):
    out = {}
    for n in [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 50, 127, 128, 129, 300, 1000, 5000]:
        out[f"normal-{n}"] = rng.normal(100, 15, n)
        spiky = rng.normal(0, 1, n)
        spiky[rng.integers(0, n, max(1, n // 20))] *= 25
        out[f"spiky-{n}"] = spiky
        out[f"ties-{n}"] = rng.integers(0, 6, n).astype(float)
        out[f"heavy-{n}"] = rng.standard_t(2, n) * 10 ** rng.uniform(-3, 6)
    out["constant"] = np.full(40, 7.25)
    out["constant-0.1"] = np.full(33, 0.1)
    out["one"] = np.array([3.5])
    out["two-equal"] = np.array([2.0, 2.0])
    out["two"] = np.array([1.0, 2.0])
    out["mad-zero"] = np.array([1.0, 1, 1, 1, 1, 1, 10, -4, 1])
    out["mad-zero-even"] = np.array([5.0, 5, 5, 5, 6, 5, 5, 9])
    out["iqr-zero"] = np.array([5.0, 5, 7, 5, 5, 5, 3])
    out["underflow"] = np.array([0.0, 1e-200, 3e-200, 0.0, 2e-200])
    out["huge"] = np.array([1e300, -1e300, 3e299, 5e299, 1e300, 8e299])
    out["offset"] = 1e9 + rng.normal(0, 1e-3, 500)
    return out


def seed_boundary_series(rng):
    """[c, c, c, c, c + d] (shuffled), where the exact score of c + d is 2:
    numpy lands on 2 * sigma exactly, one ulp above or below, about as often."""
    found = {"equal": [], "above": [], "below": [], "other": []}
    while min(len(v) for k, v in found.items() if k != "other") < 40:
        c = float(rng.integers(-1000, 1000)) * 2.0 ** int(rng.integers(-8, 8))
        d = float(rng.integers(1, 1000)) * 2.0 ** int(rng.integers(-8, 8))
        x = np.array([c, c, c, c, c + d])[rng.permutation(5)]
        dev = np.abs(x - x.mean())
        lim = 2 * x.std()
        far = dev.max()
        key = ("equal" if far == lim else "above" if far == np.nextafter(lim, np.inf)
               else "below" if far == np.nextafter(lim, -np.inf) else "other")
        if len(found[key]) < 40:
            found[key].append(x)
    return {f"seed-5-{k}-{i}": x for k, xs in found.items() for i, x in enumerate(xs)}


def nudged(t, steps=3):
    """t and the doubles a few ulps either side."""
    out, up, down = [t], t, t
    for _ in range(steps):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        out += [float(up), float(down)]
    return [v for v in out if v > 0 and math.isfinite(v)]


def boundary_cases(series, rng):
    """(series name, method) pairs whose threshold puts a point exactly on the
    line or a few ulps either side of it."""
    cases = []
    names = [n for n in series if n.startswith(("normal-", "spiky-", "heavy-", "ties-")) and len(series[n]) >= 5]
    for name in names:
        x = series[name]
        for sigma in ("population", "sample"):
            st = stats_of(x, z(1, sigma))
            if st["sigma"] > 0:
                d = np.abs(x - st["mean"])
                i = int(rng.integers(0, len(x)))
                for target in (d.max(), d[i]):
                    t0 = float(target / st["sigma"])
                    # A threshold whose product with sigma lands on |x - mean|.
                    for t in nudged(t0):
                        cases.append((name, z(t, sigma)))
        st = stats_of(x, modified(1))
        s, _ = score_all(x, modified(1), st)
        if np.abs(s).max() > 0:
            for t in nudged(float(np.abs(s).max())):
                cases.append((name, modified(t)))
        st = stats_of(x, iqr(1))
        q1, q3 = st["q1"], st["q3"]
        if q3 > q1 and x.max() > q3:
            for k in nudged(float((x.max() - q3) / (q3 - q1))):
                cases.append((name, iqr(k)))
        if q3 > q1 and x.min() < q1:
            for k in nudged(float((q1 - x.min()) / (q3 - q1))):
                cases.append((name, iqr(k)))
    return cases


def reduction_arrays(rng):
    sizes = sorted({*range(0, 41), 63, 64, 65, 127, 128, 129, 130, 136, 255, 256, 257, 1000, 1023, 1024,
                    1025, 4095, 4096, 4097, 8191, 8192, 8193, 8200, 16383, 16384, 16385, 24577, 65541,
                    100_000, 131_073, 1_000_000})
    out = {}
    for n in sizes:
        kind = n % 4
        if kind == 0:
            a = rng.normal(0, 1, n) * 10 ** rng.uniform(-3, 6) + rng.uniform(-1e4, 1e4)
        elif kind == 1:
            a = rng.lognormal(0, 3, n)
        elif kind == 2:
            a = np.sign(rng.normal(size=n)) * 10 ** rng.uniform(-10, 10, n)
        else:
            a = rng.uniform(0, 1, n)
        out[f"reduce-{n}"] = a
    out["reduce-1000000-normal"] = rng.normal(50, 10, 1_000_000)
    out["reduce-0.1x10"] = np.full(10, 0.1)
    return out


# --- Main ----------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        sys.exit("usage: outliers.py OUT.json")
    out = Path(sys.argv[1])
    blob_path = out.with_suffix(".f64")
    rng = np.random.default_rng(20261121)
    np.seterr(all="ignore")  # the huge and underflow series overflow on purpose
    blob = Blob()

    sample, sample_cols = sample_series()
    series = {**sample, **random_series(rng), **seed_boundary_series(rng)}
    reduce = reduction_arrays(rng)
    for name, x in {**series, **reduce}.items():
        blob.add(name, x)

    reductions = []
    for name, x in {**series, **reduce}.items():
        n = len(x)
        rec = {"series": name, "sum": r(np.add.reduce(x))}
        if n:
            q1, q3 = np.percentile(x, [25, 75])
            rec.update(mean=r(x.mean()), std0=r(x.std()), std1=r(x.std(ddof=1)) if n > 1 else None,
                       median=r(np.median(x)), q1=r(q1), q3=r(q3))
        reductions.append(rec)

    judgements = []

    def judge(name, method, x):
        st = stats_of(x, method)
        s, mask = score_all(x, method, st)
        key = f"scores-{len(judgements)}"
        blob.add(key, s)
        judgements.append({
            "series": name, "method": encode_method(method),
            "stats": {k: r(v) for k, v in st.items()},
            "scores": key, "outliers": np.flatnonzero(mask).tolist(),
        })

    for name, x in series.items():
        for m in METHODS:
            judge(name, m, x)
    for name, m in boundary_cases(series, rng):
        judge(name, m, series[name])
    big = reduce["reduce-1000000-normal"].copy()
    big[rng.integers(0, len(big), 50)] += rng.normal(0, 100, 50)
    blob.add("big", big)
    for m in (SEED, modified(3.5), iqr(1.5)):
        judge("big", m, big)

    # Batches: sample closes of every symbol, interleaved by date, and a
    # random batch of many names.
    batches = []
    dated = sorted((d, sym, c) for sym, s in sample_cols.items() for d, c in zip(s["date"], s["close"]))
    rand_names = [f"m{int(i)}" for i in rng.integers(0, 40, 20_000)]
    rand_values = rng.normal(0, 1, 20_000) * np.where(rng.random(20_000) < 0.01, 20, 1)
    for label, names, values in (("sample", [s for _, s, _ in dated], np.array([c for *_, c in dated])),
                                 ("random", rand_names, rand_values)):
        vkey = blob.add(f"batch-{label}", values)
        names_arr = np.array(names)
        for m in (SEED, z(2, "sample"), modified(3.5), iqr(1.5)):
            scores = np.zeros(len(values))
            mask = np.zeros(len(values), dtype=bool)
            per = []
            for nm in sorted(set(names)):
                pos = np.flatnonzero(names_arr == nm)
                x = values[pos]
                st = stats_of(x, m)
                s, msk = score_all(x, m, st)
                scores[pos], mask[pos] = s, msk
                per.append({"name": nm, "count": len(pos), "outliers": int(msk.sum()),
                            "stats": {k: r(v) for k, v in st.items()}})
            skey = blob.add(f"batch-{label}-scores-{len(batches)}", scores)
            batches.append({"label": label, "names": names, "values": vkey, "method": encode_method(m),
                            "indices": np.flatnonzero(mask).tolist(), "scores": skey, "series": per})

    # Streams: each point against the trailing window of its own series.
    streams = []
    n_points = 3000
    s_names = [f"s{int(i)}" for i in rng.integers(0, 3, n_points)]
    s_values = rng.normal(10, 2, n_points) + np.where(rng.random(n_points) < 0.02, 15, 0)
    s_values[::7] = np.round(s_values[::7])  # some ties
    vkey = blob.add("stream-values", s_values)
    for m in (SEED, z(2, "sample"), modified(3.5), iqr(1.5), iqr(3)):
        mp = min_points(m)
        for window in (mp, 20, 100):
            hist = {}
            verdicts = []
            for i, (nm, v) in enumerate(zip(s_names, s_values)):
                h = hist.setdefault(nm, [])
                w = np.array(h[-window:])
                # Judged against the full window, or while it fills (a warm-up)
                # against every earlier point once there are min_points of them.
                if len(w) == window or len(w) >= mp:
                    st = stats_of(w, m)
                    s, msk = score_all(np.array([v]), m, st)
                    verdicts.append([i, r(s[0]), len(w), bool(msk[0]), len(w) < window])
                h.append(v)
            streams.append({"names": s_names, "values": vkey, "method": encode_method(m),
                            "window": window, "min_points": mp, "verdicts": verdicts})

    doc = {
        "numpy": np.__version__,
        "blob": blob_path.name,
        "arrays": blob.index,
        "reductions": reductions,
        "judgements": judgements,
        "batches": batches,
        "streams": streams,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    blob.write(blob_path)
    out.write_text(json.dumps(doc, separators=(",", ":")))
    print(f"oracle: numpy {np.__version__}, {len(reductions)} reductions, {len(judgements)} judgements, "
          f"{len(batches)} batches, {len(streams)} streams -> {out}")


if __name__ == "__main__":
    main()
