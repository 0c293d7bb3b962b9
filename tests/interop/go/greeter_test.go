package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/helloworld"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func TestSayHelloGreetsByName(t *testing.T) {
	greeter := helloworld.NewGreeterClient(conn(t))
	for name, want := range map[string]string{
		"world": "Hello, world!",
		"Zoë 🚀": "Hello, Zoë 🚀!",
	} {
		reply, err := greeter.SayHello(callCtx(t), &helloworld.HelloRequest{Name: name})
		if err != nil {
			t.Fatalf("SayHello(%q): %v", name, err)
		}
		if reply.GetMessage() != want {
			t.Errorf("SayHello(%q) = %q, want %q", name, reply.GetMessage(), want)
		}
	}
}

func TestSayHelloAgainGreetsAgain(t *testing.T) {
	greeter := helloworld.NewGreeterClient(conn(t))
	reply, err := greeter.SayHelloAgain(callCtx(t), &helloworld.HelloRequest{Name: "world"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := reply.GetMessage(), "Hello again, world!"; got != want {
		t.Errorf("SayHelloAgain = %q, want %q", got, want)
	}
}

func TestGreeterWithAnExpiredDeadlineIsDeadlineExceeded(t *testing.T) {
	greeter := helloworld.NewGreeterClient(conn(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	<-ctx.Done() // the deadline has passed before the call starts
	_, err := greeter.SayHello(ctx, &helloworld.HelloRequest{Name: "late"})
	wantStatus(t, err, codes.DeadlineExceeded)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = greeter.SayHelloAgain(ctx, &helloworld.HelloRequest{Name: "never"})
	wantStatus(t, err, codes.Canceled)
	// The server is unaffected.
	reply, err := greeter.SayHello(callCtx(t), &helloworld.HelloRequest{Name: "after"})
	if err != nil || reply.GetMessage() != "Hello, after!" {
		t.Fatalf("SayHello after an expired call = %v, %v", reply, err)
	}
}

// tonic's default limit for a decoded request message, which the Greeter keeps.
const maxRequestBytes = 4 * 1024 * 1024

func TestANameOverTheRequestLimitIsResourceExhaustedNamingSizeAndLimit(t *testing.T) {
	greeter := helloworld.NewGreeterClient(conn(t))
	calls := map[string]func(context.Context, *helloworld.HelloRequest, ...grpc.CallOption) (*helloworld.HelloReply, error){
		"SayHello":      greeter.SayHello,
		"SayHelloAgain": greeter.SayHelloAgain,
	}
	for method, call := range calls {
		big := &helloworld.HelloRequest{Name: strings.Repeat("n", maxRequestBytes)}
		_, err := call(callCtx(t), big, grpc.MaxCallSendMsgSize(2*maxRequestBytes))
		wantStatus(t, err, codes.ResourceExhausted, fmt.Sprint(proto.Size(big)), fmt.Sprint(maxRequestBytes))
		// Just under the limit is greeted, with room for the greeting in the
		// reply, which the client limits to the same 4 MiB.
		name := strings.Repeat("n", maxRequestBytes-32)
		reply, err := call(callCtx(t), &helloworld.HelloRequest{Name: name})
		if err != nil || !strings.HasSuffix(reply.GetMessage(), name+"!") {
			t.Errorf("%s of a name just under the limit: %d bytes, %v", method, len(reply.GetMessage()), err)
		}
	}
}

// rawCodec sends and receives messages as the bytes given, so a test can
// send what the generated code never would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

func TestANameThatIsNotUTF8IsRefusedNamingTheField(t *testing.T) {
	for _, method := range []string{"SayHello", "SayHelloAgain"} {
		// Field 1, length 2, 0xff 0xfe: a proto3 string must be UTF-8.
		req, reply := []byte{0x0a, 0x02, 0xff, 0xfe}, []byte(nil)
		err := conn(t).Invoke(callCtx(t), "/helloworld.Greeter/"+method, &req, &reply, grpc.ForceCodec(rawCodec{}))
		wantStatus(t, err, codes.Internal, "HelloRequest.name", "UTF-8")
	}
}
