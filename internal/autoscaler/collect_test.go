package autoscaler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tideserve/tide/internal/activator"
	"github.com/tideserve/tide/internal/metrics"
	"github.com/tideserve/tide/internal/servertest"
)

// TestScraperReadsTideServer scrapes a real tide-server before and after 200
// requests: the rate between the two ticks is exactly the requests sent, and the
// pod counts as ready.
func TestScraperReadsTideServer(t *testing.T) {
	bin := servertest.Build(t)
	p := servertest.Serve(t, bin, "../../examples/fraud/model.pkl")
	sc := NewScraper(StaticTargets(p.HTTP), nil)
	first, err := sc.Collect(t.Context(), t0)
	if err != nil || first.ReadyPods != 1 || first.Rate != 0 {
		t.Fatalf("first tick: %+v, %v (want 1 pod, no rate yet)", first, err)
	}
	for i := range 200 {
		resp, err := http.Post("http://"+p.HTTP+"/predict", "application/json",
			strings.NewReader(fmt.Sprintf(`{"feature1": %d, "feature2": 0.5}`, i%7)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("predict: %d", resp.StatusCode)
		}
	}
	second, err := sc.Collect(t.Context(), t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if second.ReadyPods != 1 || second.Rate != 100 {
		t.Errorf("second tick: %+v; want 1 pod at 100 requests/s (200 requests over 2 s)", second)
	}
	// Busy seconds per second: 200 short requests in 2 s are far below one in flight.
	if second.Concurrency <= 0 || second.Concurrency > 1 {
		t.Errorf("concurrency %v; want a small positive average", second.Concurrency)
	}
}

// TestScraperCountsHeldRequests: a request held by a real activator whose
// Deployment is at zero is demand, and wakes the policy from zero.
func TestScraperCountsHeldRequests(t *testing.T) {
	target, _ := url.Parse("http://" + servertest.FreeAddr(t)) // nothing listens: at zero
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan activator.Addrs, 1)
	go activator.Run(ctx, activator.Addrs{Proxy: "127.0.0.1:0", Ops: "127.0.0.1:0"},
		activator.Config{Target: target, HoldTimeout: 20 * time.Second}, slog.New(slog.DiscardHandler), func(a activator.Addrs) { addrs <- a })
	a := <-addrs
	go func() {
		resp, err := http.Post("http://"+a.Proxy+"/predict", "application/json", strings.NewReader(`{"feature1": 1, "feature2": 2}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	sc := NewScraper(StaticTargets(), StaticTargets(a.Ops))
	var s Sample
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, _ = sc.Collect(t.Context(), time.Now()); s.Concurrency == 1 {
			break
		}
	}
	if s.Concurrency != 1 || s.ReadyPods != 0 {
		t.Fatalf("sample %+v; want the held request as concurrency 1 with no pods", s)
	}
	d, _ := Decide(s.At, []Sample{s}, State{}, DefaultPolicy())
	if !d.Active || d.Desired != 1 {
		t.Errorf("decision %+v; want active with 1 replica", d)
	}
}

// fakePod serves a real metrics.Set whose counters the test moves.
type fakePod struct {
	set *metrics.Set
	srv *httptest.Server
}

func newFakePod(t *testing.T) *fakePod {
	p := &fakePod{set: metrics.New("test")}
	p.srv = httptest.NewServer(promhttp.HandlerFor(p.set.Registry, promhttp.HandlerOpts{}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakePod) addr() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *fakePod) serve(n int, each time.Duration) {
	for range n {
		p.set.RecordRequest("fraud", "predict", 200, each, "")
	}
}

// TestScraperFollowsChurn: pods that go are dropped, pods that come start without a
// rate, a restarted pod (counters back at zero) gives no negative rate, and a pod
// that does not answer is not ready.
func TestScraperFollowsChurn(t *testing.T) {
	a, b := newFakePod(t), newFakePod(t)
	var mu sync.Mutex
	addrs := []string{a.addr(), b.addr()}
	sc := NewScraper(func(context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		return addrs, nil
	}, nil)
	set := func(s ...string) { mu.Lock(); addrs = s; mu.Unlock() }
	sc.Collect(t.Context(), t0)
	a.serve(100, 10*time.Millisecond)
	b.serve(300, 10*time.Millisecond)
	s, _ := sc.Collect(t.Context(), t0.Add(time.Second))
	if s.ReadyPods != 2 || s.Rate != 400 || !near(s.Concurrency, 4) {
		t.Errorf("two pods: %+v; want 400/s and concurrency 4 (400 requests of 10 ms in 1 s)", s)
	}
	// b restarts (a new process: counters from zero) and a third pod arrives.
	b.srv.Close()
	b2, c := newFakePod(t), newFakePod(t)
	b2.serve(5, time.Millisecond)
	set(a.addr(), b.srv.Listener.Addr().String(), b2.addr(), c.addr())
	a.serve(50, 10*time.Millisecond)
	s, _ = sc.Collect(t.Context(), t0.Add(2*time.Second))
	if s.ReadyPods != 3 || s.Rate != 50 {
		t.Errorf("after churn: %+v; want 3 pods (the closed one left out) and only a's 50/s", s)
	}
	set(a.addr())
	s, _ = sc.Collect(t.Context(), t0.Add(3*time.Second))
	if s.ReadyPods != 1 || len(sc.prev) != 1 {
		t.Errorf("after scale-down: %+v, %d remembered; want 1", s, len(sc.prev))
	}
}

func near(a, b float64) bool { return a > b-1e-6 && a < b+1e-6 }

// TestReadCountersRefusesBadBodies: a body over the limit and an unparsable one are
// errors, not zero demand.
func TestReadCountersRefusesBadBodies(t *testing.T) {
	big := strings.Repeat("# HELP x y\n", 200)
	if _, err := readCounters(strings.NewReader(big), 100); err == nil {
		t.Error("oversized body accepted")
	}
	if _, err := readCounters(strings.NewReader("tide_requests_total{ 1\n"), 1<<20); err == nil {
		t.Error("unparsable body accepted")
	}
	c, err := readCounters(strings.NewReader("tide_inflight_requests{model=\"a\"} 3\ntide_inflight_requests{model=\"b\"} NaN\ntide_activator_held_requests -2\n"), 1<<20)
	if err != nil || c.inflight != 3 || c.held != 0 {
		t.Errorf("%+v, %v; want NaN and negatives skipped", c, err)
	}
}

// FuzzReadCounters: any body is parsed or refused without a panic, and never gives
// a negative or NaN count.
func FuzzReadCounters(f *testing.F) {
	f.Add("tide_requests_total{model=\"fraud\",protocol=\"predict\",code=\"200\"} 12\n")
	f.Add("# TYPE tide_request_duration_seconds histogram\ntide_request_duration_seconds_bucket{le=\"+Inf\"} 3\ntide_request_duration_seconds_sum 0.5\ntide_request_duration_seconds_count 3\n")
	f.Add("tide_inflight_requests NaN\ntide_activator_held_requests +Inf\n")
	f.Add("\x00\xff{{{")
	f.Fuzz(func(t *testing.T, body string) {
		c, err := readCounters(strings.NewReader(body), 1<<16)
		if err != nil {
			return
		}
		for _, v := range []float64{c.requests, c.inflight, c.held} {
			if v < 0 || v != v {
				t.Fatalf("count %v from %q", v, body)
			}
		}
	})
}
