// Command go-greeter is the grpc-go baseline of bench/run (see
// bench/README.md): helloworld.Greeter as grpc-go's own example serves it, no
// interceptors, no logging, optionally over TLS and with a bearer-token check.
//
//	go-greeter [-tls-cert FILE -tls-key FILE] [-token-sha256 HEX] LISTEN_ADDR
//
// With -tls-cert and -tls-key the port speaks only TLS (crypto/tls defaults,
// ALPN h2). With -token-sha256 every call must carry `authorization: Bearer
// SECRET` whose sha256 is HEX, compared in constant time, else it is refused
// with UNAUTHENTICATED: the same check dataport makes, in one interceptor.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/dataport/dataport/clients/go/compat/helloworld"
)

type greeter struct {
	pb.UnimplementedGreeterServer
}

func (greeter) SayHello(_ context.Context, req *pb.HelloRequest) (*pb.HelloReply, error) {
	return &pb.HelloReply{Message: "Hello, " + req.GetName() + "!"}, nil
}

func (greeter) SayHelloAgain(_ context.Context, req *pb.HelloRequest) (*pb.HelloReply, error) {
	return &pb.HelloReply{Message: "Hello again, " + req.GetName() + "!"}, nil
}

// tokenCheck refuses every call whose bearer token's sha256 is not want.
func tokenCheck(want []byte) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		auth := md.Get("authorization")
		if len(auth) != 1 {
			return nil, status.Error(codes.Unauthenticated, "no bearer token")
		}
		secret, ok := strings.CutPrefix(auth[0], "Bearer ")
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "authorization is not a bearer token")
		}
		got := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return nil, status.Error(codes.Unauthenticated, "unknown token")
		}
		return handler(ctx, req)
	}
}

func main() {
	certFile := flag.String("tls-cert", "", "certificate chain, PEM (with -tls-key: TLS only)")
	keyFile := flag.String("tls-key", "", "private key of -tls-cert, PEM")
	tokenHex := flag.String("token-sha256", "", "hex sha256 of the one bearer token accepted (default: no check)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: go-greeter [-tls-cert FILE -tls-key FILE] [-token-sha256 HEX] LISTEN_ADDR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (*certFile == "") != (*keyFile == "") {
		flag.Usage()
		log.Fatal("go-greeter: give LISTEN_ADDR, and -tls-cert with -tls-key or neither")
	}

	var opts []grpc.ServerOption
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("go-greeter: %v", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	}
	if *tokenHex != "" {
		want, err := hex.DecodeString(*tokenHex)
		if err != nil || len(want) != sha256.Size {
			log.Fatalf("go-greeter: -token-sha256 %q is not 64 hex digits", *tokenHex)
		}
		opts = append(opts, grpc.UnaryInterceptor(tokenCheck(want)))
	}

	lis, err := net.Listen("tcp", flag.Arg(0))
	if err != nil {
		log.Fatalf("go-greeter: %v", err)
	}
	server := grpc.NewServer(opts...)
	pb.RegisterGreeterServer(server, greeter{})
	if err := server.Serve(lis); err != nil {
		log.Fatalf("go-greeter: %v", err)
	}
}
