package interop

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/dataport/dataport/clients/go/compat/helloworld"
	"github.com/dataport/dataport/clients/go/compat/pb"
	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
)

// gzipConn is a connection to the shared server on which every call sends
// its messages gzip-compressed, as grpc-go does with UseCompressor.
func gzipConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(sharedServer(t).addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestEveryRPCAnswersGzipCompressedCalls calls every method the server serves
// with gzip-compressed requests: each answers in full.
func TestEveryRPCAnswersGzipCompressedCalls(t *testing.T) {
	cc := gzipConn(t)
	for method, call := range everyRPC(t, cc) {
		if err := call(callCtx(t)); err != nil {
			t.Errorf("%s, gzip-compressed: %v", method, err)
		}
	}
}

// TestGzipCompressedCallsGetTheSameAnswers checks what compressed calls
// answer: a greeting, numpy's outliers (read off the wire by the server),
// and a file uploaded and downloaded byte for byte.
func TestGzipCompressedCallsGetTheSameAnswers(t *testing.T) {
	cc := gzipConn(t)
	reply, err := helloworld.NewGreeterClient(cc).SayHello(callCtx(t), &helloworld.HelloRequest{Name: "zip"})
	if err != nil || reply.GetMessage() != "Hello, zip!" {
		t.Errorf("SayHello = %v, %v", reply, err)
	}

	// numpy: a = np.array(SERIES); np.where(np.abs(a - a.mean()) > 2 * a.std())[0] -> [9]
	series := []float64{10, 11, 9, 10, 12, 10, 11, 9, 10, 45, 10, 11}
	var ms []*pb.Metric
	for _, v := range series {
		ms = append(ms, &pb.Metric{Name: "cpu", Value: v})
	}
	detected, err := pb.NewOutliersClient(cc).Detect(callCtx(t), &pb.OutliersRequest{Metrics: ms})
	if err != nil || !slices.Equal(detected.GetIndices(), []int32{9}) {
		t.Errorf("Detect = %v, %v; want [9]", detected, err)
	}

	files := filesv1.NewFilesServiceClient(cc)
	name := unique("gzip")
	data := append(randomBytes(t, 1<<20), make([]byte, 1<<20)...)
	if _, err := v1Upload(callCtx(t), files, uploadOf(name, data, "", "")); err != nil {
		t.Fatal(err)
	}
	got, err := v1Download(callCtx(t), files, name)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].data, data) {
		t.Fatalf("download of the gzip upload: %d files, err %v", len(got), err)
	}
}

// snappy stands for an encoding the server does not know: grpc-go sends
// whatever compressor is registered under a name, here the identity.
type snappy struct{}

func (snappy) Compress(w io.Writer) (io.WriteCloser, error) { return nopCloser{w}, nil }
func (snappy) Decompress(r io.Reader) (io.Reader, error)    { return r, nil }
func (snappy) Name() string                                 { return "snappy" }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func init() { encoding.RegisterCompressor(snappy{}) }

// TestAnUnknownEncodingIsUnimplementedNamingTheAcceptedOnes sends a call in an
// encoding the server does not read: UNIMPLEMENTED, naming what it accepts.
func TestAnUnknownEncodingIsUnimplementedNamingTheAcceptedOnes(t *testing.T) {
	greeter := helloworld.NewGreeterClient(conn(t))
	_, err := greeter.SayHello(callCtx(t), &helloworld.HelloRequest{Name: "x"}, grpc.UseCompressor("snappy"))
	wantStatus(t, err, codes.Unimplemented, `"snappy"`, "gzip, deflate or zstd")
}
