package dataport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests share one real `dataport serve`, started by TestMain on a port
// of its choosing, with a data dir of its own.
var (
	testBin    string
	testAddr   string
	testClient *Client
)

const (
	startupTimeout  = 30 * time.Second
	shutdownTimeout = 15 * time.Second
	// callTimeout bounds every call a test makes.
	callTimeout = 30 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	bin := os.Getenv("DATAPORT_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "target", "release", "dataport")
	}
	if info, err := os.Stat(bin); err != nil || info.IsDir() {
		fmt.Fprintf(os.Stderr, "no dataport binary at %s: set DATAPORT_BIN or run clients/go/run\n", bin)
		return 1
	}
	testBin = bin
	dataDir, err := os.MkdirTemp("", "dataport-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dataDir)
	srv, err := startServer(bin, dataDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testAddr = srv.addr
	testClient, err = Dial(testAddr)
	if err != nil {
		srv.kill()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	testClient.Close()
	if err := srv.stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// server is one `dataport serve` process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	err    error // the exit, once exited is closed

	mu     sync.Mutex
	recent []string // the last lines of its output, for failure messages
}

// startServer starts bin on 127.0.0.1:0, with extra serve flags, and waits
// for the JSON log line in which it announces its address ({"fields":
// {"message": "listening", "addr": ...}}); it never guesses how long that
// takes.
func startServer(bin, dataDir string, args ...string) (*server, error) {
	s := &server{exited: make(chan struct{})}
	argv := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"}, args...)
	s.cmd = exec.Command(bin, argv...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	announced := make(chan string, 1)
	var drains sync.WaitGroup
	drains.Add(2)
	go func() {
		defer drains.Done()
		s.drain(stdout, "stdout", announced)
	}()
	go func() {
		defer drains.Done()
		s.drain(stderr, "stderr", nil)
	}()
	go func() {
		// Wait closes the pipes only after both drains have read them out.
		drains.Wait()
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case addr := <-announced:
		s.addr = addr
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("dataport exited (%v) before announcing its address\n%s", s.err, s.output())
	case <-time.After(startupTimeout):
		s.kill()
		return nil, fmt.Errorf("dataport did not announce its address within %s\n%s", startupTimeout, s.output())
	}
}

// drain reads a pipe to its end, keeping the last lines, and hands the
// announced address to announced, if given.
func (s *server) drain(r io.Reader, name string, announced chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.recent = append(s.recent, "["+name+"] "+line)
		if len(s.recent) > 200 {
			s.recent = s.recent[1:]
		}
		s.mu.Unlock()
		if announced == nil {
			continue
		}
		var record struct {
			Fields struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
			} `json:"fields"`
		}
		if json.Unmarshal([]byte(line), &record) == nil && record.Fields.Message == "listening" {
			announced <- record.Fields.Addr
			announced = nil
		}
	}
	// Keep reading past a line too long for the scanner, so the server
	// never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.recent, "\n")
}

// stop sends SIGTERM and expects a clean exit in time.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(shutdownTimeout):
		s.kill()
		return fmt.Errorf("dataport was still running %s after SIGTERM\n%s", shutdownTimeout, s.output())
	}
	if s.err != nil {
		return fmt.Errorf("dataport exited with %v after SIGTERM\n%s", s.err, s.output())
	}
	return nil
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// ownServer starts a server of the test's own with extra serve flags,
// stopped after the test; its output is logged if the test fails.
func ownServer(t *testing.T, args ...string) *server {
	t.Helper()
	s, err := startServer(testBin, t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("dataport output:\n%s", s.output())
		}
	})
	return s
}

// testContext is a context bounded by callTimeout, cancelled at the end
// of the test.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
