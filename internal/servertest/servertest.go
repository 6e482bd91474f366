// Package servertest helps tests that run the real tide-server or speak to it in
// ways a well-behaved client would not: it builds the binary as the image does,
// finds free ports, and puts raw bytes on a gRPC connection.
package servertest

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
)

// BuildTags are the production binary's build tags (image.ServerBuildTags).
const BuildTags = "grpcnotrace"

// Build compiles cmd/tide-server into a temporary folder and returns its path;
// with -short the test is skipped instead.
func Build(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the tide-server binary")
	}
	bin := filepath.Join(t.TempDir(), "tide-server")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "build", "-tags", BuildTags, "-o", bin, "github.com/tideserve/tide/cmd/tide-server").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// FreeAddr returns a loopback address nothing listens on (yet).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// RawCodec sends a *RawMsg's bytes as the message, unchecked, and receives the
// answer's bytes likewise: pass grpc.ForceCodecV2(RawCodec{}) to put malformed
// protobuf on the wire.
type RawCodec struct{}

// RawMsg is a message as bytes.
type RawMsg struct{ B []byte }

func (RawCodec) Name() string { return "proto" }

func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*RawMsg).B)}, nil
}

func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*RawMsg).B = data.Materialize()
	return nil
}

// Process is a running `tide-server serve`.
type Process struct {
	Cmd  *exec.Cmd
	HTTP string // the HTTP address it serves on
	logs lockedBuffer
}

// Serve starts bin (from Build) serving model on a free HTTP port, gRPC off unless
// args turn it on (later flags win), and waits up to 15 s until it reports ready.
// The process is killed when the test ends.
func Serve(t testing.TB, bin, model string, args ...string) *Process {
	t.Helper()
	p := Start(t, bin, model, args...)
	p.WaitReady(t)
	return p
}

// Start is Serve without waiting: for a server that may never be ready.
func Start(t testing.TB, bin, model string, args ...string) *Process {
	t.Helper()
	p := &Process{HTTP: FreeAddr(t)}
	full := append([]string{"serve", "--http-addr", p.HTTP, "--grpc-addr", ""}, args...)
	p.Cmd = exec.Command(bin, append(full, model)...)
	p.Cmd.Stderr = &p.logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cmd.Process.Kill(); p.Cmd.Wait() })
	return p
}

// WaitReady waits up to 15 s for GET /v2/health/ready to answer 200.
func (p *Process) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + p.HTTP + "/v2/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tide-server not ready after 15 s; stderr:\n%s", p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logs is what the process has written to stderr so far.
func (p *Process) Logs() string { return p.logs.String() }

// lockedBuffer is written by the process's stderr copier while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
