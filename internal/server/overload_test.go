package server

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/formats/formatstest"
)

// TestOverloadStaysUpAndRecovers drives a model at about five times what it can do:
// a model run takes 10 ms and two may run at once (capacity ~200 requests/s), and
// 1000 requests/s arrive for two seconds. The server must stay up, shed the excess
// with 429 at once, keep the admitted requests' latency bounded by the queue
// (max_queue runs ahead of them), keep memory bounded, and serve normally as soon
// as the load drops. The long, 60-second version of this run is in
// docs/performance.md; this one is small enough for every CI run.
func TestOverloadStaysUpAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few seconds")
	}
	model := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 10}
	s := serverWithConfig(t, Options{}, model, "batching:\n  max_inflight: 2\n  max_queue: 8\n")

	var ok, shed, other atomic.Int64
	var mu sync.Mutex
	var okLatency []time.Duration
	var maxHeap atomic.Uint64
	stopSampling := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > maxHeap.Load() {
					maxHeap.Store(ms.HeapInuse)
				}
			}
		}
	}()

	const rate, seconds = 1000, 2
	interval := time.Second / rate
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < rate*seconds; i++ {
		// Open loop: each request leaves at its scheduled time, whatever the server does.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(oneRow)))
			switch rec.Code {
			case http.StatusOK:
				ok.Add(1)
				mu.Lock()
				okLatency = append(okLatency, time.Since(t0))
				mu.Unlock()
			case http.StatusTooManyRequests:
				shed.Add(1)
				if rec.Header().Get("Retry-After") == "" {
					other.Add(1)
				}
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stopSampling)

	sort.Slice(okLatency, func(i, j int) bool { return okLatency[i] < okLatency[j] })
	p99 := okLatency[len(okLatency)*99/100]
	t.Logf("sent %d in %s: %d served (p99 %s), %d shed, %d other; max heap in use %d KiB",
		rate*seconds, time.Since(start).Round(time.Millisecond), ok.Load(), p99, shed.Load(), other.Load(), maxHeap.Load()>>10)
	if other.Load() != 0 {
		t.Fatalf("%d answers were neither 200 nor 429 with Retry-After", other.Load())
	}
	if shed.Load() < int64(rate*seconds/2) {
		t.Fatalf("only %d of %d shed at five times capacity", shed.Load(), rate*seconds)
	}
	// An admitted request waits behind at most max_queue/max_inflight = 4 runs of
	// 10 ms plus its own; allow generous scheduling noise on a shared machine.
	if p99 > 500*time.Millisecond {
		t.Fatalf("admitted p99 %s: the queue bound does not bound latency", p99)
	}
	if maxHeap.Load() > 256<<20 {
		t.Fatalf("heap grew to %d MiB under overload", maxHeap.Load()>>20)
	}
	// Recovery: with the load gone, a request is served at once.
	t0 := time.Now()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(oneRow)))
	if rec.Code != 200 || time.Since(t0) > 200*time.Millisecond {
		t.Fatalf("after the overload: %d in %s", rec.Code, time.Since(t0))
	}
}
