// Macd asks a Dataport server for the MACD of a symbol through the seed
// idc.Indicator service, prints it, and saves the chart idc.IndicatorGraph
// draws as a PNG.
//
//	go run ./macd -addr 127.0.0.1:50051 -symbol AAPL -start 2010-01-04 -end 2010-01-29 -out macd.png
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/dataport/dataport/clients/go/compat/idc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	addr   = flag.String("addr", "127.0.0.1:50051", "the address to connect to")
	symbol = flag.String("symbol", "AAPL", "the symbol; empty for the server's default symbol")
	start  = flag.String("start", "2010-01-04", "first date, YYYY-MM-DD")
	end    = flag.String("end", "2010-01-29", "last date, YYYY-MM-DD")
	out    = flag.String("out", "macd.png", "where to save the chart")
)

func main() {
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("did not connect: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req := &idc.MACDRequest{StartDate: *start, EndDate: *end, Symbol: *symbol}
	reply, err := idc.NewIndicatorClient(conn).GetMACD(ctx, req)
	if err != nil {
		log.Fatalf("GetMACD: %v", err)
	}
	fmt.Printf("%-10s %9s %9s %9s %9s %9s\n", "date", "open", "close", "macd", "signal", "histogram")
	for _, d := range reply.GetMacd() {
		fmt.Printf("%-10s %9.2f %9.2f %9.4f %9.4f %9.4f\n",
			d.GetDate(), d.GetOpen(), d.GetClose(), d.GetMacd(), d.GetSignal(), d.GetHistogram())
	}

	stream, err := idc.NewIndicatorGraphClient(conn).GetMACDGraph(ctx, &idc.MACDGraphRequest{
		StartDate: *start, EndDate: *end, Symbol: *symbol,
	})
	if err != nil {
		log.Fatalf("GetMACDGraph: %v", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	var size int
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			os.Remove(*out)
			log.Fatalf("GetMACDGraph: %v", err)
		}
		n, err := f.Write(chunk.GetMacdChunk())
		if err != nil {
			log.Fatal(err)
		}
		size += n
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("saved the chart to %s (%d bytes)\n", *out, size)
}
