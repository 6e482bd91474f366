//go:build cgo

package onnx

import (
	"context"
	"math"
	"testing"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/runtime"
	"github.com/tideserve/tide/internal/tensor"
)

// The MLP benchmarks measure Predict end to end (input checks, the C call,
// copying the output back) with one intra-op thread, the setting a server
// with many concurrent requests uses; runtime-notes.md has the reference
// figures (about 3 µs per row, 15 µs for 64 rows).

func benchmarkMLP(b *testing.B, rows int) {
	requireRuntime(b)
	defer SetOptions(currentOptions())
	if err := SetOptions(Options{IntraOpThreads: 1}); err != nil {
		b.Fatal(err)
	}
	m, err := loadModel("testdata/mlp.onnx", runtime.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.(model.Closer).Close()
	v := make([]float64, rows*32)
	for i := range v {
		v[i] = math.Sin(float64(i))
	}
	in := []*tensor.Tensor{fp32Tensor("input", []int64{int64(rows), 32}, v)}
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

func BenchmarkMLP1Row(b *testing.B)    { benchmarkMLP(b, 1) }
func BenchmarkMLPBatch64(b *testing.B) { benchmarkMLP(b, 64) }
