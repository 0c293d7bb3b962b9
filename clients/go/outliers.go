package dataport

import (
	"context"
	"fmt"
	"slices"
	"time"

	outliersv1 "github.com/dataport/dataport/clients/go/dataport/outliers/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ZScore judges a point an outlier when |x - mean| > threshold * sigma
// (0: 2), sigma the population standard deviation, or the sample one
// (n - 1) when sample is set. ZScore(0, false), like a nil method, is the
// seed pb.Outliers rule.
func ZScore(threshold float64, sample bool) *outliersv1.Method {
	return &outliersv1.Method{Kind: &outliersv1.Method_ZScore{ZScore: &outliersv1.ZScore{Threshold: threshold, Sample: sample}}}
}

// ModifiedZScore is Iglewicz and Hoaglin's modified z-score (median and
// MAD): an outlier when |score| > threshold (0: 3.5).
func ModifiedZScore(threshold float64) *outliersv1.Method {
	return &outliersv1.Method{Kind: &outliersv1.Method_ModifiedZScore{ModifiedZScore: &outliersv1.ModifiedZScore{Threshold: threshold}}}
}

// IQR is Tukey's fences: an outlier below q1 - k*IQR or above q3 + k*IQR
// (k 0: 1.5).
func IQR(k float64) *outliersv1.Method {
	return &outliersv1.Method{Kind: &outliersv1.Method_Iqr{Iqr: &outliersv1.Iqr{K: k}}}
}

// Metric is one observation of a named series.
type Metric struct {
	// Time is when it was observed; the zero Time sends none.
	Time time.Time
	// Name is the series it belongs to.
	Name string
	// Value must be finite.
	Value float64
}

// SeriesStats is what the points of one series were judged against.
// Exactly one of ZScore, ModifiedZScore and IQR is set, by the method.
type SeriesStats struct {
	// Name is the series' name.
	Name string
	// Count is how many points the series has, Outliers how many of them
	// are outliers.
	Count, Outliers int
	// ZScore holds the mean and sigma of a z-score judgement.
	ZScore *outliersv1.ZScoreStats
	// ModifiedZScore holds the median, MAD and mean absolute deviation.
	ModifiedZScore *outliersv1.ModifiedZScoreStats
	// IQR holds the quartiles and fences.
	IQR *outliersv1.IqrStats
}

// DetectResult is what Detect answers.
type DetectResult struct {
	// Indices are the positions in the request of the outliers, ascending.
	Indices []int
	// Scores holds the score of every metric, in request order.
	Scores []float64
	// Series holds the statistics of each series, by name.
	Series map[string]SeriesStats
}

// Detect judges every metric against the whole of its series (metrics
// with the same Name) with dataport.outliers.v1 Detect; a nil method is
// ZScore(0, false), the seed rule. A value that is not finite is
// INVALID_ARGUMENT naming its index; a request over the server's
// max_detect_bytes is RESOURCE_EXHAUSTED.
func (c *Client) Detect(ctx context.Context, metrics []Metric, method *outliersv1.Method) (*DetectResult, error) {
	req := &outliersv1.DetectRequest{Metrics: make([]*outliersv1.Metric, len(metrics)), Method: method}
	// One backing array for every message.
	msgs := make([]outliersv1.Metric, len(metrics))
	for i, m := range metrics {
		msg := &msgs[i]
		msg.Name = m.Name
		msg.Value = m.Value
		if !m.Time.IsZero() {
			msg.Time = timestamppb.New(m.Time)
		}
		req.Metrics[i] = msg
	}
	resp, err := c.OutliersV1.Detect(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("detect outliers: %w", err)
	}
	if len(resp.GetScores()) != len(metrics) {
		return nil, fmt.Errorf("detect outliers: %d scores for %d metrics", len(resp.GetScores()), len(metrics))
	}
	out := &DetectResult{
		Indices: make([]int, len(resp.GetIndices())),
		Scores:  resp.GetScores(),
		Series:  make(map[string]SeriesStats, len(resp.GetSeries())),
	}
	for i, at := range resp.GetIndices() {
		if at < 0 || int(at) >= len(metrics) {
			return nil, fmt.Errorf("detect outliers: index %d of %d metrics", at, len(metrics))
		}
		out.Indices[i] = int(at)
	}
	for _, s := range resp.GetSeries() {
		out.Series[s.GetName()] = SeriesStats{
			Name:           s.GetName(),
			Count:          int(s.GetCount()),
			Outliers:       int(s.GetOutliers()),
			ZScore:         s.GetZScore(),
			ModifiedZScore: s.GetModifiedZScore(),
			IQR:            s.GetIqr(),
		}
	}
	return out, nil
}

// SeriesOutliers is the judgement of one series of values.
type SeriesOutliers struct {
	// Indices are the positions of the outliers among the series' values,
	// ascending.
	Indices []int
	// Scores holds the score of every value, in order.
	Scores []float64
	// Stats is what the values were judged against.
	Stats SeriesStats
}

// DetectOutliers judges one series of values (see Detect).
func (c *Client) DetectOutliers(ctx context.Context, values []float64, method *outliersv1.Method) (*SeriesOutliers, error) {
	all, err := c.DetectSeries(ctx, map[string][]float64{"": values}, method)
	if err != nil {
		return nil, err
	}
	return all[""], nil
}

// DetectSeries judges several series at once, each on its own values, in
// one Detect call, and answers each by name with positions within its own
// values.
func (c *Client) DetectSeries(ctx context.Context, series map[string][]float64, method *outliersv1.Method) (map[string]*SeriesOutliers, error) {
	names := make([]string, 0, len(series))
	total := 0
	for name, values := range series {
		names = append(names, name)
		total += len(values)
	}
	slices.Sort(names)
	metrics := make([]Metric, 0, total)
	starts := make([]int, len(names))
	for i, name := range names {
		starts[i] = len(metrics)
		for _, v := range series[name] {
			metrics = append(metrics, Metric{Name: name, Value: v})
		}
	}
	res, err := c.Detect(ctx, metrics, method)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*SeriesOutliers, len(names))
	for i, name := range names {
		n := len(series[name])
		s := &SeriesOutliers{Scores: res.Scores[starts[i] : starts[i]+n : starts[i]+n], Stats: res.Series[name]}
		if s.Stats.Name == "" {
			s.Stats.Name = name
		}
		out[name] = s
	}
	for _, at := range res.Indices {
		i := sortSearch(starts, at)
		s := out[names[i]]
		s.Indices = append(s.Indices, at-starts[i])
	}
	return out, nil
}

// sortSearch is the index of the last start at or before at.
func sortSearch(starts []int, at int) int {
	i, found := slices.BinarySearch(starts, at)
	if found {
		// Empty series share a start with the next one; the point is in
		// the last series starting here.
		for i+1 < len(starts) && starts[i+1] == at {
			i++
		}
		return i
	}
	return i - 1
}
