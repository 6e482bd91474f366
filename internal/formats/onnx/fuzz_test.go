//go:build cgo

package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadModelBytes hands ONNX Runtime arbitrary bytes as a model: it must
// answer with an error (or, for bytes that happen to be a valid model, a
// session), never crash the process.
func FuzzLoadModelBytes(f *testing.F) {
	requireRuntime(f)
	files, _ := filepath.Glob("testdata/*.onnx")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 2048 {
			continue
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // truncated
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x07\x12\x00"))
	f.Add([]byte("not a model at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := newSession(modelSource{bytes: b, inMemory: true}, Options{IntraOpThreads: 1})
		if err == nil {
			s.close()
		}
	})
}
