package interop

import (
	"context"
	"fmt"
	"slices"
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
	refv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	refv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

var reflectionServices = []string{
	"grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
}

// reflector asks one version of the reflection service, one request per
// call. v1 and v1alpha messages are the same on the wire, so the v1 types
// serve both: v1alpha is called through its own method name.
type reflector struct {
	name string
	cc   *grpc.ClientConn
}

func reflectors(t *testing.T) []reflector {
	return []reflector{{"v1", conn(t)}, {"v1alpha", conn(t)}}
}

func (r reflector) open(ctx context.Context) (grpc.BidiStreamingClient[refv1.ServerReflectionRequest, refv1.ServerReflectionResponse], error) {
	if r.name == "v1" {
		return refv1.NewServerReflectionClient(r.cc).ServerReflectionInfo(ctx)
	}
	desc := &grpc.StreamDesc{StreamName: "ServerReflectionInfo", ServerStreams: true, ClientStreams: true}
	s, err := r.cc.NewStream(ctx, desc, refv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName)
	if err != nil {
		return nil, err
	}
	return &grpc.GenericClientStream[refv1.ServerReflectionRequest, refv1.ServerReflectionResponse]{ClientStream: s}, nil
}

func (r reflector) ask(t *testing.T, req *refv1.ServerReflectionRequest) (*refv1.ServerReflectionResponse, error) {
	t.Helper()
	stream, err := r.open(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	reply, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if !proto.Equal(reply.GetOriginalRequest(), req) {
		t.Errorf("%s: original_request %v, want %v", r.name, reply.GetOriginalRequest(), req)
	}
	if rest, err := recvAll[refv1.ServerReflectionResponse](stream); err != nil || len(rest) != 0 {
		t.Errorf("%s: after one answer: %v, %v", r.name, rest, err)
	}
	return reply, nil
}

// files answers the FileDescriptorProtos of a file_* request, by name.
func (r reflector) files(t *testing.T, req *refv1.ServerReflectionRequest) map[string]*descriptorpb.FileDescriptorProto {
	t.Helper()
	reply, err := r.ask(t, req)
	if err != nil {
		t.Fatalf("%s %v: %v", r.name, req, err)
	}
	if e := reply.GetErrorResponse(); e != nil {
		t.Fatalf("%s %v: error_response %v", r.name, req, e)
	}
	out := map[string]*descriptorpb.FileDescriptorProto{}
	for _, raw := range reply.GetFileDescriptorResponse().GetFileDescriptorProto() {
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fd); err != nil {
			t.Fatal(err)
		}
		out[fd.GetName()] = &fd
	}
	return out
}

func symbol(s string) *refv1.ServerReflectionRequest {
	return &refv1.ServerReflectionRequest{MessageRequest: &refv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: s}}
}

func filename(s string) *refv1.ServerReflectionRequest {
	return &refv1.ServerReflectionRequest{MessageRequest: &refv1.ServerReflectionRequest_FileByFilename{FileByFilename: s}}
}

func TestReflectionListsExactlyTheServedServices(t *testing.T) {
	want := slices.Sorted(slices.Values(append(slices.Clone(servedServices), reflectionServices...)))
	for _, r := range reflectors(t) {
		reply, err := r.ask(t, &refv1.ServerReflectionRequest{MessageRequest: &refv1.ServerReflectionRequest_ListServices{}})
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		var got []string
		for _, s := range reply.GetListServicesResponse().GetService() {
			got = append(got, s.GetName())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", r.name, got, want)
		}
	}
}

// shape is what a client compiles against in a file: its package and
// dependencies, every message's fields and oneofs, every enum's values, every
// service's methods.
func shape(fd *descriptorpb.FileDescriptorProto) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\ndeps %v\n", fd.GetPackage(), fd.GetDependency())
	var message func(prefix string, m *descriptorpb.DescriptorProto)
	message = func(prefix string, m *descriptorpb.DescriptorProto) {
		fmt.Fprintf(&b, "message %s%s\n", prefix, m.GetName())
		for _, f := range m.GetField() {
			oneof := "-"
			if f.OneofIndex != nil {
				oneof = m.GetOneofDecl()[f.GetOneofIndex()].GetName()
			}
			fmt.Fprintf(&b, "  %s %d %v %v %s oneof=%s proto3opt=%v\n", f.GetName(), f.GetNumber(), f.GetLabel(), f.GetType(), f.GetTypeName(), oneof, f.GetProto3Optional())
		}
		for _, n := range m.GetNestedType() {
			message(prefix+m.GetName()+".", n)
		}
	}
	for _, m := range fd.GetMessageType() {
		message("", m)
	}
	for _, e := range fd.GetEnumType() {
		fmt.Fprintf(&b, "enum %s", e.GetName())
		for _, v := range e.GetValue() {
			fmt.Fprintf(&b, " %s=%d", v.GetName(), v.GetNumber())
		}
		b.WriteString("\n")
	}
	for _, s := range fd.GetService() {
		fmt.Fprintf(&b, "service %s\n", s.GetName())
		for _, m := range s.GetMethod() {
			fmt.Fprintf(&b, "  %s(%s) %s client=%v server=%v\n", m.GetName(), m.GetInputType(), m.GetOutputType(), m.GetClientStreaming(), m.GetServerStreaming())
		}
	}
	return b.String()
}

func TestReflectionServesTheContractsTheGoClientsAreGeneratedFrom(t *testing.T) {
	// The served files of the seed contracts keep their own names
	// (helloworld.proto); the Go code was generated from compat/helloworld.proto,
	// the same contract.
	for _, c := range []struct {
		service, served string
		local           protoreflect.FileDescriptor
	}{
		{"helloworld.Greeter", "helloworld.proto", helloworld.File_compat_helloworld_proto},
		{"routeguide.RouteGuide", "route_guide.proto", rg.File_compat_route_guide_proto},
		{"posXYZ.PositionService", "position.proto", posxyz.File_compat_position_proto},
		{"idc.Indicator", "indicator.proto", idc.File_compat_indicator_proto},
		{"idc.IndicatorGraph", "indicator_graph.proto", idc.File_compat_indicator_graph_proto},
		{"pb.Outliers", "outliers.proto", pb.File_compat_outliers_proto},
		{"FileSrv", "file.proto", filesrv.File_compat_file_proto},
		{"FileTransfer.FileService", "uploadfile.proto", filetransfer.File_compat_uploadfile_proto},
		{"dataport.position.v1.PositionService", "dataport/position/v1/position.proto", positionv1.File_dataport_position_v1_position_proto},
		{"dataport.market.v1.MarketService", "dataport/market/v1/market.proto", marketv1.File_dataport_market_v1_market_proto},
		{"dataport.outliers.v1.OutliersService", "dataport/outliers/v1/outliers.proto", outliersv1.File_dataport_outliers_v1_outliers_proto},
		{"dataport.files.v1.FilesService", "dataport/files/v1/files.proto", filesv1.File_dataport_files_v1_files_proto},
		{"google.bytestream.ByteStream", "google/bytestream/bytestream.proto", bytestream.File_google_bytestream_bytestream_proto},
	} {
		for _, r := range reflectors(t) {
			files := r.files(t, symbol(c.service))
			served, ok := files[c.served]
			if !ok {
				t.Errorf("%s: %s resolves to %v, not %s", r.name, c.service, slices.Collect(mapKeys(files)), c.served)
				continue
			}
			local := protodesc.ToFileDescriptorProto(c.local)
			if got, want := shape(served), shape(local); got != want {
				t.Errorf("%s: served %s differs from the Go client's %s:\nserved:\n%s\nlocal:\n%s", r.name, c.served, c.local.Path(), got, want)
			}
		}
	}
	// The services of reflection and health resolve to files defining them.
	for _, service := range reflectionServices {
		for _, r := range reflectors(t) {
			pkg, name := service[:strings.LastIndex(service, ".")], service[strings.LastIndex(service, ".")+1:]
			defining := 0
			for _, f := range r.files(t, symbol(service)) {
				for _, s := range f.GetService() {
					if f.GetPackage() == pkg && s.GetName() == name {
						defining++
					}
				}
			}
			if defining != 1 {
				t.Errorf("%s: %d files define %s", r.name, defining, service)
			}
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// resolve builds the descriptors of a symbol's file and everything it
// imports from reflection alone, as grpcurl does.
func resolve(t *testing.T, r reflector, sym string) *protoregistry.Files {
	t.Helper()
	all := map[string]*descriptorpb.FileDescriptorProto{}
	for name, fd := range r.files(t, symbol(sym)) {
		all[name] = fd
	}
	for changed := true; changed; {
		changed = false
		for _, fd := range all {
			for _, dep := range fd.GetDependency() {
				if _, ok := all[dep]; !ok {
					for name, f := range r.files(t, filename(dep)) {
						all[name] = f
					}
					changed = true
				}
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range all {
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("%s: the files of %s do not build: %v", r.name, sym, err)
	}
	return files
}

func TestReflectionAloneIsEnoughToCallAService(t *testing.T) {
	for _, r := range reflectors(t) {
		files := resolve(t, r, "dataport.position.v1.PositionService")
		d, err := files.FindDescriptorByName("dataport.position.v1.EntityPosition")
		if err != nil {
			t.Fatal(err)
		}
		ut := d.(protoreflect.MessageDescriptor).Fields().ByName("update_time")
		if ut == nil || ut.Message().FullName() != "google.protobuf.Timestamp" {
			t.Errorf("%s: EntityPosition.update_time is %v", r.name, ut)
		}

		// A dynamic SayHello, as grpcurl makes one.
		files = resolve(t, r, "helloworld.Greeter")
		sd, err := files.FindDescriptorByName("helloworld.Greeter")
		if err != nil {
			t.Fatal(err)
		}
		method := sd.(protoreflect.ServiceDescriptor).Methods().ByName("SayHello")
		req := dynamicpb.NewMessage(method.Input())
		req.Set(method.Input().Fields().ByName("name"), protoreflect.ValueOfString("reflection"))
		reply := dynamicpb.NewMessage(method.Output())
		if err := r.cc.Invoke(callCtx(t), "/helloworld.Greeter/SayHello", req, reply); err != nil {
			t.Fatal(err)
		}
		if got := reply.Get(method.Output().Fields().ByName("message")).String(); got != "Hello, reflection!" {
			t.Errorf("%s: a dynamic SayHello answered %q", r.name, got)
		}

		market := resolve(t, r, "dataport.market.v1.MarketService")
		ind, err := market.FindDescriptorByName("dataport.market.v1.Indicator")
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		oneof := ind.(protoreflect.MessageDescriptor).Oneofs().ByName("kind")
		for i := range oneof.Fields().Len() {
			kinds = append(kinds, string(oneof.Fields().Get(i).Name()))
		}
		if want := []string{"sma", "ema", "macd", "rsi", "bollinger", "atr"}; !slices.Equal(kinds, want) {
			t.Errorf("%s: Indicator.kind is %v, want %v", r.name, kinds, want)
		}
	}
}

func TestReflectionAnswersEachRequestOfOneStreamInOrder(t *testing.T) {
	list := &refv1.ServerReflectionRequest{MessageRequest: &refv1.ServerReflectionRequest_ListServices{}}
	reqs := []*refv1.ServerReflectionRequest{
		list,
		symbol("routeguide.RouteGuide"),
		filename("helloworld.proto"),
		{MessageRequest: &refv1.ServerReflectionRequest_AllExtensionNumbersOfType{AllExtensionNumbersOfType: "helloworld.HelloRequest"}},
		symbol("pb.OutliersResponse"),
		symbol("dataport.market.v1.ComputeIndicatorsRequest"),
		list,
	}
	for _, r := range reflectors(t) {
		stream, err := r.open(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		var replies []*refv1.ServerReflectionResponse
		for i, req := range reqs {
			if err := stream.Send(req); err != nil {
				t.Fatal(err)
			}
			reply, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s: answer %d: %v", r.name, i, err)
			}
			if !proto.Equal(reply.GetOriginalRequest(), req) {
				t.Errorf("%s: answer %d is to %v, want %v", r.name, i, reply.GetOriginalRequest(), req)
			}
			replies = append(replies, reply)
		}
		_ = stream.CloseSend()
		if rest, err := recvAll[refv1.ServerReflectionResponse](stream); err != nil || len(rest) != 0 {
			t.Errorf("%s: after CloseSend: %v, %v", r.name, rest, err)
		}
		names := func(reply *refv1.ServerReflectionResponse) []string {
			var out []string
			for _, raw := range reply.GetFileDescriptorResponse().GetFileDescriptorProto() {
				var fd descriptorpb.FileDescriptorProto
				if err := proto.Unmarshal(raw, &fd); err != nil {
					t.Fatal(err)
				}
				out = append(out, fd.GetName())
			}
			return out
		}
		if len(replies[0].GetListServicesResponse().GetService()) != len(servedServices)+len(reflectionServices) {
			t.Errorf("%s: list_services answered %v", r.name, replies[0])
		}
		for i, want := range map[int]string{1: "route_guide.proto", 2: "helloworld.proto", 4: "outliers.proto", 5: "dataport/market/v1/market.proto"} {
			if got := names(replies[i]); !slices.Contains(got, want) {
				t.Errorf("%s: %v resolved to %v, want %s", r.name, reqs[i], got, want)
			}
		}
		if ext := replies[3].GetAllExtensionNumbersResponse(); ext == nil || len(ext.GetExtensionNumber()) != 0 {
			t.Errorf("%s: all_extension_numbers_of_type answered %v, want no numbers (proto3)", r.name, replies[3])
		}
		if !proto.Equal(replies[6].GetListServicesResponse(), replies[0].GetListServicesResponse()) {
			t.Errorf("%s: the second list_services differs from the first", r.name)
		}
	}
}

func TestReflectionAllExtensionNumbersNamesTheBaseType(t *testing.T) {
	for _, r := range reflectors(t) {
		t.Run(r.name, func(t *testing.T) {
			req := &refv1.ServerReflectionRequest{MessageRequest: &refv1.ServerReflectionRequest_AllExtensionNumbersOfType{AllExtensionNumbersOfType: "routeguide.Point"}}
			reply, err := r.ask(t, req)
			if err != nil {
				t.Fatal(err)
			}
			ext := reply.GetAllExtensionNumbersResponse()
			if ext == nil || len(ext.GetExtensionNumber()) != 0 {
				t.Fatalf("answered %v, want no numbers (proto3)", reply)
			}
			// The protocol (and grpc-go's server) names the type asked for.
			if ext.GetBaseTypeName() != "routeguide.Point" {
				t.Errorf("base_type_name %q, want routeguide.Point", ext.GetBaseTypeName())
			}
		})
	}
}

func TestReflectionOfAnUnknownSymbolIsNotFound(t *testing.T) {
	for _, r := range reflectors(t) {
		t.Run(r.name, func(t *testing.T) {
			// The protocol answers a failed lookup in-band (error_response)
			// and keeps the stream open for the next request.
			stream, err := r.open(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(symbol("no.such.Symbol")); err != nil {
				t.Fatal(err)
			}
			reply, err := stream.Recv()
			if err != nil {
				t.Fatalf("the server ended the whole stream with %v instead of answering error_response and reading the next request", err)
			}
			if e := reply.GetErrorResponse(); e == nil || codes.Code(e.GetErrorCode()) != codes.NotFound {
				t.Errorf("unknown symbol answered %v, want error_response NOT_FOUND", reply)
			}
			if err := stream.Send(symbol("helloworld.Greeter")); err != nil {
				t.Fatal(err)
			}
			if reply, err := stream.Recv(); err != nil || reply.GetFileDescriptorResponse() == nil {
				t.Errorf("the next request on the stream answered %v, %v", reply, err)
			}
		})
	}
}

func TestReflectionStreamCancelledMidwayAndPastItsDeadline(t *testing.T) {
	for _, r := range reflectors(t) {
		ctx, cancel := context.WithCancel(callCtx(t))
		stream, err := r.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(symbol("helloworld.Greeter"))
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = stream.Recv()
		wantStatus(t, err, codes.Canceled)

		// A stream left open waits for requests until its deadline.
		short, done := context.WithTimeout(context.Background(), 300*time.Millisecond)
		stream, err = r.open(short)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(symbol("helloworld.Greeter"))
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		done()
		wantStatus(t, err, codes.DeadlineExceeded)

		if files := r.files(t, symbol("routeguide.RouteGuide")); files["route_guide.proto"] == nil {
			t.Errorf("%s: after a cancel and a deadline: %v", r.name, slices.Collect(mapKeys(files)))
		}
	}
}
