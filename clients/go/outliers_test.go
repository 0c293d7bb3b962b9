package dataport

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// nineOnesAndTen has mean 1.9 and population sigma 2.7 (sum of squared
// deviations 9 * 0.81 + 8.1^2 = 72.9, over 10 points 7.29): 10 is 3 sigma
// out, every 1 a third of a sigma below.
var nineOnesAndTen = []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 10}

func TestDetectOutliersOfAKnownSeries(t *testing.T) {
	ctx := testContext(t)
	got, err := testClient.DetectOutliers(ctx, nineOnesAndTen, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Indices, []int{9}) {
		t.Errorf("outliers at %v, want [9]", got.Indices)
	}
	z := got.Stats.ZScore
	if z == nil || !near(z.GetMean(), 1.9, 1e-15) || !near(z.GetSigma(), 2.7, 1e-15) {
		t.Errorf("stats %v, want mean 1.9 sigma 2.7", got.Stats)
	}
	if got.Stats.Count != 10 || got.Stats.Outliers != 1 || got.Stats.ModifiedZScore != nil || got.Stats.IQR != nil {
		t.Errorf("stats %+v, want 10 points, 1 outlier, z-score only", got.Stats)
	}
	if len(got.Scores) != 10 || !near(got.Scores[9], 3, 1e-14) || !near(got.Scores[0], -1.0/3, 1e-14) {
		t.Errorf("scores %v, want -1/3 nine times then 3", got.Scores)
	}

	// The seed service answers the same positions.
	req := &pb.OutliersRequest{}
	for i, v := range nineOnesAndTen {
		req.Metrics = append(req.Metrics, &pb.Metric{Time: timestamppb.New(time.Unix(int64(i), 0)), Name: "cpu", Value: v})
	}
	seed, err := testClient.Outliers.Detect(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seed.GetIndices(), []int32{9}) {
		t.Errorf("pb.Outliers answers %v, want [9]", seed.GetIndices())
	}
}

func TestDetectWithOtherMethodsAnswersTheirStatistics(t *testing.T) {
	ctx := testContext(t)
	values := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 100}
	// numpy.percentile(values, [25, 75]) = 3.25, 7.75: IQR 4.5, fences
	// 3.25 - 6.75 and 7.75 + 6.75.
	iqr, err := testClient.DetectOutliers(ctx, values, IQR(0))
	if err != nil {
		t.Fatal(err)
	}
	s := iqr.Stats.IQR
	if s == nil || s.GetQ1() != 3.25 || s.GetQ3() != 7.75 || s.GetLowerFence() != -3.5 || s.GetUpperFence() != 14.5 {
		t.Errorf("IQR stats %v, want q1 3.25 q3 7.75 fences -3.5 14.5", iqr.Stats)
	}
	if !slices.Equal(iqr.Indices, []int{9}) || !near(iqr.Scores[9], (100-7.75)/4.5, 1e-14) || iqr.Scores[4] != 0 {
		t.Errorf("IQR outliers %v scores %v", iqr.Indices, iqr.Scores)
	}

	// median 5.5; |x - 5.5| = 4.5 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 94.5, MAD 2.5;
	// 100 scores 0.6745 * 94.5 / 2.5.
	mod, err := testClient.DetectOutliers(ctx, values, ModifiedZScore(0))
	if err != nil {
		t.Fatal(err)
	}
	m := mod.Stats.ModifiedZScore
	if m == nil || m.GetMedian() != 5.5 || m.GetMad() != 2.5 {
		t.Errorf("modified z-score stats %v, want median 5.5 MAD 2.5", mod.Stats)
	}
	if !slices.Equal(mod.Indices, []int{9}) || !near(mod.Scores[9], 0.6745*94.5/2.5, 1e-14) {
		t.Errorf("modified z-score outliers %v scores %v", mod.Indices, mod.Scores)
	}

	// With the sample sigma and a threshold of 3, 10 (2.846 sample sigmas
	// out) is no outlier.
	strict, err := testClient.DetectOutliers(ctx, nineOnesAndTen, ZScore(3, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(strict.Indices) != 0 || !near(strict.Stats.ZScore.GetSigma(), math.Sqrt(72.9/9), 1e-15) {
		t.Errorf("ZScore(3, sample): outliers %v, stats %v", strict.Indices, strict.Stats)
	}
}

func TestDetectSeriesJudgesEachSeriesOnItsOwn(t *testing.T) {
	ctx := testContext(t)
	got, err := testClient.DetectSeries(ctx, map[string][]float64{
		"b":     {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, -40, 5},
		"a":     nineOnesAndTen,
		"calm":  {1, 2, 1, 2, 1, 2, 1, 2},
		"empty": nil,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"a": {9}, "b": {10}, "calm": nil, "empty": nil}
	for name, indices := range want {
		s := got[name]
		if s == nil {
			t.Fatalf("no result for %s", name)
		}
		if !slices.Equal(s.Indices, indices) {
			t.Errorf("%s: outliers at %v, want %v", name, s.Indices, indices)
		}
		if s.Stats.Name != name {
			t.Errorf("%s: stats named %q", name, s.Stats.Name)
		}
	}
	if n := len(got["b"].Scores); n != 12 || got["b"].Stats.Count != 12 || got["a"].Stats.Count != 10 {
		t.Errorf("b has %d scores and %d points, a %d points", n, got["b"].Stats.Count, got["a"].Stats.Count)
	}
	if !near(got["a"].Stats.ZScore.GetMean(), 1.9, 1e-15) {
		t.Errorf("a judged against %v", got["a"].Stats)
	}
}

func TestDetectOfATimedBatchAnswersPositionsInTheRequest(t *testing.T) {
	ctx := testContext(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var metrics []Metric
	for i, v := range nineOnesAndTen {
		// Two series interleaved: "x" is the known series, "y" a flat one.
		metrics = append(metrics,
			Metric{Time: start.Add(time.Duration(i) * time.Minute), Name: "x", Value: v},
			Metric{Time: start.Add(time.Duration(i) * time.Minute), Name: "y", Value: 7})
	}
	got, err := testClient.Detect(ctx, metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Indices, []int{18}) || len(got.Scores) != 20 || len(got.Series) != 2 {
		t.Fatalf("Detect answers %v with %d scores and series %v", got.Indices, len(got.Scores), got.Series)
	}
	if y := got.Series["y"]; y.Count != 10 || y.ZScore.GetSigma() != 0 || y.Outliers != 0 {
		t.Errorf("y judged against %+v", y)
	}
}

func TestDetectOfAValueThatIsNotFiniteIsInvalidArgument(t *testing.T) {
	_, err := testClient.DetectOutliers(testContext(t), []float64{1, 2, math.NaN(), 4}, nil)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Detect with a NaN: %v, want INVALID_ARGUMENT", err)
	}
}

func TestDetectOfABatchPastGRPCsDefaultMessageSizeIsAnswered(t *testing.T) {
	// 600,000 scores are 4.8 MB, past grpc-go's default 4 MiB receive limit;
	// Dial's default limit lets the answer in.
	const n = 600_000
	values := make([]float64, n)
	for i := range values {
		values[i] = float64(i % 10)
	}
	values[n-1] = 1e6
	got, err := testClient.DetectOutliers(testContext(t), values, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Indices, []int{n - 1}) || len(got.Scores) != n {
		t.Fatalf("outliers at %v with %d scores", got.Indices, len(got.Scores))
	}
}
