package dataport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// randomFile writes n pseudo-random bytes (seeded, so reruns see the same
// data) to dir/name and answers them.
func randomFile(t *testing.T, dir, name string, n int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(data)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// progressLog records the calls of a Progress.
type progressLog struct {
	mu    sync.Mutex
	calls [][2]int64
}

func (p *progressLog) fn(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, [2]int64{done, total})
}

// check asserts the calls start at from, step by at most ChunkSize up to
// total, and number want (if want >= 0).
func (p *progressLog) check(t *testing.T, from, total int64, want int) {
	t.Helper()
	if len(p.calls) == 0 {
		t.Fatalf("progress was never called")
	}
	if want >= 0 && len(p.calls) != want {
		t.Errorf("progress called %d times, want %d: %v", len(p.calls), want, p.calls)
	}
	if first := p.calls[0]; first != [2]int64{from, total} {
		t.Errorf("first progress call %v, want [%d %d]", first, from, total)
	}
	if last := p.calls[len(p.calls)-1]; last != [2]int64{total, total} {
		t.Errorf("last progress call %v, want [%d %d]", last, total, total)
	}
	for i := 1; i < len(p.calls); i++ {
		prev, cur := p.calls[i-1], p.calls[i]
		if cur[1] != total || cur[0] <= prev[0] || cur[0]-prev[0] > ChunkSize {
			t.Errorf("progress call %d is %v after %v", i, cur, prev)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// dirNames lists dir, to see that nothing but the downloads is left in it.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestUploadThenDownloadRoundTripsWithSha256AndProgress(t *testing.T) {
	ctx := testContext(t)
	src, out := t.TempDir(), t.TempDir()
	const size = 3*ChunkSize + 12345
	data := randomFile(t, src, "round-trip.bin", size, 1)

	var up progressLog
	file, err := testClient.UploadFile(ctx, filepath.Join(src, "round-trip.bin"), WithProgress(up.fn))
	if err != nil {
		t.Fatal(err)
	}
	if file.GetName() != "round-trip.bin" || file.GetSize() != size || file.GetSha256() != sha256Hex(data) {
		t.Fatalf("stored %v, want round-trip.bin, %d bytes, sha256 %s", file, size, sha256Hex(data))
	}
	up.check(t, 0, size, 1+4)

	stat, err := testClient.Files.Stat(ctx, &filesv1.StatRequest{Name: "round-trip.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if stat.GetFile().GetSha256() != sha256Hex(data) || stat.GetFile().GetSize() != size {
		t.Fatalf("Stat answers %v", stat.GetFile())
	}

	var down progressLog
	got, err := testClient.DownloadFile(ctx, "round-trip.bin", out, WithProgress(down.fn))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetSha256() != sha256Hex(data) || got.GetSize() != size {
		t.Fatalf("DownloadFile answers %v", got)
	}
	if !bytes.Equal(readFile(t, filepath.Join(out, "round-trip.bin")), data) {
		t.Fatal("the downloaded file differs from the uploaded one")
	}
	down.check(t, 0, size, -1)
	if names := dirNames(t, out); len(names) != 1 {
		t.Fatalf("the download directory holds %v, want only round-trip.bin", names)
	}

	// To a path of its own, replacing what is there.
	dest := filepath.Join(out, "copy.bin")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := testClient.DownloadFile(ctx, "round-trip.bin", dest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("the download to a path differs from the uploaded file")
	}
}

func TestUploadWithNameStoresUnderItAndReplacesTheOldContent(t *testing.T) {
	ctx := testContext(t)
	src, out := t.TempDir(), t.TempDir()
	first := randomFile(t, src, "first.txt", 1000, 2)
	second := randomFile(t, src, "second.txt", 2000, 3)
	for _, f := range []string{"first.txt", "second.txt"} {
		file, err := testClient.UploadFile(ctx, filepath.Join(src, f), WithName("named.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if file.GetName() != "named.txt" {
			t.Fatalf("stored as %q, want named.txt", file.GetName())
		}
	}
	if _, err := testClient.DownloadFile(ctx, "named.txt", out); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, filepath.Join(out, "named.txt"))
	if !bytes.Equal(got, second) || bytes.Equal(got, first) {
		t.Fatal("the download is not the second upload")
	}
}

func TestAnEmptyFileRoundTrips(t *testing.T) {
	ctx := testContext(t)
	src, out := t.TempDir(), t.TempDir()
	randomFile(t, src, "empty.bin", 0, 4)
	for _, opts := range [][]UploadOption{nil, {Resume()}} {
		var up progressLog
		file, err := testClient.UploadFile(ctx, filepath.Join(src, "empty.bin"), append(opts, WithProgress(up.fn))...)
		if err != nil {
			t.Fatal(err)
		}
		if file.GetSize() != 0 || file.GetSha256() != sha256Hex(nil) {
			t.Fatalf("stored %v", file)
		}
		up.check(t, 0, 0, -1)
	}
	var down progressLog
	if _, err := testClient.DownloadFile(ctx, "empty.bin", out, WithProgress(down.fn)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(out, "empty.bin")); len(got) != 0 {
		t.Fatalf("downloaded %d bytes", len(got))
	}
	down.check(t, 0, 0, 1)
}

// writeCounter counts what a Client sends: the data bytes of ByteStream
// WriteRequests, and the methods it calls.
type writeCounter struct {
	mu      sync.Mutex
	bytes   int64
	methods map[string]int
}

func (w *writeCounter) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	w.count(method)
	s, err := streamer(ctx, desc, cc, method, opts...)
	return &countingStream{ClientStream: s, w: w}, err
}

func (w *writeCounter) interceptUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	w.count(method)
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (w *writeCounter) count(method string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.methods == nil {
		w.methods = map[string]int{}
	}
	w.methods[method]++
}

func (w *writeCounter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes, w.methods = 0, nil
}

type countingStream struct {
	grpc.ClientStream
	w *writeCounter
}

func (s *countingStream) SendMsg(m any) error {
	if req, ok := m.(*bytestream.WriteRequest); ok {
		s.w.mu.Lock()
		s.w.bytes += int64(len(req.GetData()))
		s.w.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func TestResumeContinuesFromTheCommittedOffsetAndFinishesOnce(t *testing.T) {
	ctx := testContext(t)
	src, out := t.TempDir(), t.TempDir()
	const size = 3*ChunkSize + 5
	const cut = ChunkSize + ChunkSize/4
	const name = "resumed.bin"
	data := randomFile(t, src, name, size, 5)
	digest := sha256Hex(data)
	resource := UploadResourceName(ResumableUploadID(name, digest, 0), name, digest)

	// A first attempt that stopped after cut bytes: a Write that ends
	// without finish_write keeps what it wrote.
	w, err := testClient.ByteStream.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < cut; off += ChunkSize / 4 {
		req := &bytestream.WriteRequest{WriteOffset: off, Data: data[off : off+ChunkSize/4]}
		if off == 0 {
			req.ResourceName = resource
		}
		if err := w.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := w.CloseAndRecv(); err != nil || resp.GetCommittedSize() != cut {
		t.Fatalf("the cut-off Write answered %v, %v; want committed_size %d", resp, err, cut)
	}
	st, err := testClient.ByteStream.QueryWriteStatus(ctx, &bytestream.QueryWriteStatusRequest{ResourceName: resource})
	if err != nil || st.GetCommittedSize() != cut || st.GetComplete() {
		t.Fatalf("QueryWriteStatus before resuming: %v, %v", st, err)
	}

	// A Client of its own, which counts what it sends.
	var counter writeCounter
	c, err := Dial(testAddr, grpc.WithStreamInterceptor(counter.intercept), grpc.WithUnaryInterceptor(counter.interceptUnary))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var up progressLog
	file, err := c.UploadFile(ctx, filepath.Join(src, name), Resume(), WithProgress(up.fn))
	if err != nil {
		t.Fatal(err)
	}
	if file.GetName() != name || file.GetSize() != size || file.GetSha256() != digest {
		t.Fatalf("stored %v, want %s, %d bytes, sha256 %s", file, name, size, digest)
	}
	if counter.bytes != size-cut {
		t.Errorf("resuming sent %d bytes, want the %d after the committed %d", counter.bytes, size-cut, cut)
	}
	if n := counter.methods["/dataport.files.v1.FilesService/Upload"]; n != 0 {
		t.Errorf("a resumable upload called FilesService.Upload %d times", n)
	}
	up.check(t, cut, size, -1)
	st, err = testClient.ByteStream.QueryWriteStatus(ctx, &bytestream.QueryWriteStatusRequest{ResourceName: resource})
	if err != nil || st.GetCommittedSize() != size || !st.GetComplete() {
		t.Fatalf("QueryWriteStatus after resuming: %v, %v", st, err)
	}

	// Run again: the server holds the file, nothing is sent.
	counter.reset()
	var again progressLog
	file, err = c.UploadFile(ctx, filepath.Join(src, name), Resume(), WithProgress(again.fn))
	if err != nil {
		t.Fatal(err)
	}
	if file.GetSha256() != digest || counter.bytes != 0 || counter.methods["/google.bytestream.ByteStream/Write"] != 0 {
		t.Errorf("a rerun stored %v after sending %d bytes in %v", file, counter.bytes, counter.methods)
	}
	again.check(t, size, size, 1)

	if _, err := testClient.DownloadFile(ctx, name, out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(out, name)), data) {
		t.Fatal("the downloaded file differs from the uploaded one")
	}
}

func TestResumeAfterTheFileWasReplacedUploadsItAgainUnderTheNextID(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	const name = "replaced.bin"
	data := randomFile(t, src, name, ChunkSize+1, 6)
	randomFile(t, src, "other.bin", 100, 7)
	digest := sha256Hex(data)
	if _, err := testClient.UploadFile(ctx, filepath.Join(src, name), Resume()); err != nil {
		t.Fatal(err)
	}
	if _, err := testClient.UploadFile(ctx, filepath.Join(src, "other.bin"), WithName(name)); err != nil {
		t.Fatal(err)
	}
	file, err := testClient.UploadFile(ctx, filepath.Join(src, name), Resume())
	if err != nil {
		t.Fatal(err)
	}
	if file.GetSha256() != digest {
		t.Fatalf("after the resumable upload the file has sha256 %s, want %s", file.GetSha256(), digest)
	}
	next := UploadResourceName(ResumableUploadID(name, digest, 1), name, digest)
	st, err := testClient.ByteStream.QueryWriteStatus(ctx, &bytestream.QueryWriteStatusRequest{ResourceName: next})
	if err != nil || !st.GetComplete() || st.GetCommittedSize() != int64(len(data)) {
		t.Fatalf("QueryWriteStatus of the second upload id: %v, %v", st, err)
	}
}

func TestResumableUploadIDsAreTheCLIs(t *testing.T) {
	// The ids `dataport upload --resume` derives, from
	//   printf 'dataport upload\nreport.pdf\n%s\nGEN' "$(printf '' | sha256sum | cut -c1-64)" | sha256sum | cut -c1-32
	empty := sha256Hex(nil)
	for gen, want := range []string{"b0b7e191957ee378160fefbb8c302f5c", "3812c5ddd38165b9b2108e081767ed91"} {
		if got := ResumableUploadID("report.pdf", empty, gen); got != want {
			t.Errorf("ResumableUploadID(report.pdf, sha256 of nothing, %d) = %s, want %s", gen, got, want)
		}
	}
	if got := UploadResourceName("u1", "a.txt", ""); got != "uploads/u1/files/a.txt" {
		t.Fatalf("UploadResourceName without a digest = %s", got)
	}
	if got := UploadResourceName("u1", "a.txt", empty); got != "uploads/u1/files/a.txt/sha256/"+empty {
		t.Fatalf("UploadResourceName with a digest = %s", got)
	}
}

func TestDownloadOfAMissingFileIsNotFoundAndWritesNothing(t *testing.T) {
	ctx := testContext(t)
	out := t.TempDir()
	_, err := testClient.DownloadFile(ctx, "no-such-file.bin", out)
	if status.Code(err) != codes.NotFound {
		t.Fatalf("DownloadFile of a missing file: %v, want NOT_FOUND", err)
	}
	if s, ok := status.FromError(err); !ok || s.Code() != codes.NotFound {
		t.Fatalf("status.FromError(%v) = %v, %v", err, s, ok)
	}
	_, err = testClient.DownloadFile(ctx, "no-such-file.bin", filepath.Join(out, "to.bin"))
	if status.Code(err) != codes.NotFound {
		t.Fatalf("DownloadFile of a missing file to a path: %v, want NOT_FOUND", err)
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Fatalf("a failed download left %v", names)
	}
}

func TestUploadUnderARefusedNameIsInvalidArgumentAndStoresNothing(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	randomFile(t, src, "ok.bin", 10, 8)
	for _, name := range []string{"..", "a/b", "", "tab\there"} {
		for _, opts := range [][]UploadOption{{WithName(name)}, {WithName(name), Resume()}} {
			_, err := testClient.UploadFile(ctx, filepath.Join(src, "ok.bin"), opts...)
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("upload as %q (%d options): %v, want INVALID_ARGUMENT", name, len(opts), err)
			}
		}
	}
}

func TestUploadOfAMissingLocalFileIsFsErrNotExist(t *testing.T) {
	_, err := testClient.UploadFile(testContext(t), filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("upload of a missing file: %v", err)
	}
}

func TestAResumableUploadCutByItsContextContinuesWhereTheServerStands(t *testing.T) {
	ctx := testContext(t)
	src := t.TempDir()
	const size = 4*ChunkSize + 77
	const name = "cut.bin"
	data := randomFile(t, src, name, size, 9)
	digest := sha256Hex(data)

	var counter writeCounter
	c, err := Dial(testAddr, grpc.WithStreamInterceptor(counter.intercept))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Cut the first attempt once two chunks have gone.
	cutCtx, cut := context.WithCancel(ctx)
	_, err = c.UploadFile(cutCtx, filepath.Join(src, name), Resume(), WithProgress(func(done, _ int64) {
		if done >= 2*ChunkSize {
			cut()
		}
	}))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("the cut upload answered %v, want CANCELED", err)
	}
	if _, err := c.Files.Stat(ctx, &filesv1.StatRequest{Name: name}); status.Code(err) != codes.NotFound {
		t.Fatalf("after the cut, Stat answers %v, want NOT_FOUND", err)
	}

	// The server may still be winding the cut call down when the rerun
	// asks where it stands; the rerun continues from wherever that settles,
	// no further than what was sent.
	counter.reset()
	var up progressLog
	file, err := c.UploadFile(ctx, filepath.Join(src, name), Resume(), WithProgress(up.fn))
	if err != nil {
		t.Fatal(err)
	}
	if file.GetSize() != size || file.GetSha256() != digest {
		t.Fatalf("stored %v", file)
	}
	from := up.calls[0][0]
	if from > 2*ChunkSize {
		t.Fatalf("the rerun continued from %d, past the %d bytes sent before the cut", from, 2*ChunkSize)
	}
	up.check(t, from, size, -1)
	if counter.bytes != size-from {
		t.Errorf("the rerun sent %d bytes, want %d: all after the %d the server held", counter.bytes, size-from, from)
	}
	t.Logf("the rerun continued from %d", from)
}
