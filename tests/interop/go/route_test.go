package interop

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rg "github.com/dataport/dataport/clients/go/compat/routeguide"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const (
	maxLat = 900_000_000
	maxLon = 1_800_000_000
)

type landmark struct {
	name     string
	lat, lon int32
}

// builtinFeatures are the landmarks the server serves without --features,
// read from the file it compiles in.
func builtinFeatures(t *testing.T) []landmark {
	t.Helper()
	path := filepath.Join("..", "..", "..", "crates", "dataport-core", "src", "route", "builtin_features.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var records []struct {
		Name     string `json:"name"`
		Location struct {
			Latitude  int32 `json:"latitude"`
			Longitude int32 `json:"longitude"`
		} `json:"location"`
	}
	if err := json.Unmarshal(raw, &records); err != nil {
		t.Fatal(err)
	}
	out := make([]landmark, len(records))
	for i, r := range records {
		out[i] = landmark{r.Name, r.Location.Latitude, r.Location.Longitude}
	}
	if len(out) != 24 {
		t.Fatalf("%s holds %d landmarks, the tests assume 24", path, len(out))
	}
	return out
}

func byName(t *testing.T, name string) *rg.Point {
	t.Helper()
	for _, f := range builtinFeatures(t) {
		if f.name == name {
			return pt(f.lat, f.lon)
		}
	}
	t.Fatalf("no landmark %q", name)
	return nil
}

func pt(lat, lon int32) *rg.Point { return &rg.Point{Latitude: lat, Longitude: lon} }

// haversine is the great-circle distance in metres between two points in
// degrees x 1e7, on a sphere of radius 6371 km.
func haversine(a, b *rg.Point) float64 {
	const r = 6_371_000.0
	rad := func(v int32) float64 { return float64(v) / 1e7 * math.Pi / 180 }
	lat1, lat2 := rad(a.Latitude), rad(b.Latitude)
	dlat := lat2 - lat1
	dlon := rad(b.Longitude) - rad(a.Longitude)
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Atan2(math.Sqrt(h), math.Sqrt(1-h))
}

func landmarksOf(features []*rg.Feature) []landmark {
	out := make([]landmark, len(features))
	for i, f := range features {
		out[i] = landmark{f.GetName(), f.GetLocation().GetLatitude(), f.GetLocation().GetLongitude()}
	}
	slices.SortFunc(out, compareLandmarks)
	return out
}

func compareLandmarks(a, b landmark) int {
	return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.lat, b.lat), cmp.Compare(a.lon, b.lon))
}

func inside(features []landmark, latLo, latHi, lonLo, lonHi int32) []landmark {
	var out []landmark
	for _, f := range features {
		if latLo <= f.lat && f.lat <= latHi && lonLo <= f.lon && f.lon <= lonHi {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, compareLandmarks)
	return out
}

func TestGetFeatureAtEveryLandmarkReturnsIt(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	for _, f := range builtinFeatures(t) {
		got, err := client.GetFeature(callCtx(t), pt(f.lat, f.lon))
		if err != nil {
			t.Fatalf("GetFeature(%s): %v", f.name, err)
		}
		want := &rg.Feature{Name: f.name, Location: pt(f.lat, f.lon)}
		if !proto.Equal(got, want) {
			t.Errorf("GetFeature(%s) = %v, want %v", f.name, got, want)
		}
	}
}

func TestGetFeatureElsewhereReturnsAnUnnamedFeatureAtThePoint(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	eiffel := byName(t, "Eiffel Tower, Paris, France")
	for _, p := range []*rg.Point{
		pt(1, 1),
		pt(123_456_789, -98_765_432),
		pt(eiffel.Latitude+1, eiffel.Longitude), // only exact matches count
		pt(maxLat, maxLon),
		pt(-maxLat, -maxLon),
	} {
		got, err := client.GetFeature(callCtx(t), p)
		if err != nil {
			t.Fatalf("GetFeature(%v): %v", p, err)
		}
		if want := (&rg.Feature{Location: p}); !proto.Equal(got, want) {
			t.Errorf("GetFeature(%v) = %v, want %v", p, got, want)
		}
	}
}

func TestGetFeatureOffTheEarthIsInvalidArgumentNamingTheCoordinate(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	for _, c := range []struct {
		p     *rg.Point
		field string
	}{
		{pt(maxLat+1, 0), "latitude"},
		{pt(-maxLat-1, 0), "latitude"},
		{pt(math.MaxInt32, 0), "latitude"},
		{pt(0, maxLon+1), "longitude"},
		{pt(0, -maxLon-1), "longitude"},
		{pt(0, math.MinInt32), "longitude"},
	} {
		_, err := client.GetFeature(callCtx(t), c.p)
		wantStatus(t, err, codes.InvalidArgument, c.field)
	}
}

func TestListFeaturesStreamsTheBoxInclusivelyWhicheverCornersAreGiven(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	features := builtinFeatures(t)
	// Acropolis on the south-east corner, Tower Bridge on the west edge,
	// Brandenburg Gate on the north edge.
	south := byName(t, "Acropolis, Athens, Greece").Latitude
	east := byName(t, "Acropolis, Athens, Greece").Longitude
	north := byName(t, "Brandenburg Gate, Berlin, Germany").Latitude
	west := byName(t, "Tower Bridge, London, United Kingdom").Longitude
	europe := inside(features, south, north, west, east)
	if len(europe) < 3 || len(europe) == len(features) {
		t.Fatalf("the box holds %d of %d landmarks", len(europe), len(features))
	}
	for _, corners := range [][2]*rg.Point{
		{pt(south, west), pt(north, east)},
		{pt(north, east), pt(south, west)},
		{pt(north, west), pt(south, east)},
		{pt(south, east), pt(north, west)},
	} {
		stream, err := client.ListFeatures(callCtx(t), &rg.Rectangle{Lo: corners[0], Hi: corners[1]})
		if err != nil {
			t.Fatal(err)
		}
		got, err := recvAll[rg.Feature](stream)
		if err != nil {
			t.Fatal(err)
		}
		if lm := landmarksOf(got); !slices.Equal(lm, europe) {
			t.Errorf("ListFeatures(%v) = %v, want %v", corners, lm, europe)
		}
	}
	// One unit inside every edge loses the three landmarks on them.
	stream, err := client.ListFeatures(callCtx(t), &rg.Rectangle{Lo: pt(south+1, west+1), Hi: pt(north-1, east-1)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll[rg.Feature](stream)
	if err != nil {
		t.Fatal(err)
	}
	if want := inside(features, south+1, north-1, west+1, east-1); len(want) != len(europe)-3 || !slices.Equal(landmarksOf(got), want) {
		t.Errorf("inner box = %v, want %v", landmarksOf(got), want)
	}
}

func TestListFeaturesOverTheWholeEarthAndAnEmptyBox(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	all := builtinFeatures(t)
	slices.SortFunc(all, compareLandmarks)
	stream, err := client.ListFeatures(callCtx(t), &rg.Rectangle{Lo: pt(maxLat, maxLon), Hi: pt(-maxLat, -maxLon)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll[rg.Feature](stream)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(landmarksOf(got), all) {
		t.Errorf("whole earth = %v, want all %d landmarks", landmarksOf(got), len(all))
	}
	stream, err = client.ListFeatures(callCtx(t), &rg.Rectangle{Lo: pt(-100_000_000, -1_600_000_000), Hi: pt(100_000_000, -1_500_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := recvAll[rg.Feature](stream); err != nil || len(got) != 0 {
		t.Errorf("the Pacific = %v, %v; want nothing", got, err)
	}
}

func TestListFeaturesWithoutACornerIsInvalidArgumentNamingIt(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	for field, rect := range map[string]*rg.Rectangle{
		"lo": {Hi: pt(1, 1)},
		"hi": {Lo: pt(1, 1)},
	} {
		stream, err := client.ListFeatures(callCtx(t), rect)
		if err != nil {
			t.Fatal(err)
		}
		_, err = recvAll[rg.Feature](stream)
		wantStatus(t, err, codes.InvalidArgument, field)
	}
}

func TestListFeaturesCancelledMidwayEndsCanceledAndTheServerGoesOn(t *testing.T) {
	// A features file long enough that the stream is still under way when
	// the client gives up.
	const count = 50_000
	type loc struct {
		Latitude  int32 `json:"latitude"`
		Longitude int32 `json:"longitude"`
	}
	type rec struct {
		Name     string `json:"name"`
		Location loc    `json:"location"`
	}
	records := make([]rec, count)
	for i := range records {
		records[i] = rec{fmt.Sprintf("feature %d", i), loc{int32(i * 1000), int32(-i * 1000)}}
	}
	raw, err := json.Marshal(records)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "features.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := ownServer(t, nil, "--features", path, "--no-sample-data")
	client := rg.NewRouteGuideClient(srv.conn)
	world := &rg.Rectangle{Lo: pt(-maxLat, -maxLon), Hi: pt(maxLat, maxLon)}

	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := rg.NewRouteGuideClient(windowedConn(t, srv)).ListFeatures(ctx, world)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.GetName(), "feature ") {
		t.Fatalf("first feature = %v", first)
	}
	cancel()
	got, err := recvAll[rg.Feature](stream)
	wantStatus(t, err, codes.Canceled)
	if len(got)+1 >= count {
		t.Errorf("all %d features arrived before the cancel", count)
	}

	stream, err = client.ListFeatures(callCtx(t), world)
	if err != nil {
		t.Fatal(err)
	}
	all, err := recvAll[rg.Feature](stream)
	if err != nil || len(all) != count {
		t.Fatalf("ListFeatures after a cancel = %d features, %v; want %d", len(all), err, count)
	}
	f, err := client.GetFeature(callCtx(t), pt(7000, -7000))
	if err != nil || f.GetName() != "feature 7" {
		t.Fatalf("GetFeature(feature 7) = %v, %v", f, err)
	}
}

func TestRecordRouteCountsPointsFeaturesAndHaversineDistance(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	route := []*rg.Point{
		byName(t, "Eiffel Tower, Paris, France"),
		byName(t, "Brandenburg Gate, Berlin, Germany"),
		pt(480_000_000, 110_000_000), // somewhere in Bavaria: no landmark
		byName(t, "Colosseum, Rome, Italy"),
		byName(t, "Colosseum, Rome, Italy"), // a second visit counts again
		byName(t, "Tower Bridge, London, United Kingdom"),
	}
	distance := 0.0 // summed as floats, truncated once
	for i := 1; i < len(route); i++ {
		distance += haversine(route[i-1], route[i])
	}
	stream, err := client.RecordRoute(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range route {
		if err := stream.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	summary, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	want := &rg.RouteSummary{PointCount: 6, FeatureCount: 5, Distance: int32(distance), ElapsedTime: 0}
	if !proto.Equal(summary, want) {
		t.Errorf("RecordRoute = %v, want %v", summary, want)
	}
	if summary.Distance < 2_000_000 { // Paris-Berlin-Bavaria-Rome-London is over 2000 km
		t.Errorf("distance %d m is too short", summary.Distance)
	}
}

func TestRecordRouteOfOneAndOfNoPoints(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	for _, route := range [][]*rg.Point{{pt(1, 1)}, nil} {
		stream, err := client.RecordRoute(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range route {
			if err := stream.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		summary, err := stream.CloseAndRecv()
		if err != nil {
			t.Fatal(err)
		}
		want := &rg.RouteSummary{PointCount: int32(len(route))}
		if !proto.Equal(summary, want) {
			t.Errorf("RecordRoute(%v) = %v, want %v", route, summary, want)
		}
	}
}

func TestRecordRouteOffTheEarthIsInvalidArgument(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	stream, err := client.RecordRoute(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(pt(1, 1))
	_ = stream.Send(pt(maxLat+1, 0))
	_, err = stream.CloseAndRecv()
	wantStatus(t, err, codes.InvalidArgument, "latitude")
}

func TestRecordRouteWithAShortDeadlineIsDeadlineExceededAndCancelIsCanceled(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	// The stream stays open past its deadline: the server waits for points.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stream, err := client.RecordRoute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(pt(1, 1)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var pending rg.RouteSummary
	err = stream.RecvMsg(&pending)
	wantStatus(t, err, codes.DeadlineExceeded)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the deadline took %v to end the call", took)
	}

	ctx, cancel = context.WithCancel(callCtx(t))
	stream, err = client.RecordRoute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(pt(1, 1))
	cancel()
	var s rg.RouteSummary
	wantStatus(t, stream.RecvMsg(&s), codes.Canceled)

	stream, err = client.RecordRoute(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(pt(2, 2))
	if summary, err := stream.CloseAndRecv(); err != nil || summary.GetPointCount() != 1 {
		t.Fatalf("RecordRoute after a cancel = %v, %v", summary, err)
	}
}

type chatLine struct {
	lat, lon int32
	msg      string
}

func note(p *rg.Point, msg string) *rg.RouteNote { return &rg.RouteNote{Location: p, Message: msg} }

func recvNotes(t *testing.T, stream rg.RouteGuide_RouteChatClient, n int) []chatLine {
	t.Helper()
	var out []chatLine
	for range n {
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d notes: %v", len(out), err)
		}
		out = append(out, chatLine{r.GetLocation().GetLatitude(), r.GetLocation().GetLongitude(), r.GetMessage()})
	}
	return out
}

func TestRouteChatAnswersEachNoteWithEarlierNotesAtItsLocationInOrder(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	p1, p2 := byName(t, "Eiffel Tower, Paris, France"), pt(10, 20)
	stream, err := client.RouteChat(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*rg.RouteNote{note(p1, "first"), note(p2, "elsewhere"), note(p1, "second")} {
		if err := stream.Send(n); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := recvNotes(t, stream, 1), []chatLine{{p1.Latitude, p1.Longitude, "first"}}; !slices.Equal(got, want) {
		t.Errorf("after the first three notes: %v, want %v", got, want)
	}
	if err := stream.Send(note(p1, "third")); err != nil {
		t.Fatal(err)
	}
	want := []chatLine{{p1.Latitude, p1.Longitude, "first"}, {p1.Latitude, p1.Longitude, "second"}}
	if got := recvNotes(t, stream, 2); !slices.Equal(got, want) {
		t.Errorf("after the fourth note: %v, want %v", got, want)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if rest, err := recvAll[rg.RouteNote](stream); err != nil || len(rest) != 0 {
		t.Errorf("after CloseSend: %v, %v; want a clean end", rest, err)
	}

	// Notes belong to one call: a new call has heard nothing.
	stream, err = client.RouteChat(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(note(p1, "a new call"))
	_ = stream.CloseSend()
	if rest, err := recvAll[rg.RouteNote](stream); err != nil || len(rest) != 0 {
		t.Errorf("a new call: %v, %v; want nothing", rest, err)
	}
}

func TestRouteChatNoteWithoutLocationIsInvalidArgument(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	stream, err := client.RouteChat(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&rg.RouteNote{Message: "nowhere"})
	_, err = stream.Recv()
	wantStatus(t, err, codes.InvalidArgument, "location")
}

func TestRouteChatCancelledMidwayAndPastItsDeadline(t *testing.T) {
	client := rg.NewRouteGuideClient(conn(t))
	p := pt(5, 5)
	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := client.RouteChat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(note(p, "one"))
	_ = stream.Send(note(p, "two"))
	if got := recvNotes(t, stream, 1); got[0].msg != "one" {
		t.Fatalf("echo = %v", got)
	}
	cancel()
	_, err = stream.Recv()
	wantStatus(t, err, codes.Canceled)

	short, done := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer done()
	stream, err = client.RouteChat(short)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(note(p, "waiting"))
	_, err = stream.Recv()
	if !errors.Is(err, io.EOF) {
		wantStatus(t, err, codes.DeadlineExceeded)
	} else {
		t.Fatal("the chat ended cleanly before its deadline")
	}

	// A fresh call still chats.
	stream, err = client.RouteChat(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		_ = stream.Send(note(p, m))
	}
	_ = stream.CloseSend()
	rest, err := recvAll[rg.RouteNote](stream)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, n := range rest {
		msgs = append(msgs, n.GetMessage())
	}
	if want := []string{"a", "a", "b"}; !slices.Equal(msgs, want) {
		t.Errorf("chat after a cancel = %v, want %v", msgs, want)
	}
}
