package dataport

import (
	"strings"
	"testing"

	"github.com/dataport/dataport/clients/go/compat/helloworld"
)

func TestDialDefaultsToPlaintextOnlyForThisMachine(t *testing.T) {
	for target, want := range map[string]bool{
		"127.0.0.1:50051":              true,
		"127.3.4.5:1":                  true,
		"[::1]:50051":                  true,
		"localhost:50051":              true,
		"LOCALHOST":                    true,
		"dns:///localhost:50051":       true,
		"passthrough:///127.0.0.1:80":  true,
		"unix:///run/dataport.sock":    true,
		"unix-abstract:dataport":       true,
		"dataport.example.com:443":     false,
		"10.0.0.7:50051":               false,
		"dns:///dataport.internal:443": false,
		"dns://8.8.8.8/localhost:1":    true,
		"localhost.example.com:1":      false,
	} {
		if got := isLocal(target); got != want {
			t.Errorf("isLocal(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestTargetsAreTheCLIsAddresses(t *testing.T) {
	for target, want := range map[string]struct {
		target string
		secure bool
	}{
		"http://127.0.0.1:50051":       {"127.0.0.1:50051", false},
		"http://dataport.internal:80":  {"dataport.internal:80", false},
		"https://dataport.example.com": {"dataport.example.com:443", true},
		"http://[::1]:7/":              {"[::1]:7", false},
		"127.0.0.1:50051":              {"127.0.0.1:50051", false},
		"dataport.example.com:443":     {"dataport.example.com:443", true},
	} {
		got, secure, err := parseTarget(target)
		if err != nil || got != want.target || secure != want.secure {
			t.Errorf("parseTarget(%q) = %q, %v, %v; want %q, %v", target, got, secure, err, want.target, want.secure)
		}
	}
	if _, _, err := parseTarget("http://host:1/v1"); err == nil || !strings.Contains(err.Error(), "expected http://HOST:PORT") {
		t.Errorf("a URL with a path: %v", err)
	}
}

func TestDialOfAnHTTPURLOrOfNothingWithTheEnvironmentReachesTheServer(t *testing.T) {
	t.Setenv(AddressEnv, "http://"+testAddr)
	for _, target := range []string{"http://" + testAddr, ""} {
		c, err := Dial(target)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := c.Greeter.SayHello(testContext(t), &helloworld.HelloRequest{Name: "url"})
		c.Close()
		if err != nil || reply.GetMessage() != "Hello, url!" {
			t.Fatalf("Dial(%q): %v %v", target, reply, err)
		}
	}
}

func TestDialedClientsReachTheServer(t *testing.T) {
	c, err := Dial(testAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Greeter.SayHello(testContext(t), &helloworld.HelloRequest{Name: "gopher"})
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetMessage() != "Hello, gopher!" {
		t.Fatalf("SayHello answered %q", reply.GetMessage())
	}
	if c.Conn() == nil {
		t.Fatal("Conn is nil")
	}
}
