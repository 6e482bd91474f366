//go:build cgo

package onnx

import (
	"errors"
	"os"
	"testing"
)

// requireRuntime opens ONNX Runtime or skips the test when the library is not
// installed. CI sets TIDE_REQUIRE_INTEGRATION=1, and there a missing library
// fails the test instead of hiding it.
func requireRuntime(tb testing.TB) {
	tb.Helper()
	err := ensureEnvironment()
	if err == nil {
		return
	}
	if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" || !errors.Is(err, errLibraryNotFound) {
		tb.Fatalf("ONNX Runtime: %v", err)
	}
	tb.Skipf("ONNX Runtime not installed (run hack/install-onnxruntime.sh): %v", err)
}
