package interop

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/idc"
	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const maxChunk = 64 * 1024

// sampleSymbols is what the server loads into an empty store: symbol, bar
// count, first and last date (data/sample/bars.csv.gz), and adjusted closes
// on every bar.
var sampleSymbols = []*marketv1.SymbolSummary{
	{Symbol: "AAPL", Bars: 3270, FirstDate: "2000-03-01", LastDate: "2013-03-01", Adjusted: true},
	{Symbol: "GOOG", Bars: 2148, FirstDate: "2004-08-19", LastDate: "2013-03-01", Adjusted: true},
	{Symbol: "IBM", Bars: 3270, FirstDate: "2000-03-01", LastDate: "2013-03-01", Adjusted: true},
	{Symbol: "MSFT", Bars: 3270, FirstDate: "2000-03-01", LastDate: "2013-03-01", Adjusted: true},
}

// TA-Lib's indicators, as the proto defines them, computed here from the
// bars the server answers. Indices before the lookback hold NaN.

func smaRef(x []float64, n int) []float64 {
	out := nans(len(x))
	sum := 0.0
	for i, v := range x {
		sum += v
		if i >= n {
			sum -= x[i-n]
		}
		if i >= n-1 {
			out[i] = sum / float64(n)
		}
	}
	return out
}

// emaFrom is TA-Lib's EMA with k = 2 / (n + 1), seeded with the mean of the
// n values ending at start, from start on.
func emaFrom(x []float64, n, start int) []float64 {
	out := nans(len(x))
	if start >= len(x) {
		return out
	}
	seed := 0.0
	for _, v := range x[start-n+1 : start+1] {
		seed += v
	}
	prev := seed / float64(n)
	out[start] = prev
	k := 2 / float64(n+1)
	for i := start + 1; i < len(x); i++ {
		prev = (x[i]-prev)*k + prev
		out[i] = prev
	}
	return out
}

// macdRef is TA-Lib's MACD(fast, slow, signal): both EMAs start where the
// slow one's lookback ends, the signal is an EMA of the MACD line from
// there, and all three are answered only where the signal has a value.
func macdRef(x []float64, fast, slow, signal int) (line, sig, hist []float64) {
	start := slow - 1
	f, s := emaFrom(x, fast, start), emaFrom(x, slow, start)
	line, sig, hist = nans(len(x)), nans(len(x)), nans(len(x))
	first := start + signal - 1
	if first >= len(x) {
		return line, sig, hist
	}
	raw := make([]float64, len(x)-start)
	for i := range raw {
		raw[i] = f[start+i] - s[start+i]
	}
	e := emaFrom(raw, signal, signal-1)
	for i := first; i < len(x); i++ {
		line[i] = raw[i-start]
		sig[i] = e[i-start]
		hist[i] = line[i] - sig[i]
	}
	return line, sig, hist
}

func nans(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

// closeTo compares to a relative tolerance, with a floor of 1e-12 for values
// near 0 (a MACD histogram crossing zero), and NaN only to NaN.
func closeTo(got, want, rel float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= rel*math.Abs(want)+1e-12
}

// getBars is GetBars of adjusted prices, the server's default.
func getBars(t *testing.T, c marketv1.MarketServiceClient, symbol, start, end string) []*marketv1.Bar {
	t.Helper()
	return getBarsReply(t, c, &marketv1.GetBarsRequest{Symbol: symbol, StartDate: start, EndDate: end}).GetBars()
}

// rawBars is GetBars of prices as traded.
func rawBars(t *testing.T, c marketv1.MarketServiceClient, symbol, start, end string) []*marketv1.Bar {
	t.Helper()
	r := getBarsReply(t, c, &marketv1.GetBarsRequest{Symbol: symbol, StartDate: start, EndDate: end, Adjusted: proto.Bool(false)})
	if r.GetAdjusted() {
		t.Fatalf("GetBars(%s) of prices as traded says adjusted", symbol)
	}
	return r.GetBars()
}

func getBarsReply(t *testing.T, c marketv1.MarketServiceClient, req *marketv1.GetBarsRequest) *marketv1.GetBarsResponse {
	t.Helper()
	r, err := c.GetBars(callCtx(t), req)
	if err != nil {
		t.Fatalf("GetBars(%v): %v", req, err)
	}
	return r
}

func closes(bars []*marketv1.Bar) []float64 {
	out := make([]float64, len(bars))
	for i, b := range bars {
		out[i] = b.GetClose()
	}
	return out
}

func dateIndex(t *testing.T, bars []*marketv1.Bar, date string) int {
	t.Helper()
	i := slices.IndexFunc(bars, func(b *marketv1.Bar) bool { return b.GetDate() == date })
	if i < 0 {
		t.Fatalf("no bar on %s", date)
	}
	return i
}

// idc.Indicator

func TestGetMACDRowsCoverTheRangeWithTALibValues(t *testing.T) {
	indicator := idc.NewIndicatorClient(conn(t))
	reply, err := indicator.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010-01-08", Symbol: "AAPL"})
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, d := range reply.GetMacd() {
		dates = append(dates, d.GetDate())
	}
	if want := []string{"2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"}; !slices.Equal(dates, want) {
		t.Fatalf("dates = %v, want %v", dates, want)
	}
	first := reply.GetMacd()[0]
	// TA-Lib 0.8.2's MACD over AAPL's whole stored history, at 2010-01-04
	// (talib.MACD(closes, 12, 26, 9) over the sample's AAPL closes).
	if !closeTo(float64(first.GetMacd()), 3.926500332345171, 1e-6) || !closeTo(float64(first.GetSignal()), 2.1483999269706064, 1e-6) {
		t.Errorf("2010-01-04 macd, signal = %v, %v; want 3.9265003, 2.1483999", first.GetMacd(), first.GetSignal())
	}
	if first.GetOpen() != float32(213.43) || first.GetClose() != float32(214.01) {
		t.Errorf("2010-01-04 open, close = %v, %v; want 213.43, 214.01", first.GetOpen(), first.GetClose())
	}

	// Every row against MACD computed here from the bars MarketService
	// answers as traded: the seed service answers over those (the server
	// runs without compat_adjusted).
	bars := rawBars(t, marketv1.NewMarketServiceClient(conn(t)), "AAPL", "", "2010-01-08")
	line, sig, hist := macdRef(closes(bars), 12, 26, 9)
	for _, d := range reply.GetMacd() {
		i := dateIndex(t, bars, d.GetDate())
		b := bars[i]
		if d.GetOpen() != float32(b.GetOpen()) || d.GetClose() != float32(b.GetClose()) ||
			d.GetHigh() != float32(b.GetHigh()) || d.GetLow() != float32(b.GetLow()) {
			t.Errorf("%s: prices %v, bar %v", d.GetDate(), d, b)
		}
		if !closeTo(float64(d.GetMacd()), line[i], 1e-6) || !closeTo(float64(d.GetSignal()), sig[i], 1e-6) ||
			!closeTo(float64(d.GetHistogram()), hist[i], 1e-5) {
			t.Errorf("%s: macd %v signal %v hist %v, want %v %v %v", d.GetDate(), d.GetMacd(), d.GetSignal(), d.GetHistogram(), line[i], sig[i], hist[i])
		}
	}
}

func TestGetMACDRefusalsNameTheFieldAndValue(t *testing.T) {
	indicator := idc.NewIndicatorClient(conn(t))
	_, err := indicator.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010-01-08"})
	wantStatus(t, err, codes.InvalidArgument, "AAPL, GOOG, IBM, MSFT")
	_, err = indicator.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-13-01", EndDate: "2010-01-08", Symbol: "AAPL"})
	wantStatus(t, err, codes.InvalidArgument, "start_date", `"2010-13-01"`)
	_, err = indicator.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010/01/08", Symbol: "AAPL"})
	wantStatus(t, err, codes.InvalidArgument, "end_date")
	_, err = indicator.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010-01-08", Symbol: "TSLA"})
	wantStatus(t, err, codes.NotFound, "TSLA")
	_, err = indicator.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010-01-08", Symbol: "A B"})
	wantStatus(t, err, codes.InvalidArgument, "symbol")

	ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	<-ctx.Done()
	_, err = indicator.GetMACD(ctx, &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010-01-08", Symbol: "AAPL"})
	wantStatus(t, err, codes.DeadlineExceeded)
}

// idc.IndicatorGraph

func saveGraph(t *testing.T, g idc.IndicatorGraphClient, req *idc.MACDGraphRequest) ([]byte, []int) {
	t.Helper()
	stream, err := g.GetMACDGraph(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := recvAll[idc.MACDGraphReply](stream)
	if err != nil {
		t.Fatalf("GetMACDGraph(%v): %v", req, err)
	}
	var data []byte
	var sizes []int
	for _, r := range replies {
		data = append(data, r.GetMacdChunk()...)
		sizes = append(sizes, len(r.GetMacdChunk()))
	}
	return data, sizes
}

// wantPNG decodes every row of data and checks its size and that it is not
// a blank canvas.
func wantPNG(t *testing.T, data []byte, width, height int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a whole PNG (%d bytes): %v", len(data), err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	colors := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(colors) <= 4; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colors) <= 4 {
		t.Errorf("the chart looks blank: %d colours", len(colors))
	}
}

func TestGetMACDGraphStreamsChunksOfAtMost64KiBThatJoinIntoA1000x700PNG(t *testing.T) {
	g := idc.NewIndicatorGraphClient(conn(t))
	images := map[string]bool{}
	for _, req := range []*idc.MACDGraphRequest{
		{StartDate: "2012-01-03", EndDate: "2012-12-31", Symbol: "GOOG"},
		{StartDate: "2000-03-01", EndDate: "2013-03-01", Symbol: "AAPL"},
		{StartDate: "2012-01-03", EndDate: "2012-12-31", Symbol: "IBM"},
	} {
		data, sizes := saveGraph(t, g, req)
		for i, s := range sizes {
			if s <= 0 || s > maxChunk || (i < len(sizes)-1 && s != maxChunk) {
				t.Errorf("%v: chunk sizes %v", req, sizes)
				break
			}
		}
		wantPNG(t, data, 1000, 700)
		images[string(data)] = true
	}
	if len(images) != 3 {
		t.Errorf("3 different charts gave %d different images", len(images))
	}
	// A range without bars still answers a chart.
	data, _ := saveGraph(t, g, &idc.MACDGraphRequest{StartDate: "2012-01-07", EndDate: "2012-01-08", Symbol: "GOOG"})
	wantPNG(t, data, 1000, 700)
}

func TestGetMACDGraphRefusalsNameTheField(t *testing.T) {
	g := idc.NewIndicatorGraphClient(conn(t))
	for _, c := range []struct {
		req   *idc.MACDGraphRequest
		code  codes.Code
		words []string
	}{
		{&idc.MACDGraphRequest{StartDate: "2012-13-01", EndDate: "2012-12-31", Symbol: "GOOG"}, codes.InvalidArgument, []string{"start_date", `"2012-13-01"`, "YYYY-MM-DD"}},
		{&idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-13-01", Symbol: "GOOG"}, codes.InvalidArgument, []string{"end_date", `"2012-13-01"`}},
		{&idc.MACDGraphRequest{StartDate: "2012-02-30", EndDate: "2012-12-31", Symbol: "GOOG"}, codes.InvalidArgument, []string{"start_date"}},
		{&idc.MACDGraphRequest{StartDate: "", EndDate: "2012-12-31", Symbol: "GOOG"}, codes.InvalidArgument, []string{"start_date"}},
		{&idc.MACDGraphRequest{StartDate: "2012-02-01", EndDate: "2012-01-31", Symbol: "GOOG"}, codes.InvalidArgument, []string{"start_date", "end_date", "after", "2012-02-01", "2012-01-31"}},
		{&idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31", Symbol: "TSLA"}, codes.NotFound, []string{"TSLA", "AAPL, GOOG, IBM, MSFT"}},
		{&idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31", Symbol: "GOOG/../x"}, codes.InvalidArgument, []string{"symbol"}},
		{&idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31"}, codes.InvalidArgument, []string{"symbol", "AAPL, GOOG, IBM, MSFT"}},
	} {
		stream, err := g.GetMACDGraph(callCtx(t), c.req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = recvAll[idc.MACDGraphReply](stream)
		wantStatus(t, err, c.code, c.words...)
	}
}

func TestGetMACDGraphCancelledEndsCanceledAndTheNextCallAnswers(t *testing.T) {
	g := idc.NewIndicatorGraphClient(conn(t))
	req := &idc.MACDGraphRequest{StartDate: "2000-03-01", EndDate: "2013-03-01", Symbol: "AAPL"}
	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := g.GetMACDGraph(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = recvAll[idc.MACDGraphReply](stream)
	wantStatus(t, err, codes.Canceled)
	data, _ := saveGraph(t, g, req)
	wantPNG(t, data, 1000, 700)
}

func TestGetMACDGraphPastItsDeadlineIsDeadlineExceeded(t *testing.T) {
	srv := sharedServer(t)
	g := idc.NewIndicatorGraphClient(srv.conn)
	// The whole history's chart takes a few milliseconds to draw.
	req := &idc.MACDGraphRequest{StartDate: "2000-03-01", EndDate: "2013-03-01", Symbol: "AAPL"}
	for range 5 {
		for _, d := range []time.Duration{200 * time.Microsecond, time.Millisecond} {
			cc, peer := srv.peerConn(t)
			ctx, cancel := context.WithTimeout(context.Background(), d)
			stream, err := idc.NewIndicatorGraphClient(cc).GetMACDGraph(ctx, req)
			if err == nil {
				_, err = recvAll[idc.MACDGraphReply](stream)
			}
			cancel()
			if err != nil {
				wantStatus(t, err, codes.DeadlineExceeded)
				continue
			}
			// An OK can only be right if the server drew the chart within
			// the deadline as it counts it, from when the call reached it
			// (the client's own timer may fire late): its call log says.
			if c := srv.endedCall(t, "/idc.IndicatorGraph/GetMACDGraph", peer()); c.code != "OK" || c.took > d {
				t.Errorf("the client got OK with a %v deadline; the server logged %s after %v", d, c.code, c.took)
			}
		}
	}
	data, _ := saveGraph(t, g, req)
	wantPNG(t, data, 1000, 700)
}

func TestAnEmptySymbolMeansTheDefaultSymbolOrTheOnlyStoredOne(t *testing.T) {
	srv := ownServer(t, []string{"DATAPORT_DEFAULT_SYMBOL=IBM"})
	g := idc.NewIndicatorGraphClient(srv.conn)
	ind := idc.NewIndicatorClient(srv.conn)
	implicit, _ := saveGraph(t, g, &idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31"})
	explicit, _ := saveGraph(t, g, &idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31", Symbol: "IBM"})
	wantPNG(t, implicit, 1000, 700)
	if !bytes.Equal(implicit, explicit) {
		t.Error("the chart without a symbol differs from IBM's")
	}
	a, err := ind.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2012-01-03", EndDate: "2012-01-31"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ind.GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2012-01-03", EndDate: "2012-01-31", Symbol: "IBM"})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.GetMacd()) != 20 || !proto.Equal(a, b) {
		t.Errorf("GetMACD without a symbol: %d rows, equal to IBM's: %v", len(a.GetMacd()), proto.Equal(a, b))
	}

	only := ownServer(t, nil, "--no-sample-data")
	g = idc.NewIndicatorGraphClient(only.conn)
	stream, err := g.GetMACDGraph(callCtx(t), &idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = recvAll[idc.MACDGraphReply](stream)
	wantStatus(t, err, codes.FailedPrecondition, "symbol")
	var bars []*marketv1.Bar
	for i := range 60 {
		f := float64(i)
		bars = append(bars, &marketv1.Bar{Date: fmt.Sprintf("2012-%02d-%02d", 1+i/28, 1+i%28), Open: 100 + f, High: 102 + f, Low: 99 + f, Close: 101 + f, Volume: proto.Float64(1e6)})
	}
	if r := importBars(t, marketv1.NewMarketServiceClient(only.conn), "ONLY", bars, 60); r.GetImported() != 60 {
		t.Fatalf("imported %d", r.GetImported())
	}
	implicit, _ = saveGraph(t, g, &idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31"})
	explicit, _ = saveGraph(t, g, &idc.MACDGraphRequest{StartDate: "2012-01-03", EndDate: "2012-12-31", Symbol: "ONLY"})
	wantPNG(t, implicit, 1000, 700)
	if !bytes.Equal(implicit, explicit) {
		t.Error("the chart without a symbol differs from ONLY's")
	}
	rows, err := idc.NewIndicatorClient(only.conn).GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2012-01-01", EndDate: "2012-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	// Days inside the 33-bar lookback are omitted.
	if len(rows.GetMacd()) != 60-33 || rows.GetMacd()[0].GetDate() != bars[33].GetDate() {
		t.Errorf("GetMACD of the only symbol: %d rows from %s", len(rows.GetMacd()), rows.GetMacd()[0].GetDate())
	}
	line, _, _ := macdRef(closes(bars), 12, 26, 9)
	for i, d := range rows.GetMacd() {
		if !closeTo(float64(d.GetMacd()), line[33+i], 1e-5) {
			t.Errorf("%s: macd %v, want %v", d.GetDate(), d.GetMacd(), line[33+i])
		}
	}
}

// dataport.market.v1

func importBars(t *testing.T, c marketv1.MarketServiceClient, symbol string, bars []*marketv1.Bar, perMessage int) *marketv1.ImportBarsResponse {
	t.Helper()
	r, err := sendImport(callCtx(t), c, barRequests(symbol, bars, perMessage))
	if err != nil {
		t.Fatalf("ImportBars(%s): %v", symbol, err)
	}
	return r
}

func barRequests(symbol string, bars []*marketv1.Bar, perMessage int) []*marketv1.ImportBarsRequest {
	var out []*marketv1.ImportBarsRequest
	for i := 0; i < len(bars); i += perMessage {
		r := &marketv1.ImportBarsRequest{Bars: bars[i:min(i+perMessage, len(bars))]}
		if i == 0 {
			r.Symbol = symbol
		}
		out = append(out, r)
	}
	return out
}

func csvRequests(symbol, text string, piece int) []*marketv1.ImportBarsRequest {
	var out []*marketv1.ImportBarsRequest
	for i := 0; i < len(text); i += piece {
		r := &marketv1.ImportBarsRequest{Csv: []byte(text[i:min(i+piece, len(text))])}
		if i == 0 {
			r.Symbol = symbol
		}
		out = append(out, r)
	}
	return out
}

func sendImport(ctx context.Context, c marketv1.MarketServiceClient, reqs []*marketv1.ImportBarsRequest) (*marketv1.ImportBarsResponse, error) {
	stream, err := c.ImportBars(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			break // the status comes from CloseAndRecv
		}
	}
	return stream.CloseAndRecv()
}

func summaries(t *testing.T, c marketv1.MarketServiceClient) map[string]*marketv1.SymbolSummary {
	t.Helper()
	r, err := c.ListSymbols(callCtx(t), &marketv1.ListSymbolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*marketv1.SymbolSummary{}
	for _, s := range r.GetSymbols() {
		out[s.GetSymbol()] = s
	}
	return out
}

// newSymbol is a symbol no other test uses, upper-case as the server stores
// and answers symbols; 'X' sorts it after the sample.
func newSymbol(tag string) string { return strings.ToUpper(unique("X" + tag)) }

type barTuple struct {
	date                   string
	open, high, low, close float64
	volume                 float64 // NaN when absent
}

func tuples(bars []*marketv1.Bar) []barTuple {
	out := make([]barTuple, len(bars))
	for i, b := range bars {
		v := math.NaN()
		if b.Volume != nil {
			v = b.GetVolume()
		}
		out[i] = barTuple{b.GetDate(), b.GetOpen(), b.GetHigh(), b.GetLow(), b.GetClose(), v}
	}
	return out
}

func sameTuples(a, b []barTuple) bool {
	return slices.EqualFunc(a, b, func(x, y barTuple) bool {
		vx, vy := x.volume, y.volume
		x.volume, y.volume = 0, 0
		return x == y && (vx == vy || (math.IsNaN(vx) && math.IsNaN(vy)))
	})
}

const csvText = "Date,Open,High,Low,Close,Adj Close,Volume\n" +
	"2021-03-02,10.5,11.25,10,11,0.1,1200\n" +
	"2021-03-01,10,10.75,9.5,10.5,0.1,1000\n" +
	"2021-03-03,11,12,10.75,11.75,0.1,\n"

func TestImportBarsOfCSVPiecesCutAnywhereStoresEveryBar(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	want := []barTuple{
		{"2021-03-01", 10, 10.75, 9.5, 10.5, 1000},
		{"2021-03-02", 10.5, 11.25, 10, 11, 1200},
		{"2021-03-03", 11, 12, 10.75, 11.75, math.NaN()},
	}
	for _, piece := range []int{1, 5, 64, 1 << 20} {
		symbol := newSymbol("csv")
		reply, err := sendImport(callCtx(t), c, csvRequests(symbol, csvText, piece))
		if err != nil {
			t.Fatalf("pieces of %d: %v", piece, err)
		}
		// "Adj Close" is the adjusted close.
		wantSummary := &marketv1.SymbolSummary{Symbol: symbol, Bars: 3, FirstDate: "2021-03-01", LastDate: "2021-03-03", Adjusted: true}
		if reply.GetSymbol() != symbol || reply.GetImported() != 3 || !proto.Equal(reply.GetSummary(), wantSummary) {
			t.Errorf("pieces of %d: reply %v", piece, reply)
		}
		raw := rawBars(t, c, symbol, "", "")
		if got := tuples(raw); !sameTuples(got, want) {
			t.Errorf("pieces of %d: stored %v, want %v", piece, got, want)
		}
		adjusted := getBars(t, c, symbol, "", "")
		for i, b := range raw {
			if b.AdjClose == nil || b.GetAdjClose() != 0.1 || !closeTo(adjusted[i].GetClose(), 0.1, 1e-12) {
				t.Errorf("pieces of %d: %s adj_close %v, adjusted close %v; want 0.1", piece, b.GetDate(), b.AdjClose, adjusted[i].GetClose())
			}
		}
		if got := summaries(t, c)[symbol]; !proto.Equal(got, wantSummary) {
			t.Errorf("ListSymbols has %v, want %v", got, wantSummary)
		}
	}
	// Columns in any order and case, CRLF lines, a blank line, no volume.
	symbol := newSymbol("order")
	text := "CLOSE,low,Ticker,DATE,high,OPEN\r\n2.5,1,Z,2019-12-31,3,2\r\n\r\n3.5,2,Z,2020-01-02,4,3\r\n"
	if _, err := sendImport(callCtx(t), c, csvRequests(symbol, text, 4)); err != nil {
		t.Fatal(err)
	}
	wantOrdered := []barTuple{{"2019-12-31", 2, 3, 1, 2.5, math.NaN()}, {"2020-01-02", 3, 4, 2, 3.5, math.NaN()}}
	if got := tuples(getBars(t, c, symbol, "", "")); !sameTuples(got, wantOrdered) {
		t.Errorf("stored %v, want %v", got, wantOrdered)
	}
}

// syntheticBars are n weekdays of made-up, well-formed bars.
func syntheticBars(n int) []*marketv1.Bar {
	var out []*marketv1.Bar
	d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for day := 0; len(out) < n; d = d.AddDate(0, 0, 1) {
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			continue
		}
		c := 50 + 10*math.Sin(float64(day)/5) + 0.3*float64(day)
		out = append(out, &marketv1.Bar{Date: d.Format(time.DateOnly), Open: c - 0.5, High: c + 1 + float64(day%3), Low: c - 1.5, Close: c, Volume: proto.Float64(1000 + float64(day))})
		day++
	}
	return out
}

func TestImportBarsInAnyOrderAndAReimportReplacesDates(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	symbol := newSymbol("bars")
	bars := syntheticBars(120)
	var shuffled []*marketv1.Bar
	for i := 0; i < len(bars); i += 2 {
		shuffled = append(shuffled, bars[i])
	}
	for i := len(bars) - 1; i >= 1; i -= 2 {
		shuffled = append(shuffled, bars[i])
	}
	shuffled[5] = proto.CloneOf(shuffled[5])
	shuffled[5].Volume = nil
	reply := importBars(t, c, symbol, shuffled, 17)
	if reply.GetImported() != 120 || reply.GetSummary().GetBars() != 120 || reply.GetSummary().GetFirstDate() != bars[0].GetDate() || reply.GetSummary().GetLastDate() != bars[119].GetDate() {
		t.Errorf("reply %v", reply)
	}
	byDate := map[string]*marketv1.Bar{}
	for _, b := range shuffled {
		byDate[b.GetDate()] = b
	}
	stored := getBars(t, c, symbol, "", "")
	if len(stored) != 120 {
		t.Fatalf("stored %d bars", len(stored))
	}
	for i, b := range stored {
		if b.GetDate() != bars[i].GetDate() || !proto.Equal(b, byDate[b.GetDate()]) {
			t.Errorf("stored[%d] = %v, sent %v", i, b, byDate[b.GetDate()])
		}
	}

	// The symbol may be repeated in later messages; dates already stored are replaced.
	again := newSymbol("replace")
	importBars(t, c, again, []*marketv1.Bar{
		{Date: "2020-01-02", Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: proto.Float64(10)},
		{Date: "2020-01-03", Open: 2, High: 3, Low: 1, Close: 2.5, Volume: proto.Float64(20)},
		{Date: "2020-01-06", Open: 3, High: 4, Low: 2, Close: 3.5, Volume: proto.Float64(30)},
	}, 1)
	r, err := sendImport(callCtx(t), c, []*marketv1.ImportBarsRequest{
		{Symbol: again, Csv: []byte("date,open,high,low,close,volume\n2020-01-03,9,9.5,8,9.25,99\n")},
		{Symbol: again, Csv: []byte("2020-01-07,4,5,3,4.5,40\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetImported() != 2 || r.GetSummary().GetBars() != 4 || r.GetSummary().GetLastDate() != "2020-01-07" {
		t.Errorf("reimport reply %v", r)
	}
	want := []barTuple{
		{"2020-01-02", 1, 2, 0.5, 1.5, 10},
		{"2020-01-03", 9, 9.5, 8, 9.25, 99},
		{"2020-01-06", 3, 4, 2, 3.5, 30},
		{"2020-01-07", 4, 5, 3, 4.5, 40},
	}
	if got := tuples(getBars(t, c, again, "", "")); !sameTuples(got, want) {
		t.Errorf("after the reimport %v, want %v", got, want)
	}
}

func TestABadCSVIsRefusedWholeNamingLineAndReason(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	const head, good = "date,open,high,low,close\n", "2020-01-02,1,2,1,2\n"
	for _, tc := range []struct {
		text  string
		words []string
	}{
		{head + good + "2020-01-03,1,x,1,2\n", []string{"csv", "line 3", "high", `"x"`}},
		{head + "2020-01-02,1,1,2,1\n", []string{"line 2", "high", "below", "low"}},
		{head + good + good, []string{"line 3", "2020-01-02", "already", "line 2"}},
		{head + good + "2020-02-30,1,2,1,2\n", []string{"line 3", `"2020-02-30"`}},
		{head + good + "2020-01-03,1,2,1,NaN\n", []string{"line 3", "close"}},
		{"date,open,high,low\n2020-01-02,1,2,1\n", []string{"csv", "close", "column"}},
		{"\n", []string{"csv", "empty"}},
	} {
		symbol := newSymbol("badcsv")
		_, err := sendImport(callCtx(t), c, csvRequests(symbol, tc.text, 7))
		wantStatus(t, err, codes.InvalidArgument, tc.words...)
		_, err = c.GetBars(callCtx(t), &marketv1.GetBarsRequest{Symbol: symbol})
		wantStatus(t, err, codes.NotFound, symbol)
	}
}

func TestABadBarRefusesTheWholeStreamAndKeepsWhatWasStored(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	for _, tc := range []struct {
		bad   *marketv1.Bar
		words []string
	}{
		{&marketv1.Bar{Date: "2020-01-06", Open: 1, High: 2, Low: 1, Close: math.NaN()}, []string{"bars[2]", "close", "finite"}},
		{&marketv1.Bar{Date: "2020-01-06", Open: 1, High: 2, Low: 1, Close: 2, Volume: proto.Float64(math.Inf(1))}, []string{"bars[2]", "volume", "finite"}},
		{&marketv1.Bar{Date: "2020-01-06", Open: 1, High: 1, Low: 2, Close: 1}, []string{"bars[2]", "high", "below", "low"}},
		{&marketv1.Bar{Date: "2020-1-6", Open: 1, High: 2, Low: 1, Close: 2}, []string{"bars[2]", `"2020-1-6"`, "YYYY-MM-DD"}},
		{&marketv1.Bar{Date: "2020-01-02", Open: 1, High: 2, Low: 1, Close: 2}, []string{"bars[2]", "2020-01-02", "bars[0]"}},
	} {
		symbol := newSymbol("badbar")
		stored := []*marketv1.Bar{
			{Date: "2020-01-02", Open: 1, High: 2, Low: 1, Close: 1.5, Volume: proto.Float64(10)},
			{Date: "2020-01-03", Open: 2, High: 3, Low: 1, Close: 2.5, Volume: proto.Float64(20)},
		}
		importBars(t, c, symbol, stored, 10)
		before := summaries(t, c)[symbol]
		attempt := []*marketv1.Bar{
			{Date: "2020-01-02", Open: 7, High: 8, Low: 6, Close: 7},
			{Date: "2020-01-03", Open: 7, High: 8, Low: 6, Close: 7},
			tc.bad,
			{Date: "2020-01-07", Open: 7, High: 8, Low: 6, Close: 7},
		}
		_, err := sendImport(callCtx(t), c, barRequests(symbol, attempt, 1))
		wantStatus(t, err, codes.InvalidArgument, tc.words...)
		if after := summaries(t, c)[symbol]; !proto.Equal(after, before) {
			t.Errorf("summary after a refused import %v, before %v", after, before)
		}
		if got := tuples(getBars(t, c, symbol, "", "")); !sameTuples(got, tuples(stored)) {
			t.Errorf("bars after a refused import %v", got)
		}
	}
}

func TestIllFormedImportStreamsAreInvalidArgument(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	head := []byte("date,open,high,low,close\n")
	symbol := newSymbol("stream")
	for _, tc := range []struct {
		reqs  []*marketv1.ImportBarsRequest
		words []string
	}{
		{nil, []string{"empty"}},
		{[]*marketv1.ImportBarsRequest{{Csv: head}}, []string{"symbol"}},
		{[]*marketv1.ImportBarsRequest{{Symbol: "A B", Csv: head}}, []string{"symbol", `"A B"`}},
		{[]*marketv1.ImportBarsRequest{{Symbol: strings.Repeat("X", 33), Csv: head}}, []string{"symbol", "32"}},
		{[]*marketv1.ImportBarsRequest{{Symbol: symbol}}, []string{"csv", "bars"}},
		{[]*marketv1.ImportBarsRequest{{Symbol: symbol, Csv: head}, {Symbol: "OTHER", Csv: []byte("2020-01-02,1,2,1,2\n")}}, []string{"symbol", `"OTHER"`}},
		{[]*marketv1.ImportBarsRequest{{Symbol: symbol, Csv: head}, {Bars: []*marketv1.Bar{{Date: "2020-01-02", Open: 1, High: 2, Low: 1, Close: 2}}}}, []string{"csv", "bars"}},
	} {
		_, err := sendImport(callCtx(t), c, tc.reqs)
		wantStatus(t, err, codes.InvalidArgument, tc.words...)
	}
	if _, ok := summaries(t, c)[symbol]; ok {
		t.Errorf("%s stored by refused imports", symbol)
	}
}

func TestACancelledImportStoresNothingAndAnExpiredOneNeither(t *testing.T) {
	srv := sharedServer(t)
	c := marketv1.NewMarketServiceClient(srv.conn)
	for _, expire := range []bool{false, true} {
		cc, peer := srv.peerConn(t)
		symbol := newSymbol("cancel")
		var ctx context.Context
		var cancel context.CancelFunc
		if expire {
			ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
		} else {
			ctx, cancel = context.WithCancel(callCtx(t))
		}
		stream, err := marketv1.NewMarketServiceClient(cc).ImportBars(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&marketv1.ImportBarsRequest{Symbol: symbol, Bars: syntheticBars(2)}); err != nil {
			t.Fatal(err)
		}
		// The stream stays open: the server holds the bars, uncommitted.
		received(t, cc)
		if !expire {
			cancel()
		}
		var reply marketv1.ImportBarsResponse
		err = stream.RecvMsg(&reply)
		want, logged := codes.Canceled, []string{"CANCELLED"}
		if expire {
			want, logged = codes.DeadlineExceeded, []string{"DEADLINE_EXCEEDED", "CANCELLED"}
		}
		wantStatus(t, err, want)
		cancel()
		// Once the server has ended the call, nothing was imported.
		if code := srv.ended(t, "/dataport.market.v1.MarketService/ImportBars", peer()); !slices.Contains(logged, code) {
			t.Errorf("the server ended the import %s, want one of %v", code, logged)
		}
		if s, ok := summaries(t, c)[symbol]; ok {
			t.Errorf("an import ended by the client stored %v (expired: %v)", s, expire)
		}
	}
	if r := importBars(t, c, newSymbol("after"), syntheticBars(3), 3); r.GetImported() != 3 {
		t.Errorf("an import after the cancels imported %d", r.GetImported())
	}
}

func TestListSymbolsNamesTheSampleWithCountsAndSpansInSymbolOrder(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	r, err := c.ListSymbols(callCtx(t), &marketv1.ListSymbolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	got := map[string]*marketv1.SymbolSummary{}
	for _, s := range r.GetSymbols() {
		names = append(names, s.GetSymbol())
		got[s.GetSymbol()] = s
	}
	if !slices.IsSorted(names) {
		t.Errorf("symbols not in order: %v", names)
	}
	for _, want := range sampleSymbols {
		if !proto.Equal(got[want.GetSymbol()], want) {
			t.Errorf("ListSymbols has %v, want %v", got[want.GetSymbol()], want)
		}
	}
}

// sampleBar is a bar of the sample file: prices as traded and the
// adjusted close.
type sampleBar struct {
	barTuple
	adjClose float64
}

// sampleBars reads the bars the server loads into an empty store, sorted by
// date.
func sampleBars(t *testing.T) map[string][]sampleBar {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "data", "sample", "bars.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(z).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"symbol", "date", "open", "high", "low", "close", "volume", "adj_close"}; !slices.Equal(rows[0], want) {
		t.Fatalf("sample columns %v, want %v", rows[0], want)
	}
	out := map[string][]sampleBar{}
	for _, r := range rows[1:] {
		var v [6]float64
		for i, s := range slices.Concat(r[2:6], []string{cmp.Or(r[6], "NaN"), r[7]}) {
			if v[i], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatal(err)
			}
		}
		out[r[0]] = append(out[r[0]], sampleBar{barTuple{r[1], v[0], v[1], v[2], v[3], v[4]}, v[5]})
	}
	for _, bars := range out {
		slices.SortFunc(bars, func(a, b sampleBar) int { return cmp.Compare(a.date, b.date) })
	}
	return out
}

func sampleTuples(bars []sampleBar) []barTuple {
	out := make([]barTuple, len(bars))
	for i, b := range bars {
		out[i] = b.barTuple
	}
	return out
}

func TestGetBarsAsTradedWithoutDatesAnswersTheWholeSample(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	sample := sampleBars(t)
	for _, s := range sampleSymbols {
		want := sample[s.GetSymbol()]
		raw := rawBars(t, c, s.GetSymbol(), "", "")
		if got := tuples(raw); !sameTuples(got, sampleTuples(want)) {
			t.Errorf("%s: %d bars differ from the sample's %d", s.GetSymbol(), len(got), len(want))
		}
		for i, b := range raw {
			if b.GetAdjClose() != want[i].adjClose {
				t.Errorf("%s %s: adj_close %v, the sample's %v", s.GetSymbol(), b.GetDate(), b.GetAdjClose(), want[i].adjClose)
				break
			}
		}
	}
}

func TestGetBarsAnswersTheSampleScaledByAdjCloseOverCloseByDefault(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	sample := sampleBars(t)
	for _, s := range sampleSymbols {
		reply := getBarsReply(t, c, &marketv1.GetBarsRequest{Symbol: s.GetSymbol()})
		want := sample[s.GetSymbol()]
		if !reply.GetAdjusted() || len(reply.GetBars()) != len(want) {
			t.Fatalf("%s: adjusted %v, %d bars for the sample's %d", s.GetSymbol(), reply.GetAdjusted(), len(reply.GetBars()), len(want))
		}
		for i, b := range reply.GetBars() {
			w := want[i]
			f := w.adjClose / w.close
			if b.GetDate() != w.date || !closeTo(b.GetOpen(), w.open*f, 1e-12) || !closeTo(b.GetHigh(), w.high*f, 1e-12) ||
				!closeTo(b.GetLow(), w.low*f, 1e-12) || !closeTo(b.GetClose(), w.adjClose, 1e-12) ||
				!closeTo(b.GetVolume(), w.volume/f, 1e-12) || b.GetAdjClose() != w.adjClose {
				t.Errorf("%s: adjusted bar %v; the sample's %v scaled by %v", s.GetSymbol(), b, w, f)
				break
			}
		}
	}
}

func TestGetBarsOfASplitAnswersAdjustedPricesUnlessAskedForPricesAsTraded(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	// The sample's MSFT split 2:1 between these days (zcat
	// data/sample/bars.csv.gz | grep -E 'MSFT,2003-02-1[48]').
	traded, adjusted := []float64{48.3, 24.96}, []float64{16.076442938105, 16.61565282547}
	for _, tc := range []struct {
		adjusted *bool
		want     []float64
	}{
		{nil, adjusted},
		{proto.Bool(true), adjusted},
		{proto.Bool(false), traded},
	} {
		r := getBarsReply(t, c, &marketv1.GetBarsRequest{Symbol: "MSFT", StartDate: "2003-02-14", EndDate: "2003-02-18", Adjusted: tc.adjusted})
		if len(r.GetBars()) != 2 || r.GetAdjusted() != (tc.adjusted == nil || *tc.adjusted) {
			t.Fatalf("adjusted %v: %v", tc.adjusted, r)
		}
		for i, b := range r.GetBars() {
			if !closeTo(b.GetClose(), tc.want[i], 1e-12) || b.GetAdjClose() != adjusted[i] {
				t.Errorf("adjusted %v: %s close %v adj_close %v, want %v and %v", tc.adjusted, b.GetDate(), b.GetClose(), b.GetAdjClose(), tc.want[i], adjusted[i])
			}
		}
	}
}

func TestGetBarsRangesAreInclusiveAndOpenWhenEmpty(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	all := getBars(t, c, "AAPL", "", "")
	if len(all) != 3270 || all[0].GetDate() != "2000-03-01" || all[len(all)-1].GetDate() != "2013-03-01" {
		t.Fatalf("AAPL: %d bars", len(all))
	}
	raw := rawBars(t, c, "AAPL", "", "")
	first := raw[dateIndex(t, raw, "2010-01-04")]
	// zcat data/sample/bars.csv.gz | grep AAPL,2010-01-04 (as traded)
	want2010 := barTuple{"2010-01-04", 213.43, 214.5, 212.38, 214.01, 17633200}
	if got := tuples([]*marketv1.Bar{first})[0]; !sameTuples([]barTuple{got}, []barTuple{want2010}) {
		t.Errorf("AAPL 2010-01-04 = %v, want %v", got, want2010)
	}
	if adjusted := all[dateIndex(t, all, "2010-01-04")]; !closeTo(adjusted.GetClose(), 27.503267796595, 1e-12) {
		t.Errorf("AAPL 2010-01-04 adjusted close %v, want the sample's adj_close 27.503267796595", adjusted.GetClose())
	}
	for _, tc := range []struct {
		start, end, first, last string
		count                   int
	}{
		{"2010-01-04", "2010-01-08", "2010-01-04", "2010-01-08", 5},
		{"2010-01-02", "2010-01-10", "2010-01-04", "2010-01-08", 5},
		{"2013-02-25", "", "2013-02-25", "2013-03-01", 5},
		{"", "2000-03-07", "2000-03-01", "2000-03-07", 5},
		{"2012-06-01", "2012-06-01", "2012-06-01", "2012-06-01", 1},
		{"1999-01-01", "2030-12-31", "2000-03-01", "2013-03-01", 3270},
	} {
		got := getBars(t, c, "AAPL", tc.start, tc.end)
		if len(got) != tc.count || got[0].GetDate() != tc.first || got[len(got)-1].GetDate() != tc.last {
			t.Errorf("[%q, %q]: %d bars", tc.start, tc.end, len(got))
			continue
		}
		i := dateIndex(t, all, tc.first)
		for j, b := range got {
			if !proto.Equal(b, all[i+j]) {
				t.Errorf("[%q, %q][%d] = %v, want %v", tc.start, tc.end, j, b, all[i+j])
			}
		}
	}
	for _, r := range [][2]string{{"2012-01-01", "2012-01-01"}, {"2012-01-07", "2012-01-08"}, {"1990-01-01", "1999-12-31"}, {"2013-03-02", ""}} {
		if got := getBars(t, c, "IBM", r[0], r[1]); len(got) != 0 {
			t.Errorf("IBM %v: %d bars, want none", r, len(got))
		}
	}
}

func TestGetBarsRefusals(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	for _, tc := range []struct {
		req   *marketv1.GetBarsRequest
		code  codes.Code
		words []string
	}{
		{&marketv1.GetBarsRequest{Symbol: "TSLA"}, codes.NotFound, []string{"TSLA"}},
		{&marketv1.GetBarsRequest{Symbol: ""}, codes.InvalidArgument, []string{"symbol"}},
		{&marketv1.GetBarsRequest{Symbol: "IBM IBM"}, codes.InvalidArgument, []string{"symbol"}},
		{&marketv1.GetBarsRequest{Symbol: "IBM", StartDate: "2012-13-01"}, codes.InvalidArgument, []string{"start_date", `"2012-13-01"`}},
		{&marketv1.GetBarsRequest{Symbol: "IBM", EndDate: "20120101"}, codes.InvalidArgument, []string{"end_date"}},
		{&marketv1.GetBarsRequest{Symbol: "IBM", StartDate: "2012-02-01", EndDate: "2012-01-31"}, codes.InvalidArgument, []string{"start_date", "end_date", "after"}},
	} {
		_, err := c.GetBars(callCtx(t), tc.req)
		wantStatus(t, err, tc.code, tc.words...)
	}
}

// compute is ComputeIndicators over adjusted prices, the server's default.
func compute(t *testing.T, c marketv1.MarketServiceClient, symbol, start, end string, indicators ...*marketv1.Indicator) (*marketv1.ComputeIndicatorsResponse, map[string][]float64) {
	t.Helper()
	return computeReq(t, c, &marketv1.ComputeIndicatorsRequest{Symbol: symbol, StartDate: start, EndDate: end, Indicators: indicators})
}

func computeReq(t *testing.T, c marketv1.MarketServiceClient, req *marketv1.ComputeIndicatorsRequest) (*marketv1.ComputeIndicatorsResponse, map[string][]float64) {
	t.Helper()
	r, err := c.ComputeIndicators(callCtx(t), req)
	if err != nil {
		t.Fatalf("ComputeIndicators(%s): %v", req.GetSymbol(), err)
	}
	cols := map[string][]float64{}
	for _, col := range r.GetColumns() {
		if len(col.GetValues()) != len(r.GetDates()) {
			t.Errorf("%s: %d values for %d dates", col.GetName(), len(col.GetValues()), len(r.GetDates()))
		}
		cols[col.GetName()] = col.GetValues()
	}
	return r, cols
}

func columnNames(r *marketv1.ComputeIndicatorsResponse) []string {
	var out []string
	for _, c := range r.GetColumns() {
		out = append(out, c.GetName())
	}
	return out
}

func wantColumn(t *testing.T, name string, got, want []float64, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if !closeTo(got[i], want[i], rel) {
			t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			return
		}
	}
}

func TestComputeIndicatorsMatchTheDefinitionsOverTheWholeHistory(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	defaults := []*marketv1.Indicator{
		{Kind: &marketv1.Indicator_Macd{Macd: &marketv1.Macd{}}},
		{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{}}},
		{Kind: &marketv1.Indicator_Rsi{Rsi: &marketv1.Rsi{}}},
		{Kind: &marketv1.Indicator_Atr{Atr: &marketv1.Atr{}}},
		{Kind: &marketv1.Indicator_Ema{Ema: &marketv1.Ema{}}},
		{Kind: &marketv1.Indicator_Bollinger{Bollinger: &marketv1.Bollinger{}}},
	}
	week, _ := compute(t, c, "AAPL", "2010-01-04", "2010-01-08", defaults...)
	wantNames := []string{
		"macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist", "sma_30", "rsi_14", "atr_14", "ema_30",
		"bollinger_5_2_2_upper", "bollinger_5_2_2_middle", "bollinger_5_2_2_lower",
	}
	if got := columnNames(week); !slices.Equal(got, wantNames) {
		t.Errorf("columns %v, want %v", got, wantNames)
	}
	if want := []string{"2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"}; !slices.Equal(week.GetDates(), want) {
		t.Errorf("dates %v, want %v", week.GetDates(), want)
	}

	// Over the adjusted bars GetBars answers by default; ComputeIndicators
	// adjusts by default too.
	for _, symbol := range []string{"AAPL", "GOOG"} {
		bars := getBars(t, c, symbol, "", "")
		x := closes(bars)
		reply, got := compute(t, c, symbol, "", "", defaults...)
		if len(reply.GetDates()) != len(bars) || reply.GetDates()[0] != bars[0].GetDate() || !reply.GetAdjusted() {
			t.Fatalf("%s: %d dates from %s, adjusted %v", symbol, len(reply.GetDates()), reply.GetDates()[0], reply.GetAdjusted())
		}
		line, sig, hist := macdRef(x, 12, 26, 9)
		wantColumn(t, symbol+" macd", got["macd_12_26_9"], line, 1e-9)
		wantColumn(t, symbol+" macd signal", got["macd_12_26_9_signal"], sig, 1e-9)
		wantColumn(t, symbol+" macd hist", got["macd_12_26_9_hist"], hist, 1e-6)
		wantColumn(t, symbol+" sma_30", got["sma_30"], smaRef(x, 30), 1e-9)
		wantColumn(t, symbol+" ema_30", got["ema_30"], emaFrom(x, 30, 29), 1e-9)
		wantColumn(t, symbol+" bollinger middle", got["bollinger_5_2_2_middle"], smaRef(x, 5), 1e-9)
		// Warm-ups counted from the first stored bar (TA-Lib's lookbacks).
		for name, lead := range map[string]int{"rsi_14": 14, "atr_14": 14, "bollinger_5_2_2_upper": 4, "bollinger_5_2_2_lower": 4} {
			col := got[name]
			for i, v := range col {
				if math.IsNaN(v) != (i < lead) {
					t.Errorf("%s %s[%d] = %v; want NaN exactly before %d", symbol, name, i, v, lead)
					break
				}
			}
		}
		for i := 4; i < len(x); i++ {
			up, mid, lo := got["bollinger_5_2_2_upper"][i], got["bollinger_5_2_2_middle"][i], got["bollinger_5_2_2_lower"][i]
			if !closeTo(up-mid, mid-lo, 1e-6) || up < mid || lo > mid {
				t.Fatalf("%s bollinger at %d: %v %v %v", symbol, i, lo, mid, up)
			}
		}
		for i, v := range got["rsi_14"][14:] {
			if v < 0 || v > 100 {
				t.Fatalf("%s rsi_14[%d] = %v", symbol, i+14, v)
			}
		}
	}

	// A range after the warm-up has values from the whole history.
	goog := getBars(t, c, "GOOG", "", "")
	inside, got := compute(t, c, "GOOG", "2010-01-04", "2010-12-31", defaults[1])
	i := dateIndex(t, goog, "2010-01-04")
	wantColumn(t, "GOOG 2010 sma_30", got["sma_30"], smaRef(closes(goog), 30)[i:i+len(inside.GetDates())], 1e-9)
}

func TestComputeIndicatorsWithChosenParameters(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	bars := getBars(t, c, "MSFT", "", "")
	x := closes(bars)
	reply, got := compute(t, c, "MSFT", "2008-01-02", "2009-12-31",
		&marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{Period: 200}}},
		&marketv1.Indicator{Kind: &marketv1.Indicator_Ema{Ema: &marketv1.Ema{Period: 2}}},
		&marketv1.Indicator{Kind: &marketv1.Indicator_Macd{Macd: &marketv1.Macd{FastPeriod: 5, SlowPeriod: 35, SignalPeriod: 5}}},
		&marketv1.Indicator{Kind: &marketv1.Indicator_Bollinger{Bollinger: &marketv1.Bollinger{Period: 20, DevUp: 1.5, DevDown: 2.5}}},
	)
	want := []string{"sma_200", "ema_2", "macd_5_35_5", "macd_5_35_5_signal", "macd_5_35_5_hist",
		"bollinger_20_1.5_2.5_upper", "bollinger_20_1.5_2.5_middle", "bollinger_20_1.5_2.5_lower"}
	if !slices.Equal(columnNames(reply), want) {
		t.Errorf("columns %v, want %v", columnNames(reply), want)
	}
	i := dateIndex(t, bars, "2008-01-02")
	n := len(reply.GetDates())
	if reply.GetDates()[n-1] != "2009-12-31" || n != dateIndex(t, bars, "2009-12-31")-i+1 {
		t.Fatalf("dates %s..%s (%d)", reply.GetDates()[0], reply.GetDates()[n-1], n)
	}
	wantColumn(t, "sma_200", got["sma_200"], smaRef(x, 200)[i:i+n], 1e-9)
	wantColumn(t, "ema_2", got["ema_2"], emaFrom(x, 2, 1)[i:i+n], 1e-9)
	line, sig, _ := macdRef(x, 5, 35, 5)
	wantColumn(t, "macd_5_35_5", got["macd_5_35_5"], line[i:i+n], 1e-9)
	wantColumn(t, "macd_5_35_5_signal", got["macd_5_35_5_signal"], sig[i:i+n], 1e-9)
	wantColumn(t, "bollinger middle", got["bollinger_20_1.5_2.5_middle"], smaRef(x, 20)[i:i+n], 1e-9)
	for j := range n {
		up, mid, lo := got["bollinger_20_1.5_2.5_upper"][j], got["bollinger_20_1.5_2.5_middle"][j], got["bollinger_20_1.5_2.5_lower"][j]
		if !closeTo((up-mid)/1.5, (mid-lo)/2.5, 1e-6) {
			t.Fatalf("bollinger bands at %d are not 1.5 and 2.5 deviations: %v %v %v", j, lo, mid, up)
		}
	}

	// A range without trading days answers empty columns.
	empty, _ := compute(t, c, "IBM", "2012-01-07", "2012-01-08", &marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{}}})
	if len(empty.GetDates()) != 0 || !slices.Equal(columnNames(empty), []string{"sma_30"}) || len(empty.GetColumns()[0].GetValues()) != 0 {
		t.Errorf("weekend range = %v", empty)
	}
}

func TestComputeIndicatorsRefusalsNameTheField(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	sma := &marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{}}}
	many := make([]*marketv1.Indicator, 65)
	for i := range many {
		many[i] = sma
	}
	for _, tc := range []struct {
		req   *marketv1.ComputeIndicatorsRequest
		code  codes.Code
		words []string
	}{
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL"}, codes.InvalidArgument, []string{"indicators", "empty"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{{}}}, codes.InvalidArgument, []string{"indicators[0]"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{sma, {Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{Period: 100_001}}}}}, codes.InvalidArgument, []string{"indicators[1].sma.period", "100001"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{{Kind: &marketv1.Indicator_Rsi{Rsi: &marketv1.Rsi{Period: 4_000_000_000}}}}}, codes.InvalidArgument, []string{"indicators[0].rsi.period"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{{Kind: &marketv1.Indicator_Macd{Macd: &marketv1.Macd{SignalPeriod: 100_001}}}}}, codes.InvalidArgument, []string{"indicators[0].macd.signal_period"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{{Kind: &marketv1.Indicator_Bollinger{Bollinger: &marketv1.Bollinger{DevDown: math.NaN()}}}}}, codes.InvalidArgument, []string{"indicators[0].bollinger.dev_down"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{{Kind: &marketv1.Indicator_Bollinger{Bollinger: &marketv1.Bollinger{DevUp: -1}}}}}, codes.InvalidArgument, []string{"indicators[0].bollinger.dev_up"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: []*marketv1.Indicator{{Kind: &marketv1.Indicator_Atr{Atr: &marketv1.Atr{Period: 100_001}}}}}, codes.InvalidArgument, []string{"indicators[0].atr.period"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", Indicators: many}, codes.InvalidArgument, []string{"indicators", "64"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "TSLA", Indicators: []*marketv1.Indicator{sma}}, codes.NotFound, []string{"TSLA"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "", Indicators: []*marketv1.Indicator{sma}}, codes.InvalidArgument, []string{"symbol"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", StartDate: "2012-00-01", Indicators: []*marketv1.Indicator{sma}}, codes.InvalidArgument, []string{"start_date"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", EndDate: "tomorrow", Indicators: []*marketv1.Indicator{sma}}, codes.InvalidArgument, []string{"end_date"}},
		{&marketv1.ComputeIndicatorsRequest{Symbol: "AAPL", StartDate: "2012-02-01", EndDate: "2012-01-31", Indicators: []*marketv1.Indicator{sma}}, codes.InvalidArgument, []string{"start_date", "end_date", "after"}},
	} {
		_, err := c.ComputeIndicators(callCtx(t), tc.req)
		wantStatus(t, err, tc.code, tc.words...)
	}
	r, _ := compute(t, c, "AAPL", "2012-01-03", "2012-01-31", many[:64]...)
	if len(r.GetColumns()) != 64 {
		t.Errorf("64 indicators answered %d columns", len(r.GetColumns()))
	}
}

func render(t *testing.T, c marketv1.MarketServiceClient, req *marketv1.RenderChartRequest) (string, []byte, int) {
	t.Helper()
	stream, err := c.RenderChart(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := recvAll[marketv1.RenderChartResponse](stream)
	if err != nil {
		t.Fatalf("RenderChart(%v): %v", req, err)
	}
	if len(replies) == 0 {
		t.Fatalf("RenderChart(%v) answered nothing", req)
	}
	var data []byte
	for i, r := range replies {
		if len(r.GetChunk()) > maxChunk {
			t.Errorf("chunk %d holds %d bytes", i, len(r.GetChunk()))
		}
		if i > 0 && r.GetContentType() != "" {
			t.Errorf("content_type in message %d", i)
		}
		data = append(data, r.GetChunk()...)
	}
	return replies[0].GetContentType(), data, len(replies)
}

func TestRenderChartDrawsPNGAndSVGOfTheSizeAndPanelsAsked(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	req := func(mod func(*marketv1.RenderChartRequest)) *marketv1.RenderChartRequest {
		r := &marketv1.RenderChartRequest{Symbol: "AAPL", StartDate: "2012-01-03", EndDate: "2012-12-31"}
		if mod != nil {
			mod(r)
		}
		return r
	}
	ct, def, _ := render(t, c, req(nil))
	if ct != "image/png" {
		t.Errorf("content_type %q", ct)
	}
	wantPNG(t, def, 1000, 700)
	_, explicit, _ := render(t, c, req(func(r *marketv1.RenderChartRequest) {
		r.Format, r.Width, r.Height = marketv1.Format_FORMAT_PNG, 1000, 700
		r.Panels = []marketv1.Panel{marketv1.Panel_PANEL_PRICE, marketv1.Panel_PANEL_VOLUME, marketv1.Panel_PANEL_MACD}
		r.Macd = &marketv1.Macd{FastPeriod: 12, SlowPeriod: 26, SignalPeriod: 9}
	}))
	if !bytes.Equal(def, explicit) {
		t.Error("the defaults spelled out draw a different chart")
	}
	for _, size := range [][2]uint32{{200, 200}, {4000, 300}, {1234, 567}} {
		ct, data, count := render(t, c, req(func(r *marketv1.RenderChartRequest) { r.Width, r.Height = size[0], size[1] }))
		if ct != "image/png" {
			t.Errorf("content_type %q", ct)
		}
		wantPNG(t, data, int(size[0]), int(size[1]))
		if want := max(1, (len(data)+maxChunk-1)/maxChunk); count != want {
			t.Errorf("%d bytes in %d messages, want %d", len(data), count, want)
		}
	}
	ct, svg, _ := render(t, c, req(func(r *marketv1.RenderChartRequest) {
		r.Format, r.Width, r.Height = marketv1.Format_FORMAT_SVG, 800, 600
	}))
	if ct != "image/svg+xml" {
		t.Errorf("content_type %q", ct)
	}
	var root struct {
		XMLName xml.Name
		Width   string `xml:"width,attr"`
		Height  string `xml:"height,attr"`
	}
	if err := xml.Unmarshal(svg, &root); err != nil {
		t.Fatalf("SVG is not XML: %v", err)
	}
	if root.XMLName.Local != "svg" || root.Width != "800" || root.Height != "600" {
		t.Errorf("SVG root %v %sx%s, want svg 800x600", root.XMLName, root.Width, root.Height)
	}
	if n := bytes.Count(svg, []byte("<")); n < 100 {
		t.Errorf("the SVG holds %d elements: it looks empty", n)
	}

	priceOnly := req(func(r *marketv1.RenderChartRequest) { r.Panels = []marketv1.Panel{marketv1.Panel_PANEL_PRICE} })
	macdPrice := req(func(r *marketv1.RenderChartRequest) {
		r.Panels = []marketv1.Panel{marketv1.Panel_PANEL_MACD, marketv1.Panel_PANEL_PRICE}
	})
	priceMacd := req(func(r *marketv1.RenderChartRequest) {
		r.Panels = []marketv1.Panel{marketv1.Panel_PANEL_PRICE, marketv1.Panel_PANEL_MACD}
	})
	otherMacd := req(func(r *marketv1.RenderChartRequest) {
		r.Macd = &marketv1.Macd{FastPeriod: 5, SlowPeriod: 35, SignalPeriod: 5}
	})
	images := map[string]bool{string(def): true}
	for _, r := range []*marketv1.RenderChartRequest{priceOnly, macdPrice, otherMacd} {
		_, data, _ := render(t, c, r)
		wantPNG(t, data, 1000, 700)
		images[string(data)] = true
	}
	if len(images) != 4 {
		t.Errorf("4 different charts gave %d different images", len(images))
	}
	_, a, _ := render(t, c, macdPrice)
	_, b, _ := render(t, c, priceMacd)
	if !bytes.Equal(a, b) {
		t.Error("the order panels are given in changed the chart")
	}
	_, none, _ := render(t, c, req(func(r *marketv1.RenderChartRequest) { r.StartDate, r.EndDate = "2012-01-07", "2012-01-08" }))
	wantPNG(t, none, 1000, 700)
}

func TestRenderChartRefusalsNameTheFieldAndValue(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	for _, tc := range []struct {
		mod   func(*marketv1.RenderChartRequest)
		code  codes.Code
		words []string
	}{
		{func(r *marketv1.RenderChartRequest) { r.Width = 199 }, codes.InvalidArgument, []string{"width", "199"}},
		{func(r *marketv1.RenderChartRequest) { r.Width = 4001 }, codes.InvalidArgument, []string{"width", "4001"}},
		{func(r *marketv1.RenderChartRequest) { r.Height = math.MaxUint32 }, codes.InvalidArgument, []string{"height", "4294967295"}},
		{func(r *marketv1.RenderChartRequest) { r.Format = 7 }, codes.InvalidArgument, []string{"format", "7"}},
		{func(r *marketv1.RenderChartRequest) { r.Panels = []marketv1.Panel{marketv1.Panel_PANEL_UNSPECIFIED} }, codes.InvalidArgument, []string{"panels[0]"}},
		{func(r *marketv1.RenderChartRequest) { r.Panels = []marketv1.Panel{marketv1.Panel_PANEL_PRICE, 9} }, codes.InvalidArgument, []string{"panels[1]", "9"}},
		{func(r *marketv1.RenderChartRequest) { r.Macd = &marketv1.Macd{SlowPeriod: 100_001} }, codes.InvalidArgument, []string{"macd.slow_period"}},
		{func(r *marketv1.RenderChartRequest) { r.Symbol = "TSLA" }, codes.NotFound, []string{"TSLA"}},
		{func(r *marketv1.RenderChartRequest) { r.Symbol = "" }, codes.InvalidArgument, []string{"symbol"}},
		{func(r *marketv1.RenderChartRequest) { r.StartDate = "2012-13-01" }, codes.InvalidArgument, []string{"start_date", `"2012-13-01"`}},
		{func(r *marketv1.RenderChartRequest) { r.EndDate = "2012-12-32" }, codes.InvalidArgument, []string{"end_date", `"2012-12-32"`}},
		{func(r *marketv1.RenderChartRequest) { r.StartDate = "2013-01-01" }, codes.InvalidArgument, []string{"start_date", "after", "end_date"}},
	} {
		r := &marketv1.RenderChartRequest{Symbol: "AAPL", StartDate: "2012-01-03", EndDate: "2012-12-31"}
		tc.mod(r)
		stream, err := c.RenderChart(callCtx(t), r)
		if err != nil {
			t.Fatal(err)
		}
		_, err = recvAll[marketv1.RenderChartResponse](stream)
		wantStatus(t, err, tc.code, tc.words...)
	}
}

func TestRenderChartPastItsDeadlineIsDeadlineExceededAndCancelledMidwayIsCanceled(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	// A 4000x4000 chart of the whole history takes far longer than these
	// deadlines to draw; whichever side's timer fires first, the status is
	// DEADLINE_EXCEEDED.
	big := &marketv1.RenderChartRequest{Symbol: "AAPL", Width: 4000, Height: 4000}
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		began := time.Now()
		stream, err := c.RenderChart(ctx, big)
		if err == nil {
			_, err = recvAll[marketv1.RenderChartResponse](stream)
		}
		cancel()
		wantStatus(t, err, codes.DeadlineExceeded)
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("a %v deadline ended the call after %v", d, took)
		}
	}

	// The same chart is many messages: cancel after the first.
	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := marketv1.NewMarketServiceClient(windowedConn(t, sharedServer(t))).RenderChart(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetContentType() != "image/png" || len(first.GetChunk()) != maxChunk {
		t.Fatalf("first message: %q, %d bytes", first.GetContentType(), len(first.GetChunk()))
	}
	cancel()
	rest, err := recvAll[marketv1.RenderChartResponse](stream)
	wantStatus(t, err, codes.Canceled)
	ct, data, count := render(t, c, big)
	if ct != "image/png" || count <= len(rest)+1 {
		t.Errorf("the whole chart is %d messages; %d arrived before and after the cancel", count, len(rest)+1)
	}
	wantPNG(t, data, 4000, 4000)
}

func TestComputeIndicatorsAsTradedMatchTheDefinitionsOverTheSampleFile(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	sample := sampleBars(t)
	macd := &marketv1.Indicator{Kind: &marketv1.Indicator_Macd{Macd: &marketv1.Macd{}}}
	sma := &marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{}}}
	for _, symbol := range []string{"AAPL", "MSFT"} {
		var x []float64
		for _, b := range sample[symbol] {
			x = append(x, b.close)
		}
		reply, got := computeReq(t, c, &marketv1.ComputeIndicatorsRequest{Symbol: symbol, Indicators: []*marketv1.Indicator{macd, sma}, Adjusted: proto.Bool(false)})
		if reply.GetAdjusted() || len(reply.GetDates()) != len(x) {
			t.Fatalf("%s as traded: adjusted %v, %d dates for %d bars", symbol, reply.GetAdjusted(), len(reply.GetDates()), len(x))
		}
		line, sig, _ := macdRef(x, 12, 26, 9)
		wantColumn(t, symbol+" macd as traded", got["macd_12_26_9"], line, 1e-9)
		wantColumn(t, symbol+" macd signal as traded", got["macd_12_26_9_signal"], sig, 1e-9)
		wantColumn(t, symbol+" sma_30 as traded", got["sma_30"], smaRef(x, 30), 1e-9)
		if symbol != "AAPL" {
			continue
		}
		// TA-Lib 0.8.2's MACD(12, 26, 9) over AAPL's sample closes at
		// 2010-01-04 (talib.MACD(closes, 12, 26, 9)), as GetMACD answers it;
		// over its adj_close column, what ComputeIndicators answers by default.
		i := slices.Index(reply.GetDates(), "2010-01-04")
		if !closeTo(got["macd_12_26_9"][i], 3.926500332345171, 1e-12) || !closeTo(got["macd_12_26_9_signal"][i], 2.1483999269706064, 1e-12) {
			t.Errorf("AAPL 2010-01-04 macd, signal as traded = %v, %v", got["macd_12_26_9"][i], got["macd_12_26_9_signal"][i])
		}
		_, adj := compute(t, c, "AAPL", "2010-01-04", "2010-01-04", macd)
		if !closeTo(adj["macd_12_26_9"][0], 0.504610018895864, 1e-12) || !closeTo(adj["macd_12_26_9_signal"][0], 0.27609933426313843, 1e-12) {
			t.Errorf("AAPL 2010-01-04 adjusted macd, signal = %v, %v", adj["macd_12_26_9"][0], adj["macd_12_26_9_signal"][0])
		}
	}
}

func TestAnImportedSplitIsAdjustedAwayUnlessAskedForPricesAsTraded(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	// A 2:1 split after 20 days: closes halve, adjusted closes do not move.
	split := newSymbol("split")
	bars := syntheticBars(40)
	for i, b := range bars {
		if i < 20 {
			b.Open, b.High, b.Low, b.Close = 2*b.Open, 2*b.High, 2*b.Low, 2*b.Close
			b.AdjClose = proto.Float64(b.Close / 2)
		} else {
			b.AdjClose = proto.Float64(b.Close)
		}
	}
	importBars(t, c, split, bars, 40)
	plain := newSymbol("plain")
	importBars(t, c, plain, syntheticBars(40), 40)
	if s := summaries(t, c); !s[split].GetAdjusted() || s[plain].GetAdjusted() {
		t.Errorf("ListSymbols: %v, %v; want the split adjusted, the other not", s[split], s[plain])
	}

	sma := &marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{Period: 1}}}
	adjusted, got := compute(t, c, split, "", "", sma)
	if !adjusted.GetAdjusted() {
		t.Error("the split's indicators are not adjusted")
	}
	for i, v := range got["sma_1"] {
		want := bars[i].GetClose()
		if i < 20 {
			want /= 2
		}
		if !closeTo(v, want, 1e-12) {
			t.Errorf("%s: adjusted close %v, want %v", adjusted.GetDates()[i], v, want)
		}
	}
	traded, got := computeReq(t, c, &marketv1.ComputeIndicatorsRequest{Symbol: split, Indicators: []*marketv1.Indicator{sma}, Adjusted: proto.Bool(false)})
	if traded.GetAdjusted() || !slices.Equal(got["sma_1"], closes(bars)) {
		t.Errorf("the split as traded: adjusted %v, closes %v", traded.GetAdjusted(), got["sma_1"])
	}
	// Asked for adjusted prices, a symbol without adjusted closes answers
	// its prices as traded, and says so.
	if r := getBarsReply(t, c, &marketv1.GetBarsRequest{Symbol: plain}); r.GetAdjusted() || !sameTuples(tuples(r.GetBars()), tuples(syntheticBars(40))) {
		t.Errorf("GetBars of a symbol without adjusted closes: adjusted %v", r.GetAdjusted())
	}
}

func TestRenderChartSaysInItsFirstMessageWhetherItsPricesAreAdjusted(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	images := map[string]bool{}
	for _, adjusted := range []*bool{nil, proto.Bool(false)} {
		stream, err := c.RenderChart(callCtx(t), &marketv1.RenderChartRequest{
			Symbol: "MSFT", StartDate: "2003-01-02", EndDate: "2003-03-31", Width: 640, Height: 480, Adjusted: adjusted,
		})
		if err != nil {
			t.Fatal(err)
		}
		replies, err := recvAll[marketv1.RenderChartResponse](stream)
		if err != nil {
			t.Fatal(err)
		}
		want := adjusted == nil
		var data []byte
		for i, r := range replies {
			if r.GetAdjusted() != (want && i == 0) {
				t.Errorf("asked adjusted %v: message %d says adjusted %v", adjusted, i, r.GetAdjusted())
			}
			data = append(data, r.GetChunk()...)
		}
		wantPNG(t, data, 640, 480)
		images[string(data)] = true
	}
	if len(images) != 2 {
		t.Error("the chart of adjusted prices is the chart of prices as traded")
	}
}

func TestSymbolsAreOneSymbolInAnyCaseAndAnsweredUpperCase(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	if lower, upper := getBars(t, c, "aapl", "2010-01-04", "2010-01-08"), getBars(t, c, "AAPL", "2010-01-04", "2010-01-08"); len(lower) != 5 || !slices.EqualFunc(lower, upper, func(a, b *marketv1.Bar) bool { return proto.Equal(a, b) }) {
		t.Errorf("aapl answers %d bars, not AAPL's", len(lower))
	}
	sma := &marketv1.Indicator{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{}}}
	if r, _ := compute(t, c, "Msft", "2012-01-03", "2012-01-31", sma); r.GetSymbol() != "MSFT" {
		t.Errorf("ComputeIndicators of Msft answers symbol %q", r.GetSymbol())
	}
	if ct, data, _ := render(t, c, &marketv1.RenderChartRequest{Symbol: "goog", Width: 300, Height: 300}); ct != "image/png" {
		t.Errorf("RenderChart of goog: %q", ct)
	} else {
		wantPNG(t, data, 300, 300)
	}
	seed, err := idc.NewIndicatorClient(conn(t)).GetMACD(callCtx(t), &idc.MACDRequest{StartDate: "2010-01-04", EndDate: "2010-01-08", Symbol: "ibm"})
	if err != nil || len(seed.GetMacd()) != 5 {
		t.Errorf("GetMACD of ibm: %v, %v", seed, err)
	}

	symbol := newSymbol("case")
	if r := importBars(t, c, strings.ToLower(symbol), syntheticBars(3), 3); r.GetSymbol() != symbol || r.GetSummary().GetSymbol() != symbol {
		t.Errorf("import of %s answered %v", strings.ToLower(symbol), r)
	}
	// Another case of the same symbol adds to it.
	more := []*marketv1.Bar{{Date: "2020-01-06", Open: 1, High: 2, Low: 1, Close: 2}}
	if r := importBars(t, c, "x"+symbol[1:], more, 1); r.GetSymbol() != symbol || r.GetSummary().GetBars() != 4 {
		t.Errorf("a second import in another case answered %v", r)
	}
	var listed []string
	for name := range summaries(t, c) {
		if strings.EqualFold(name, symbol) {
			listed = append(listed, name)
		}
	}
	if !slices.Equal(listed, []string{symbol}) {
		t.Errorf("ListSymbols has %v, want only %s", listed, symbol)
	}
}

func TestDeleteSymbolRemovesEveryBarOfAnImportedSymbol(t *testing.T) {
	c := marketv1.NewMarketServiceClient(conn(t))
	symbol := newSymbol("delete")
	importBars(t, c, symbol, syntheticBars(30), 7)
	reply, err := c.DeleteSymbol(callCtx(t), &marketv1.DeleteSymbolRequest{Symbol: strings.ToLower(symbol)})
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetSymbol() != symbol || reply.GetDeleted() != 30 {
		t.Errorf("DeleteSymbol = %v, want %s and 30", reply, symbol)
	}
	if _, ok := summaries(t, c)[symbol]; ok {
		t.Errorf("ListSymbols still has %s", symbol)
	}
	_, err = c.GetBars(callCtx(t), &marketv1.GetBarsRequest{Symbol: symbol})
	wantStatus(t, err, codes.NotFound, symbol)
	_, err = c.DeleteSymbol(callCtx(t), &marketv1.DeleteSymbolRequest{Symbol: symbol})
	wantStatus(t, err, codes.NotFound, symbol)
	_, err = c.DeleteSymbol(callCtx(t), &marketv1.DeleteSymbolRequest{})
	wantStatus(t, err, codes.InvalidArgument, "symbol")
	_, err = c.DeleteSymbol(callCtx(t), &marketv1.DeleteSymbolRequest{Symbol: "A B"})
	wantStatus(t, err, codes.InvalidArgument, "symbol")
	// Deleted, it can be imported afresh; the sample is untouched.
	if r := importBars(t, c, symbol, syntheticBars(2), 2); r.GetSummary().GetBars() != 2 {
		t.Errorf("reimport after delete: %v", r)
	}
	listed := summaries(t, c)
	for _, s := range sampleSymbols {
		if !proto.Equal(listed[s.GetSymbol()], s) {
			t.Errorf("after a delete ListSymbols has %v, want %v", listed[s.GetSymbol()], s)
		}
	}
}
