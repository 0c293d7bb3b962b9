package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/filesrv"
	"github.com/dataport/dataport/clients/go/compat/filetransfer"
	"github.com/dataport/dataport/clients/go/compat/helloworld"
	"github.com/dataport/dataport/clients/go/compat/idc"
	"github.com/dataport/dataport/clients/go/compat/pb"
	posxyz "github.com/dataport/dataport/clients/go/compat/posxyzpb"
	rg "github.com/dataport/dataport/clients/go/compat/routeguide"
	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	outliersv1 "github.com/dataport/dataport/clients/go/dataport/outliers/v1"
	positionv1 "github.com/dataport/dataport/clients/go/dataport/position/v1"
	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	refv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestEveryRPCWithAnExpiredDeadlineIsDeadlineExceeded calls every method once
// with a deadline that has passed and once with room to answer: the first is
// DEADLINE_EXCEEDED on the client, the second answers, so an expired call
// leaves nothing behind. Deadlines that pass while the server works or waits
// are tested with each service.
func TestEveryRPCWithAnExpiredDeadlineIsDeadlineExceeded(t *testing.T) {
	for method, call := range everyRPC(t, conn(t)) {
		expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
		err := call(expired)
		cancel()
		if err == nil {
			t.Errorf("%s with an expired deadline succeeded", method)
		} else {
			wantStatus(t, err, codes.DeadlineExceeded)
		}
		if err := call(callCtx(t)); err != nil {
			t.Errorf("%s with room to answer: %v", method, err)
		}
	}
}

// everyRPC is a call of every method the server serves, over cc, each
// answered in full; the files and uploads they read are made first.
func everyRPC(t *testing.T, cc *grpc.ClientConn) map[string]func(ctx context.Context) error {
	t.Helper()
	name := unique("deadline")
	if _, err := v1Upload(callCtx(t), filesv1.NewFilesServiceClient(cc), uploadOf(name, []byte("kept"), "", "")); err != nil {
		t.Fatal(err)
	}
	id, bsName := newUpload("deadline")
	res := resource(id, bsName, "")
	if _, err := write(callCtx(t), bytestream.NewByteStreamClient(cc), writeRequests(res, []byte("0123"), 0, writeChunk, false)); err != nil {
		t.Fatal(err)
	}
	files := filesv1.NewFilesServiceClient(cc)
	calls := map[string]func(ctx context.Context) error{
		"helloworld.Greeter/SayHello": func(ctx context.Context) error {
			_, err := helloworld.NewGreeterClient(cc).SayHello(ctx, &helloworld.HelloRequest{Name: "x"})
			return err
		},
		"helloworld.Greeter/SayHelloAgain": func(ctx context.Context) error {
			_, err := helloworld.NewGreeterClient(cc).SayHelloAgain(ctx, &helloworld.HelloRequest{Name: "x"})
			return err
		},
		"routeguide.RouteGuide/GetFeature": func(ctx context.Context) error {
			_, err := rg.NewRouteGuideClient(cc).GetFeature(ctx, pt(1, 1))
			return err
		},
		"routeguide.RouteGuide/ListFeatures": func(ctx context.Context) error {
			s, err := rg.NewRouteGuideClient(cc).ListFeatures(ctx, &rg.Rectangle{Lo: pt(0, 0), Hi: pt(1, 1)})
			if err != nil {
				return err
			}
			_, err = recvAll[rg.Feature](s)
			return err
		},
		"routeguide.RouteGuide/RecordRoute": func(ctx context.Context) error {
			s, err := rg.NewRouteGuideClient(cc).RecordRoute(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(pt(1, 1))
			_, err = s.CloseAndRecv()
			return err
		},
		"routeguide.RouteGuide/RouteChat": func(ctx context.Context) error {
			s, err := rg.NewRouteGuideClient(cc).RouteChat(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(note(pt(1, 1), "x"))
			_ = s.CloseSend()
			_, err = recvAll[rg.RouteNote](s)
			return err
		},
		"posXYZ.PositionService/PositionReq": func(ctx context.Context) error {
			_, err := posxyz.NewPositionServiceClient(cc).PositionReq(ctx, &posxyz.Msg{})
			return err
		},
		"posXYZ.PositionService/PositionPub": func(ctx context.Context) error {
			_, err := posxyz.NewPositionServiceClient(cc).PositionPub(ctx, &posxyz.Position{Position: &posxyz.Pos{X: 1}})
			return err
		},
		"dataport.position.v1.PositionService/Publish": func(ctx context.Context) error {
			_, err := positionv1.NewPositionServiceClient(cc).Publish(ctx, &positionv1.PublishRequest{Entity: name, Position: vec(1, 2, 3)})
			return err
		},
		"dataport.position.v1.PositionService/Get": func(ctx context.Context) error {
			_, err := positionv1.NewPositionServiceClient(cc).Get(ctx, &positionv1.GetRequest{Entity: "default"})
			return err
		},
		"idc.Indicator/GetMACD": func(ctx context.Context) error {
			_, err := idc.NewIndicatorClient(cc).GetMACD(ctx, &idc.MACDRequest{Symbol: "IBM", StartDate: "2012-01-03", EndDate: "2012-01-31"})
			return err
		},
		"idc.IndicatorGraph/GetMACDGraph": func(ctx context.Context) error {
			s, err := idc.NewIndicatorGraphClient(cc).GetMACDGraph(ctx, &idc.MACDGraphRequest{Symbol: "IBM", StartDate: "2012-01-03", EndDate: "2012-01-31"})
			if err != nil {
				return err
			}
			_, err = recvAll[idc.MACDGraphReply](s)
			return err
		},
		"dataport.market.v1.MarketService/ImportBars": func(ctx context.Context) error {
			_, err := sendImport(ctx, marketv1.NewMarketServiceClient(cc), barRequests(newSymbol("deadline"), syntheticBars(2), 2))
			return err
		},
		"dataport.market.v1.MarketService/ListSymbols": func(ctx context.Context) error {
			_, err := marketv1.NewMarketServiceClient(cc).ListSymbols(ctx, &marketv1.ListSymbolsRequest{})
			return err
		},
		"dataport.market.v1.MarketService/GetBars": func(ctx context.Context) error {
			_, err := marketv1.NewMarketServiceClient(cc).GetBars(ctx, &marketv1.GetBarsRequest{Symbol: "IBM"})
			return err
		},
		"dataport.market.v1.MarketService/ComputeIndicators": func(ctx context.Context) error {
			_, err := marketv1.NewMarketServiceClient(cc).ComputeIndicators(ctx, &marketv1.ComputeIndicatorsRequest{
				Symbol: "IBM", Indicators: []*marketv1.Indicator{{Kind: &marketv1.Indicator_Sma{Sma: &marketv1.Sma{}}}},
			})
			return err
		},
		"dataport.market.v1.MarketService/RenderChart": func(ctx context.Context) error {
			s, err := marketv1.NewMarketServiceClient(cc).RenderChart(ctx, &marketv1.RenderChartRequest{Symbol: "IBM", StartDate: "2012-01-03", EndDate: "2012-01-31"})
			if err != nil {
				return err
			}
			_, err = recvAll[marketv1.RenderChartResponse](s)
			return err
		},
		"pb.Outliers/Detect": func(ctx context.Context) error {
			_, err := pb.NewOutliersClient(cc).Detect(ctx, &pb.OutliersRequest{Metrics: []*pb.Metric{{Name: "a", Value: 1}}})
			return err
		},
		"dataport.outliers.v1.OutliersService/Detect": func(ctx context.Context) error {
			_, err := outliersv1.NewOutliersServiceClient(cc).Detect(ctx, &outliersv1.DetectRequest{Metrics: metrics("a", 1, 2)})
			return err
		},
		"dataport.outliers.v1.OutliersService/DetectStream": func(ctx context.Context) error {
			s, err := outliersv1.NewOutliersServiceClient(cc).DetectStream(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(&outliersv1.DetectStreamRequest{Metrics: metrics("a", 1, 2)})
			_ = s.CloseSend()
			_, err = recvAll[outliersv1.DetectStreamResponse](s)
			return err
		},
		"FileSrv/UploadFile": func(ctx context.Context) error {
			_, err := fileSrvUpload(ctx, filesrv.NewFileSrvClient(cc), fileSrvRequests(name, ".txt", []byte("x"), 10))
			return err
		},
		"FileSrv/DownloadFile": func(ctx context.Context) error {
			_, err := fileSrvDownload(ctx, filesrv.NewFileSrvClient(cc), name, "")
			return err
		},
		"FileTransfer.FileService/Upload": func(ctx context.Context) error {
			s, err := filetransfer.NewFileServiceClient(cc).Upload(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(&filetransfer.Chunk{Data: []byte("x")})
			reply, err := s.CloseAndRecv()
			if err == nil {
				_, err = files.Delete(callCtx(t), &filesv1.DeleteRequest{Name: stringBetweenQuotes(reply.GetMessage())})
			}
			return err
		},
		"dataport.files.v1.FilesService/Upload": func(ctx context.Context) error {
			_, err := v1Upload(ctx, files, uploadOf(name+"-up", []byte("x"), "", ""))
			return err
		},
		"dataport.files.v1.FilesService/Download": func(ctx context.Context) error {
			_, err := v1Download(ctx, files, name)
			return err
		},
		"dataport.files.v1.FilesService/List": func(ctx context.Context) error {
			_, err := files.List(ctx, &filesv1.ListRequest{Prefix: name})
			return err
		},
		"dataport.files.v1.FilesService/Stat": func(ctx context.Context) error {
			_, err := files.Stat(ctx, &filesv1.StatRequest{Name: name})
			return err
		},
		"dataport.files.v1.FilesService/Delete": func(ctx context.Context) error {
			if _, err := v1Upload(callCtx(t), files, uploadOf(name+"-rm", []byte("x"), "", "")); err != nil {
				return err
			}
			_, err := files.Delete(ctx, &filesv1.DeleteRequest{Name: name + "-rm"})
			return err
		},
		"google.bytestream.ByteStream/Read": func(ctx context.Context) error {
			_, err := read(ctx, bytestream.NewByteStreamClient(cc), name, 0, 0)
			return err
		},
		"google.bytestream.ByteStream/Write": func(ctx context.Context) error {
			_, err := write(ctx, bytestream.NewByteStreamClient(cc), writeRequests(res, nil, 4, writeChunk, false))
			return err
		},
		"google.bytestream.ByteStream/QueryWriteStatus": func(ctx context.Context) error {
			_, _, err := queryStatus(ctx, bytestream.NewByteStreamClient(cc), res)
			return err
		},
		"grpc.health.v1.Health/Check": func(ctx context.Context) error {
			_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
		"grpc.health.v1.Health/Watch": func(ctx context.Context) error {
			s, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"grpc.reflection.v1.ServerReflection/ServerReflectionInfo": func(ctx context.Context) error {
			s, err := refv1.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(symbol("helloworld.Greeter"))
			_ = s.CloseSend()
			_, err = recvAll[refv1.ServerReflectionResponse](s)
			return err
		},
		"grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": func(ctx context.Context) error {
			s, err := reflector{"v1alpha", cc}.open(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(symbol("helloworld.Greeter"))
			_ = s.CloseSend()
			_, err = recvAll[refv1.ServerReflectionResponse](s)
			return err
		},
	}
	return calls
}

// stringBetweenQuotes is the first "..." of s: the name FileTransfer answers.
func stringBetweenQuotes(s string) string {
	parts := strings.SplitN(s, `"`, 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}
