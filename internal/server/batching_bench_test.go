package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/batcher"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/runtime"
	_ "github.com/tideserve/tide/internal/runtime/onnx"
	"github.com/tideserve/tide/internal/tensor"
)

// BenchmarkDynamicBatchingONNX compares 64 concurrent one-row callers of the ONNX
// MLP (32-64-64-10, torch-exported) through the batcher with batching off and on.
// It reports requests per second and the p99 of the callers' latency.
//
//	go test ./internal/server -run '^$' -bench DynamicBatchingONNX -benchtime 20000x
func BenchmarkDynamicBatchingONNX(b *testing.B) {
	path := "../runtime/onnx/testdata/mlp.onnx"
	if _, err := os.Stat(path); err != nil {
		b.Skip(err)
	}
	rt, _ := runtime.Lookup("onnx")
	m, err := rt.Loader.Load(context.Background(), filepath.Clean(path), runtime.Config{Name: "mlp"})
	if err != nil {
		b.Skipf("ONNX Runtime not available: %v", err)
	}
	defer m.(model.Closer).Close()
	for _, c := range []struct {
		name string
		cfg  batcher.Config
	}{
		{"unbatched", batcher.Config{MaxInFlight: 2, MaxQueue: 1024}},
		{"batched-64", batcher.Config{MaxBatchSize: 64, MaxQueueDelay: 2 * time.Millisecond, MaxInFlight: 2, MaxQueue: 1024}},
	} {
		b.Run(c.name, func(b *testing.B) {
			bt, err := batcher.New(m.Predict, c.cfg, batcher.Hooks{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close()
			const callers = 64
			lat := make([][]time.Duration, callers)
			var wg sync.WaitGroup
			per := b.N / callers
			b.ResetTimer()
			start := time.Now()
			for g := 0; g < callers; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					x := make([]float32, 32)
					for i := range x {
						x[i] = float32(g+i) / 100
					}
					in := []*tensor.Tensor{{Name: "input", Datatype: tensor.FP32, Shape: []int64{1, 32}, Data: x}}
					for i := 0; i < per; i++ {
						t0 := time.Now()
						if _, err := bt.Do(context.Background(), in); err != nil {
							b.Error(err)
							return
						}
						lat[g] = append(lat[g], time.Since(t0))
					}
				}(g)
			}
			wg.Wait()
			elapsed := time.Since(start)
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			sortDurations(all)
			if len(all) > 0 {
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
