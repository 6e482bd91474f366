//go:build cgo

package onnx

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
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

// TestNotALibrary points the runtime at a file that is not ONNX Runtime, in a
// child process (the library is opened once per process): the load fails
// with one line that names the file and how to get the real library.
func TestNotALibrary(t *testing.T) {
	if os.Getenv("TIDE_TEST_CHILD") == "1" {
		_, err := loadModel("testdata/mlp.onnx", formats.Config{})
		if err == nil {
			t.Fatal("loaded with a bogus library")
		}
		fmt.Println("LOAD ERROR:", err)
		return
	}
	fake := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := os.WriteFile(fake, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestNotALibrary$", "-test.v")
	cmd.Env = append(os.Environ(), "TIDE_TEST_CHILD=1", LibraryEnv+"="+fake)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "LOAD ERROR: ") {
			line = l
		}
	}
	for _, want := range []string{"load testdata/mlp.onnx: open ONNX Runtime " + fake, "hack/install-onnxruntime.sh"} {
		if !strings.Contains(line, want) {
			t.Errorf("error %q does not contain %q", line, want)
		}
	}
}
