package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageBuildONNXNeedsRuntime: an ONNX model without --onnxruntime-lib, or a
// library that is not there, is refused with one line before anything is compiled.
func TestImageBuildONNXNeedsRuntime(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "mlp.onnx")
	if err := os.WriteFile(model, []byte("onnx"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.tar")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", model}, "is an ONNX model: give --onnxruntime-lib PATH"},
		{[]string{"--model", dir}, "is an ONNX model: give --onnxruntime-lib PATH"},
		{[]string{"--model", model, "--onnxruntime-lib", filepath.Join(dir, "missing.so")}, "--onnxruntime-lib: stat"},
	} {
		cmd := newRootCommand()
		var stdout, stderr bytes.Buffer
		cmd.SetOut(&stdout)
		cmd.SetErr(&stderr)
		cmd.SetArgs(append([]string{"image", "build", "--output", out}, tt.args...))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("tide image build %v: %v, want one line containing %q", tt.args, err, tt.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("tide image build %v wrote %s", tt.args, out)
		}
	}
}
