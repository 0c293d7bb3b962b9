package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/filesrv"
	"github.com/dataport/dataport/clients/go/compat/filetransfer"
	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func chunks(data []byte, size int) [][]byte {
	var out [][]byte
	for i := 0; i < len(data); i += size {
		out = append(out, data[i:min(i+size, len(data))])
	}
	return out
}

// FileSrv and FileTransfer.FileService

func fileSrvUpload(ctx context.Context, c filesrv.FileSrvClient, reqs []*filesrv.UploadRequest) (*filesrv.StringResponse, error) {
	stream, err := c.UploadFile(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if stream.Send(r) != nil {
			break // the status comes from CloseAndRecv
		}
	}
	return stream.CloseAndRecv()
}

func fileSrvRequests(filename, extension string, data []byte, chunk int) []*filesrv.UploadRequest {
	reqs := []*filesrv.UploadRequest{{Request: &filesrv.UploadRequest_Header{Header: &filesrv.FileHeader{Filename: filename, Extension: extension}}}}
	for _, c := range chunks(data, chunk) {
		reqs = append(reqs, &filesrv.UploadRequest{Request: &filesrv.UploadRequest_ChunkData{ChunkData: c}})
	}
	return reqs
}

func fileSrvDownload(ctx context.Context, c filesrv.FileSrvClient, filename, extension string) ([]byte, error) {
	stream, err := c.DownloadFile(ctx, &filesrv.FileHeader{Filename: filename, Extension: extension})
	if err != nil {
		return nil, err
	}
	replies, err := recvAll[filesrv.FileResponse](stream)
	var data []byte
	for _, r := range replies {
		data = append(data, r.GetChunkData()...)
	}
	return data, err
}

func TestFileSrvUploadThenDownloadUnchangedAndAReplacement(t *testing.T) {
	c := filesrv.NewFileSrvClient(conn(t))
	name := unique("report")
	data := randomBytes(t, 3<<20+4321)
	reply, err := fileSrvUpload(callCtx(t), c, fileSrvRequests(name, ".pdf", data, 100_003))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`stored "%s.pdf": %d bytes, sha256 %s`, name, len(data), hexSHA256(data))
	if reply.GetCode() != 0 || reply.GetMessage() != want {
		t.Errorf("UploadFile = %d %q, want 0 %q", reply.GetCode(), reply.GetMessage(), want)
	}
	back, err := fileSrvDownload(callCtx(t), c, name, ".pdf")
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("DownloadFile: %d bytes, %v", len(back), err)
	}
	// DownloadFile sends 1 MiB chunks.
	stream, err := c.DownloadFile(callCtx(t), &filesrv.FileHeader{Filename: name, Extension: ".pdf"})
	if err != nil {
		t.Fatal(err)
	}
	replies, err := recvAll[filesrv.FileResponse](stream)
	if err != nil || len(replies) != 4 || len(replies[0].GetChunkData()) != 1<<20 {
		t.Errorf("DownloadFile of %d bytes in %d messages, %v", len(data), len(replies), err)
	}
	// Cancelled after its first chunk, a download ends CANCELLED.
	ctx, cancel := context.WithCancel(callCtx(t))
	windowed := filesrv.NewFileSrvClient(windowedConn(t, sharedServer(t)))
	stream, err = windowed.DownloadFile(ctx, &filesrv.FileHeader{Filename: name, Extension: ".pdf"})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || !bytes.Equal(first.GetChunkData(), data[:1<<20]) {
		t.Fatalf("first chunk: %v", err)
	}
	cancel()
	_, err = recvAll[filesrv.FileResponse](stream)
	wantStatus(t, err, codes.Canceled)

	if _, err := fileSrvUpload(callCtx(t), c, fileSrvRequests(name, ".pdf", []byte("short"), 10)); err != nil {
		t.Fatal(err)
	}
	if back, err := fileSrvDownload(callCtx(t), c, name, ".pdf"); err != nil || string(back) != "short" {
		t.Errorf("after a replacement: %q, %v", back, err)
	}
	// The same file is in the everyday API, under filename + extension.
	stat, err := filesv1.NewFilesServiceClient(conn(t)).Stat(callCtx(t), &filesv1.StatRequest{Name: name + ".pdf"})
	if err != nil || stat.GetFile().GetSize() != 5 || stat.GetFile().GetSha256() != hexSHA256([]byte("short")) {
		t.Errorf("Stat(%s.pdf) = %v, %v", name, stat, err)
	}
}

func TestFileSrvRefusals(t *testing.T) {
	c := filesrv.NewFileSrvClient(conn(t))
	_, err := fileSrvDownload(callCtx(t), c, "nothing-here", ".txt")
	wantStatus(t, err, codes.NotFound, "nothing-here.txt")
	for _, bad := range []string{"../etc/passwd", "a/b", `a\b`, "", ".", "..", "x\x00y", "\x07"} {
		_, err := fileSrvUpload(callCtx(t), c, fileSrvRequests(bad, "", []byte("data"), 10))
		wantStatus(t, err, codes.InvalidArgument, "header")
	}
	_, err = fileSrvDownload(callCtx(t), c, "../etc/passwd", "")
	wantStatus(t, err, codes.InvalidArgument, "header")
	_, err = fileSrvUpload(callCtx(t), c, []*filesrv.UploadRequest{{Request: &filesrv.UploadRequest_ChunkData{ChunkData: []byte("x")}}})
	wantStatus(t, err, codes.InvalidArgument, "message 1 is chunk_data")
	name := unique("twice")
	twice := append(fileSrvRequests(name, ".txt", []byte("abc"), 10), &filesrv.UploadRequest{Request: &filesrv.UploadRequest_Header{Header: &filesrv.FileHeader{Filename: name}}})
	_, err = fileSrvUpload(callCtx(t), c, twice)
	wantStatus(t, err, codes.InvalidArgument, "second header")
	_, err = fileSrvDownload(callCtx(t), c, name, ".txt")
	wantStatus(t, err, codes.NotFound, name)
}

func TestFileTransferUploadAnswersTheGeneratedNameAndFileSrvDownloadsIt(t *testing.T) {
	c := filetransfer.NewFileServiceClient(conn(t))
	data := randomBytes(t, 300_000)
	stream, err := c.Upload(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, piece := range chunks(data, 50_000) {
		if err := stream.Send(&filetransfer.Chunk{Data: piece}); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(reply.GetMessage(), `"`)
	if len(parts) != 3 || parts[1] == "" {
		t.Fatalf("Upload answered %q", reply.GetMessage())
	}
	name := parts[1]
	if !strings.HasPrefix(name, "upload-") {
		t.Errorf("generated name %q", name)
	}
	if want := fmt.Sprintf(`stored "%s": %d bytes, sha256 %s`, name, len(data), hexSHA256(data)); reply.GetMessage() != want {
		t.Errorf("Upload = %q, want %q", reply.GetMessage(), want)
	}
	back, err := fileSrvDownload(callCtx(t), filesrv.NewFileSrvClient(conn(t)), name, "")
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("DownloadFile(%s): %d bytes, %v", name, len(back), err)
	}
	// An empty upload is stored too, under another name.
	stream, err = c.Upload(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(empty.GetMessage(), ": 0 bytes, sha256 "+hexSHA256(nil)) || strings.Contains(empty.GetMessage(), name) {
		t.Errorf("empty Upload = %q", empty.GetMessage())
	}
}

// dataport.files.v1

func v1Upload(ctx context.Context, c filesv1.FilesServiceClient, reqs []*filesv1.UploadRequest) (*filesv1.File, error) {
	stream, err := c.Upload(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if stream.Send(r) != nil {
			break
		}
	}
	reply, err := stream.CloseAndRecv()
	return reply.GetFile(), err
}

func header(name, sum string) *filesv1.UploadRequest {
	return &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Header{Header: &filesv1.UploadHeader{Name: name, Sha256: sum}}}
}

func chunk(b []byte) *filesv1.UploadRequest {
	return &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Chunk{Chunk: b}}
}

func trailer(sum string) *filesv1.UploadRequest {
	return &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Trailer{Trailer: &filesv1.UploadTrailer{Sha256: sum}}}
}

// uploadOf is a header, the data in chunks and, unless empty, a trailer.
func uploadOf(name string, data []byte, headerSum, trailerSum string) []*filesv1.UploadRequest {
	reqs := []*filesv1.UploadRequest{header(name, headerSum)}
	for _, c := range chunks(data, 100_003) {
		reqs = append(reqs, chunk(c))
	}
	if trailerSum != "" {
		reqs = append(reqs, trailer(trailerSum))
	}
	return reqs
}

type downloaded struct {
	file *filesv1.File
	data []byte
}

func v1Download(ctx context.Context, c filesv1.FilesServiceClient, names ...string) ([]downloaded, error) {
	stream, err := c.Download(ctx, &filesv1.DownloadRequest{Names: names})
	if err != nil {
		return nil, err
	}
	var out []downloaded
	for {
		r, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, err
		}
		switch k := r.GetKind().(type) {
		case *filesv1.DownloadResponse_File:
			out = append(out, downloaded{file: k.File})
		case *filesv1.DownloadResponse_Chunk:
			if len(out) == 0 {
				return out, fmt.Errorf("a chunk before any file")
			}
			out[len(out)-1].data = append(out[len(out)-1].data, k.Chunk...)
		}
	}
}

func TestFilesUploadStatListAndAMultiFileDownloadRoundTrip(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	big, small := unique("big"), unique("small")
	bigData, smallData := randomBytes(t, 3<<20+4321), randomBytes(t, 1000)
	before := time.Now().Add(-5 * time.Second)
	stored, err := v1Upload(callCtx(t), c, uploadOf(big, bigData, "", hexSHA256(bigData)))
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetName() != big || stored.GetSize() != uint64(len(bigData)) || stored.GetSha256() != hexSHA256(bigData) {
		t.Errorf("Upload = %v", stored)
	}
	created := stored.GetCreateTime().AsTime()
	if created.Before(before) || created.After(time.Now().Add(5*time.Second)) || !proto.Equal(stored.GetUpdateTime(), stored.GetCreateTime()) {
		t.Errorf("create %v update %v", stored.GetCreateTime(), stored.GetUpdateTime())
	}
	if _, err := v1Upload(callCtx(t), c, uploadOf(small, smallData, hexSHA256(smallData), "")); err != nil {
		t.Fatal(err)
	}
	stat, err := c.Stat(callCtx(t), &filesv1.StatRequest{Name: big})
	if err != nil || !proto.Equal(stat.GetFile(), stored) {
		t.Errorf("Stat = %v, %v; want %v", stat, err, stored)
	}
	listed, err := c.List(callCtx(t), &filesv1.ListRequest{Prefix: big})
	if err != nil || len(listed.GetFiles()) != 1 || !proto.Equal(listed.GetFiles()[0], stored) || listed.GetNextPageToken() != "" {
		t.Errorf("List(%s) = %v, %v", big, listed, err)
	}
	got, err := v1Download(callCtx(t), c, small, big, small)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].file.GetName() != small || !proto.Equal(got[1].file, stored) || got[2].file.GetName() != small {
		t.Fatalf("Download answered %d files", len(got))
	}
	if !bytes.Equal(got[0].data, smallData) || !bytes.Equal(got[1].data, bigData) || !bytes.Equal(got[2].data, smallData) {
		t.Error("downloaded data differs from the uploaded")
	}
	// A replacement keeps create_time and moves update_time.
	again, err := v1Upload(callCtx(t), c, uploadOf(small, []byte("new"), "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if again.GetSize() != 3 || again.GetCreateTime().AsTime() != got[0].file.GetCreateTime().AsTime() || again.GetUpdateTime().AsTime().Before(again.GetCreateTime().AsTime()) {
		t.Errorf("replacement = %v, first %v", again, got[0].file)
	}
}

func TestFilesSha256MismatchIsDataLossAndKeepsTheOldFile(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	name := unique("trailer")
	old := randomBytes(t, 10_000)
	oldFile, err := v1Upload(callCtx(t), c, uploadOf(name, old, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	wrong := hexSHA256([]byte("not the data"))
	_, err = v1Upload(callCtx(t), c, uploadOf(name, randomBytes(t, 300_000), "", wrong))
	wantStatus(t, err, codes.DataLoss, wrong)
	_, err = v1Upload(callCtx(t), c, uploadOf(name, []byte("data"), hexSHA256([]byte("other")), ""))
	wantStatus(t, err, codes.DataLoss, "nothing")
	if stat, err := c.Stat(callCtx(t), &filesv1.StatRequest{Name: name}); err != nil || !proto.Equal(stat.GetFile(), oldFile) {
		t.Errorf("Stat after mismatches = %v, %v", stat, err)
	}
	if got, err := v1Download(callCtx(t), c, name); err != nil || !bytes.Equal(got[0].data, old) {
		t.Errorf("Download after mismatches: %v", err)
	}
	_, err = v1Upload(callCtx(t), c, uploadOf(name, []byte("data"), "xyz", ""))
	wantStatus(t, err, codes.InvalidArgument, "header.sha256", "xyz")
}

func TestFilesUploadMessagesOutOfOrderAreInvalidArgumentAndStoreNothing(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	sum := func(s string) string { return hexSHA256([]byte(s)) }
	for _, tc := range []struct {
		reqs  func(name string) []*filesv1.UploadRequest
		words []string
	}{
		{func(string) []*filesv1.UploadRequest { return nil }, []string{"empty stream"}},
		{func(n string) []*filesv1.UploadRequest {
			return []*filesv1.UploadRequest{chunk([]byte("x")), header(n, "")}
		}, []string{"message 1 is a chunk"}},
		{func(n string) []*filesv1.UploadRequest {
			return []*filesv1.UploadRequest{trailer(sum("")), header(n, "")}
		}, []string{"message 1 is a trailer"}},
		{func(n string) []*filesv1.UploadRequest { return []*filesv1.UploadRequest{{}, header(n, "")} }, []string{"message 1 is empty"}},
		{func(n string) []*filesv1.UploadRequest {
			return []*filesv1.UploadRequest{header(n, ""), chunk([]byte("x")), header(n, "")}
		}, []string{"message 3", "second header"}},
		{func(n string) []*filesv1.UploadRequest {
			return []*filesv1.UploadRequest{header(n, ""), chunk([]byte("x")), trailer(sum("x")), chunk([]byte("y"))}
		}, []string{"message 4 is a chunk", "after the trailer"}},
		{func(n string) []*filesv1.UploadRequest {
			return []*filesv1.UploadRequest{header(n, sum("x")), chunk([]byte("x")), trailer(sum("y"))}
		}, []string{"message 3", "trailer.sha256", "header.sha256"}},
		{func(n string) []*filesv1.UploadRequest {
			return []*filesv1.UploadRequest{header(n, ""), chunk([]byte("x")), trailer("nothex")}
		}, []string{"message 3", "trailer.sha256", "nothex"}},
	} {
		name := unique("order")
		_, err := v1Upload(callCtx(t), c, tc.reqs(name))
		wantStatus(t, err, codes.InvalidArgument, tc.words...)
		_, err = c.Stat(callCtx(t), &filesv1.StatRequest{Name: name})
		wantStatus(t, err, codes.NotFound, name)
	}
}

func TestFilesHostileNamesAreInvalidArgumentEverywhere(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	for _, name := range []string{"", ".", "..", "a/b", "../etc/passwd", `a\b`, "x\x00y", "\x07", "a\nb", strings.Repeat("n", 256)} {
		_, err := v1Upload(callCtx(t), c, uploadOf(name, []byte("data"), "", ""))
		wantStatus(t, err, codes.InvalidArgument, "header.name")
		_, err = c.Stat(callCtx(t), &filesv1.StatRequest{Name: name})
		wantStatus(t, err, codes.InvalidArgument, "name")
		_, err = c.Delete(callCtx(t), &filesv1.DeleteRequest{Name: name})
		wantStatus(t, err, codes.InvalidArgument, "name")
		_, err = v1Download(callCtx(t), c, name)
		wantStatus(t, err, codes.InvalidArgument, "names")
	}
	longest := strings.Repeat("n", 255-12) + unique("")[1:]
	if f, err := v1Upload(callCtx(t), c, uploadOf(longest, []byte("ok"), "", "")); err != nil || f.GetName() != longest {
		t.Errorf("a 255-byte name: %v, %v", f, err)
	}
}

func TestFilesListPagesInNameOrderWithinAPrefix(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	prefix := unique("list") + "-"
	var names []string
	for i := range 23 {
		names = append(names, fmt.Sprintf("%s%02d", prefix, i))
	}
	for i := len(names) - 1; i >= 0; i-- {
		if _, err := v1Upload(callCtx(t), c, uploadOf(names[i], []byte(names[i]), "", "")); err != nil {
			t.Fatal(err)
		}
	}
	listAll := func(prefix string, pageSize int32) ([]string, []int) {
		t.Helper()
		var got []string
		var sizes []int
		token := ""
		for {
			page, err := c.List(callCtx(t), &filesv1.ListRequest{Prefix: prefix, PageSize: pageSize, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range page.GetFiles() {
				got = append(got, f.GetName())
			}
			sizes = append(sizes, len(page.GetFiles()))
			if token = page.GetNextPageToken(); token == "" {
				return got, sizes
			}
		}
	}
	if got, sizes := listAll(prefix, 10); !slices.Equal(got, names) || fmt.Sprint(sizes) != "[10 10 3]" {
		t.Errorf("pages of 10: %v in %v", got, sizes)
	}
	// A last page that is exactly full has no next token.
	if got, sizes := listAll(prefix, 23); !slices.Equal(got, names) || fmt.Sprint(sizes) != "[23]" {
		t.Errorf("a page of 23: %v in %v", got, sizes)
	}
	if got, sizes := listAll(prefix+"1", 0); !slices.Equal(got, names[10:20]) || fmt.Sprint(sizes) != "[10]" {
		t.Errorf("prefix %s1: %v in %v", prefix, got, sizes)
	}
	_, err := c.List(callCtx(t), &filesv1.ListRequest{PageSize: -5})
	wantStatus(t, err, codes.InvalidArgument, "page_size")
	_, err = c.List(callCtx(t), &filesv1.ListRequest{PageToken: "not a token"})
	wantStatus(t, err, codes.InvalidArgument, "page_token")
}

func TestFilesDeleteAnswersTheFileAndThenItIsNotFound(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	name := unique("delete")
	stored, err := v1Upload(callCtx(t), c, uploadOf(name, []byte("bye"), "", ""))
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := c.Delete(callCtx(t), &filesv1.DeleteRequest{Name: name})
	if err != nil || !proto.Equal(deleted.GetFile(), stored) {
		t.Errorf("Delete = %v, %v; want %v", deleted, err, stored)
	}
	_, err = c.Stat(callCtx(t), &filesv1.StatRequest{Name: name})
	wantStatus(t, err, codes.NotFound, name)
	_, err = c.Delete(callCtx(t), &filesv1.DeleteRequest{Name: name})
	wantStatus(t, err, codes.NotFound, name)
	_, err = v1Download(callCtx(t), c, name)
	wantStatus(t, err, codes.NotFound, name)

	// A download naming a missing file sends nothing; one naming none is refused.
	present, missing := unique("present"), unique("missing")
	if _, err := v1Upload(callCtx(t), c, uploadOf(present, []byte("here"), "", "")); err != nil {
		t.Fatal(err)
	}
	got, err := v1Download(callCtx(t), c, present, missing)
	wantStatus(t, err, codes.NotFound, missing)
	if len(got) != 0 {
		t.Errorf("a download with a missing name sent %d files", len(got))
	}
	_, err = v1Download(callCtx(t), c)
	wantStatus(t, err, codes.InvalidArgument, "names")
}

func TestFilesDownloadCancelledMidwayAndPastItsDeadline(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	name := unique("large")
	data := randomBytes(t, 8<<20)
	if _, err := v1Upload(callCtx(t), c, uploadOf(name, data, "", "")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(callCtx(t))
	windowed := filesv1.NewFilesServiceClient(windowedConn(t, sharedServer(t)))
	stream, err := windowed.Download(ctx, &filesv1.DownloadRequest{Names: []string{name, name, name, name}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || r.GetFile().GetSize() != uint64(len(data)) {
		t.Fatalf("first message %v, %v", r, err)
	}
	cancel()
	_, err = recvAll[filesv1.DownloadResponse](stream)
	wantStatus(t, err, codes.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	_, err = v1Download(ctx, c, name, name, name, name)
	cancel()
	wantStatus(t, err, codes.DeadlineExceeded)
	ctx, cancel = context.WithTimeout(context.Background(), time.Microsecond)
	<-ctx.Done()
	_, err = c.List(ctx, &filesv1.ListRequest{})
	cancel()
	wantStatus(t, err, codes.DeadlineExceeded)

	got, err := v1Download(callCtx(t), c, name)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].data, data) {
		t.Errorf("a download after the cancel: %v", err)
	}
}

// TestUploadsEndedByTheClientStoreNothing checks every upload RPC on a store
// of its own, so that "nothing" can be seen in a List.
func TestUploadsEndedByTheClientStoreNothing(t *testing.T) {
	srv := ownServer(t, nil, "--no-sample-data")
	files := filesv1.NewFilesServiceClient(srv.conn)
	// Each upload sends its data, keeps the stream open a moment (the
	// server holds the data, uncommitted) and is then cancelled, or left
	// to its deadline.
	type opener func(ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, error)
	uploads := map[string]struct {
		method string
		open   opener
		msgs   []any
		reply  proto.Message
	}{
		"FileSrv.UploadFile": {
			"/FileSrv/UploadFile",
			func(ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, error) {
				return filesrv.NewFileSrvClient(cc).UploadFile(ctx)
			},
			anySlice(fileSrvRequests("cancelled", ".bin", randomBytes(t, 100_000), 10_000)),
			new(filesrv.StringResponse),
		},
		"FileTransfer.Upload": {
			"/FileTransfer.FileService/Upload",
			func(ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, error) {
				return filetransfer.NewFileServiceClient(cc).Upload(ctx)
			},
			[]any{&filetransfer.Chunk{Data: randomBytes(t, 50_000)}, &filetransfer.Chunk{Data: randomBytes(t, 50_000)}},
			new(filetransfer.Response),
		},
		"FilesService.Upload": {
			"/dataport.files.v1.FilesService/Upload",
			func(ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, error) {
				return filesv1.NewFilesServiceClient(cc).Upload(ctx)
			},
			anySlice(uploadOf("cancelled-v1", randomBytes(t, 100_000), "", "")),
			new(filesv1.UploadResponse),
		},
	}
	for name, u := range uploads {
		for _, expire := range []bool{false, true} {
			var ctx context.Context
			var cancel context.CancelFunc
			if expire {
				ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
			} else {
				ctx, cancel = context.WithCancel(callCtx(t))
			}
			cc, peer := srv.peerConn(t)
			stream, err := u.open(ctx, cc)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range u.msgs {
				if err := stream.SendMsg(m); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			received(t, cc) // the server holds the data, uncommitted
			if !expire {
				cancel()
			}
			err = stream.RecvMsg(u.reply)
			want, logged := codes.Canceled, []string{"CANCELLED"}
			if expire {
				want, logged = codes.DeadlineExceeded, []string{"DEADLINE_EXCEEDED", "CANCELLED"}
			}
			wantStatus(t, err, want)
			cancel()
			if code := srv.ended(t, u.method, peer()); !slices.Contains(logged, code) {
				t.Errorf("%s: the server ended the upload %s, want one of %v", name, code, logged)
			}
		}
	}
	// Once the server has ended each call, nothing is listed.
	listed, err := files.List(callCtx(t), &filesv1.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.GetFiles()) != 0 {
		t.Errorf("uploads ended by the client stored %v", listed.GetFiles())
	}
	if f, err := v1Upload(callCtx(t), files, uploadOf("after", []byte("ok"), "", "")); err != nil || f.GetSize() != 2 {
		t.Errorf("an upload after the cancels: %v, %v", f, err)
	}
}

func anySlice[T any](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = v
	}
	return out
}

func TestASizeLimitedServerRefusesLargerFilesAndStoresNothing(t *testing.T) {
	srv := ownServer(t, nil, "--no-sample-data", "--max-file-size", "1MiB")
	c := filesv1.NewFilesServiceClient(srv.conn)
	fits, over := randomBytes(t, 1<<20), randomBytes(t, 1<<20+1)
	if f, err := v1Upload(callCtx(t), c, uploadOf("fits", fits, "", "")); err != nil || f.GetSize() != 1<<20 {
		t.Fatalf("a file at the limit: %v, %v", f, err)
	}
	for _, name := range []string{"fits", "over"} {
		_, err := v1Upload(callCtx(t), c, uploadOf(name, over, "", ""))
		wantStatus(t, err, codes.ResourceExhausted, "1048576")
	}
	seed := filesrv.NewFileSrvClient(srv.conn)
	_, err := fileSrvUpload(callCtx(t), seed, fileSrvRequests("over", ".bin", over, 100_000))
	wantStatus(t, err, codes.ResourceExhausted, "1048576")
	transfer := filetransfer.NewFileServiceClient(srv.conn)
	for _, data := range [][]byte{over, fits} {
		stream, err := transfer.Upload(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks(data, 100_000) {
			if stream.Send(&filetransfer.Chunk{Data: c}) != nil {
				break
			}
		}
		reply, err := stream.CloseAndRecv()
		if len(data) > 1<<20 {
			wantStatus(t, err, codes.ResourceExhausted, "1048576")
		} else if err != nil || !strings.HasSuffix(reply.GetMessage(), fmt.Sprintf(": %d bytes, sha256 %s", len(data), hexSHA256(data))) {
			t.Errorf("FileTransfer upload at the limit: %q, %v", reply.GetMessage(), err)
		} else if _, err := c.Delete(callCtx(t), &filesv1.DeleteRequest{Name: strings.Split(reply.GetMessage(), `"`)[1]}); err != nil {
			t.Error(err)
		}
	}
	if reply, err := fileSrvUpload(callCtx(t), seed, fileSrvRequests("fits", ".bin", fits, 100_000)); err != nil || reply.GetCode() != 0 {
		t.Errorf("FileSrv upload at the limit: %v, %v", reply, err)
	} else if _, err := c.Delete(callCtx(t), &filesv1.DeleteRequest{Name: "fits.bin"}); err != nil {
		t.Error(err)
	}
	_, err = fileSrvDownload(callCtx(t), seed, "over", ".bin")
	wantStatus(t, err, codes.NotFound, "over.bin")
	if got, err := v1Download(callCtx(t), c, "fits"); err != nil || !bytes.Equal(got[0].data, fits) {
		t.Errorf("the file at the limit after refusals: %v", err)
	}
	listed, err := c.List(callCtx(t), &filesv1.ListRequest{})
	if err != nil || len(listed.GetFiles()) != 1 || listed.GetFiles()[0].GetName() != "fits" {
		t.Errorf("List = %v, %v; want only fits", listed, err)
	}
}

func TestFilesTrailerCRC32CIsChecked(t *testing.T) {
	c := filesv1.NewFilesServiceClient(conn(t))
	name := unique("crc")
	data := randomBytes(t, 700_001)
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	reqs := uploadOf(name, data, "", "")
	reqs = append(reqs, &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Trailer{Trailer: &filesv1.UploadTrailer{Crc32C: proto.Uint32(crc)}}})
	stored, err := v1Upload(callCtx(t), c, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetSize() != uint64(len(data)) || stored.GetSha256() != hexSHA256(data) {
		t.Errorf("Upload with a CRC-32C trailer = %v", stored)
	}
	// A wrong CRC-32C is DATA_LOSS and keeps the file there was.
	reqs = uploadOf(name, randomBytes(t, 1000), "", "")
	reqs = append(reqs, &filesv1.UploadRequest{Kind: &filesv1.UploadRequest_Trailer{Trailer: &filesv1.UploadTrailer{Crc32C: proto.Uint32(crc)}}})
	_, err = v1Upload(callCtx(t), c, reqs)
	wantStatus(t, err, codes.DataLoss)
	if stat, err := c.Stat(callCtx(t), &filesv1.StatRequest{Name: name}); err != nil || !proto.Equal(stat.GetFile(), stored) {
		t.Errorf("Stat after a CRC-32C mismatch = %v, %v; want %v", stat, err, stored)
	}
}
