// Package servertest helps tests that run the real tide-server or speak to it in
// ways a well-behaved client would not: it builds the binary as the image does,
// finds free ports, and puts raw bytes on a gRPC connection.
package servertest

import (
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

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
