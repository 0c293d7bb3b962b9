package dataport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TokenEnv names the environment variable Dial reads for a token when it is
// given no WithToken, as the CLI's --token does.
const TokenEnv = "DATAPORT_TOKEN"

// dialSettings are what Dial's own options say; Dial turns them into grpc
// dial options.
type dialSettings struct {
	caFile, certFile, keyFile string
	token                     *string
}

func (s *dialSettings) tls() bool { return s.caFile != "" || s.certFile != "" }

// dialOption is one of Dial's own options. It is a grpc.DialOption (it
// embeds grpc.EmptyDialOption, which grpc keeps for this), so it goes in the
// same list as grpc's options; Dial takes it out and applies it, and grpc
// would ignore it anywhere else.
type dialOption struct {
	grpc.EmptyDialOption
	apply func(*dialSettings)
}

// WithCA makes Dial check the server's certificate against the CA
// certificates in the PEM file at path instead of the system's roots, as
// the CLI's --ca. It means TLS: with it a "host:port" target is TLS even
// on this machine, and an http:// target is an error.
func WithCA(path string) grpc.DialOption {
	return dialOption{apply: func(s *dialSettings) { s.caFile = path }}
}

// WithClientCert makes Dial present the certificate (PEM, leaf first) and
// private key (PEM) in these files to a server that asks for one (mutual
// TLS), as the CLI's --cert and --key. It means TLS, as WithCA does.
func WithClientCert(certFile, keyFile string) grpc.DialOption {
	return dialOption{apply: func(s *dialSettings) { s.certFile, s.keyFile = certFile, keyFile }}
}

// WithToken makes every call carry secret as `authorization: Bearer
// SECRET`, as the CLI's --token. Without it Dial uses DATAPORT_TOKEN from
// the environment, if set; WithToken("") sends none.
func WithToken(secret string) grpc.DialOption {
	return dialOption{apply: func(s *dialSettings) { s.token = &secret }}
}

// ownOptions takes Dial's own options out of opts, applied, and answers
// the rest.
func ownOptions(opts []grpc.DialOption) (dialSettings, []grpc.DialOption) {
	var s dialSettings
	var rest []grpc.DialOption
	for _, o := range opts {
		if own, ok := o.(dialOption); ok {
			own.apply(&s)
		} else {
			rest = append(rest, o)
		}
	}
	return s, rest
}

// tlsConfig is the client's TLS configuration: the CA given or the
// system's roots, and the client certificate if given.
func (s *dialSettings) tlsConfig() (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("WithCA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("WithCA: %s holds no PEM certificate", s.caFile)
		}
		config.RootCAs = pool
	}
	if s.certFile != "" || s.keyFile != "" {
		pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("WithClientCert(%q, %q): %w", s.certFile, s.keyFile, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// bearerToken is credentials.PerRPCCredentials sending a token.
type bearerToken struct {
	value string // "Bearer SECRET"
	// secure: whether Dial chose TLS, so grpc refuses to send the token if
	// a later option replaced TLS with plaintext.
	secure bool
}

// newBearerToken checks that secret can be a header value, without
// repeating it in the error.
func newBearerToken(secret, source string, secure bool) (bearerToken, error) {
	for _, r := range secret {
		if r < 0x20 || r > 0x7e {
			return bearerToken{}, fmt.Errorf("%s: a token is printable ASCII (dataport token new prints one)", source)
		}
	}
	if strings.TrimSpace(secret) != secret {
		return bearerToken{}, fmt.Errorf("%s: a token has no spaces around it", source)
	}
	return bearerToken{value: "Bearer " + secret, secure: secure}, nil
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.value}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.secure }

var _ credentials.PerRPCCredentials = bearerToken{}
