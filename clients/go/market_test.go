package dataport

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// near reports whether got is within rel of want, relatively.
func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func TestMACDRowsOfTheSampleMatchTALib(t *testing.T) {
	ctx := testContext(t)
	rows, err := testClient.MACD(ctx, MACDQuery{Symbol: "AAPL", Start: "2010-01-04", End: "2010-01-08"})
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
	// TA-Lib 0.8.2's MACD(12, 26, 9) over AAPL's whole stored history, at
	// 2010-01-04 (tests/interop/python/test_indicator.py); the server is
	// bit-identical to it, so only printing rounds.
	first := rows[0]
	if !near(first.MACD, 3.926500332345171, 1e-14) || !near(first.Signal, 2.1483999269706064, 1e-14) {
		t.Errorf("MACD at 2010-01-04 = %v, want macd 3.926500332345171, signal 2.1483999269706064", first)
	}
	for _, r := range rows {
		if math.Abs(r.Histogram-(r.MACD-r.Signal)) > 1e-12 || math.IsNaN(r.MACD) {
			t.Errorf("row %v: histogram is not macd - signal", r)
		}
	}

	// The seed GetMACD answers the same values as float32.
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
	if table.Symbol != "GOOG" || !slices.Equal(table.Columns, wantColumns) {
		t.Fatalf("table of %s with columns %v, want GOOG with %v", table.Symbol, table.Columns, wantColumns)
	}
	bars, err := testClient.Market.GetBars(ctx, &marketv1.GetBarsRequest{Symbol: "GOOG", EndDate: "2004-12-31"})
	if err != nil {
		t.Fatal(err)
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
	contentType, n, err := testClient.RenderChart(ctx, &v1, &marketv1.RenderChartRequest{
		Symbol: "IBM", StartDate: "2012-01-01", EndDate: "2012-06-30", Width: 640, Height: 480,
	})
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "image/png" || n != int64(v1.Len()) {
		t.Fatalf("RenderChart answered %s, %d bytes of %d", contentType, n, v1.Len())
	}
	if w, h := pngSize(t, v1.Bytes()); w != 640 || h != 480 {
		t.Fatalf("RenderChart image is %dx%d, want 640x480", w, h)
	}
}
