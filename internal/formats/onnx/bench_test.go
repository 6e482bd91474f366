//go:build cgo

package onnx

import (
	"context"
	"math"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// The MLP benchmarks measure Predict end to end (input checks, the C call,
// copying the output back) with one intra-op thread, the setting a server
// with many concurrent requests uses; runtime-notes.md has the reference
// figures (about 3 µs per row, 15 µs for 64 rows).

func benchmarkMLP(b *testing.B, file string, width, rows int) {
	requireRuntime(b)
	defer SetOptions(currentOptions())
	if err := SetOptions(Options{IntraOpThreads: 1}); err != nil {
		b.Fatal(err)
	}
	m, err := loadModel("testdata/"+file, formats.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.(model.Closer).Close()
	v := make([]float64, rows*width)
	for i := range v {
		v[i] = math.Sin(float64(i))
	}
	in := []*tensor.Tensor{fp32Tensor("input", []int64{int64(rows), int64(width)}, v)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Predict(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

func BenchmarkMLP1Row(b *testing.B)    { benchmarkMLP(b, "mlp.onnx", 32, 1) }
func BenchmarkMLPBatch64(b *testing.B) { benchmarkMLP(b, "mlp.onnx", 32, 64) }

// The 64-256-256-256-10 MLP: ~150k multiply-adds per row, so the model's own
// work, not the per-call overhead, dominates a one-row run.
func BenchmarkMLP256x3OneRow(b *testing.B)  { benchmarkMLP(b, "mlp256.onnx", 64, 1) }
func BenchmarkMLP256x3Batch64(b *testing.B) { benchmarkMLP(b, "mlp256.onnx", 64, 64) }

// BenchmarkWrapperAdvancedSession1Row is the floor the MLP benchmarks are
// compared with: onnxruntime_go's AdvancedSession with input and output
// tensors bound once and reused, so a run is the C API call and nothing else.
// A server cannot work that way (each request brings its own shapes, and
// concurrent requests cannot share output buffers), but the difference is
// what Tide's per-request work costs.
func BenchmarkWrapperAdvancedSession1Row(b *testing.B) {
	requireRuntime(b)
	in, err := ort.NewTensor(ort.NewShape(1, 32), make([]float32, 32))
	if err != nil {
		b.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 10))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Destroy()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		b.Fatal(err)
	}
	s, err := ort.NewAdvancedSession("testdata/mlp.onnx", []string{"input"}, []string{"logits"},
		[]ort.Value{in}, []ort.Value{out}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
