"""Writes data/sample/bars.csv.gz from bokeh-sampledata's stocks.csv.gz.

    python tests/oracle/make_sample_data.py [OUT]

Needs `bokeh-sampledata==2026.1` installed (data/README.md has the commands). Keeps AAPL, GOOG, IBM and MSFT (FB's 196 rows are too
short for the long indicators), renames the columns, and copies every
field (OHLCV and Adj Close, which becomes adj_close) as the source spells
it, so no value is rounded or re-formatted. The gzip header carries no name and no time, so the same input
always gives the same bytes.
"""

import csv
import gzip
import io
import sys
from importlib.resources import files
from pathlib import Path

SYMBOLS = ("AAPL", "GOOG", "IBM", "MSFT")
SOURCE_COLUMNS = ("Ticker", "Date", "Open", "High", "Low", "Close", "Volume", "Adj Close")
COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume", "adj_close")


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "data/sample/bars.csv.gz"
    src = files("bokeh_sampledata") / "_data" / "stocks.csv.gz"
    with gzip.open(io.BytesIO(src.read_bytes()), "rt", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Ticker"] in SYMBOLS]

    rows.sort(key=lambda r: (r["Ticker"], r["Date"]))
    seen = set()
    for r in rows:
        key = (r["Ticker"], r["Date"])
        if key in seen:
            sys.exit(f"duplicate bar {key}")
        seen.add(key)
        for c in SOURCE_COLUMNS[2:]:
            float(r[c])  # refuses anything that is not a number

    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([r[c] for c in SOURCE_COLUMNS])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(text.getvalue().encode(), compresslevel=9, mtime=0))

    counts = {s: sum(r["Ticker"] == s for r in rows) for s in SYMBOLS}
    print(f"wrote {out}: " + ", ".join(f"{s} {n}" for s, n in counts.items()))


if __name__ == "__main__":
    main()
