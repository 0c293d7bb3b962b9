// Package dataport is the Go client of Dataport: one connection to a
// Dataport server with a typed client for every service it serves, and
// helpers for what most programs do with them (upload and download files
// with their sha256 checked, read indicators as rows, find outliers in a
// slice of values).
//
// The generated packages stay available for everything else:
// compat/helloworld, compat/routeguide, compat/idc, compat/pb,
// compat/posxyzpb, compat/filesrv and compat/filetransfer for the seed
// contracts, and dataport/{files,market,outliers,position}/v1 for the
// versioned APIs. ByteStream is google.golang.org/genproto/googleapis/bytestream.
//
//	c, err := dataport.Dial("127.0.0.1:50051")
//	if err != nil { ... }
//	defer c.Close()
//	f, err := c.UploadFile(ctx, "report.pdf")
//
// A server on a network speaks TLS and wants a token:
//
//	c, err := dataport.Dial("https://dataport.example.com:50051",
//		dataport.WithCA("ca.pem"), dataport.WithToken(secret))
//
// Errors from the server are gRPC statuses, possibly wrapped with context:
// status.Code(err) and status.FromError(err) see through the wrapping.
package dataport

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/dataport/dataport/clients/go/compat/filesrv"
	"github.com/dataport/dataport/clients/go/compat/filetransfer"
	"github.com/dataport/dataport/clients/go/compat/helloworld"
	"github.com/dataport/dataport/clients/go/compat/idc"
	"github.com/dataport/dataport/clients/go/compat/pb"
	posXYZpb "github.com/dataport/dataport/clients/go/compat/posxyzpb"
	"github.com/dataport/dataport/clients/go/compat/routeguide"
	filesv1 "github.com/dataport/dataport/clients/go/dataport/files/v1"
	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	outliersv1 "github.com/dataport/dataport/clients/go/dataport/outliers/v1"
	positionv1 "github.com/dataport/dataport/clients/go/dataport/position/v1"
	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultAddr is where a Dataport server listens unless told otherwise.
const DefaultAddr = "127.0.0.1:50051"

// MaxMessageSize is the largest message a Client sends or receives unless
// given other call options: the server's default limit for outlier Detect
// requests (max_detect_bytes, 64 MiB), whose answers are as large.
const MaxMessageSize = 64 << 20

// Client is one connection to a Dataport server and a typed client for
// each service it serves. The fields are the generated clients, for calls
// the helpers do not cover; all of them share the connection. A Client is
// safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn

	// Greeter is helloworld.Greeter.
	Greeter helloworld.GreeterClient
	// RouteGuide is routeguide.RouteGuide.
	RouteGuide routeguide.RouteGuideClient
	// Indicator is idc.Indicator (GetMACD).
	Indicator idc.IndicatorClient
	// IndicatorGraph is idc.IndicatorGraph (GetMACDGraph).
	IndicatorGraph idc.IndicatorGraphClient
	// Outliers is pb.Outliers, the seed Detect.
	Outliers pb.OutliersClient
	// PositionXYZ is posXYZ.PositionService.
	PositionXYZ posXYZpb.PositionServiceClient
	// FileSrv is the seed FileSrv.
	FileSrv filesrv.FileSrvClient
	// FileTransfer is FileTransfer.FileService.
	FileTransfer filetransfer.FileServiceClient

	// Files is dataport.files.v1.FilesService.
	Files filesv1.FilesServiceClient
	// Market is dataport.market.v1.MarketService.
	Market marketv1.MarketServiceClient
	// OutliersV1 is dataport.outliers.v1.OutliersService.
	OutliersV1 outliersv1.OutliersServiceClient
	// Position is dataport.position.v1.PositionService.
	Position positionv1.PositionServiceClient
	// ByteStream is google.bytestream.ByteStream, for resumable uploads
	// and offset reads of stored files.
	ByteStream bytestream.ByteStreamClient
}

// DefaultAddress is where Dial("") connects when DATAPORT_SERVER is unset.
const DefaultAddress = "127.0.0.1:50051"

// AddressEnv names the environment variable Dial("") reads, as the CLI does.
const AddressEnv = "DATAPORT_SERVER"

// Dial makes a Client for target: what the CLI's --server takes
// ("http://host:port" for plaintext, "https://host:port" for TLS; a URL
// without a port has its scheme's), "host:port", or any target
// grpc.NewClient takes; "" is DATAPORT_SERVER from the environment, else
// DefaultAddress. Like grpc.NewClient it does not wait for the server: the
// first call connects.
//
// Its own options, as the CLI's flags: WithCA (--ca), WithClientCert
// (--cert, --key) and WithToken (--token; without it DATAPORT_TOKEN from the
// environment, if set, is sent).
//
//	c, err := dataport.Dial("https://dataport.example.com:50051",
//		dataport.WithCA("ca.pem"), dataport.WithToken(secret))
//
// Its defaults, which grpc options given here override (later options
// win): what an http:// or https:// URL says (https:// is TLS with the
// system's roots, or WithCA's); for other targets TLS when WithCA or
// WithClientCert is given, else plaintext when target is a loopback
// address, localhost or a unix socket and TLS with the system's roots
// otherwise (pass grpc.WithTransportCredentials(insecure.NewCredentials())
// for a plaintext server elsewhere); messages of up to MaxMessageSize both
// ways. An http:// target with WithCA or WithClientCert is an error.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	settings, opts := ownOptions(opts)
	if target == "" {
		target = os.Getenv(AddressEnv)
	}
	if target == "" {
		target = DefaultAddress
	}
	given := target
	target, secure, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	if settings.tls() {
		if strings.HasPrefix(strings.ToLower(given), "http://") {
			return nil, fmt.Errorf("server address %q: WithCA and WithClientCert speak TLS, which an http:// server does not; use https://", given)
		}
		secure = true
	}
	var creds credentials.TransportCredentials
	if secure {
		config, err := settings.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(config)
	} else {
		creds = insecure.NewCredentials()
	}
	all := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
	}
	token, source := os.Getenv(TokenEnv), TokenEnv
	if settings.token != nil {
		token, source = *settings.token, "WithToken"
	}
	if token != "" {
		bearer, err := newBearerToken(token, source, secure)
		if err != nil {
			return nil, err
		}
		all = append(all, grpc.WithPerRPCCredentials(bearer))
	}
	all = append(all, opts...)
	conn, err := grpc.NewClient(target, all...)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}

// NewClient makes a Client over a connection the caller made; Close closes
// it.
func NewClient(conn *grpc.ClientConn) *Client {
	return &Client{
		conn:           conn,
		Greeter:        helloworld.NewGreeterClient(conn),
		RouteGuide:     routeguide.NewRouteGuideClient(conn),
		Indicator:      idc.NewIndicatorClient(conn),
		IndicatorGraph: idc.NewIndicatorGraphClient(conn),
		Outliers:       pb.NewOutliersClient(conn),
		PositionXYZ:    posXYZpb.NewPositionServiceClient(conn),
		FileSrv:        filesrv.NewFileSrvClient(conn),
		FileTransfer:   filetransfer.NewFileServiceClient(conn),
		Files:          filesv1.NewFilesServiceClient(conn),
		Market:         marketv1.NewMarketServiceClient(conn),
		OutliersV1:     outliersv1.NewOutliersServiceClient(conn),
		Position:       positionv1.NewPositionServiceClient(conn),
		ByteStream:     bytestream.NewByteStreamClient(conn),
	}
}

// Conn is the Client's connection, for clients of other services.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls under way end with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// parseTarget turns an http:// or https:// URL into the host:port target
// grpc takes, and says whether it needs TLS; other targets are kept, with
// TLS unless they name this machine.
func parseTarget(target string) (string, bool, error) {
	scheme, _, found := strings.Cut(target, "://")
	ports := map[string]string{"http": "80", "https": "443"}
	port, known := ports[scheme]
	if !found || !known {
		return target, !isLocal(target), nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", false, fmt.Errorf("server address %q: %w", target, err)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false, fmt.Errorf("server address %q: expected %s://HOST:PORT and nothing more", target, scheme)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), scheme == "https", nil
}

// isLocal reports whether target names this machine: a unix socket, a
// loopback address, or localhost, with or without a scheme such as dns:///.
func isLocal(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	if i := strings.Index(target, ":///"); i >= 0 {
		target = target[i+4:]
	} else if i := strings.Index(target, "://"); i >= 0 {
		// scheme://authority/endpoint
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			target = rest[j+1:]
		}
	}
	host := target
	if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}
