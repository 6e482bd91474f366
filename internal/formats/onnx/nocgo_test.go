//go:build !cgo

package onnx

import (
	"context"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
)

// TestStaticBuildExplainsItself: without cgo the runtime is still registered,
// and loading an ONNX model says how to get a build that serves it.
func TestStaticBuildExplainsItself(t *testing.T) {
	rt, ok := formats.Lookup("onnx")
	if !ok {
		t.Fatal("onnx runtime not registered in a static build")
	}
	_, err := rt.Loader.Load(context.Background(), "testdata/mlp.onnx", formats.Config{})
	if err == nil {
		t.Fatal("a static build loaded an ONNX model")
	}
	for _, want := range []string{"load testdata/mlp.onnx: ", "without cgo", "CGO_ENABLED=1", "hack/install-onnxruntime.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
