package interop

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const writeChunk = 256 * 1024

// newUpload is a fresh upload id and file name.
func newUpload(tag string) (string, string) {
	id := unique("up")
	return id, tag + "-" + id[3:] + ".bin"
}

func resource(uploadID, name, sum string) string {
	r := "uploads/" + uploadID + "/files/" + name
	if sum != "" {
		r += "/sha256/" + sum
	}
	return r
}

// writeRequests is data written from offset: the first message names the
// resource, the last one finishes the upload if finish.
func writeRequests(res string, data []byte, offset int64, chunk int, finish bool) []*bytestream.WriteRequest {
	pieces := chunks(data, chunk)
	if len(pieces) == 0 {
		pieces = [][]byte{nil}
	}
	var out []*bytestream.WriteRequest
	at := offset
	for i, p := range pieces {
		r := &bytestream.WriteRequest{WriteOffset: at, Data: p, FinishWrite: finish && i == len(pieces)-1}
		if i == 0 {
			r.ResourceName = res
		}
		out = append(out, r)
		at += int64(len(p))
	}
	return out
}

func write(ctx context.Context, c bytestream.ByteStreamClient, reqs []*bytestream.WriteRequest) (int64, error) {
	stream, err := c.Write(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range reqs {
		if stream.Send(r) != nil {
			break
		}
	}
	reply, err := stream.CloseAndRecv()
	return reply.GetCommittedSize(), err
}

func read(ctx context.Context, c bytestream.ByteStreamClient, name string, offset, limit int64) ([]byte, error) {
	stream, err := c.Read(ctx, &bytestream.ReadRequest{ResourceName: "files/" + name, ReadOffset: offset, ReadLimit: limit})
	if err != nil {
		return nil, err
	}
	replies, err := recvAll[bytestream.ReadResponse](stream)
	var data []byte
	for _, r := range replies {
		data = append(data, r.GetData()...)
	}
	return data, err
}

func queryStatus(ctx context.Context, c bytestream.ByteStreamClient, res string) (int64, bool, error) {
	r, err := c.QueryWriteStatus(ctx, &bytestream.QueryWriteStatusRequest{ResourceName: res})
	return r.GetCommittedSize(), r.GetComplete(), err
}

func TestByteStreamWriteInOneGoReadsBackAndIsComplete(t *testing.T) {
	c := bytestream.NewByteStreamClient(conn(t))
	id, name := newUpload("one-go")
	data := randomBytes(t, 3<<20+777)
	res := resource(id, name, hexSHA256(data))
	size, err := write(callCtx(t), c, writeRequests(res, data, 0, 100_003, true))
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Write = %d, %v", size, err)
	}
	if back, err := read(callCtx(t), c, name, 0, 0); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("Read: %d bytes, %v", len(back), err)
	}
	if size, complete, err := queryStatus(callCtx(t), c, res); err != nil || size != int64(len(data)) || !complete {
		t.Errorf("QueryWriteStatus = %d %v %v", size, complete, err)
	}
	// A finished upload answers its size again without writing.
	if size, err := write(callCtx(t), c, writeRequests(res, []byte("other"), 0, writeChunk, true)); err != nil || size != int64(len(data)) {
		t.Errorf("a repeated Write = %d, %v", size, err)
	}
	if back, _ := read(callCtx(t), c, name, 0, 0); !bytes.Equal(back, data) {
		t.Error("a repeated Write changed the file")
	}
}

func TestByteStreamReadsTakeOffsetsAndLimits(t *testing.T) {
	c := bytestream.NewByteStreamClient(conn(t))
	id, name := newUpload("read")
	data := randomBytes(t, 600_000)
	if _, err := write(callCtx(t), c, writeRequests(resource(id, name, ""), data, 0, writeChunk, true)); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 0}, {1, 0}, {10, 20}, {300_000, 299_999}, {599_999, 0}, {600_000, 0}, {0, 1e9}} {
		end := int64(len(data))
		if r[1] != 0 {
			end = min(end, r[0]+r[1])
		}
		if back, err := read(callCtx(t), c, name, r[0], r[1]); err != nil || !bytes.Equal(back, data[r[0]:end]) {
			t.Errorf("Read(offset %d, limit %d): %d bytes, %v", r[0], r[1], len(back), err)
		}
	}
	_, err := read(callCtx(t), c, name, 600_001, 0)
	wantStatus(t, err, codes.OutOfRange, "read_offset", "600001")
	_, err = read(callCtx(t), c, name, -1, 0)
	wantStatus(t, err, codes.OutOfRange, "read_offset", "negative")
	_, err = read(callCtx(t), c, name, 0, -1)
	wantStatus(t, err, codes.OutOfRange, "read_limit", "negative")
	_, err = read(callCtx(t), c, unique("missing"), 0, 0)
	wantStatus(t, err, codes.NotFound)
	_, err = read(callCtx(t), c, "../etc/passwd", 0, 0)
	wantStatus(t, err, codes.InvalidArgument, "resource_name", "expected")
}

func TestByteStreamChecksumMismatchIsDataLossAndStoresNothing(t *testing.T) {
	c := bytestream.NewByteStreamClient(conn(t))
	id, name := newUpload("mismatch")
	res := resource(id, name, hexSHA256([]byte("not this")))
	_, err := write(callCtx(t), c, writeRequests(res, randomBytes(t, 100_000), 0, writeChunk, true))
	wantStatus(t, err, codes.DataLoss, "sha256", "mismatch")
	_, err = read(callCtx(t), c, name, 0, 0)
	wantStatus(t, err, codes.NotFound)
	_, _, err = queryStatus(callCtx(t), c, res)
	wantStatus(t, err, codes.NotFound, "start", "Write", "offset")
}

func TestByteStreamBadOffsetsAndNamesAreRefused(t *testing.T) {
	c := bytestream.NewByteStreamClient(conn(t))
	id, name := newUpload("bad")
	res := resource(id, name, "")
	if size, err := write(callCtx(t), c, writeRequests(res, []byte("0123456789"), 0, writeChunk, false)); err != nil || size != 10 {
		t.Fatalf("an unfinished Write = %d, %v", size, err)
	}
	_, err := write(callCtx(t), c, writeRequests(res, []byte("x"), 3, writeChunk, true))
	wantStatus(t, err, codes.OutOfRange, "offset", "3", "10")
	for _, bad := range []string{"", "files/x", "uploads/../files/x", "uploads/u/files/a/b", "uploads/u/files/x/sha256/12"} {
		_, err := write(callCtx(t), c, writeRequests(bad, []byte("x"), 0, writeChunk, true))
		wantStatus(t, err, codes.InvalidArgument, "resource_name")
	}
	_, _, err = queryStatus(callCtx(t), c, "uploads/../files/x")
	wantStatus(t, err, codes.InvalidArgument, "resource_name", "expected")
	if size, complete, err := queryStatus(callCtx(t), c, res); err != nil || size != 10 || complete {
		t.Errorf("QueryWriteStatus = %d %v %v; want 10, not complete", size, complete, err)
	}
}

func TestByteStreamWritesInPiecesResumingFromQueryWriteStatus(t *testing.T) {
	c := bytestream.NewByteStreamClient(conn(t))
	id, name := newUpload("pieces")
	res := resource(id, name, "")
	data := randomBytes(t, 2<<20+5)
	_, _, err := queryStatus(callCtx(t), c, res)
	wantStatus(t, err, codes.NotFound, "start", "Write")
	cuts := []int{0, 1, 700_000, 1_500_000, len(data)}
	for i := 1; i < len(cuts); i++ {
		start, end := cuts[i-1], cuts[i]
		if start > 0 {
			if size, complete, err := queryStatus(callCtx(t), c, res); err != nil || size != int64(start) || complete {
				t.Fatalf("before piece %d: %d %v %v", i, size, complete, err)
			}
		}
		size, err := write(callCtx(t), c, writeRequests(res, data[start:end], int64(start), 65_536, end == len(data)))
		if err != nil || size != int64(end) {
			t.Fatalf("piece %d: %d, %v", i, size, err)
		}
	}
	if size, complete, err := queryStatus(callCtx(t), c, res); err != nil || size != int64(len(data)) || !complete {
		t.Errorf("at the end: %d %v %v", size, complete, err)
	}
	if back, err := read(callCtx(t), c, name, 0, 0); err != nil || !bytes.Equal(back, data) {
		t.Errorf("Read: %d bytes, %v", len(back), err)
	}
}

// waitForDataFile waits until the server has written part of an upload to
// its data dir.
func waitForDataFile(t *testing.T, dataDir, uploadID string) {
	t.Helper()
	path := filepath.Join(dataDir, "files", ".tmp", "resumable", uploadID)
	deadline := time.Now().Add(rpcTimeout)
	for {
		if info, err := os.Stat(path); err == nil && info.Size() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload %s never reached %s", uploadID, path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// resumePoint is where a client continues after its Write was cut off: the
// committed size, confirmed by an empty Write there. The server may still be
// winding the old call down (ABORTED, or a size that still grows:
// OUT_OF_RANGE).
func resumePoint(t *testing.T, c bytestream.ByteStreamClient, res string) int64 {
	t.Helper()
	deadline := time.Now().Add(rpcTimeout)
	for {
		size, complete, err := queryStatus(callCtx(t), c, res)
		if err != nil || complete {
			t.Fatalf("QueryWriteStatus = %d %v %v; want an unfinished upload", size, complete, err)
		}
		confirmed, err := write(callCtx(t), c, writeRequests(res, nil, size, writeChunk, false))
		if err == nil {
			if confirmed != size {
				t.Fatalf("an empty Write at %d answered %d", size, confirmed)
			}
			return size
		}
		if code := status.Code(err); (code != codes.Aborted && code != codes.OutOfRange) || time.Now().After(deadline) {
			t.Fatalf("an empty Write at %d: %v", size, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestByteStreamUploadResumesAfterTheClientCancelsMidUpload(t *testing.T) {
	srv := sharedServer(t)
	c := bytestream.NewByteStreamClient(srv.conn)
	id, name := newUpload("cancelled")
	data := randomBytes(t, 4<<20)
	res := resource(id, name, hexSHA256(data))
	ctx, cancel := context.WithCancel(callCtx(t))
	stream, err := c.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range writeRequests(res, data[:2<<20], 0, writeChunk, false) {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	waitForDataFile(t, srv.dataDir, id)
	cancel()
	_, err = stream.CloseAndRecv()
	wantStatus(t, err, codes.Canceled)
	_, err = read(callCtx(t), c, name, 0, 0)
	wantStatus(t, err, codes.NotFound)

	at := resumePoint(t, c, res)
	if at <= 0 || at > 2<<20 {
		t.Fatalf("resume at %d", at)
	}
	if size, err := write(callCtx(t), c, writeRequests(res, data[at:], at, writeChunk, true)); err != nil || size != int64(len(data)) {
		t.Fatalf("the resumed Write = %d, %v", size, err)
	}
	if back, err := read(callCtx(t), c, name, 0, 0); err != nil || !bytes.Equal(back, data) {
		t.Errorf("Read after the resume: %d bytes, %v", len(back), err)
	}
}

func TestByteStreamUploadResumesAfterTheServerIsKilledAndRestarted(t *testing.T) {
	bin, err := dataportBin()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	first, err := start(bin, dataDir, nil, []string{"--no-sample-data"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		first.kill()
		if t.Failed() {
			t.Logf("dataport output (killed server):\n%s", first.output())
		}
	}()
	id, name := newUpload("killed")
	data := randomBytes(t, 4<<20+12_345)
	res := resource(id, name, hexSHA256(data))
	stream, err := bytestream.NewByteStreamClient(first.conn).Write(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range writeRequests(res, data[:3<<20], 0, writeChunk, false) {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	waitForDataFile(t, dataDir, id)
	first.kill() // SIGKILL: no drain, no flush, no goodbye
	_, err = stream.CloseAndRecv()
	wantStatus(t, err, codes.Unavailable)

	second, err := start(bin, dataDir, nil, []string{"--no-sample-data"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := second.stop(); err != nil {
			t.Errorf("second server: %v", err)
		}
		if t.Failed() {
			t.Logf("dataport output (restarted server):\n%s", second.output())
		}
	}()
	c := bytestream.NewByteStreamClient(second.conn)
	at, complete, err := queryStatus(callCtx(t), c, res)
	if err != nil || complete || at <= 0 || at > 3<<20 {
		t.Fatalf("QueryWriteStatus after the restart = %d %v %v", at, complete, err)
	}
	_, err = read(callCtx(t), c, name, 0, 0)
	wantStatus(t, err, codes.NotFound)
	if size, err := write(callCtx(t), c, writeRequests(res, data[at:], at, writeChunk, true)); err != nil || size != int64(len(data)) {
		t.Fatalf("the resumed Write = %d, %v", size, err)
	}
	if size, complete, err := queryStatus(callCtx(t), c, res); err != nil || size != int64(len(data)) || !complete {
		t.Errorf("QueryWriteStatus at the end = %d %v %v", size, complete, err)
	}
	if back, err := read(callCtx(t), c, name, 0, 0); err != nil || !bytes.Equal(back, data) {
		t.Errorf("Read after the restart: %d bytes, %v", len(back), err)
	}
}

func TestByteStreamReadCancelledMidwayAndCallsPastTheirDeadline(t *testing.T) {
	c := bytestream.NewByteStreamClient(conn(t))
	id, name := newUpload("deadline")
	data := randomBytes(t, 8<<20)
	if _, err := write(callCtx(t), c, writeRequests(resource(id, name, ""), data, 0, 1<<20, true)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(callCtx(t))
	windowed := bytestream.NewByteStreamClient(windowedConn(t, sharedServer(t)))
	stream, err := windowed.Read(ctx, &bytestream.ReadRequest{ResourceName: "files/" + name})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || !bytes.HasPrefix(data, r.GetData()) || len(r.GetData()) == 0 {
		t.Fatalf("first Read message: %v", err)
	}
	cancel()
	_, err = recvAll[bytestream.ReadResponse](stream)
	wantStatus(t, err, codes.Canceled)

	// A Write left open past its deadline keeps what it wrote, unfinished.
	wid, wname := newUpload("expired")
	res := resource(wid, wname, "")
	short, done := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer done()
	ws, err := c.Write(short)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&bytestream.WriteRequest{ResourceName: res, Data: []byte("0123456789")}); err != nil {
		t.Fatal(err)
	}
	var reply bytestream.WriteResponse
	wantStatus(t, ws.RecvMsg(&reply), codes.DeadlineExceeded)
	if at := resumePoint(t, c, res); at != 0 && at != 10 {
		t.Errorf("after an expired Write the upload is at %d", at)
	}
	_, err = read(callCtx(t), c, wname, 0, 0)
	wantStatus(t, err, codes.NotFound)

	ctx, cancel = context.WithTimeout(context.Background(), time.Microsecond)
	<-ctx.Done()
	_, err = read(ctx, c, name, 0, 0)
	wantStatus(t, err, codes.DeadlineExceeded)
	_, _, err = queryStatus(ctx, c, res)
	wantStatus(t, err, codes.DeadlineExceeded)
	cancel()
	if back, err := read(callCtx(t), c, name, 0, 0); err != nil || !bytes.Equal(back, data) || errors.Is(err, context.Canceled) {
		t.Errorf("a Read after the cancel: %d bytes, %v", len(back), err)
	}
}
