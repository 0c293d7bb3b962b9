package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pair is a certificate and its key, as PEM files.
type pair struct {
	cert, key string
}

// keyPair loads p for a tls.Config.
func (p pair) keyPair(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pki is what the TLS tests use: a CA and a server certificate it signed,
// client certificates it signed, and the ones a mutual-TLS server must
// refuse. All keys are P-256, as README.md's openssl commands make them.
type pki struct {
	ca, otherCA pair
	pool        *x509.CertPool // ca
	otherPool   *x509.CertPool // otherCA
	server      pair           // localhost and 127.0.0.1, signed by ca
	collector   pair           // CN=collector, signed by ca (named in [[client]])
	stranger    pair           // CN=stranger, signed by ca (named nowhere)
	foreign     pair           // CN=collector, signed by otherCA
	expired     pair           // CN=collector, signed by ca, expired yesterday
	selfSigned  pair           // CN=collector, signed by its own key
	keys        []string       // every private key file, for leak checks
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{}
	now := time.Now()
	day := 24 * time.Hour
	valid := [2]time.Time{now.Add(-time.Hour), now.Add(day)}
	authority := func(name, cn string) (issuer, pair) {
		tmpl := &x509.Certificate{
			Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		return p.sign(t, dir, name, tmpl, nil, valid)
	}
	leaf := func(name, cn string, by *issuer, usage x509.ExtKeyUsage, when [2]time.Time) pair {
		tmpl := &x509.Certificate{
			Subject: pkix.Name{CommonName: cn}, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		_, pr := p.sign(t, dir, name, tmpl, by, when)
		return pr
	}
	ca, caPair := authority("ca", "dataport-test-ca")
	other, otherPair := authority("other-ca", "other-ca")
	p.ca, p.otherCA = caPair, otherPair
	p.pool, p.otherPool = x509.NewCertPool(), x509.NewCertPool()
	p.pool.AddCert(ca.cert)
	p.otherPool.AddCert(other.cert)
	client := x509.ExtKeyUsageClientAuth
	p.server = leaf("server", "localhost", &ca, x509.ExtKeyUsageServerAuth, valid)
	p.collector = leaf("collector", "collector", &ca, client, valid)
	p.stranger = leaf("stranger", "stranger", &ca, client, valid)
	p.foreign = leaf("foreign", "collector", &other, client, valid)
	p.expired = leaf("expired", "collector", &ca, client, [2]time.Time{now.Add(-30 * day), now.Add(-day)})
	p.selfSigned = leaf("self-signed", "collector", nil, client, valid)
	return p
}

// sign makes a key and a certificate of tmpl for it, signed by `by` (itself
// when nil), valid over `when`, and writes NAME.pem and NAME.key.
func (p *pki) sign(t *testing.T, dir, name string, tmpl *x509.Certificate, by *issuer, when [2]time.Time) (issuer, pair) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = when[0], when[1]
	parent, parentKey := tmpl, key
	if by != nil {
		parent, parentKey = by.cert, by.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
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
	pr := pair{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")}
	write := func(path string, block *pem.Block) {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(pr.cert, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	write(pr.key, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	p.keys = append(p.keys, pr.key)
	return issuer{cert, key}, pr
}
