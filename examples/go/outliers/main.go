// Outliers sends a thousand CPU readings with three spikes to a Dataport
// server: first to the seed pb.Outliers service, as the Go metrics
// collector does, then to dataport.outliers.v1 through the client's
// DetectOutliers helper, which also answers scores and statistics.
//
//	go run ./outliers -addr 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"time"

	dataport "github.com/dataport/dataport/clients/go"
	"github.com/dataport/dataport/clients/go/compat/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var addr = flag.String("addr", "127.0.0.1:50051", "the address to connect to")

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The seed service.
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewOutliersClient(conn)
	metrics := dummyData()
	resp, err := client.Detect(ctx, &pb.OutliersRequest{Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pb.Outliers: outliers at: %v\n", resp.GetIndices())

	// The versioned service, through the helper.
	c, err := dataport.Dial(*addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	values := make([]float64, len(metrics))
	for i, m := range metrics {
		values[i] = m.GetValue()
	}
	res, err := c.DetectOutliers(ctx, values, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("v1 z-score: outliers at: %v (mean %.2f, sigma %.2f)\n",
		res.Indices, res.Stats.ZScore.GetMean(), res.Stats.ZScore.GetSigma())
	for _, i := range res.Indices {
		fmt.Printf("  %d: %.1f, %.2f sigmas out\n", i, values[i], res.Scores[i])
	}
	iqr, err := c.DetectOutliers(ctx, values, dataport.IQR(0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("v1 Tukey's fences: outliers at: %v (fences %.2f and %.2f)\n",
		iqr.Indices, iqr.Stats.IQR.GetLowerFence(), iqr.Stats.IQR.GetUpperFence())
}

// dummyData is a thousand CPU readings a second apart, normally below 40%,
// with three spikes.
func dummyData() []*pb.Metric {
	const size = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]*pb.Metric, size)
	t := time.Date(2020, 5, 22, 14, 13, 11, 0, time.UTC)
	for i := range size {
		out[i] = &pb.Metric{
			Time: timestamppb.New(t),
			Name: "CPU",
			// Normally we're below 40% CPU utilization
			Value: rng.Float64() * 40,
		}
		t = t.Add(time.Second)
	}
	// Create some outliers
	out[7].Value = 97.3
	out[113].Value = 92.1
	out[835].Value = 93.2
	return out
}
