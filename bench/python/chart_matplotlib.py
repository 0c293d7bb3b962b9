"""matplotlib's side of the chart benchmark (bench/run; see bench/README.md).

    chart_matplotlib.py INPUT_CSV OUT_PNG WARMUP REPS

Draws the chart that `market-bench chart` renders with dataport-chart, from
the same numbers (INPUT_CSV, written by `market-bench chart --input-csv`):
candlesticks (a rectangle per body, a line per wick), a volume strip, and a
MACD panel with the MACD and signal lines, the histogram coloured by sign and
the zero line; a title, date tick labels and a legend; 1000x700 pixels
(10x7 inches at 100 dpi), PNG.

Each draw builds the figure anew and saves it to a BytesIO, as a server does
per request. It is written the way a careful server would write it: the
object API (Figure + FigureCanvasAgg, no pyplot state), and one collection per
kind of mark (not a patch per candle), which is the fastest plain matplotlib
gets. Prints one `rep_ms` line per timed draw and writes the last PNG to
OUT_PNG.
"""

import csv
import io
import sys
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

UP, DOWN = "#26a69a", "#ef5350"


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {k: np.array([float(r[k]) for r in rows]) for k in
            ("open", "high", "low", "close", "volume", "macd", "signal", "hist")}
    cols["date"] = [r["date"] for r in rows]
    cols["symbol"] = rows[0]["symbol"]
    return cols


def draw(d):
    n = len(d["date"])
    x = np.arange(n)
    up = d["close"] >= d["open"]
    colors = np.where(up, UP, DOWN)

    fig = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(3, 1, height_ratios=[3, 1, 2], hspace=0.05,
                          left=0.07, right=0.98, top=0.93, bottom=0.05)
    price = fig.add_subplot(gs[0])
    volume = fig.add_subplot(gs[1], sharex=price)
    panel = fig.add_subplot(gs[2], sharex=price)
    first, last = d["date"][0], d["date"][-1]
    fig.suptitle(f"{d['symbol']} daily, {first} to {last}, MACD(12, 26, 9)")

    # Candles: wicks as one LineCollection, bodies as one PolyCollection.
    wicks = np.stack([np.column_stack([x, d["low"]]), np.column_stack([x, d["high"]])], axis=1)
    price.add_collection(LineCollection(wicks, colors=colors, linewidths=1))
    lo, hi = np.minimum(d["open"], d["close"]), np.maximum(d["open"], d["close"])
    w = 0.35
    bodies = np.stack([np.column_stack([x - w, lo]), np.column_stack([x + w, lo]),
                       np.column_stack([x + w, hi]), np.column_stack([x - w, hi])], axis=1)
    price.add_collection(PolyCollection(bodies, facecolors=colors, edgecolors=colors, linewidths=0.5))
    price.plot(x, d["close"], alpha=0)  # autoscale to the data, drawn invisibly
    price.set_ylabel("price")
    price.grid(True, alpha=0.3)

    volume.bar(x, d["volume"], width=0.7, color=colors)
    volume.set_ylabel("volume")
    volume.grid(True, alpha=0.3)

    hist_colors = np.where(d["hist"] >= 0, UP, DOWN)
    panel.bar(x, d["hist"], width=0.7, color=hist_colors, label="histogram")
    panel.plot(x, d["macd"], color="#1f77b4", linewidth=1.2, label="MACD")
    panel.plot(x, d["signal"], color="#ff7f0e", linewidth=1.2, label="signal")
    panel.axhline(0, color="black", linewidth=0.8)
    panel.set_ylabel("MACD")
    panel.grid(True, alpha=0.3)
    panel.legend(loc="upper left", fontsize="small")

    ticks = x[:: max(1, n // 6)]
    panel.set_xticks(ticks, [d["date"][i] for i in ticks])
    price.tick_params(labelbottom=False)
    volume.tick_params(labelbottom=False)
    price.set_xlim(-1, n)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def main():
    path, out, warmup, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    d = load(path)
    png = None
    for _ in range(warmup):
        png = draw(d)
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        png = draw(d)
        t1 = time.perf_counter_ns()
        print(f"rep_ms {(t1 - t0) / 1e6:.3f}")
    with open(out, "wb") as f:
        f.write(png)


if __name__ == "__main__":
    main()
