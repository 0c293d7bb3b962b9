package dataport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataport/dataport/clients/go/compat/helloworld"
	"github.com/dataport/dataport/clients/go/compat/routeguide"
	marketv1 "github.com/dataport/dataport/clients/go/dataport/market/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pki is a CA, a server certificate for localhost and 127.0.0.1 signed by
// it, a client certificate named "collector" signed by it, and another CA
// that signed nothing here; each as PEM files in dir.
type pki struct {
	dir                   string
	ca, otherCA           string
	serverCert, serverKey string
	clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	p := pki{dir: dir}
	caCert, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		Subject: pkix.Name{CommonName: "dataport-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	writeCert(t, dir, "other-ca", &x509.Certificate{
		Subject: pkix.Name{CommonName: "other-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	writeCert(t, dir, "client", &x509.Certificate{
		Subject: pkix.Name{CommonName: "collector"}, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)
	p.ca, p.otherCA = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other-ca.pem")
	p.serverCert, p.serverKey = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	p.clientCert, p.clientKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	return p
}

// writeCert signs template with parent's key (itself when parent is nil)
// for a new P-256 key, valid from an hour ago for a day, and writes
// NAME.pem and NAME.key (PKCS#8).
func writeCert(t *testing.T, dir, name string, template, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	return cert, key
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// newSecret is a token as `dataport token new` makes them, and its
// [[token]] entry.
func newSecret(t *testing.T, name string, scopes ...string) (string, string) {
	t.Helper()
	random := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, random); err != nil {
		t.Fatal(err)
	}
	secret := "dp_" + hex.EncodeToString(random)
	sum := sha256.Sum256([]byte(secret))
	entry := fmt.Sprintf("[[token]]\nname = %q\nsha256 = %q\nscopes = [\"%s\"]\n\n", name, hex.EncodeToString(sum[:]), strings.Join(scopes, `", "`))
	return secret, entry
}

// authSetup is a PKI and a token file: "caller" (greeter:read, route:read,
// files:write), "market-reader" (market:read) and the client certificate
// "collector" (greeter:read).
type authSetup struct {
	pki
	tokens               string
	caller, marketReader string
}

func newAuthSetup(t *testing.T) authSetup {
	t.Helper()
	a := authSetup{pki: newPKI(t)}
	var callerEntry, marketEntry string
	a.caller, callerEntry = newSecret(t, "caller", "greeter:read", "route:read", "files:write")
	a.marketReader, marketEntry = newSecret(t, "market-reader", "market:read")
	a.tokens = filepath.Join(a.dir, "tokens.toml")
	writeFile(t, a.tokens, []byte(callerEntry+marketEntry+"[[client]]\nname = \"collector\"\nscopes = [\"greeter:read\"]\n"))
	return a
}

func (a authSetup) tlsServer(t *testing.T, mutual bool) *server {
	t.Helper()
	args := []string{"--tls-cert", a.serverCert, "--tls-key", a.serverKey, "--auth-tokens", a.tokens}
	if mutual {
		args = append(args, "--tls-client-ca", a.ca)
	}
	return ownServer(t, args...)
}

func port(s *server) string {
	_, p, _ := strings.Cut(s.addr, ":")
	return p
}

func dial(t *testing.T, target string, opts ...grpc.DialOption) *Client {
	t.Helper()
	c, err := Dial(target, opts...)
	if err != nil {
		t.Fatalf("Dial(%q): %v", target, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func hello(t *testing.T, c *Client) (string, error) {
	t.Helper()
	reply, err := c.Greeter.SayHello(testContext(t), &helloworld.HelloRequest{Name: "tls"})
	return reply.GetMessage(), err
}

func wantHello(t *testing.T, c *Client) {
	t.Helper()
	got, err := hello(t, c)
	if err != nil || got != "Hello, tls!" {
		t.Fatalf("SayHello: %q, %v", got, err)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, words ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	for _, w := range words {
		if !strings.Contains(status.Convert(err).Message(), w) {
			t.Errorf("%v should mention %q: %v", code, w, err)
		}
	}
}

func TestDialWithTheCAAndATokenReachesATLSServer(t *testing.T) {
	t.Setenv(TokenEnv, "")
	a := newAuthSetup(t)
	srv := a.tlsServer(t, false)
	// By the name the certificate holds, by its IP address, and bare with WithCA.
	for _, target := range []string{"https://localhost:" + port(srv), "https://" + srv.addr, srv.addr} {
		wantHello(t, dial(t, target, WithCA(a.ca), WithToken(a.caller)))
	}
}

// everyKindOfCall makes a call of each shape (unary, server stream, client
// stream, both) and the file helpers, which fail without the token.
func everyKindOfCall(t *testing.T, c *Client) {
	t.Helper()
	wantHello(t, c)
	features, err := c.RouteGuide.ListFeatures(testContext(t), &routeguide.Rectangle{
		Lo: &routeguide.Point{Latitude: 400000000, Longitude: -750000000},
		Hi: &routeguide.Point{Latitude: 420000000, Longitude: -730000000},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := features.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("ListFeatures: %v", err)
		}
	}
	src := filepath.Join(t.TempDir(), "token.txt")
	writeFile(t, src, []byte("sent with a token\n"))
	if _, err := c.UploadFile(testContext(t), src); err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "back.txt")
	if _, err := c.DownloadFile(testContext(t), "token.txt", dst); err != nil {
		t.Fatalf("DownloadFile: %v", err)
	}
	chat, err := c.RouteGuide.RouteChat(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&routeguide.RouteNote{Location: &routeguide.Point{Latitude: 3, Longitude: 3}, Message: "a"}); err != nil {
		t.Fatal(err)
	}
	_ = chat.CloseSend()
	for {
		if _, err := chat.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("RouteChat: %v", err)
		}
	}
}

func TestEveryKindOfCallCarriesTheToken(t *testing.T) {
	t.Setenv(TokenEnv, "")
	a := newAuthSetup(t)
	t.Run("tls", func(t *testing.T) {
		everyKindOfCall(t, dial(t, "https://localhost:"+port(a.tlsServer(t, false)), WithCA(a.ca), WithToken(a.caller)))
	})
	t.Run("plaintext", func(t *testing.T) {
		// A server on this machine with tokens and no TLS: the token is
		// sent in the clear, as the CLI sends it.
		srv := ownServer(t, "--auth-tokens", a.tokens)
		everyKindOfCall(t, dial(t, "http://"+srv.addr, WithToken(a.caller)))
		_, err := hello(t, dial(t, srv.addr))
		wantCode(t, err, codes.Unauthenticated, "authorization")
	})
}

func TestTheTokenIsDataportTokenUnlessGiven(t *testing.T) {
	a := newAuthSetup(t)
	target := "https://localhost:" + port(a.tlsServer(t, false))
	t.Setenv(TokenEnv, a.caller)
	wantHello(t, dial(t, target, WithCA(a.ca)))
	_, err := hello(t, dial(t, target, WithCA(a.ca), WithToken(a.marketReader)))
	wantCode(t, err, codes.PermissionDenied, "market-reader", "greeter:read")
	_, err = hello(t, dial(t, target, WithCA(a.ca), WithToken("")))
	wantCode(t, err, codes.Unauthenticated, "authorization")
}

func TestRefusalsNameWhatIsMissing(t *testing.T) {
	t.Setenv(TokenEnv, "")
	a := newAuthSetup(t)
	target := "https://localhost:" + port(a.tlsServer(t, false))
	_, err := hello(t, dial(t, target, WithCA(a.ca)))
	wantCode(t, err, codes.Unauthenticated, "authorization: Bearer SECRET")
	_, err = hello(t, dial(t, target, WithCA(a.ca), WithToken("dp_"+strings.Repeat("0", 64))))
	wantCode(t, err, codes.Unauthenticated, "not known")
	c := dial(t, target, WithCA(a.ca), WithToken(a.marketReader))
	if _, err := c.Market.ListSymbols(testContext(t), &marketv1.ListSymbolsRequest{}); err != nil {
		t.Fatalf("ListSymbols with market:read: %v", err)
	}
	_, err = c.Market.DeleteSymbol(testContext(t), &marketv1.DeleteSymbolRequest{Symbol: "AAPL"})
	wantCode(t, err, codes.PermissionDenied, "market:write")
}

func TestAServerCertificateOfAnotherCAIsRefused(t *testing.T) {
	a := newAuthSetup(t)
	_, err := hello(t, dial(t, "https://localhost:"+port(a.tlsServer(t, false)), WithCA(a.otherCA), WithToken(a.caller)))
	wantCode(t, err, codes.Unavailable, "certificate signed by unknown authority")
}

func TestMutualTLSWithAClientCertificate(t *testing.T) {
	t.Setenv(TokenEnv, "")
	a := newAuthSetup(t)
	target := "https://localhost:" + port(a.tlsServer(t, true))
	// No token: the certificate's [[client]] entry (collector, greeter:read).
	c := dial(t, target, WithCA(a.ca), WithClientCert(a.clientCert, a.clientKey))
	wantHello(t, c)
	_, err := c.Market.ListSymbols(testContext(t), &marketv1.ListSymbolsRequest{})
	wantCode(t, err, codes.PermissionDenied, "collector", "market:read")
	// A token wins over the certificate.
	c = dial(t, target, WithCA(a.ca), WithClientCert(a.clientCert, a.clientKey), WithToken(a.marketReader))
	if _, err := c.Market.ListSymbols(testContext(t), &marketv1.ListSymbolsRequest{}); err != nil {
		t.Fatalf("ListSymbols with market:read: %v", err)
	}
	// Without a certificate there is no connection.
	_, err = hello(t, dial(t, target, WithCA(a.ca), WithToken(a.caller)))
	wantCode(t, err, codes.Unavailable)
}

func TestDialOptionsAreChecked(t *testing.T) {
	a := newAuthSetup(t)
	notPEM := filepath.Join(a.dir, "not.pem")
	writeFile(t, notPEM, []byte("not a certificate\n"))
	for _, tc := range []struct {
		target string
		opts   []grpc.DialOption
		want   string
	}{
		{"http://127.0.0.1:1", []grpc.DialOption{WithCA(a.ca)}, "which an http:// server does not; use https://"},
		{"http://127.0.0.1:1", []grpc.DialOption{WithClientCert(a.clientCert, a.clientKey)}, "use https://"},
		{"https://127.0.0.1:1", []grpc.DialOption{WithCA(filepath.Join(a.dir, "missing.pem"))}, "WithCA: open "},
		{"https://127.0.0.1:1", []grpc.DialOption{WithCA(notPEM)}, "holds no PEM certificate"},
		{"https://127.0.0.1:1", []grpc.DialOption{WithClientCert(a.clientCert, a.serverKey)}, "WithClientCert("},
		{"127.0.0.1:1", []grpc.DialOption{WithToken("two\nlines")}, "WithToken: a token is printable ASCII"},
		{"127.0.0.1:1", []grpc.DialOption{WithToken(" padded")}, "WithToken: a token has no spaces around it"},
	} {
		c, err := Dial(tc.target, tc.opts...)
		if err == nil {
			c.Close()
			t.Errorf("Dial(%q) with %d options: no error, want %q", tc.target, len(tc.opts), tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial(%q): %v, want %q", tc.target, err, tc.want)
		}
		if strings.Contains(err.Error(), "lines") || strings.Contains(err.Error(), "padded") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	t.Setenv(TokenEnv, "bad\ttoken")
	if _, err := Dial("127.0.0.1:1"); err == nil || !strings.HasPrefix(err.Error(), TokenEnv+": ") || strings.Contains(err.Error(), "bad") {
		t.Errorf("a DATAPORT_TOKEN that cannot be sent: %v", err)
	}
}
