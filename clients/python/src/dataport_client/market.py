"""Indicators from dataport.market.v1 ComputeIndicators, as rows, and as
pandas DataFrames when pandas is installed (`pip install
'dataport-client[pandas]'`).

The server computes over split- and dividend-adjusted prices unless a
request asks for the prices as traded (`adjusted=False`); every result says
which series it is over."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from dataport_client.dataport.market.v1 import market_pb2

if TYPE_CHECKING:
    import pandas

DateLike = str | datetime.date


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "to_dataframe needs pandas, which is not installed: pip install 'dataport-client[pandas]'"
        ) from e
    return pandas


def date_text(d: DateLike | None) -> str:
    """YYYY-MM-DD, as the API takes dates; None is an open end ("")."""
    if d is None:
        return ""
    if isinstance(d, datetime.date):
        return d.isoformat()
    return d


class MacdRow(NamedTuple):
    """One day of MACD: the MACD line, its signal line and the histogram
    (macd - signal). NaN inside the warm-up (slow + signal - 2 bars from
    the symbol's first stored bar)."""

    date: datetime.date
    macd: float
    signal: float
    histogram: float


class MacdRows(list[MacdRow]):
    """MACD rows in date order. `adjusted` says whether they are over
    split- and dividend-adjusted closes: True when they were asked for and
    the symbol's bars carry adjusted closes, False for closes as traded."""

    adjusted: bool

    def __init__(self, rows: Iterable[MacdRow] = (), *, adjusted: bool = False) -> None:
        super().__init__(rows)
        self.adjusted = adjusted

    def to_dataframe(self) -> pandas.DataFrame:
        """Columns macd, signal, histogram, indexed by date (a
        DatetimeIndex named "date"). Needs pandas."""
        pd = _pandas()
        frame: pandas.DataFrame = pd.DataFrame(
            {
                "macd": [r.macd for r in self],
                "signal": [r.signal for r in self],
                "histogram": [r.histogram for r in self],
            },
            index=pd.DatetimeIndex([r.date for r in self], name="date"),
        )
        return frame

    def without_warmup(self) -> MacdRows:
        """The rows whose values are all known."""
        return MacdRows((r for r in self if not (math.isnan(r.macd) or math.isnan(r.signal))), adjusted=self.adjusted)


class IndicatorRow(NamedTuple):
    """One day of indicator values, by column name (sma_20, rsi_14, ...)."""

    date: datetime.date
    values: dict[str, float]


@dataclass(frozen=True)
class IndicatorTable:
    """What ComputeIndicators answers: every stored day of the range, and
    one column per indicator output, aligned with `dates`. `adjusted` says
    whether the values are over split- and dividend-adjusted prices: True
    when they were asked for (the default) and the symbol's bars carry
    adjusted closes, False for prices as traded."""

    symbol: str
    dates: list[datetime.date]
    columns: dict[str, list[float]]
    adjusted: bool = False

    @classmethod
    def from_pb(cls, reply: market_pb2.ComputeIndicatorsResponse) -> IndicatorTable:
        dates = [datetime.date.fromisoformat(d) for d in reply.dates]
        columns = {c.name: list(c.values) for c in reply.columns}
        return cls(reply.symbol, dates, columns, reply.adjusted)

    @property
    def rows(self) -> list[IndicatorRow]:
        names = list(self.columns)
        return [
            IndicatorRow(d, {n: self.columns[n][i] for n in names}) for i, d in enumerate(self.dates)
        ]

    def to_dataframe(self) -> pandas.DataFrame:
        """One column per indicator output, indexed by date (a DatetimeIndex
        named "date"). Needs pandas."""
        pd = _pandas()
        frame: pandas.DataFrame = pd.DataFrame(self.columns, index=pd.DatetimeIndex(self.dates, name="date"))
        return frame


def parse_indicator(spec: str | market_pb2.Indicator) -> market_pb2.Indicator:
    """An Indicator from a spec as the dataport CLI takes them: "sma:20",
    "ema:10", "rsi", "atr:14", "macd:12,26,9", "bollinger:20,2,2"; left-out
    parameters take TA-Lib's defaults. Indicator messages pass through."""
    if isinstance(spec, market_pb2.Indicator):
        return spec
    kind, _, params = spec.partition(":")
    args = [p.strip() for p in params.split(",")] if params else []

    def ints(n: int) -> list[int]:
        if len(args) > n:
            raise ValueError(f"indicator {spec!r}: {kind} takes at most {n} parameters")
        try:
            return [int(a) for a in args] + [0] * (n - len(args))
        except ValueError:
            raise ValueError(f"indicator {spec!r}: {kind} parameters are whole numbers") from None

    kind = kind.strip().lower()
    if kind == "sma":
        return market_pb2.Indicator(sma=market_pb2.Sma(period=ints(1)[0]))
    if kind == "ema":
        return market_pb2.Indicator(ema=market_pb2.Ema(period=ints(1)[0]))
    if kind == "rsi":
        return market_pb2.Indicator(rsi=market_pb2.Rsi(period=ints(1)[0]))
    if kind == "atr":
        return market_pb2.Indicator(atr=market_pb2.Atr(period=ints(1)[0]))
    if kind == "macd":
        f, s, g = ints(3)
        return market_pb2.Indicator(macd=market_pb2.Macd(fast_period=f, slow_period=s, signal_period=g))
    if kind == "bollinger":
        if len(args) > 3:
            raise ValueError(f"indicator {spec!r}: bollinger takes at most 3 parameters")
        try:
            period = int(args[0]) if args else 0
            up, down = (float(a) for a in (args[1:] + ["0", "0"])[:2])
        except ValueError:
            raise ValueError(f"indicator {spec!r}: bollinger takes period,dev_up,dev_down") from None
        return market_pb2.Indicator(bollinger=market_pb2.Bollinger(period=period, dev_up=up, dev_down=down))
    raise ValueError(f"indicator {spec!r}: expected sma, ema, rsi, atr, macd or bollinger")


def indicators_request(
    symbol: str,
    indicators: Sequence[str | market_pb2.Indicator],
    start: DateLike | None,
    end: DateLike | None,
    *,
    adjusted: bool = True,
) -> market_pb2.ComputeIndicatorsRequest:
    return market_pb2.ComputeIndicatorsRequest(
        symbol=symbol,
        start_date=date_text(start),
        end_date=date_text(end),
        indicators=[parse_indicator(i) for i in indicators],
        adjusted=adjusted,
    )


def macd_rows(table: IndicatorTable, fast: int, slow: int, signal: int) -> MacdRows:
    base = f"macd_{fast}_{slow}_{signal}"
    try:
        line, sig, hist = (table.columns[n] for n in (base, f"{base}_signal", f"{base}_hist"))
    except KeyError:
        raise ValueError(f"the server answered columns {list(table.columns)}, not {base}") from None
    rows = (MacdRow(d, line[i], sig[i], hist[i]) for i, d in enumerate(table.dates))
    return MacdRows(rows, adjusted=table.adjusted)
