package dataport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dataport/dataport/clients/go/compat/idc"
	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	"google.golang.org/protobuf/proto"
)

// SMA is the simple moving average of closes over period bars (0: 30),
// column "sma_<period>".
func SMA(period uint32) *marketv1.Indicator {
	return &marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{Period: period}}}
}

// EMA is the exponential moving average of closes (0: 30), seeded with the
// SMA, column "ema_<period>".
func EMA(period uint32) *marketv1.Indicator {
	return &marketv1.Indicator{Kind: &marketv1.Indicator_Ema{Ema: &marketv1.Ema{Period: period}}}
}

// MACD is the MACD of closes (0s: 12, 26, 9), three columns:
// "macd_<fast>_<slow>_<signal>" and the same with "_signal" and "_hist"
// appended.
func MACD(fast, slow, signal uint32) *marketv1.Indicator {
	return &marketv1.Indicator{Kind: &marketv1.Indicator_Macd{Macd: &marketv1.Macd{
		FastPeriod: fast, SlowPeriod: slow, SignalPeriod: signal,
	}}}
}

// RSI is Wilder's RSI of closes (0: 14), column "rsi_<period>".
func RSI(period uint32) *marketv1.Indicator {
	return &marketv1.Indicator{Kind: &marketv1.Indicator_Rsi{Rsi: &marketv1.Rsi{Period: period}}}
}

// Bollinger is the Bollinger Bands of closes (0s: 5, 2, 2), three columns:
// "bollinger_<period>_<devUp>_<devDown>" with "_upper", "_middle" and
// "_lower" appended.
func Bollinger(period uint32, devUp, devDown float64) *marketv1.Indicator {
	return &marketv1.Indicator{Kind: &marketv1.Indicator_Bollinger{Bollinger: &marketv1.Bollinger{
		Period: period, DevUp: devUp, DevDown: devDown,
	}}}
}

// ATR is Wilder's average true range (0: 14), column "atr_<period>".
func ATR(period uint32) *marketv1.Indicator {
	return &marketv1.Indicator{Kind: &marketv1.Indicator_Atr{Atr: &marketv1.Atr{Period: period}}}
}

// IndicatorTable is what ComputeIndicators answers, turned into rows: one
// per stored trading day of the range, ascending.
type IndicatorTable struct {
	// Symbol is the symbol the values are of, as stored (upper-case).
	Symbol string
	// Adjusted says whether the values are over split- and
	// dividend-adjusted prices: true when they were asked for (the
	// default) and the symbol's bars carry adjusted closes, false over
	// prices as traded.
	Adjusted bool
	// Columns names the values of every row, in the order the indicators
	// were asked for (see SMA, MACD, ... for the names).
	Columns []string
	// Rows holds one row per trading day.
	Rows []IndicatorRow
}

// IndicatorRow is one trading day of an IndicatorTable.
type IndicatorRow struct {
	// Date is YYYY-MM-DD.
	Date string
	// Values holds one value per column of the table; NaN inside an
	// indicator's warm-up (use math.IsNaN).
	Values []float64
}

// Column is the index of the named column in t.Columns (and so in every
// row's Values), or -1 when there is none.
func (t *IndicatorTable) Column(name string) int {
	for i, c := range t.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Indicators computes indicators over the bars of symbol from start to end
// (YYYY-MM-DD, inclusive; "" leaves that end open) with
// dataport.market.v1 ComputeIndicators, and answers them as rows. Values
// are computed over the symbol's whole stored history, as TA-Lib computes
// them, so a range starting after the first stored bar has no warm-up
// gap; over split- and dividend-adjusted prices (ComputeIndicators with an
// IndicatorsQuery asks for prices as traded). A symbol is found in any
// case; an unknown one is NOT_FOUND.
func (c *Client) Indicators(ctx context.Context, symbol, start, end string, indicators ...*marketv1.Indicator) (*IndicatorTable, error) {
	return c.indicators(ctx, "Indicators", IndicatorsQuery{Symbol: symbol, Start: start, End: end, Indicators: indicators})
}

// IndicatorsQuery says which indicators Client.ComputeIndicators computes,
// and over which prices.
type IndicatorsQuery struct {
	// Symbol is required; any case.
	Symbol string
	// Start and End bound the range (YYYY-MM-DD, inclusive; "" leaves that
	// end open).
	Start, End string
	// Indicators are at least one of SMA, EMA, MACD, RSI, Bollinger, ATR.
	Indicators []*marketv1.Indicator
	// Raw asks for the prices as traded; the zero value asks for split-
	// and dividend-adjusted prices, as the server does by default.
	Raw bool
}

// ComputeIndicators is Indicators with every choice of q, the prices as
// traded among them.
func (c *Client) ComputeIndicators(ctx context.Context, q IndicatorsQuery) (*IndicatorTable, error) {
	return c.indicators(ctx, "ComputeIndicators", q)
}

// indicators is ComputeIndicators, its errors starting with method and
// symbol.
func (c *Client) indicators(ctx context.Context, method string, q IndicatorsQuery) (*IndicatorTable, error) {
	req := &marketv1.ComputeIndicatorsRequest{
		Symbol: q.Symbol, StartDate: q.Start, EndDate: q.End, Indicators: q.Indicators,
	}
	if q.Raw {
		// Left unset otherwise: the server's default is adjusted.
		req.Adjusted = proto.Bool(false)
	}
	resp, err := c.Market.ComputeIndicators(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, q.Symbol, err)
	}
	dates := resp.GetDates()
	t := &IndicatorTable{
		Symbol:   resp.GetSymbol(),
		Adjusted: resp.GetAdjusted(),
		Columns:  make([]string, len(resp.GetColumns())),
		Rows:     make([]IndicatorRow, len(dates)),
	}
	for j, col := range resp.GetColumns() {
		if len(col.GetValues()) != len(dates) {
			return nil, fmt.Errorf("%s %s: column %s has %d values for %d dates",
				method, q.Symbol, col.GetName(), len(col.GetValues()), len(dates))
		}
		t.Columns[j] = col.GetName()
	}
	// One backing array for every row's values.
	values := make([]float64, len(dates)*len(t.Columns))
	for i, d := range dates {
		row := values[i*len(t.Columns) : (i+1)*len(t.Columns) : (i+1)*len(t.Columns)]
		for j, col := range resp.GetColumns() {
			row[j] = col.GetValues()[i]
		}
		t.Rows[i] = IndicatorRow{Date: d, Values: row}
	}
	return t, nil
}

// MACDQuery says which MACD values Client.MACD computes.
type MACDQuery struct {
	// Symbol is required.
	Symbol string
	// Start and End bound the range (YYYY-MM-DD, inclusive; "" leaves that
	// end open).
	Start, End string
	// Fast, Slow and Signal are the periods; 0 takes TA-Lib's default (12,
	// 26, 9).
	Fast, Slow, Signal uint32
	// Raw asks for the MACD of closes as traded, as the seed GetMACD
	// answers it; the zero value asks for split- and dividend-adjusted
	// closes, as the server does by default.
	Raw bool
}

// MACDRow is the MACD of one trading day.
type MACDRow struct {
	// Date is YYYY-MM-DD.
	Date string
	// MACD is the fast EMA less the slow one, Signal its EMA, and
	// Histogram MACD less Signal; NaN inside the warm-up.
	MACD, Signal, Histogram float64
}

// MACD computes the MACD of q.Symbol's closes over the range with
// ComputeIndicators: one row per trading day, in float64, equal to TA-Lib's;
// over adjusted closes unless q.Raw.
func (c *Client) MACD(ctx context.Context, q MACDQuery) ([]MACDRow, error) {
	t, err := c.indicators(ctx, "MACD", IndicatorsQuery{
		Symbol: q.Symbol, Start: q.Start, End: q.End, Raw: q.Raw,
		Indicators: []*marketv1.Indicator{MACD(q.Fast, q.Slow, q.Signal)},
	})
	if err != nil {
		return nil, err
	}
	if len(t.Columns) != 3 || !strings.HasPrefix(t.Columns[0], "macd_") ||
		t.Columns[1] != t.Columns[0]+"_signal" || t.Columns[2] != t.Columns[0]+"_hist" {
		return nil, fmt.Errorf("MACD %s: unexpected columns %q", q.Symbol, t.Columns)
	}
	rows := make([]MACDRow, len(t.Rows))
	for i, r := range t.Rows {
		rows[i] = MACDRow{Date: r.Date, MACD: r.Values[0], Signal: r.Values[1], Histogram: r.Values[2]}
	}
	return rows, nil
}

// GetMACD is the seed idc.Indicator GetMACD: bars and MACD(12, 26, 9) as
// float32, days inside the warm-up left out, over prices as traded (unless
// the server runs with compat_adjusted). An empty symbol takes the
// server's default symbol, if it has one.
func (c *Client) GetMACD(ctx context.Context, symbol, start, end string) ([]*idc.MACDData, error) {
	resp, err := c.Indicator.GetMACD(ctx, &idc.MACDRequest{Symbol: symbol, StartDate: start, EndDate: end})
	if err != nil {
		return nil, fmt.Errorf("GetMACD %s: %w", symbol, err)
	}
	return resp.GetMacd(), nil
}

// MACDChart writes the seed idc.IndicatorGraph chart of symbol over the
// range (a 1000x700 PNG of candlesticks, volume and MACD, of prices as
// traded unless the server runs with compat_adjusted) to w as it arrives,
// and answers how many bytes it wrote.
func (c *Client) MACDChart(ctx context.Context, w io.Writer, symbol, start, end string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.IndicatorGraph.GetMACDGraph(ctx, &idc.MACDGraphRequest{Symbol: symbol, StartDate: start, EndDate: end})
	if err != nil {
		return 0, fmt.Errorf("GetMACDGraph %s: %w", symbol, err)
	}
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("GetMACDGraph %s: %w", symbol, err)
		}
		m, err := w.Write(msg.GetMacdChunk())
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

// RenderChart writes the dataport.market.v1 chart req asks for to w as it
// arrives, and answers its content type ("image/png" or "image/svg+xml")
// and how many bytes it wrote. The chart is of adjusted prices unless
// req.Adjusted is proto.Bool(false).
func (c *Client) RenderChart(ctx context.Context, w io.Writer, req *marketv1.RenderChartRequest) (string, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Market.RenderChart(ctx, req)
	if err != nil {
		return "", 0, fmt.Errorf("Chart %s: %w", req.GetSymbol(), err)
	}
	var contentType string
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return contentType, n, nil
		}
		if err != nil {
			return contentType, n, fmt.Errorf("Chart %s: %w", req.GetSymbol(), err)
		}
		if t := msg.GetContentType(); t != "" {
			contentType = t
		}
		m, err := w.Write(msg.GetChunk())
		n += int64(m)
		if err != nil {
			return contentType, n, err
		}
	}
}
