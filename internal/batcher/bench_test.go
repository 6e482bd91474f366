package batcher

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/tensor"
)

// BenchmarkBatcherOverhead is the batcher's own cost per request: 64 callers
// (as the server's handlers would be) send one row each through a batcher
// whose model answers at once with its input, so that nothing but queueing,
// joining, splitting and handing back is measured. It reports the process's
// CPU time per request (cpu-ns/req) beside the wall time (ns/op), since the
// callers share the machine's cores. "direct" is the batcher with batching
// off (a run slot and nothing else), "batched" joins up to 64 rows.
func BenchmarkBatcherOverhead(b *testing.B) {
	echo := func(_ context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return []*tensor.Tensor{{Name: "out", Datatype: in[0].Datatype, Shape: in[0].Shape, Data: in[0].Data}}, nil
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"direct", Config{MaxInFlight: 2, MaxQueue: 1024}},
		{"batched", Config{MaxBatchSize: 64, MaxQueueDelay: 2 * time.Millisecond, MaxInFlight: 2, MaxQueue: 1024}},
	} {
		b.Run(c.name, func(b *testing.B) {
			bt, err := New(echo, c.cfg, Hooks{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close()
			var runs atomic.Int64
			b.SetParallelism(32) // 64 callers on two cores
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				in := []*tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}
				ctx := context.Background()
				for pb.Next() {
					out, err := bt.Do(ctx, in)
					if err != nil || len(out) != 1 || out[0].Shape[0] != 1 {
						b.Errorf("%v %v", out, err)
						return
					}
					runs.Add(1)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(runs.Load()), "cpu-ns/req")
		})
	}
}

// cpuTime is the process's user and system CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
