package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/pb"
	outliersv1 "github.com/dataport/dataport/clients/go/dataport/outliers/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The rules as the proto defines them, computed here. Scores are compared to
// a relative 1e-12 and the series are built so that no point lies within
// rounding of a threshold, so the outliers are decided exactly.

// pairwiseSum is numpy's summation of a contiguous float64 array.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		s := 0.0
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range 8 {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	default:
		h := n / 2
		h -= h % 8
		return pairwiseSum(a[:h]) + pairwiseSum(a[h:])
	}
}

func meanStd(x []float64, ddof int) (float64, float64) {
	mean := pairwiseSum(x) / float64(len(x))
	sq := make([]float64, len(x))
	for i, v := range x {
		sq[i] = (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(pairwiseSum(sq) / float64(len(x)-ddof))
}

// percentile is numpy's default (linear) percentile of sorted x.
func percentile(sorted []float64, p float64) float64 {
	pos := float64(len(sorted)-1) * p
	lo := math.Floor(pos)
	frac := pos - lo
	i := int(lo)
	if i+1 >= len(sorted) {
		return sorted[i]
	}
	return sorted[i] + (sorted[i+1]-sorted[i])*frac
}

type method struct {
	kind   string // z_score, modified_z_score, iqr
	param  float64
	sample bool
}

func (m method) value() float64 {
	if m.param != 0 {
		return m.param
	}
	return map[string]float64{"z_score": 2, "modified_z_score": 3.5, "iqr": 1.5}[m.kind]
}

func (m method) proto() *outliersv1.Method {
	switch m.kind {
	case "z_score":
		return &outliersv1.Method{Kind: &outliersv1.Method_ZScore{ZScore: &outliersv1.ZScore{Threshold: m.param, Sample: m.sample}}}
	case "modified_z_score":
		return &outliersv1.Method{Kind: &outliersv1.Method_ModifiedZScore{ModifiedZScore: &outliersv1.ModifiedZScore{Threshold: m.param}}}
	default:
		return &outliersv1.Method{Kind: &outliersv1.Method_Iqr{Iqr: &outliersv1.Iqr{K: m.param}}}
	}
}

// judge answers the scores and outlier flags of points against series x.
func judge(m method, x, points []float64) (scores []float64, flags []bool, stats []float64) {
	scores, flags = make([]float64, len(points)), make([]bool, len(points))
	switch m.kind {
	case "z_score":
		ddof := 0
		if m.sample {
			ddof = 1
		}
		mean, sigma := meanStd(x, ddof)
		stats = []float64{mean, sigma}
		for i, v := range points {
			d := v - mean
			scores[i] = d / sigma
			if sigma == 0 && d == 0 {
				scores[i] = 0
			}
			flags[i] = math.Abs(d) > m.value()*sigma
		}
	case "modified_z_score":
		s := slices.Sorted(slices.Values(x))
		median := percentile(s, 0.5)
		dev := make([]float64, len(x))
		for i, v := range x {
			dev[i] = math.Abs(v - median)
		}
		meanAD := pairwiseSum(dev) / float64(len(dev))
		slices.Sort(dev)
		mad := percentile(dev, 0.5)
		stats = []float64{median, mad, meanAD}
		for i, v := range points {
			switch {
			case mad != 0:
				scores[i] = 0.6745 * (v - median) / mad
			case meanAD != 0:
				scores[i] = (v - median) / (1.253314 * meanAD)
			}
			flags[i] = math.Abs(scores[i]) > m.value()
		}
	default:
		s := slices.Sorted(slices.Values(x))
		q1, q3 := percentile(s, 0.25), percentile(s, 0.75)
		iqr := q3 - q1
		lower, upper := q1-m.value()*iqr, q3+m.value()*iqr
		stats = []float64{q1, q3, lower, upper}
		for i, v := range points {
			switch {
			case v > q3:
				scores[i] = (v - q3) / iqr
			case v < q1:
				scores[i] = (v - q1) / iqr
			}
			flags[i] = v < lower || v > upper
		}
	}
	return scores, flags, stats
}

func ts(i int) *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: 1_700_000_000 + int64(i), Nanos: int32((i * 7919) % 1_000_000_000)}
}

// plantedSeries are named normal series with a few planted outliers,
// interleaved into one request.
func plantedSeries(rng *rand.Rand) (names []string, values []float64) {
	shapes := map[string][]float64{}
	for s := range 6 {
		n := []int{40, 150, 700}[s%3]
		scale := math.Pow(10, float64(s-2))
		level := float64(s*100 - 250)
		x := make([]float64, n)
		for i := range x {
			x[i] = level + scale*rng.NormFloat64()
		}
		for k := range 1 + n/200 {
			x[rng.IntN(n)] = level + float64(1-2*(k%2))*scale*(6+2*rng.Float64())
		}
		shapes[fmt.Sprintf("s%d", s)] = x
	}
	shapes["température"] = []float64{1, 2, 3, 2, 1, 2, 3, 2, 1, 50}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range shapes {
			if !yield(k) {
				return
			}
		}
	})
	next := map[string]int{}
	for {
		var left []string
		for _, k := range keys {
			if next[k] < len(shapes[k]) {
				left = append(left, k)
			}
		}
		if len(left) == 0 {
			return names, values
		}
		k := left[rng.IntN(len(left))]
		names = append(names, k)
		values = append(values, shapes[k][next[k]])
		next[k]++
	}
}

type seriesWant struct {
	count, outliers int
	stats           []float64
}

// expected applies m to each name's values on its own.
func expected(m method, names []string, values []float64) (indices []int32, scores []float64, series map[string]seriesWant) {
	positions := map[string][]int{}
	for i, n := range names {
		positions[n] = append(positions[n], i)
	}
	scores = make([]float64, len(values))
	series = map[string]seriesWant{}
	for name, pos := range positions {
		x := make([]float64, len(pos))
		for i, p := range pos {
			x[i] = values[p]
		}
		s, flags, stats := judge(m, x, x)
		count := 0
		for i, p := range pos {
			scores[p] = s[i]
			if flags[i] {
				indices = append(indices, int32(p))
				count++
			}
		}
		series[name] = seriesWant{len(pos), count, stats}
	}
	slices.Sort(indices)
	return indices, scores, series
}

func v1Request(names []string, values []float64, m *method) *outliersv1.DetectRequest {
	r := &outliersv1.DetectRequest{}
	for i := range values {
		r.Metrics = append(r.Metrics, &outliersv1.Metric{Time: ts(i), Name: names[i], Value: values[i]})
	}
	if m != nil {
		r.Method = m.proto()
	}
	return r
}

func sameScores(a, b float64) bool {
	if math.IsInf(b, 0) || b == 0 {
		return a == b
	}
	return closeTo(a, b, 1e-12)
}

func TestSeedDetectAnswersTheTwoSigmaRulePerSeries(t *testing.T) {
	client := pb.NewOutliersClient(conn(t))
	rng := rand.New(rand.NewPCG(1, 2))
	names, values := plantedSeries(rng)
	want, _, _ := expected(method{kind: "z_score"}, names, values)
	if len(want) < 10 {
		t.Fatalf("only %d planted outliers", len(want))
	}
	req := &pb.OutliersRequest{}
	for i, v := range values {
		req.Metrics = append(req.Metrics, &pb.Metric{Time: ts(i), Name: names[i], Value: v})
	}
	reply, err := client.Detect(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reply.GetIndices(), want) {
		t.Errorf("indices %v, want %v", reply.GetIndices(), want)
	}
	// The seed's single series, without times, as its collector sends it.
	one := &pb.OutliersRequest{}
	for _, v := range []float64{10, 11, 9, 10, 12, 10, 95, 11, 9, 10, -70, 10} {
		one.Metrics = append(one.Metrics, &pb.Metric{Name: "cpu", Value: v})
	}
	reply, err = client.Detect(callCtx(t), one)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{6, 10}; !slices.Equal(reply.GetIndices(), want) {
		t.Errorf("single series: %v, want %v", reply.GetIndices(), want)
	}
	reply, err = client.Detect(callCtx(t), &pb.OutliersRequest{})
	if err != nil || len(reply.GetIndices()) != 0 {
		t.Errorf("empty request: %v, %v", reply, err)
	}
}

func TestSeedDetectRefusesAValueThatIsNotFiniteNamingItsIndex(t *testing.T) {
	client := pb.NewOutliersClient(conn(t))
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		req := &pb.OutliersRequest{}
		for i, v := range []float64{1, 2, bad, 4, math.NaN()} {
			req.Metrics = append(req.Metrics, &pb.Metric{Time: ts(i), Name: "cpu", Value: v})
		}
		_, err := client.Detect(callCtx(t), req)
		wantStatus(t, err, codes.InvalidArgument, "metrics[2].value")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	<-ctx.Done()
	_, err := client.Detect(ctx, &pb.OutliersRequest{Metrics: []*pb.Metric{{Name: "cpu", Value: 1}}})
	wantStatus(t, err, codes.DeadlineExceeded)
}

func TestV1DetectAnswersIndicesScoresAndStatsByTheDefinitions(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	for i, m := range []method{
		{kind: "z_score"},
		{kind: "z_score", param: 2.5},
		{kind: "z_score", sample: true},
		{kind: "modified_z_score"},
		{kind: "modified_z_score", param: 2},
		{kind: "iqr"},
		{kind: "iqr", param: 3},
	} {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		names, values := plantedSeries(rng)
		wantIdx, wantScores, wantSeries := expected(m, names, values)
		reply, err := client.Detect(callCtx(t), v1Request(names, values, &m))
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if len(wantIdx) == 0 || !slices.Equal(reply.GetIndices(), wantIdx) {
			t.Errorf("%+v: indices %v, want %v", m, reply.GetIndices(), wantIdx)
		}
		if len(reply.GetScores()) != len(values) {
			t.Fatalf("%+v: %d scores for %d metrics", m, len(reply.GetScores()), len(values))
		}
		for j, s := range reply.GetScores() {
			if !sameScores(s, wantScores[j]) {
				t.Errorf("%+v: scores[%d] = %v, want %v", m, j, s, wantScores[j])
				break
			}
		}
		var got []string
		for _, s := range reply.GetSeries() {
			got = append(got, s.GetName())
			w := wantSeries[s.GetName()]
			if int(s.GetCount()) != w.count || int(s.GetOutliers()) != w.outliers {
				t.Errorf("%+v: %s count %d outliers %d, want %d %d", m, s.GetName(), s.GetCount(), s.GetOutliers(), w.count, w.outliers)
			}
			var stats []float64
			switch st := s.GetStats().(type) {
			case *outliersv1.SeriesStats_ZScore:
				stats = []float64{st.ZScore.GetMean(), st.ZScore.GetSigma()}
			case *outliersv1.SeriesStats_ModifiedZScore:
				stats = []float64{st.ModifiedZScore.GetMedian(), st.ModifiedZScore.GetMad(), st.ModifiedZScore.GetMeanAbsoluteDeviation()}
			case *outliersv1.SeriesStats_Iqr:
				stats = []float64{st.Iqr.GetQ1(), st.Iqr.GetQ3(), st.Iqr.GetLowerFence(), st.Iqr.GetUpperFence()}
			}
			if len(stats) != len(w.stats) {
				t.Errorf("%+v: %s stats %T, want %s", m, s.GetName(), s.GetStats(), m.kind)
				continue
			}
			for k := range stats {
				if !closeTo(stats[k], w.stats[k], 1e-12) {
					t.Errorf("%+v: %s stats %v, want %v", m, s.GetName(), stats, w.stats)
					break
				}
			}
		}
		// By name, as bytes.
		if !sort.StringsAreSorted(got) || len(got) != len(wantSeries) {
			t.Errorf("%+v: series %v", m, got)
		}
	}
}

func TestV1DetectSpecialSeriesScoreAsTheProtoDefines(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	detect := func(x []float64, m *method) *outliersv1.DetectResponse {
		t.Helper()
		names := make([]string, len(x))
		for i := range names {
			names[i] = "s"
		}
		r, err := client.Detect(callCtx(t), v1Request(names, x, m))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// MAD 0: the mean absolute deviation stands in.
	x := []float64{5, 5, 5, 5, 5, 5, 5, 5, 5, 5.1, 7, 4, 5}
	r := detect(x, &method{kind: "modified_z_score"})
	st := r.GetSeries()[0].GetModifiedZScore()
	meanAD := 3.1 / 13
	if st.GetMedian() != 5 || st.GetMad() != 0 || !closeTo(st.GetMeanAbsoluteDeviation(), meanAD, 1e-15) {
		t.Errorf("stats %v", st)
	}
	if !closeTo(r.GetScores()[10], 2/(1.253314*meanAD), 1e-12) || !closeTo(r.GetScores()[11], -1/(1.253314*meanAD), 1e-12) {
		t.Errorf("scores %v", r.GetScores())
	}
	if !slices.Equal(r.GetIndices(), []int32{10}) {
		t.Errorf("indices %v, want [10]", r.GetIndices())
	}
	// Everything equal: every score 0, whatever the method.
	for _, m := range []*method{nil, {kind: "z_score", sample: true}, {kind: "modified_z_score"}, {kind: "iqr"}} {
		r := detect([]float64{2.5, 2.5, 2.5, 2.5, 2.5, 2.5}, m)
		if len(r.GetIndices()) != 0 || !slices.Equal(r.GetScores(), make([]float64, 6)) {
			t.Errorf("%v: constant series %v %v", m, r.GetIndices(), r.GetScores())
		}
	}
	// IQR 0: +-infinity outside the quartiles.
	r = detect([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, -2}, &method{kind: "iqr"})
	want := append(make([]float64, 10), math.Inf(1), math.Inf(-1))
	if !slices.Equal(r.GetScores(), want) || !slices.Equal(r.GetIndices(), []int32{10, 11}) {
		t.Errorf("IQR 0: scores %v indices %v", r.GetScores(), r.GetIndices())
	}
	iqr := r.GetSeries()[0].GetIqr()
	if iqr.GetQ1() != 1 || iqr.GetQ3() != 1 || iqr.GetLowerFence() != 1 || iqr.GetUpperFence() != 1 {
		t.Errorf("IQR 0 stats %v", iqr)
	}
	// The fences decide where the score rounds to k.
	r = detect([]float64{1.0, 1.3, -0.5, 0.2, -0.30000000000000004, -0.30000000000000004, -1.9000000000000001}, &method{kind: "iqr"})
	if !slices.Equal(r.GetIndices(), []int32{6}) || r.GetScores()[6] != -1.5 {
		t.Errorf("fence case: indices %v score %v", r.GetIndices(), r.GetScores()[6])
	}
	// An empty request answers nothing.
	if r := detect(nil, &method{kind: "iqr"}); len(r.GetIndices())+len(r.GetScores())+len(r.GetSeries()) != 0 {
		t.Errorf("empty request answered %v", r)
	}
}

func TestV1DetectDefaultsAreTheSeedRule(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	seed := pb.NewOutliersClient(conn(t))
	names, values := plantedSeries(rand.New(rand.NewPCG(8, 8)))
	unset, err := client.Detect(callCtx(t), v1Request(names, values, nil))
	if err != nil {
		t.Fatal(err)
	}
	req := &pb.OutliersRequest{}
	for i, v := range values {
		req.Metrics = append(req.Metrics, &pb.Metric{Name: names[i], Value: v})
	}
	seedReply, err := seed.Detect(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unset.GetIndices(), seedReply.GetIndices()) {
		t.Errorf("v1 default %v, seed %v", unset.GetIndices(), seedReply.GetIndices())
	}
	emptyMethod := v1Request(names, values, nil)
	emptyMethod.Method = &outliersv1.Method{}
	for _, r := range []*outliersv1.DetectRequest{
		v1Request(names, values, &method{kind: "z_score"}),
		v1Request(names, values, &method{kind: "z_score", param: 2}),
		emptyMethod,
	} {
		got, err := client.Detect(callCtx(t), r)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, unset) {
			t.Errorf("method %v answers differently from an unset one", r.GetMethod())
		}
	}
	for _, pair := range [][2]method{
		{{kind: "z_score", sample: true}, {kind: "z_score", param: 2, sample: true}},
		{{kind: "modified_z_score"}, {kind: "modified_z_score", param: 3.5}},
		{{kind: "iqr"}, {kind: "iqr", param: 1.5}},
	} {
		a, err1 := client.Detect(callCtx(t), v1Request(names, values, &pair[0]))
		b, err2 := client.Detect(callCtx(t), v1Request(names, values, &pair[1]))
		if err1 != nil || err2 != nil || !proto.Equal(a, b) {
			t.Errorf("%+v and %+v answer differently (%v, %v)", pair[0], pair[1], err1, err2)
		}
	}
}

func TestV1DetectRefusalsNameTheField(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	names := []string{"a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b"}
	values := make([]float64, 20)
	for i := range values {
		values[i] = float64(i)
	}
	for _, kind := range []string{"z_score", "modified_z_score", "iqr"} {
		field := map[string]string{"z_score": "threshold", "modified_z_score": "threshold", "iqr": "k"}[kind]
		for _, bad := range []float64{-1, -1e-300, math.NaN(), math.Inf(1), math.Inf(-1)} {
			m := method{kind: kind, param: bad, sample: kind == "z_score"}
			_, err := client.Detect(callCtx(t), v1Request(names, values, &m))
			wantStatus(t, err, codes.InvalidArgument, "method."+kind+"."+field)
		}
	}
	values[13] = math.NaN()
	for _, m := range []*method{nil, {kind: "modified_z_score"}, {kind: "iqr"}} {
		_, err := client.Detect(callCtx(t), v1Request(names, values, m))
		wantStatus(t, err, codes.InvalidArgument, "metrics[13].value")
	}
}

// DetectStream

type found struct {
	index  uint64
	name   string
	value  float64
	window uint32
	warmUp bool
	score  float64
}

type point struct {
	name  string
	value float64
}

// minPoints is the fewest points of a series with which the method can flag
// anything, by the proto's comments: the smallest n whose largest possible
// |score| reaches the threshold, where within 1e-9 (relative) counts as
// reaching it, since rounding tips a point at the bound over it.
func minPoints(m method) int {
	t := m.value() * (1 - 1e-9)
	switch m.kind {
	case "z_score":
		bound := func(n float64) float64 { return math.Sqrt(n - 1) }
		if m.sample {
			bound = func(n float64) float64 { return (n - 1) / math.Sqrt(n) }
		}
		n := 2
		for bound(float64(n)) < t {
			n++
		}
		return n
	case "modified_z_score":
		if 0.6745 >= t {
			return 2
		}
		return 3
	default:
		for i, bound := range []float64{0.5, 1, 3} {
			if bound >= t {
				return i + 2
			}
		}
		return 5
	}
}

// streamReference judges each point against the last `window` points of its
// series before it; while the series has fewer, against all of them (a
// warm-up) once there are minPoints(m).
func streamReference(messages [][]point, m method, window int) []found {
	judgedFrom := min(minPoints(m), window)
	windows := map[string][]float64{}
	var out []found
	index := 0
	for _, msg := range messages {
		for _, p := range msg {
			w := windows[p.name]
			if len(w) >= judgedFrom {
				scores, flags, _ := judge(m, w, []float64{p.value})
				if flags[0] {
					out = append(out, found{uint64(index), p.name, p.value, uint32(len(w)), len(w) < window, scores[0]})
				}
			}
			if len(w) == window {
				w = w[1:]
			}
			windows[p.name] = append(slices.Clip(w), p.value)
			index++
		}
	}
	return out
}

func streamMessages(rng *rand.Rand, names []string, count int) [][]point {
	level := map[string]float64{}
	for _, n := range names {
		level[n] = 100 * rng.NormFloat64()
	}
	var points []point
	for range count {
		n := names[rng.IntN(len(names))]
		v := level[n] + rng.NormFloat64()
		if rng.Float64() < 0.03 {
			v += float64(1-2*rng.IntN(2)) * (15 + 10*rng.Float64())
		}
		points = append(points, point{n, v})
	}
	var out [][]point
	for len(points) > 0 {
		k := min(rng.IntN(41), len(points))
		out = append(out, points[:k])
		points = points[k:]
	}
	return out
}

func streamRequests(messages [][]point, m *method, window uint32) []*outliersv1.DetectStreamRequest {
	var out []*outliersv1.DetectStreamRequest
	index := 0
	for i, msg := range messages {
		r := &outliersv1.DetectStreamRequest{}
		for _, p := range msg {
			r.Metrics = append(r.Metrics, &outliersv1.Metric{Time: ts(index), Name: p.name, Value: p.value})
			index++
		}
		if i == 0 {
			r.Window = window
			if m != nil {
				r.Method = m.proto()
			}
		}
		out = append(out, r)
	}
	return out
}

// runStream sends every request, then reads every anomaly up to the end.
func runStream(t *testing.T, c outliersv1.OutliersServiceClient, reqs []*outliersv1.DetectStreamRequest) ([]*outliersv1.Anomaly, error) {
	t.Helper()
	stream, err := c.DetectStream(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, r := range reqs {
			if stream.Send(r) != nil {
				return
			}
		}
		_ = stream.CloseSend()
	}()
	var out []*outliersv1.Anomaly
	for {
		reply, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		if len(reply.GetAnomalies()) == 0 {
			t.Error("a message without anomalies")
		}
		out = append(out, reply.GetAnomalies()...)
	}
}

func metrics(name string, values ...float64) []*outliersv1.Metric {
	out := make([]*outliersv1.Metric, len(values))
	for i, v := range values {
		out[i] = &outliersv1.Metric{Name: name, Value: v}
	}
	return out
}

func indicesOf(anomalies []*outliersv1.Anomaly) []uint64 {
	var out []uint64
	for _, a := range anomalies {
		out = append(out, a.GetIndex())
	}
	return out
}

func TestDetectStreamAnomaliesMatchTheTrailingWindowRule(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	for i, tc := range []struct {
		m      *method
		window uint32
	}{
		{nil, 0},
		{&method{kind: "z_score"}, 20},
		{&method{kind: "z_score", param: 2.5, sample: true}, 30},
		{&method{kind: "modified_z_score"}, 3},
		{&method{kind: "iqr"}, 12},
	} {
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		messages := streamMessages(rng, []string{"a", "b", "", "température"}, 900)
		m, window := method{kind: "z_score"}, 100
		if tc.m != nil {
			m = *tc.m
		}
		if tc.window != 0 {
			window = int(tc.window)
		}
		want := streamReference(messages, m, window)
		if len(want) < 5 {
			t.Fatalf("%+v: only %d anomalies to find", tc, len(want))
		}
		if warm := slices.IndexFunc(want, func(f found) bool { return f.warmUp }); minPoints(m) < window && warm < 0 {
			t.Fatalf("%+v: no anomaly in a warm-up to find", tc)
		}
		got, err := runStream(t, client, streamRequests(messages, tc.m, tc.window))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if len(got) != len(want) {
			t.Errorf("%+v: %d anomalies %v, want %d", tc, len(got), indicesOf(got), len(want))
			continue
		}
		for j, a := range got {
			w := want[j]
			if a.GetIndex() != w.index || a.GetMetric().GetName() != w.name || a.GetMetric().GetValue() != w.value ||
				a.GetWindowPoints() != w.window || a.GetWarmUp() != w.warmUp || !sameScores(a.GetScore(), w.score) {
				t.Errorf("%+v: anomaly %d = %v, want %+v", tc, j, a, w)
				break
			}
			if !proto.Equal(a.GetMetric().GetTime(), ts(int(w.index))) {
				t.Errorf("%+v: anomaly %d time %v, want %v", tc, j, a.GetMetric().GetTime(), ts(int(w.index)))
			}
		}
	}
}

func TestDetectStreamAnswersWhileTheStreamIsOpenWithIndicesAcrossMessages(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	stream, err := client.DetectStream(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	wave := []float64{10.0, 10.1, 10.2, 10.3, 10.4}
	var steady []*outliersv1.Metric
	for i := range 20 {
		steady = append(steady, &outliersv1.Metric{Name: "a", Value: wave[i%5]}, &outliersv1.Metric{Name: "b", Value: wave[i%5] + 100})
	}
	send := func(r *outliersv1.DetectStreamRequest) {
		t.Helper()
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	recvOne := func() *outliersv1.Anomaly {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.GetAnomalies()) != 1 {
			t.Fatalf("anomalies %v, want one", r.GetAnomalies())
		}
		return r.GetAnomalies()[0]
	}
	send(&outliersv1.DetectStreamRequest{Method: method{kind: "z_score"}.proto(), Window: 10, Metrics: steady})
	send(&outliersv1.DetectStreamRequest{}) // an empty message counts nothing
	send(&outliersv1.DetectStreamRequest{Metrics: []*outliersv1.Metric{{Name: "b", Value: 110.2}, {Name: "a", Value: 50, Time: ts(7)}}})
	a := recvOne() // before the stream is closed
	if a.GetIndex() != 41 || a.GetMetric().GetName() != "a" || a.GetMetric().GetValue() != 50 || a.GetWindowPoints() != 10 || !proto.Equal(a.GetMetric().GetTime(), ts(7)) {
		t.Errorf("first anomaly %v", a)
	}
	win := make([]float64, 10)
	for i := range win {
		win[i] = wave[i%5]
	}
	if scores, _, _ := judge(method{kind: "z_score"}, win, []float64{50}); !sameScores(a.GetScore(), scores[0]) {
		t.Errorf("score %v, want %v", a.GetScore(), scores[0])
	}
	send(&outliersv1.DetectStreamRequest{Metrics: []*outliersv1.Metric{{Name: "a", Value: 10.1}, {Name: "b", Value: 0}, {Name: "b", Value: 110}}})
	if a := recvOne(); a.GetIndex() != 43 || a.GetMetric().GetName() != "b" || a.GetMetric().GetValue() != 0 {
		t.Errorf("second anomaly %v", a)
	}
	// A new series' 11th point is judged against a full window; its earlier
	// ones, from the 6th, against fewer (none of them stands out).
	send(&outliersv1.DetectStreamRequest{Metrics: metrics("c", 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 9)})
	if a := recvOne(); a.GetIndex() != 55 || a.GetMetric().GetName() != "c" || a.GetWindowPoints() != 10 || a.GetScore() != 15 {
		t.Errorf("third anomaly %v", a)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if rest, err := recvAll[outliersv1.DetectStreamResponse](stream); err != nil || len(rest) != 0 {
		t.Errorf("after CloseSend: %v, %v", rest, err)
	}
}

func TestDetectStreamWindowsAndEmptyStreams(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	// Window 3 and the seed rule, which needs 5 points to flag anything: no
	// warm-up. 1000 after two points of a is not judged, after three of b it is.
	ms := append(metrics("a", 0, 1, 1000), metrics("b", 0, 1, 0, 1000)...)
	got, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Window: 3, Metrics: ms}})
	if err != nil || !slices.Equal(indicesOf(got), []uint64{6}) || got[0].GetWindowPoints() != 3 {
		t.Errorf("window 3: %v, %v", got, err)
	}
	for _, reqs := range [][]*outliersv1.DetectStreamRequest{nil, {{Window: 7, Method: method{kind: "iqr"}.proto()}, {}}} {
		if got, err := runStream(t, client, reqs); err != nil || len(got) != 0 {
			t.Errorf("%v: %v, %v; want a clean end with nothing", reqs, got, err)
		}
	}
	// The largest window by default is 10000.
	const limit = 10_000
	big := make([]*outliersv1.Metric, 0, limit+1)
	for i := range limit {
		big = append(big, &outliersv1.Metric{Name: "a", Value: float64(i % 3)})
	}
	big = append(big, &outliersv1.Metric{Name: "a", Value: 99})
	got, err = runStream(t, client, []*outliersv1.DetectStreamRequest{{Window: limit, Metrics: big}})
	if err != nil || !slices.Equal(indicesOf(got), []uint64{limit}) {
		t.Errorf("window %d: %v, %v", limit, indicesOf(got), err)
	}
	for _, w := range []uint32{limit + 1, math.MaxUint32} {
		_, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Window: w, Metrics: big[:3]}})
		wantStatus(t, err, codes.InvalidArgument, "window", fmt.Sprint(w), fmt.Sprint(limit))
	}
	for _, m := range []*method{nil, {kind: "modified_z_score"}, {kind: "iqr", param: 3.5}} {
		r := &outliersv1.DetectStreamRequest{Window: 1}
		if m != nil {
			r.Method = m.proto()
		}
		_, err := runStream(t, client, []*outliersv1.DetectStreamRequest{r})
		wantStatus(t, err, codes.InvalidArgument, "window 1", "too small")
		r = proto.CloneOf(r)
		r.Window, r.Metrics = 2, metrics("a", 0, 1, 100)
		got, err := runStream(t, client, []*outliersv1.DetectStreamRequest{r})
		if err != nil || !slices.Equal(indicesOf(got), []uint64{2}) || got[0].GetWindowPoints() != 2 {
			t.Errorf("%v window 2: %v, %v", m, got, err)
		}
	}
}

func TestDetectStreamRefusalsEndTheStreamAfterWhatWasFound(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	spiked := metrics("a", 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 50)
	for _, later := range []*outliersv1.DetectStreamRequest{
		{Window: 10},
		{Method: method{kind: "iqr"}.proto()},
		{Method: &outliersv1.Method{}},
	} {
		later.Metrics = metrics("a", 1)
		got, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Method: method{kind: "z_score"}.proto(), Window: 10, Metrics: spiked}, later})
		wantStatus(t, err, codes.InvalidArgument, "first message only")
		if !slices.Equal(indicesOf(got), []uint64{10}) {
			t.Errorf("found before the refusal: %v, want [10]", indicesOf(got))
		}
	}
	for _, kind := range []string{"z_score", "modified_z_score", "iqr"} {
		field := map[string]string{"z_score": "threshold", "modified_z_score": "threshold", "iqr": "k"}[kind]
		_, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Method: method{kind: kind, param: -3}.proto(), Window: 10, Metrics: metrics("a", 1)}})
		wantStatus(t, err, codes.InvalidArgument, "method."+kind+"."+field)
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		reqs := []*outliersv1.DetectStreamRequest{
			{Method: method{kind: "z_score"}.proto(), Window: 10, Metrics: metrics("a", 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 40)},
			{Metrics: []*outliersv1.Metric{{Name: "b", Value: 1}, {Name: "a", Value: -40}, {Name: "b", Value: bad}, {Name: "a", Value: 90}}},
			{Metrics: metrics("a", 90)},
		}
		got, err := runStream(t, client, reqs)
		wantStatus(t, err, codes.InvalidArgument, "metric 13")
		if !slices.Equal(indicesOf(got), []uint64{10, 12}) {
			t.Errorf("found before the bad value: %v, want [10 12]", indicesOf(got))
		}
	}
}

func TestDetectStreamCancelledMidwayAndPastItsDeadline(t *testing.T) {
	client := outliersv1.NewOutliersServiceClient(conn(t))
	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := client.DetectStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&outliersv1.DetectStreamRequest{Window: 10, Metrics: metrics("a", 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 50)}); err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || r.GetAnomalies()[0].GetIndex() != 10 {
		t.Fatalf("first anomaly %v, %v", r, err)
	}
	cancel()
	_, err = stream.Recv()
	wantStatus(t, err, codes.Canceled)

	short, done := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer done()
	stream, err = client.DetectStream(short)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&outliersv1.DetectStreamRequest{Window: 10, Metrics: metrics("a", 1, 2)})
	_, err = stream.Recv()
	wantStatus(t, err, codes.DeadlineExceeded)

	got, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Window: 2, Metrics: metrics("a", 0, 1, 100)}})
	if err != nil || !slices.Equal(indicesOf(got), []uint64{2}) {
		t.Errorf("a stream after the cancel: %v, %v", got, err)
	}
}

func TestOutlierLimitsOfAConfiguredServer(t *testing.T) {
	const detectBytes, series, window = 64 * 1024, 3, 50
	srv := ownServer(t, []string{
		fmt.Sprintf("DATAPORT_MAX_DETECT_BYTES=%d", detectBytes),
		fmt.Sprintf("DATAPORT_MAX_STREAM_SERIES=%d", series),
		fmt.Sprintf("DATAPORT_MAX_STREAM_WINDOW=%d", window),
	}, "--no-sample-data")
	seed := pb.NewOutliersClient(srv.conn)
	client := outliersv1.NewOutliersServiceClient(srv.conn)

	big := &pb.OutliersRequest{}
	for i := 0; proto.Size(big) <= detectBytes; i++ {
		big.Metrics = append(big.Metrics, &pb.Metric{Time: ts(i), Name: "cpu", Value: float64(i)})
	}
	_, err := seed.Detect(callCtx(t), big)
	wantStatus(t, err, codes.ResourceExhausted, fmt.Sprint(detectBytes))
	bigV1 := &outliersv1.DetectRequest{}
	for _, m := range big.GetMetrics() {
		bigV1.Metrics = append(bigV1.Metrics, &outliersv1.Metric{Time: m.GetTime(), Name: m.GetName(), Value: m.GetValue()})
	}
	_, err = client.Detect(callCtx(t), bigV1)
	wantStatus(t, err, codes.ResourceExhausted, fmt.Sprint(detectBytes))
	small := &pb.OutliersRequest{Metrics: big.GetMetrics()[:100]}
	if _, err := seed.Detect(callCtx(t), small); err != nil {
		t.Errorf("a request under the limit: %v", err)
	}

	// The window: up to the limit, and the limit by default.
	if got, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Window: window}}); err != nil || len(got) != 0 {
		t.Errorf("window %d: %v, %v", window, got, err)
	}
	_, err = runStream(t, client, []*outliersv1.DetectStreamRequest{{Window: window + 1}})
	wantStatus(t, err, codes.InvalidArgument, "window", fmt.Sprint(window))
	var alt []float64
	for i := range 80 {
		alt = append(alt, float64(i%2))
	}
	got, err := runStream(t, client, []*outliersv1.DetectStreamRequest{{Metrics: metrics("a", append(alt, 50)...)}})
	if err != nil || !slices.Equal(indicesOf(got), []uint64{80}) || got[0].GetWindowPoints() != window {
		t.Errorf("default window: %v, %v", got, err)
	}

	// The series limit ends the stream at the metric that passes it.
	steady := func(n string) []*outliersv1.Metric { return metrics(n, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1) }
	stream, err := client.DetectStream(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	first := append(append(steady("a"), steady("b")...), metrics("a", 60)...)
	_ = stream.Send(&outliersv1.DetectStreamRequest{Method: method{kind: "z_score"}.proto(), Window: 10, Metrics: first})
	if r, err := stream.Recv(); err != nil || r.GetAnomalies()[0].GetIndex() != 20 {
		t.Fatalf("first anomaly %v, %v", r, err)
	}
	second := append(steady("c"), metrics("b", -60)...)
	second = append(second, metrics("d", 1)...)
	second = append(second, metrics("c", 70)...)
	_ = stream.Send(&outliersv1.DetectStreamRequest{Metrics: second})
	if r, err := stream.Recv(); err != nil || r.GetAnomalies()[0].GetIndex() != 31 || r.GetAnomalies()[0].GetMetric().GetName() != "b" {
		t.Fatalf("second anomaly %v, %v", r, err)
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.ResourceExhausted, "metric 32", fmt.Sprint(series))

	// A stream message over the size limit.
	huge := &outliersv1.DetectStreamRequest{}
	for i := range 10_000 {
		huge.Metrics = append(huge.Metrics, &outliersv1.Metric{Name: "b", Value: float64(i)})
	}
	got, err = runStream(t, client, []*outliersv1.DetectStreamRequest{{Method: method{kind: "z_score"}.proto(), Window: 10, Metrics: metrics("a", 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 99)}, huge})
	wantStatus(t, err, codes.ResourceExhausted, fmt.Sprint(detectBytes))
	if !slices.Equal(indicesOf(got), []uint64{10}) {
		t.Errorf("found before the big message: %v", indicesOf(got))
	}

	// A drain ends a stream waiting for input with UNAVAILABLE.
	stream, err = client.DetectStream(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&outliersv1.DetectStreamRequest{Window: 10, Metrics: metrics("a", 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 50)})
	if r, err := stream.Recv(); err != nil || r.GetAnomalies()[0].GetIndex() != 10 {
		t.Fatalf("anomaly before the drain %v, %v", r, err)
	}
	if err := srv.cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.Unavailable)
}
