// Secure calls a server on a network as it wants to be called: over TLS,
// the server's certificate checked against -ca, with a token on every call
// (-token, else DATAPORT_TOKEN); -cert and -key add a client certificate
// for a server that asks for one (mutual TLS).
//
//	export DATAPORT_TOKEN=dp_...   # from `dataport token new`
//	go run ./secure -addr https://dataport.example.com:50051 -ca ca.pem
//
// A method outside the token's scopes is refused with PermissionDenied,
// naming the scope it needs.
package main

import (
	"context"
	"flag"
	"log"
	"strings"
	"time"

	dataport "github.com/dataport/dataport/clients/go"
	"github.com/dataport/dataport/clients/go/compat/helloworld"
	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	addr  = flag.String("addr", "https://localhost:50051", "the server, https://host:port")
	ca    = flag.String("ca", "", "CA certificates (PEM) to check the server's against, instead of the system's roots")
	cert  = flag.String("cert", "", "a client certificate (PEM), for mutual TLS; with -key")
	key   = flag.String("key", "", "the private key (PEM) of -cert")
	token = flag.String("token", "", "the token (default: DATAPORT_TOKEN)")
	name  = flag.String("name", "world", "name to greet")
)

func main() {
	flag.Parse()
	var opts []grpc.DialOption
	if *ca != "" {
		opts = append(opts, dataport.WithCA(*ca))
	}
	if *cert != "" || *key != "" {
		opts = append(opts, dataport.WithClientCert(*cert, *key))
	}
	if *token != "" {
		opts = append(opts, dataport.WithToken(*token))
	}
	c, err := dataport.Dial(*addr, opts...)
	if err != nil {
		log.Fatalf("did not connect: %v", err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Greeter.SayHello(ctx, &helloworld.HelloRequest{Name: *name})
	if err != nil {
		log.Fatalf("could not greet: %v", err)
	}
	log.Printf("Greeting: %s", r.GetMessage())

	symbols, err := c.Market.ListSymbols(ctx, &marketv1.ListSymbolsRequest{})
	if err != nil {
		log.Fatalf("could not list symbols: %v", err)
	}
	var names []string
	for _, s := range symbols.GetSymbols() {
		names = append(names, s.GetSymbol())
	}
	log.Printf("Symbols: %s", strings.Join(names, " "))

	files, err := c.Files.List(ctx, &filesv1.ListRequest{})
	switch status.Code(err) {
	case codes.OK:
		log.Printf("Files: %d stored", len(files.GetFiles()))
	case codes.PermissionDenied:
		log.Printf("Files: refused: %s", status.Convert(err).Message())
	default:
		log.Fatalf("could not list files: %v", err)
	}
}
