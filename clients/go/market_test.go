package dataport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// near reports whether got is within rel of want, relatively.
func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func TestMACDRowsAsTradedMatchTALibAndTheSeedGetMACD(t *testing.T) {
	ctx := testContext(t)
	rows, err := testClient.MACD(ctx, MACDQuery{Symbol: "AAPL", Start: "2010-01-04", End: "2010-01-08", Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, r := range rows {
		dates = append(dates, r.Date)
	}
	if want := []string{"2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"}; !slices.Equal(dates, want) {
		t.Fatalf("dates %v, want %v", dates, want)
	}
	// TA-Lib 0.8.2's MACD(12, 26, 9) over AAPL's whole stored history of
	// closes as traded, at 2010-01-04 (tests/interop/python/test_indicator.py);
	// the server is bit-identical to it, so only printing rounds.
	first := rows[0]
	if !near(first.MACD, 3.926500332345171, 1e-14) || !near(first.Signal, 2.1483999269706064, 1e-14) {
		t.Errorf("MACD at 2010-01-04 = %v, want macd 3.926500332345171, signal 2.1483999269706064", first)
	}
	for _, r := range rows {
		if math.Abs(r.Histogram-(r.MACD-r.Signal)) > 1e-12 || math.IsNaN(r.MACD) {
			t.Errorf("row %v: histogram is not macd - signal", r)
		}
	}

	// The seed GetMACD answers the same values as float32: it is over
	// closes as traded.
	seed, err := testClient.GetMACD(ctx, "AAPL", "2010-01-04", "2010-01-08")
	if err != nil {
		t.Fatal(err)
	}
	if len(seed) != len(rows) {
		t.Fatalf("GetMACD answers %d rows, MACD %d", len(seed), len(rows))
	}
	for i, d := range seed {
		r := rows[i]
		if d.GetDate() != r.Date || !near(float64(d.GetMacd()), r.MACD, 1e-6) ||
			!near(float64(d.GetSignal()), r.Signal, 1e-6) || !near(float64(d.GetHistogram()), r.Histogram, 1e-5) {
			t.Errorf("GetMACD row %v, MACD row %v", d, r)
		}
	}
	if o, c := seed[0].GetOpen(), seed[0].GetClose(); o != 213.43 || c != 214.01 {
		t.Errorf("AAPL 2010-01-04 open %v close %v, want 213.43 and 214.01", o, c)
	}
}

func TestMACDIsOverAdjustedClosesByDefault(t *testing.T) {
	ctx := testContext(t)
	rows, err := testClient.MACD(ctx, MACDQuery{Symbol: "AAPL", Start: "2010-01-04", End: "2010-01-04"})
	if err != nil {
		t.Fatal(err)
	}
	// TA-Lib 0.8.2's MACD(12, 26, 9) over the adj_close column of AAPL's
	// whole history in data/sample/bars.csv.gz, at 2010-01-04:
	// talib.MACD(np.array(adj_closes), 12, 26, 9). The server scales each
	// close by adj_close / close, so only the last bits may differ.
	if len(rows) != 1 || !near(rows[0].MACD, 0.504610018895864, 1e-12) || !near(rows[0].Signal, 0.27609933426313843, 1e-12) {
		t.Errorf("adjusted MACD at 2010-01-04 = %v, want macd 0.504610018895864, signal 0.27609933426313843", rows)
	}
}

// The sample's MSFT split 2:1 between these days (zcat
// data/sample/bars.csv.gz | grep -E 'MSFT,2003-02-1[48]'): closes as traded,
// and its adj_close column.
var (
	msftTraded   = []float64{48.3, 24.96}
	msftAdjusted = []float64{16.076442938105, 16.61565282547}
)

func TestIndicatorTablesSayWhetherTheirPricesAreAdjusted(t *testing.T) {
	ctx := testContext(t)
	// SMA(1) is the close itself.
	q := IndicatorsQuery{Symbol: "MSFT", Start: "2003-02-14", End: "2003-02-18", Indicators: []*marketv1.Indicator{SMA(1)}}
	adjusted, err := testClient.ComputeIndicators(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if !adjusted.Adjusted || len(adjusted.Rows) != 2 || adjusted.Rows[1].Date != "2003-02-18" {
		t.Fatalf("default table: adjusted %v, rows %v", adjusted.Adjusted, adjusted.Rows)
	}
	for i, r := range adjusted.Rows {
		if !near(r.Values[0], msftAdjusted[i], 1e-12) {
			t.Errorf("%s: adjusted close %v, want %v", r.Date, r.Values[0], msftAdjusted[i])
		}
	}
	shorthand, err := testClient.Indicators(ctx, "MSFT", "2003-02-14", "2003-02-18", SMA(1))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shorthand, adjusted) {
		t.Errorf("Indicators answers %v, ComputeIndicators %v", shorthand, adjusted)
	}

	q.Raw = true
	traded, err := testClient.ComputeIndicators(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if traded.Adjusted {
		t.Error("a table of prices as traded says it is adjusted")
	}
	for i, r := range traded.Rows {
		if r.Values[0] != msftTraded[i] {
			t.Errorf("%s: close as traded %v, want %v", r.Date, r.Values[0], msftTraded[i])
		}
	}
}

func TestSymbolsAreFoundInAnyCaseAndAnsweredUpperCase(t *testing.T) {
	ctx := testContext(t)
	lower, err := testClient.Indicators(ctx, "msft", "2012-01-03", "2012-01-31", RSI(0))
	if err != nil {
		t.Fatal(err)
	}
	upper, err := testClient.Indicators(ctx, "MSFT", "2012-01-03", "2012-01-31", RSI(0))
	if err != nil {
		t.Fatal(err)
	}
	if lower.Symbol != "MSFT" || !reflect.DeepEqual(lower, upper) {
		t.Errorf("msft answers %v, MSFT %v", lower, upper)
	}
	a, err := testClient.MACD(ctx, MACDQuery{Symbol: "Ibm", Start: "2012-01-03", End: "2012-01-31", Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := testClient.GetMACD(ctx, "ibm", "2012-01-03", "2012-01-31")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 20 || len(b) != len(a) || !near(float64(b[19].GetMacd()), a[19].MACD, 1e-6) {
		t.Errorf("MACD of Ibm: %d rows, GetMACD of ibm: %d rows", len(a), len(b))
	}
}

// importBars imports one bar a day from 2020-01-01 with these closes, and
// adjusted closes when adj is not nil.
func importBars(t *testing.T, symbol string, closes, adj []float64) {
	t.Helper()
	var bars []*marketv1.Bar
	day := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, c := range closes {
		b := &marketv1.Bar{Date: day.AddDate(0, 0, i).Format(time.DateOnly), Open: c, High: c + 1, Low: c - 1, Close: c}
		if adj != nil {
			b.AdjClose = proto.Float64(adj[i])
		}
		bars = append(bars, b)
	}
	stream, err := testClient.Market.ImportBars(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&marketv1.ImportBarsRequest{Symbol: symbol, Bars: bars}); err != nil {
		t.Fatal(err)
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("ImportBars %s: %v", symbol, err)
	}
	if reply.GetImported() != uint64(len(bars)) {
		t.Fatalf("ImportBars %s imported %d of %d bars", symbol, reply.GetImported(), len(bars))
	}
}

// newSymbol is a symbol no other test (or run) uses.
func newSymbol(tag string) string {
	return fmt.Sprintf("X%s-%d", tag, time.Now().UnixNano())
}

func TestAnImportedSplitIsAdjustedAwayAndASymbolWithoutAdjustedClosesIsNot(t *testing.T) {
	ctx := testContext(t)
	// A 2:1 split after day 20: closes halve, adjusted closes do not move.
	split := newSymbol("SPLIT")
	closes := slices.Concat(slices.Repeat([]float64{100}, 20), slices.Repeat([]float64{50}, 20))
	importBars(t, split, closes, slices.Repeat([]float64{50}, 40))
	plain := newSymbol("PLAIN")
	importBars(t, plain, closes, nil)

	for _, tc := range []struct {
		symbol   string
		raw      bool
		adjusted bool
		want     []float64
	}{
		{split, false, true, slices.Repeat([]float64{50}, 40)},
		{split, true, false, closes},
		{plain, false, false, closes},
		{plain, true, false, closes},
	} {
		table, err := testClient.ComputeIndicators(ctx, IndicatorsQuery{Symbol: tc.symbol, Indicators: []*marketv1.Indicator{SMA(1)}, Raw: tc.raw})
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		for _, r := range table.Rows {
			got = append(got, r.Values[0])
		}
		if table.Adjusted != tc.adjusted || !slices.Equal(got, tc.want) {
			t.Errorf("%s (raw %v): adjusted %v, closes %v; want %v, %v", tc.symbol, tc.raw, table.Adjusted, got, tc.adjusted, tc.want)
		}
	}
}

func TestDeleteSymbolRemovesAnImportedSymbol(t *testing.T) {
	ctx := testContext(t)
	symbol := newSymbol("del")
	importBars(t, symbol, []float64{1, 2, 3}, nil)
	reply, err := testClient.Market.DeleteSymbol(ctx, &marketv1.DeleteSymbolRequest{Symbol: symbol})
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetSymbol() != strings.ToUpper(symbol) || reply.GetDeleted() != 3 {
		t.Errorf("DeleteSymbol(%s) = %v, want %s and 3 bars", symbol, reply, strings.ToUpper(symbol))
	}
	if _, err := testClient.Indicators(ctx, symbol, "", "", SMA(1)); status.Code(err) != codes.NotFound {
		t.Errorf("Indicators of a deleted symbol: %v, want NOT_FOUND", err)
	}
	if _, err := testClient.Market.DeleteSymbol(ctx, &marketv1.DeleteSymbolRequest{Symbol: symbol}); status.Code(err) != codes.NotFound {
		t.Errorf("DeleteSymbol of a deleted symbol: %v, want NOT_FOUND", err)
	}
}

func TestIndicatorRowsAlignWithTheBarsAndHoldNaNInTheWarmUp(t *testing.T) {
	ctx := testContext(t)
	// GOOG's stored history starts 2004-08-19, so an open start has the
	// whole warm-up in it.
	table, err := testClient.Indicators(ctx, "GOOG", "", "2004-12-31", SMA(20), MACD(0, 0, 0), Bollinger(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	wantColumns := []string{
		"sma_20", "macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist",
		"bollinger_5_2_2_upper", "bollinger_5_2_2_middle", "bollinger_5_2_2_lower",
	}
	if table.Symbol != "GOOG" || !table.Adjusted || !slices.Equal(table.Columns, wantColumns) {
		t.Fatalf("table of %s (adjusted %v) with columns %v, want GOOG adjusted with %v", table.Symbol, table.Adjusted, table.Columns, wantColumns)
	}
	// Adjusted, as the table is.
	bars, err := testClient.Market.GetBars(ctx, &marketv1.GetBarsRequest{Symbol: "GOOG", EndDate: "2004-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	if !bars.GetAdjusted() {
		t.Fatal("GetBars of GOOG: not adjusted")
	}
	if len(table.Rows) != len(bars.GetBars()) || len(table.Rows) < 60 || table.Rows[0].Date != "2004-08-19" {
		t.Fatalf("%d rows from %s for %d bars", len(table.Rows), table.Rows[0].Date, len(bars.GetBars()))
	}
	sma := table.Column("sma_20")
	if sma != 0 || table.Column("nothing") != -1 {
		t.Fatalf("Column: sma_20 at %d, nothing at %d", sma, table.Column("nothing"))
	}
	for i, row := range table.Rows {
		if row.Date != bars.GetBars()[i].GetDate() || len(row.Values) != len(wantColumns) {
			t.Fatalf("row %d: %s with %d values, bar of %s", i, row.Date, len(row.Values), bars.GetBars()[i].GetDate())
		}
		// The SMA of the last 20 closes, from the bars themselves.
		if i < 19 {
			if !math.IsNaN(row.Values[sma]) {
				t.Errorf("row %d (%s): sma_20 %v inside the warm-up", i, row.Date, row.Values[sma])
			}
			continue
		}
		var sum float64
		for _, b := range bars.GetBars()[i-19 : i+1] {
			sum += b.GetClose()
		}
		if !near(row.Values[sma], sum/20, 1e-12) {
			t.Errorf("row %d (%s): sma_20 %v, the closes give %v", i, row.Date, row.Values[sma], sum/20)
		}
	}
	// MACD(12, 26, 9) needs 33 bars before its first value.
	if m := table.Column("macd_12_26_9"); !math.IsNaN(table.Rows[32].Values[m]) || math.IsNaN(table.Rows[33].Values[m]) {
		t.Errorf("MACD warm-up: row 32 %v, row 33 %v", table.Rows[32].Values[m], table.Rows[33].Values[m])
	}
}

func TestIndicatorsOfAnUnknownSymbolAreNotFound(t *testing.T) {
	ctx := testContext(t)
	_, err := testClient.MACD(ctx, MACDQuery{Symbol: "NOSUCH"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("MACD of an unknown symbol: %v, want NOT_FOUND", err)
	}
	if !strings.HasPrefix(err.Error(), "MACD NOSUCH: ") {
		t.Fatalf("the error starts with the method and the symbol: %v", err)
	}
	_, err = testClient.GetMACD(ctx, "NOSUCH", "2010-01-04", "2010-01-08")
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetMACD of an unknown symbol: %v, want NOT_FOUND", err)
	}
	_, err = testClient.Indicators(ctx, "AAPL", "2010-13-01", "")
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Indicators with a bad date and no indicator: %v, want INVALID_ARGUMENT", err)
	}
}

// pngSize reads the width and height from a PNG's IHDR chunk.
func pngSize(t *testing.T, img []byte) (uint32, uint32) {
	t.Helper()
	if len(img) < 24 || !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) || string(img[12:16]) != "IHDR" {
		t.Fatalf("not a PNG: % x", img[:min(len(img), 24)])
	}
	return binary.BigEndian.Uint32(img[16:20]), binary.BigEndian.Uint32(img[20:24])
}

func TestChartsArriveWholeAsImages(t *testing.T) {
	ctx := testContext(t)
	var seed bytes.Buffer
	n, err := testClient.MACDChart(ctx, &seed, "IBM", "2012-01-01", "2012-06-30")
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(seed.Len()) || n < 10_000 {
		t.Fatalf("MACDChart wrote %d bytes, answered %d", seed.Len(), n)
	}
	if w, h := pngSize(t, seed.Bytes()); w != 1000 || h != 700 {
		t.Fatalf("GetMACDGraph image is %dx%d, want 1000x700", w, h)
	}

	var v1 bytes.Buffer
	req := &marketv1.RenderChartRequest{Symbol: "IBM", StartDate: "2012-01-01", EndDate: "2012-06-30", Width: 640, Height: 480}
	contentType, n, err := testClient.RenderChart(ctx, &v1, req)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "image/png" || n != int64(v1.Len()) {
		t.Fatalf("RenderChart answered %s, %d bytes of %d", contentType, n, v1.Len())
	}
	if w, h := pngSize(t, v1.Bytes()); w != 640 || h != 480 {
		t.Fatalf("RenderChart image is %dx%d, want 640x480", w, h)
	}

	// The request goes as it is: prices as traded draw another chart.
	var raw bytes.Buffer
	req.Adjusted = proto.Bool(false)
	if _, _, err := testClient.RenderChart(ctx, &raw, req); err != nil {
		t.Fatal(err)
	}
	if w, h := pngSize(t, raw.Bytes()); w != 640 || h != 480 || bytes.Equal(raw.Bytes(), v1.Bytes()) {
		t.Fatalf("RenderChart of prices as traded: %dx%d, the same image as adjusted: %v", w, h, bytes.Equal(raw.Bytes(), v1.Bytes()))
	}
}
