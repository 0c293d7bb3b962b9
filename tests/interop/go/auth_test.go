package interop

// TLS, mutual TLS and tokens, as grpc-go's credentials speak them
// (credentials.NewTLS, a credentials.PerRPCCredentials sending the token),
// against servers run with --tls-cert, --tls-key, --tls-client-ca and
// --auth-tokens.
//
// The scope table is driven by what the server's reflection lists: every
// method is called with an empty request (emptypb.Empty through
// conn.Invoke and conn.NewStream) by callers of each access class (no
// token, an unknown one, *:read, *:write, each area's read and write,
// client certificates), and the answer must be what the caller's scopes
// say: Unauthenticated without a known caller, PermissionDenied naming the
// scope for a known caller without it, anything else (InvalidArgument for
// an empty request, say) for one with it. Health is open to all; reflection
// to any known caller.
//
// Every server these tests start keeps its whole output; when it stops, no
// secret any test used (tokens, private keys) may appear in it.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/helloworld"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	refv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
)

var areas = []string{"greeter", "route", "position", "market", "outliers", "files"}

// serviceArea is the area of every service the server serves, as scopes
// name it.
var serviceArea = map[string]string{
	"helloworld.Greeter":                   "greeter",
	"routeguide.RouteGuide":                "route",
	"posXYZ.PositionService":               "position",
	"dataport.position.v1.PositionService": "position",
	"idc.Indicator":                        "market",
	"idc.IndicatorGraph":                   "market",
	"dataport.market.v1.MarketService":     "market",
	"pb.Outliers":                          "outliers",
	"dataport.outliers.v1.OutliersService": "outliers",
	"FileSrv":                              "files",
	"FileTransfer.FileService":             "files",
	"dataport.files.v1.FilesService":       "files",
	"google.bytestream.ByteStream":         "files",
}

const healthService = "grpc.health.v1.Health"

var reflectionVersions = []string{"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}

// writeMethods change stored state and need write; every other method of
// serviceArea needs read.
var writeMethods = map[string]bool{
	"/dataport.market.v1.MarketService/ImportBars":   true,
	"/dataport.market.v1.MarketService/DeleteSymbol": true,
	"/dataport.position.v1.PositionService/Publish":  true,
	"/posXYZ.PositionService/PositionPub":            true,
	"/FileSrv/UploadFile":                            true,
	"/FileTransfer.FileService/Upload":               true,
	"/dataport.files.v1.FilesService/Upload":         true,
	"/dataport.files.v1.FilesService/Delete":         true,
	"/google.bytestream.ByteStream/Write":            true,
	"/google.bytestream.ByteStream/QueryWriteStatus": true,
}

// secrets are every secret the auth tests used; no auth server's output
// may hold one.
var secrets struct {
	sync.Mutex
	list []string
}

func keepSecret(s ...string) {
	secrets.Lock()
	defer secrets.Unlock()
	secrets.list = append(secrets.list, s...)
}

// token is a caller's token, made as `dataport token new` makes them.
type token struct {
	name, secret string
	scopes       []string
}

func newToken(t *testing.T, name string, scopes ...string) token {
	t.Helper()
	random := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, random); err != nil {
		t.Fatal(err)
	}
	tok := token{name, "dp_" + hex.EncodeToString(random), scopes}
	keepSecret(tok.secret)
	return tok
}

func (tok token) entry() string {
	sum := sha256.Sum256([]byte(tok.secret))
	return fmt.Sprintf("[[token]]\nname = %q\nsha256 = %q\nscopes = [%s]\n\n", tok.name, hex.EncodeToString(sum[:]), quoted(tok.scopes))
}

func quoted(scopes []string) string {
	var q []string
	for _, s := range scopes {
		q = append(q, fmt.Sprintf("%q", s))
	}
	return strings.Join(q, ", ")
}

// writeTokens writes a token file of tokens and [[client]] entries
// (certificate name: scopes), whole and at once (a rename), so the server
// never reads half of it.
func writeTokens(t *testing.T, path string, tokens []token, clients map[string][]string) {
	t.Helper()
	var b strings.Builder
	for _, tok := range tokens {
		b.WriteString(tok.entry())
	}
	for name, scopes := range clients {
		fmt.Fprintf(&b, "[[client]]\nname = %q\nscopes = [%s]\n\n", name, quoted(scopes))
	}
	replaceFile(t, path, b.String())
}

func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// authServer starts a server of the test's own with args, keeping its
// whole output; after the test it is stopped, and no secret kept so far, nor
// any line of p's private keys, may appear in its output.
func authServer(t *testing.T, p *pki, args ...string) *server {
	t.Helper()
	bin, err := dataportBin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := launch(bin, filepath.Join(t.TempDir(), "data"), nil, args, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("auth server: %v", err)
		}
		s.mu.Lock()
		output := strings.Join(s.all, "\n")
		s.mu.Unlock()
		if !strings.Contains(output, `"message":"listening"`) {
			t.Errorf("the auth server's output was not kept")
		}
		secrets.Lock()
		looked := slices.Clone(secrets.list)
		secrets.Unlock()
		for _, keyFile := range p.keys {
			pem, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(pem), "\n") {
				if line != "" && !strings.HasPrefix(line, "-----") {
					looked = append(looked, line)
				}
			}
		}
		leaked := 0
		for _, secret := range looked {
			if strings.Contains(output, secret) {
				leaked++
			}
		}
		if leaked > 0 {
			t.Errorf("%d of %d secrets appear in the output of the server run with %v", leaked, len(looked), args)
		}
		if t.Failed() {
			t.Logf("dataport output (auth server):\n%s", s.output())
		}
	})
	return s
}

// bearer is a token as grpc-go sends one: credentials.PerRPCCredentials.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// tlsConn is a connection of its own to s over TLS, checking its
// certificate against roots, presenting client if given, and sending
// secret if given.
func tlsConn(t *testing.T, s *server, roots *x509.CertPool, secret string, client *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if client != nil {
		config.Certificates = []tls.Certificate{*client}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(config))}
	if secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(secret)))
	}
	cc, err := grpc.NewClient(s.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// rpc is one method the server serves.
type rpc struct {
	path, service                    string
	clientStreaming, serverStreaming bool
}

// servedRPCs are every method the server's reflection lists, asked on cc.
func servedRPCs(t *testing.T, cc *grpc.ClientConn) []rpc {
	t.Helper()
	r := reflector{"v1", cc}
	reply, err := r.ask(t, &refv1.ServerReflectionRequest{MessageRequest: &refv1.ServerReflectionRequest_ListServices{}})
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var out []rpc
	for _, svc := range reply.GetListServicesResponse().GetService() {
		d, err := resolve(t, r, svc.GetName()).FindDescriptorByName(protoreflect.FullName(svc.GetName()))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			out = append(out, rpc{"/" + svc.GetName() + "/" + string(m.Name()), svc.GetName(), m.IsStreamingClient(), m.IsStreamingServer()})
		}
	}
	slices.SortFunc(out, func(a, b rpc) int { return strings.Compare(a.path, b.path) })
	return out
}

// caller is who a call comes from, as the scope table sees it: nil for no
// known caller.
type caller struct {
	name   string
	scopes []string
}

func allows(scopes []string, area, access string) bool {
	for _, s := range scopes {
		a, acc, _ := strings.Cut(s, ":")
		if (a == area || a == "*") && (acc == access || acc == "write") {
			return true
		}
	}
	return false
}

// want is how a call of r by c must be answered: "let in",
// "Unauthenticated", or "PermissionDenied" with its message.
func want(r rpc, c *caller) (string, string) {
	switch {
	case r.service == healthService:
		return "let in", ""
	case c == nil:
		return "Unauthenticated", ""
	case slices.Contains(reflectionVersions, r.service):
		return "let in", ""
	}
	area, access := serviceArea[r.service], "read"
	if writeMethods[r.path] {
		access = "write"
	}
	if allows(c.scopes, area, access) {
		return "let in", ""
	}
	return "PermissionDenied", fmt.Sprintf("%s may not call %s: it needs the scope %s:%s", c.name, r.path, area, access)
}

// answer calls r on cc with an empty request and says how the server
// answered. A response stream whose headers came is one the server let in
// (a refusal is trailers-only, for which grpc-go's Header answers nil), and
// is cancelled there: a Watch may have nothing to say for a long time.
func answer(cc *grpc.ClientConn, r rpc) (codes.Code, string) {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if !r.clientStreaming && !r.serverStreaming {
		st := status.Convert(cc.Invoke(ctx, r.path, &emptypb.Empty{}, &emptypb.Empty{}))
		return st.Code(), st.Message()
	}
	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: r.clientStreaming, ServerStreams: r.serverStreaming}, r.path)
	if err != nil {
		st := status.Convert(err)
		return st.Code(), st.Message()
	}
	// io.EOF here means the server already ended the call: RecvMsg says how.
	_ = stream.SendMsg(&emptypb.Empty{})
	_ = stream.CloseSend()
	if r.serverStreaming {
		if md, _ := stream.Header(); md != nil {
			return codes.OK, "let in (headers sent)"
		}
	}
	err = stream.RecvMsg(&emptypb.Empty{})
	if errors.Is(err, io.EOF) {
		return codes.OK, ""
	}
	st := status.Convert(err)
	return st.Code(), st.Message()
}

func class(code codes.Code) string {
	if code == codes.Unauthenticated || code == codes.PermissionDenied {
		return code.String()
	}
	return "let in"
}

// checkEveryMethod calls every method in rpcs on cc, several at once, and
// fails for each whose answer is not what c must get.
func checkEveryMethod(t *testing.T, cc *grpc.ClientConn, rpcs []rpc, c *caller) {
	t.Helper()
	type got struct {
		code codes.Code
		msg  string
	}
	answers := make([]got, len(rpcs))
	var wg sync.WaitGroup
	limit := make(chan struct{}, 8)
	for i, r := range rpcs {
		wg.Go(func() {
			limit <- struct{}{}
			defer func() { <-limit }()
			code, msg := answer(cc, r)
			answers[i] = got{code, msg}
		})
	}
	wg.Wait()
	wrong := 0
	for i, r := range rpcs {
		wantClass, wantMsg := want(r, c)
		a := answers[i]
		if class(a.code) != wantClass || (wantMsg != "" && a.msg != wantMsg) {
			wrong++
			t.Errorf("%s: want %s %s, got %v: %q", r.path, wantClass, wantMsg, a.code, a.msg)
		}
	}
	if wrong > 0 {
		t.Logf("%d of %d methods answered wrongly", wrong, len(rpcs))
	}
}

// collectorScopes are the [[client]] entry of the certificate "collector".
var collectorScopes = []string{"files:write", "outliers:read"}

// authWorld is a PKI, a token of each access class and a token file naming
// them and the client certificate "collector".
type authWorld struct {
	pki    *pki
	tokens map[string]token // by access class: "*:read", "market:write", ...
	file   string
}

func newAuthWorld(t *testing.T) authWorld {
	t.Helper()
	w := authWorld{pki: newPKI(t), tokens: map[string]token{}, file: filepath.Join(t.TempDir(), "tokens.toml")}
	w.tokens["*:read"] = newToken(t, "all-read", "*:read")
	w.tokens["*:write"] = newToken(t, "all-write", "*:write")
	for _, area := range areas {
		for _, access := range []string{"read", "write"} {
			w.tokens[area+":"+access] = newToken(t, area+"-"+access, area+":"+access)
		}
	}
	var all []token
	for _, tok := range w.tokens {
		all = append(all, tok)
	}
	writeTokens(t, w.file, all, map[string][]string{"collector": collectorScopes})
	return w
}

func (w authWorld) tlsArgs() []string {
	return []string{"--tls-cert", w.pki.server.cert, "--tls-key", w.pki.server.key, "--auth-tokens", w.file}
}

func sayHello(t *testing.T, cc *grpc.ClientConn) (string, error) {
	t.Helper()
	reply, err := helloworld.NewGreeterClient(cc).SayHello(callCtx(t), &helloworld.HelloRequest{Name: "tls"})
	return reply.GetMessage(), err
}

func TestTokensAndTLS(t *testing.T) {
	w := newAuthWorld(t)
	srv := authServer(t, w.pki, w.tlsArgs()...)
	rpcs := servedRPCs(t, tlsConn(t, srv, w.pki.pool, w.tokens["*:read"].secret, nil))

	t.Run("the table classifies every method reflection lists", func(t *testing.T) {
		services := map[string]bool{}
		paths := map[string]bool{}
		for _, r := range rpcs {
			services[r.service] = true
			paths[r.path] = true
		}
		for s := range services {
			if _, known := serviceArea[s]; !known && s != healthService && !slices.Contains(reflectionVersions, s) {
				t.Errorf("reflection lists %s, which the table does not know", s)
			}
		}
		for s := range serviceArea {
			if !services[s] {
				t.Errorf("the table knows %s, which reflection does not list", s)
			}
		}
		for m := range writeMethods {
			if !paths[m] {
				t.Errorf("the write method %s is not served", m)
			}
		}
		if len(rpcs) != 38 {
			t.Errorf("reflection lists %d methods, want 38", len(rpcs))
		}
	})

	classes := []string{"no token", "unknown token", "*:read", "*:write"}
	for _, area := range areas {
		classes = append(classes, area+":read", area+":write")
	}
	for _, class := range classes {
		t.Run("every method answers "+class, func(t *testing.T) {
			var secret string
			var c *caller
			switch class {
			case "no token":
			case "unknown token":
				secret = newToken(t, "nobody", "*:write").secret
			default:
				tok := w.tokens[class]
				secret, c = tok.secret, &caller{tok.name, tok.scopes}
			}
			checkEveryMethod(t, tlsConn(t, srv, w.pki.pool, secret, nil), rpcs, c)
		})
	}

	t.Run("refusals say what is missing", func(t *testing.T) {
		_, err := sayHello(t, tlsConn(t, srv, w.pki.pool, "", nil))
		wantStatus(t, err, codes.Unauthenticated, "needs a token", "authorization: Bearer SECRET")
		_, err = sayHello(t, tlsConn(t, srv, w.pki.pool, "dp_not-a-token", nil))
		wantStatus(t, err, codes.Unauthenticated, "not known")
		_, err = sayHello(t, tlsConn(t, srv, w.pki.pool, w.tokens["market:write"].secret, nil))
		wantStatus(t, err, codes.PermissionDenied, "market-write may not call /helloworld.Greeter/SayHello: it needs the scope greeter:read")
	})

	t.Run("call lines name the caller", func(t *testing.T) {
		for _, tc := range []struct{ secret, want string }{
			{w.tokens["greeter:read"].secret, "greeter-read"},
			{w.tokens["route:read"].secret, "route-read"}, // refused, and still named
		} {
			cc, local := peerConnTLS(t, srv, w.pki.pool, tc.secret)
			_, _ = sayHello(t, cc)
			if got := srv.callerOf(t, "/helloworld.Greeter/SayHello", local()); got != tc.want {
				t.Errorf("the call line names %q, want %q", got, tc.want)
			}
		}
		cc, local := peerConnTLS(t, srv, w.pki.pool, "")
		if _, err := healthpb.NewHealthClient(cc).Check(callCtx(t), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := srv.callerOf(t, "/grpc.health.v1.Health/Check", local()); got != "anonymous" {
			t.Errorf("a health check without a token is logged as %q, want anonymous", got)
		}
	})

	t.Run("TLS with the CA answers, by name and by address, TLS 1.2 and 1.3, h2", func(t *testing.T) {
		_, port, _ := strings.Cut(srv.addr, ":")
		for _, host := range []string{"localhost", "127.0.0.1"} {
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				config := &tls.Config{RootCAs: w.pki.pool, MinVersion: version, MaxVersion: version}
				cc, err := grpc.NewClient(host+":"+port, grpc.WithTransportCredentials(credentials.NewTLS(config)),
					grpc.WithPerRPCCredentials(bearer(w.tokens["greeter:read"].secret)))
				if err != nil {
					t.Fatal(err)
				}
				got, err := sayHello(t, cc)
				cc.Close()
				if err != nil || got != "Hello, tls!" {
					t.Errorf("%s, TLS %x: %q, %v", host, version, got, err)
				}
			}
		}
		conn, err := tls.Dial("tcp", srv.addr, &tls.Config{RootCAs: w.pki.pool, ServerName: "localhost", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("ALPN chose %q, want h2", p)
		}
	})

	t.Run("a server certificate of another CA is refused by the client", func(t *testing.T) {
		_, err := sayHello(t, tlsConn(t, srv, w.pki.otherPool, w.tokens["*:read"].secret, nil))
		wantStatus(t, err, codes.Unavailable, "certificate signed by unknown authority")
	})

	t.Run("a server certificate for another name is refused by the client", func(t *testing.T) {
		config := &tls.Config{RootCAs: w.pki.pool, ServerName: "dataport.example.com"}
		cc, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(credentials.NewTLS(config)),
			grpc.WithPerRPCCredentials(bearer(w.tokens["*:read"].secret)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_, err = sayHello(t, cc)
		wantStatus(t, err, codes.Unavailable, "dataport.example.com")
	})

	t.Run("plaintext to the TLS port fails", func(t *testing.T) {
		cc, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_, err = sayHello(t, cc)
		wantStatus(t, err, codes.Unavailable)
	})
}

func TestMutualTLS(t *testing.T) {
	w := newAuthWorld(t)
	srv := authServer(t, w.pki, append(w.tlsArgs(), "--tls-client-ca", w.pki.ca.cert)...)
	collector := w.pki.collector.keyPair(t)
	rpcs := servedRPCs(t, tlsConn(t, srv, w.pki.pool, w.tokens["*:read"].secret, &collector))

	for _, tc := range []struct {
		name   string
		client *pair
	}{
		{"no certificate", nil},
		{"a certificate of another CA", &w.pki.foreign},
		{"an expired certificate", &w.pki.expired},
		{"a self-signed certificate", &w.pki.selfSigned},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			var cert *tls.Certificate
			if tc.client != nil {
				c := tc.client.keyPair(t)
				cert = &c
			}
			_, err := sayHello(t, tlsConn(t, srv, w.pki.pool, w.tokens["*:write"].secret, cert))
			wantStatus(t, err, codes.Unavailable)
		})
	}

	t.Run("lets in a certificate of its CA", func(t *testing.T) {
		cc := tlsConn(t, srv, w.pki.pool, "", &collector)
		if _, err := healthpb.NewHealthClient(cc).Check(callCtx(t), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	})

	stranger := w.pki.stranger.keyPair(t)
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		secret string
		c      *caller
	}{
		// Named in [[client]]: its scopes.
		{"collector", &collector, "", &caller{"collector", collectorScopes}},
		// Signed by the CA, so let through TLS, but named in no entry.
		{"stranger", &stranger, "", nil},
		// A token wins over the certificate.
		{"collector with *:read", &collector, w.tokens["*:read"].secret, &caller{"all-read", []string{"*:read"}}},
	} {
		t.Run("every method answers "+tc.name, func(t *testing.T) {
			checkEveryMethod(t, tlsConn(t, srv, w.pki.pool, tc.secret, tc.cert), rpcs, tc.c)
		})
	}
}

func TestTheTokenFileIsReadAgainWhenItChangesAndOnSIGHUP(t *testing.T) {
	p := newPKI(t)
	first := newToken(t, "first", "greeter:read")
	second := newToken(t, "second", "greeter:read")
	third := newToken(t, "third", "greeter:read")
	path := filepath.Join(t.TempDir(), "tokens.toml")
	writeTokens(t, path, []token{first}, nil)
	srv := authServer(t, p, "--tls-cert", p.server.cert, "--tls-key", p.server.key, "--auth-tokens", path)
	code := func(tok token) codes.Code {
		_, err := sayHello(t, tlsConn(t, srv, p.pool, tok.secret, nil))
		return status.Code(err)
	}
	// The server looks at the file every 2 s: poll, never guess.
	poll := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15 s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if c := code(first); c != codes.OK {
		t.Fatalf("first: %v", c)
	}
	if c := code(second); c != codes.Unauthenticated {
		t.Fatalf("second, before it is in the file: %v", c)
	}

	writeTokens(t, path, []token{first, second}, nil)
	poll("a token added to the file works", func() bool { return code(second) == codes.OK })

	writeTokens(t, path, []token{second}, nil)
	poll("a token taken out of the file is refused", func() bool { return code(first) == codes.Unauthenticated })

	// A file that does not load is logged, and what was loaded stays.
	replaceFile(t, path, second.entry()+"[[token]]\nname = 3\n")
	poll("a file that does not load is logged", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return slices.ContainsFunc(srv.all, func(l string) bool {
			return strings.Contains(l, `"ERROR"`) && strings.Contains(l, "auth_tokens")
		})
	})
	if c := code(second); c != codes.OK {
		t.Fatalf("second, after a file that does not load: %v", c)
	}

	// SIGHUP reads the file whatever its modification time says.
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(second.entry()+third.entry()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll("SIGHUP reads the file again", func() bool { return code(third) == codes.OK })
}

// peerConnTLS is srv.peerConn over TLS, with secret as its token if given.
func peerConnTLS(t *testing.T, s *server, roots *x509.CertPool, secret string) (*grpc.ClientConn, func() string) {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"})),
	}
	if secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(secret)))
	}
	return s.peerConn(t, opts...)
}
