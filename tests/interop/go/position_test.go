package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	posxyz "github.com/dataport/dataport/clients/go/compat/posxyzpb"
	positionv1 "github.com/dataport/dataport/clients/go/dataport/position/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// unique is a name no other test uses, so tests sharing a server stay apart.
func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func vec(x, y, z float64) *positionv1.Vector3 { return &positionv1.Vector3{X: x, Y: y, Z: z} }

func publish(t *testing.T, c positionv1.PositionServiceClient, entity string, x, y, z float64) *positionv1.EntityPosition {
	t.Helper()
	r, err := c.Publish(callCtx(t), &positionv1.PublishRequest{Entity: entity, Position: vec(x, y, z)})
	if err != nil {
		t.Fatalf("Publish(%s): %v", entity, err)
	}
	return r.GetPosition()
}

func getPosition(t *testing.T, c positionv1.PositionServiceClient, entity string) *positionv1.EntityPosition {
	t.Helper()
	r, err := c.Get(callCtx(t), &positionv1.GetRequest{Entity: entity})
	if err != nil {
		t.Fatalf("Get(%s): %v", entity, err)
	}
	return r.GetPosition()
}

// watching is a Watch call whose watcher is registered: the server registers
// it before it sends the response headers.
func watching(t *testing.T, ctx context.Context, c positionv1.PositionServiceClient, entities ...string) positionv1.PositionService_WatchClient {
	t.Helper()
	stream, err := c.Watch(ctx, &positionv1.WatchRequest{Entities: entities})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	return stream
}

func TestPositionStartsAtX1BeforeAnyPublish(t *testing.T) {
	srv := ownServer(t, nil, "--no-sample-data")
	reply, err := posxyz.NewPositionServiceClient(srv.conn).PositionReq(callCtx(t), &posxyz.Msg{})
	if err != nil {
		t.Fatal(err)
	}
	want := &posxyz.Position{Position: &posxyz.Pos{X: 1}}
	if !proto.Equal(reply, want) {
		t.Errorf("PositionReq = %v, want %v", reply, want)
	}
	initial := getPosition(t, positionv1.NewPositionServiceClient(srv.conn), "default")
	if initial.GetEntity() != "default" || initial.GetRevision() != 0 || !proto.Equal(initial.GetPosition(), vec(1, 0, 0)) {
		t.Errorf("Get(default) = %v, want revision 0 at (1, 0, 0)", initial)
	}
}

func TestPositionPubThenPositionReqAnswersTheLatest(t *testing.T) {
	srv := ownServer(t, nil, "--no-sample-data")
	c := posxyz.NewPositionServiceClient(srv.conn)
	v1 := positionv1.NewPositionServiceClient(srv.conn)
	// Values a float32 holds exactly, since Pos is float.
	for _, p := range []*posxyz.Pos{{X: 10.5, Y: 20.25, Z: -30.125}, {X: -0.5, Y: 0.75, Z: 1024}} {
		ack, err := c.PositionPub(callCtx(t), &posxyz.Position{Position: p, Msg: "interop"})
		if err != nil {
			t.Fatal(err)
		}
		if ack.GetStatus() != 0 {
			t.Errorf("PositionPub status = %d, want 0", ack.GetStatus())
		}
	}
	reply, err := c.PositionReq(callCtx(t), &posxyz.Msg{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (&posxyz.Position{Position: &posxyz.Pos{X: -0.5, Y: 0.75, Z: 1024}}); !proto.Equal(reply, want) {
		t.Errorf("PositionReq = %v, want %v", reply, want)
	}
	// The seed service's position is the v1 entity "default".
	def := getPosition(t, v1, "default")
	if def.GetRevision() != 2 || !proto.Equal(def.GetPosition(), vec(-0.5, 0.75, 1024)) {
		t.Errorf("Get(default) = %v, want revision 2 at (-0.5, 0.75, 1024)", def)
	}
	publish(t, v1, "default", -4.5, 0.25, 8)
	reply, err = c.PositionReq(callCtx(t), &posxyz.Msg{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (&posxyz.Pos{X: -4.5, Y: 0.25, Z: 8}); !proto.Equal(reply.GetPosition(), want) {
		t.Errorf("PositionReq after a v1 publish = %v, want %v", reply.GetPosition(), want)
	}

	// A coordinate that is not finite is refused by its axis and changes nothing.
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for axis, p := range map[string]*posxyz.Pos{"x": {X: nan}, "y": {Y: inf}, "z": {Z: -inf}} {
		_, err := c.PositionPub(callCtx(t), &posxyz.Position{Position: p})
		wantStatus(t, err, codes.InvalidArgument, axis)
	}
	reply, err = c.PositionReq(callCtx(t), &posxyz.Msg{})
	if err != nil || !proto.Equal(reply.GetPosition(), &posxyz.Pos{X: -4.5, Y: 0.25, Z: 8}) {
		t.Errorf("PositionReq after refusals = %v, %v", reply, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = c.PositionReq(ctx, &posxyz.Msg{})
	wantStatus(t, err, codes.DeadlineExceeded)
}

func TestPublishCreatesTheEntityAtRevisionOneAndCountsPublishes(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	e := unique("create")
	before := time.Now()
	first := publish(t, c, e, 1.25, -2.5, 1e-9)
	after := time.Now()
	if first.GetEntity() != e || first.GetRevision() != 1 || !proto.Equal(first.GetPosition(), vec(1.25, -2.5, 1e-9)) {
		t.Errorf("first Publish = %v", first)
	}
	accepted := first.GetUpdateTime().AsTime()
	if accepted.Before(before.Add(-time.Second)) || accepted.After(after.Add(time.Second)) {
		t.Errorf("update_time %v not within [%v, %v]", accepted, before, after)
	}
	if got := getPosition(t, c, e); !proto.Equal(got, first) {
		t.Errorf("Get = %v, want %v", got, first)
	}
	for i := 2; i <= 5; i++ {
		if r := publish(t, c, e, float64(i), 0, 0).GetRevision(); r != uint64(i) {
			t.Errorf("publish %d has revision %d", i, r)
		}
	}
	latest := getPosition(t, c, e)
	if latest.GetRevision() != 5 || !proto.Equal(latest.GetPosition(), vec(5, 0, 0)) {
		t.Errorf("Get after 5 publishes = %v", latest)
	}
	long := e + strings.Repeat("x", 128-len(e))
	if got := publish(t, c, long, 0, 0, 0).GetEntity(); got != long {
		t.Errorf("128-byte entity answered as %q", got)
	}
}

func TestPositionRefusalsNameTheField(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	_, err := c.Get(callCtx(t), &positionv1.GetRequest{Entity: unique("never-published")})
	wantStatus(t, err, codes.NotFound, "never-published")
	_, err = c.Get(callCtx(t), &positionv1.GetRequest{Entity: ""})
	wantStatus(t, err, codes.InvalidArgument, "entity")
	for _, bad := range []string{"", strings.Repeat("a", 129), "line\nbreak"} {
		_, err := c.Publish(callCtx(t), &positionv1.PublishRequest{Entity: bad, Position: vec(0, 0, 0)})
		wantStatus(t, err, codes.InvalidArgument, "entity")
	}
	_, err = c.Publish(callCtx(t), &positionv1.PublishRequest{Entity: unique("no-position")})
	wantStatus(t, err, codes.InvalidArgument, "position")

	e := unique("finite")
	publish(t, c, e, 1, 2, 3)
	for axis, v := range map[string]*positionv1.Vector3{
		"x": vec(math.NaN(), 0, 0), "y": vec(0, math.Inf(1), 0), "z": vec(0, 0, math.Inf(-1)),
	} {
		_, err := c.Publish(callCtx(t), &positionv1.PublishRequest{Entity: e, Position: v})
		wantStatus(t, err, codes.InvalidArgument, axis)
	}
	if kept := getPosition(t, c, e); kept.GetRevision() != 1 || !proto.Equal(kept.GetPosition(), vec(1, 2, 3)) {
		t.Errorf("after refusals: %v, want revision 1 at (1, 2, 3)", kept)
	}
}

func TestWatchStreamsEachNewPositionOfTheWatchedEntitiesOnly(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	a, b, other := unique("watched-a"), unique("watched-b"), unique("unwatched")
	publish(t, c, a, 9, 9, 9) // before the call: not replayed
	stream := watching(t, callCtx(t), c, a, b)
	for i := 1; i <= 3; i++ {
		publish(t, c, other, float64(i), 0, 0)
		for _, e := range []string{a, b} {
			published := publish(t, c, e, float64(i), 0, 0)
			got, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got.GetPosition(), published) {
				t.Errorf("watched %v, published %v", got.GetPosition(), published)
			}
		}
	}
}

func TestWatchWithoutEntitiesStreamsEveryEntityEvenNewOnes(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	first, second := unique("all-a"), unique("all-b")
	stream := watching(t, callCtx(t), c)
	for _, e := range []string{first, second, first} {
		published := publish(t, c, e, 1, 2, 3)
		// Other tests do not run at the same time, but skip anything else.
		for {
			got, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if got.GetPosition().GetEntity() == e {
				if !proto.Equal(got.GetPosition(), published) {
					t.Errorf("watched %v, published %v", got.GetPosition(), published)
				}
				break
			}
		}
	}
}

func TestWatchOfABurstEndsOnTheNewestPositionWithRisingRevisions(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	e, count := unique("burst"), 50
	stream := watching(t, callCtx(t), c, e)
	var wg sync.WaitGroup
	var last *positionv1.EntityPosition
	wg.Go(func() {
		for i := range count {
			r, err := c.Publish(callCtx(t), &positionv1.PublishRequest{Entity: e, Position: vec(float64(i), 0, 0)})
			if err != nil {
				t.Errorf("Publish %d: %v", i, err)
				return
			}
			last = r.GetPosition()
		}
	})
	var revisions []uint64
	for {
		got, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		revisions = append(revisions, got.GetPosition().GetRevision())
		if got.GetPosition().GetRevision() == uint64(count) {
			wg.Wait()
			if !proto.Equal(got.GetPosition(), last) {
				t.Errorf("last watched %v, last published %v", got.GetPosition(), last)
			}
			break
		}
	}
	for i := 1; i < len(revisions); i++ {
		if revisions[i] <= revisions[i-1] {
			t.Fatalf("revisions not rising: %v", revisions)
		}
	}
}

func TestWatchWithAShortDeadlineEndsDeadlineExceeded(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	stream, err := c.Watch(ctx, &positionv1.WatchRequest{Entities: []string{unique("deadline")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = recvAll[positionv1.WatchResponse](stream)
	wantStatus(t, err, codes.DeadlineExceeded)
	if took := time.Since(began); took < 400*time.Millisecond || took > 5*time.Second {
		t.Errorf("the call ended after %v", took)
	}
}

func TestCancelledWatchEndsCanceledAndTheEntityCanStillBeWatched(t *testing.T) {
	c := positionv1.NewPositionServiceClient(conn(t))
	e := unique("cancel")
	ctx, cancel := context.WithCancel(callCtx(t))
	stream := watching(t, ctx, c, e)
	publish(t, c, e, 1, 1, 1)
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err := stream.Recv()
	wantStatus(t, err, codes.Canceled)

	again := watching(t, callCtx(t), c, e)
	published := publish(t, c, e, 2, 2, 2)
	got, err := again.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetPosition(), published) || published.GetRevision() != 2 {
		t.Errorf("watched %v after a cancel, published %v", got.GetPosition(), published)
	}
}

func TestWatchEndsUnavailableWhenTheServerDrains(t *testing.T) {
	srv := ownServer(t, nil, "--no-sample-data")
	c := positionv1.NewPositionServiceClient(srv.conn)
	stream := watching(t, callCtx(t), c, "default")
	published := publish(t, c, "default", 3, 2, 1)
	if got, err := stream.Recv(); err != nil || !proto.Equal(got.GetPosition(), published) {
		t.Fatalf("Watch = %v, %v", got, err)
	}
	if err := srv.cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	_, err := stream.Recv()
	wantStatus(t, err, codes.Unavailable)
}
