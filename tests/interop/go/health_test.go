package interop

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// servedServices is what the server serves, health and reflection aside.
var servedServices = []string{
	"helloworld.Greeter",
	"routeguide.RouteGuide",
	"posXYZ.PositionService",
	"dataport.position.v1.PositionService",
	"idc.Indicator",
	"idc.IndicatorGraph",
	"dataport.market.v1.MarketService",
	"pb.Outliers",
	"dataport.outliers.v1.OutliersService",
	"FileSrv",
	"FileTransfer.FileService",
	"google.bytestream.ByteStream",
	"dataport.files.v1.FilesService",
}

func TestHealthCheckOfEveryServedServiceIsServing(t *testing.T) {
	health := healthpb.NewHealthClient(conn(t))
	for _, service := range append([]string{""}, servedServices...) {
		reply, err := health.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Errorf("Check(%q): %v", service, err)
			continue
		}
		if reply.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, want SERVING", service, reply.GetStatus())
		}
	}
}

func TestHealthCheckOfAnUnknownServiceIsNotFound(t *testing.T) {
	health := healthpb.NewHealthClient(conn(t))
	_, err := health.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	wantStatus(t, err, codes.NotFound)
}

func TestHealthListAnswersEveryServedServiceServing(t *testing.T) {
	health := healthpb.NewHealthClient(conn(t))
	reply, err := health.List(callCtx(t), &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range append([]string{""}, servedServices...) {
		got, ok := reply.GetStatuses()[service]
		if !ok || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("List()[%q] = %v (present %v), want SERVING", service, got.GetStatus(), ok)
		}
	}
}

func TestHealthWatchStreamsServingAndEndsOnCancel(t *testing.T) {
	health := healthpb.NewHealthClient(conn(t))
	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: "helloworld.Greeter"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("first Watch status = %v, want SERVING", first.GetStatus())
	}
	cancel()
	_, err = stream.Recv()
	wantStatus(t, err, codes.Canceled)

	// Nothing changes while nothing drains: a watch waits until its deadline.
	short, done := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer done()
	stream, err = health.Watch(short, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch of the server = %v, %v", first, err)
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.DeadlineExceeded)

	reply, err := health.Check(callCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil || reply.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check after the watches = %v, %v", reply, err)
	}
}

func TestHealthWatchOfADrainingServerTurnsNotServing(t *testing.T) {
	srv := ownServer(t, nil)
	health := healthpb.NewHealthClient(srv.conn)
	stream, err := health.Watch(callCtx(t), &healthpb.HealthCheckRequest{Service: "routeguide.RouteGuide"})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch status = %v, %v", first, err)
	}
	if err := srv.cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	// NOT_SERVING, then the stream ends UNAVAILABLE as the drain ends it.
	var statuses []healthpb.HealthCheckResponse_ServingStatus
	for {
		reply, err := stream.Recv()
		if err != nil {
			wantStatus(t, err, codes.Unavailable)
			break
		}
		statuses = append(statuses, reply.GetStatus())
	}
	if len(statuses) == 0 || statuses[len(statuses)-1] != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("statuses after SIGTERM = %v, want them to end NOT_SERVING", statuses)
	}
}

func TestHealthWatchOfAnUnknownServiceAnswersServiceUnknownAndStaysOpen(t *testing.T) {
	health := healthpb.NewHealthClient(conn(t))
	ctx, cancel := context.WithCancel(callCtx(t))
	defer cancel()
	stream, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetStatus() != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Errorf("Watch(no.such.Service) = %v, want SERVICE_UNKNOWN", reply.GetStatus())
	}
	cancel()
	_, err = stream.Recv()
	wantStatus(t, err, codes.Canceled)
}
