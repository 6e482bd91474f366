package loadgen

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pausingServer answers at once, except that every request arriving in
// [pauseAt, pauseAt+pause) after the first request waits until the pause ends,
// as a server does in a long GC pause or a stalled dependency.
func pausingServer(t *testing.T, pauseAt, pause time.Duration) *httptest.Server {
	var once sync.Once
	var first time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		once.Do(func() { first = time.Now() })
		begin, end := first.Add(pauseAt), first.Add(pauseAt+pause)
		mu.Unlock()
		if now := time.Now(); now.After(begin) && now.Before(end) {
			time.Sleep(time.Until(end))
		}
		w.Write([]byte(`{"prediction":[0]}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustTarget(t *testing.T, u string) Target {
	t.Helper()
	tg, err := ParseTarget(u)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestOpenLoopSeesThePause is the proof that open loop is honest. At 200
// requests/s for 3 s with a 1 s stall in the middle, a third of all requests
// were due during the stall and each waited up to a second: p99 must be close
// to the whole second. A closed loop with the same server and 4 workers only
// has 4 requests caught in the stall, and reports a p99 that hides it.
func TestOpenLoopSeesThePause(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 6 s")
	}
	const pause = time.Second
	run := func(mode Mode, target float64) Summary {
		srv := pausingServer(t, time.Second, pause)
		res, err := Run(context.Background(), Config{
			Target: mustTarget(t, srv.URL+"/predict"),
			Body:   StaticBody(`{"feature1":1,"feature2":2}`),
			Mode:   mode,
			Plan:   Plan{{3 * time.Second, target, target}},
			Client: NewClient(ClientOptions{Timeout: 5 * time.Second}),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Summary
		t.Logf("%s: %d requests, %d ok, p50 %.1f ms, p99 %.1f ms, max %.1f ms", mode, s.Completed, s.OK,
			s.Latency.Pct["50"], s.Latency.Pct["99"], s.Latency.Max)
		if s.Errors != 0 || s.OK != s.Completed || s.Completed == 0 {
			t.Fatalf("%s: %d errors of %d (%v)", mode, s.Errors, s.Completed, s.ErrorKinds)
		}
		return s
	}
	open := run(Open, 200)
	closed := run(Closed, 4)
	if open.Service == nil || open.Service.Max < 900 || closed.Service != nil {
		t.Errorf("service time: open %+v (want the stall in it: requests left on time), closed %+v (want none)", open.Service, closed.Service)
	}

	if p99 := open.Latency.Pct["99"]; p99 < 800 {
		t.Errorf("open loop p99 = %.1f ms; a 1 s stall that caught a third of the requests must show near 1000 ms", p99)
	}
	// Open loop sent on schedule whatever the server did: about 600 requests.
	if open.Sent < 500 || open.Sent > 620 {
		t.Errorf("open loop sent %d requests, want about 600 (200/s for 3 s)", open.Sent)
	}
	if open.Latency.Max < 900 {
		t.Errorf("open loop max = %.1f ms, want about 1000", open.Latency.Max)
	}
	// Closed loop saw the stall too (its max), but its percentiles hide it
	// unless the machine is too slow to send 400 requests outside it.
	if closed.Latency.Max < 900 {
		t.Errorf("closed loop max = %.1f ms; its 4 stalled requests waited about 1 s", closed.Latency.Max)
	}
	if closed.Completed > 400 && closed.Latency.Pct["99"] >= open.Latency.Pct["99"]/2 {
		t.Errorf("closed loop p99 %.1f ms is not well below open loop's %.1f ms: the comparison shows nothing",
			closed.Latency.Pct["99"], open.Latency.Pct["99"])
	}
}

func TestMaxRequestsStopsTheRun(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, mode := range []Mode{Open, Closed} {
		for _, e := range httpEngines() {
			hits.Store(0)
			cfg := withEngine(t, Config{
				Target: mustTarget(t, srv.URL), Mode: mode, MaxRequests: 137,
				Plan: Plan{{Forever, 500, 500}}, // 500/s open, or 500 workers closed
			}, e, 5*time.Second)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Summary.Sent != 137 || res.Summary.OK != 137 || hits.Load() != 137 {
				t.Errorf("%s, %s: sent %d ok %d server saw %d, want 137 each", mode, e, res.Summary.Sent, res.Summary.OK, hits.Load())
			}
			var sent int64
			for _, s := range res.Samples {
				sent += s.Sent
			}
			if sent != 137 {
				t.Errorf("%s, %s: samples add up to %d sent, want 137", mode, e, sent)
			}
		}
	}
}

// TestStatusAndErrorBreakdown: non-2xx answers are errors with their code;
// timeouts and refused connections are named.
func TestStatusAndErrorBreakdown(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 1:
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	// net/http's client and tide load's own HTTP/1.1 client (on goroutines and
	// on event loops) alike.
	for _, e := range httpEngines() {
		n.Store(0)
		cfg := withEngine(t, Config{
			Target: mustTarget(t, srv.URL), Mode: Closed, MaxRequests: 40, Plan: Plan{{Forever, 2, 2}},
			Client: NewClient(ClientOptions{Timeout: 100 * time.Millisecond}),
		}, e, 100*time.Millisecond)
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := res.Summary
		if s.StatusCode[429] != 10 || s.ErrorKinds["timeout"] != 10 || s.StatusCode[200] != 20 {
			t.Errorf("%s: status %v errors %v; want 10×429, 10 timeouts, 20×200", e, s.StatusCode, s.ErrorKinds)
		}
		if s.OK != 20 || s.Errors != 20 {
			t.Errorf("%s: ok %d errors %d, want 20 and 20", e, s.OK, s.Errors)
		}
	}

	addr := srv.Listener.Addr().String()
	srv.Close()
	for _, e := range httpEngines() {
		cfg := withEngine(t, Config{Target: mustTarget(t, "http://"+addr+"/predict"), Mode: Closed, MaxRequests: 5, Plan: Plan{{Forever, 1, 1}}}, e, time.Second)
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Summary.ErrorKinds["connection refused"] != 5 {
			t.Errorf("%s: error kinds %v, want 5 connection refused", e, res.Summary.ErrorKinds)
		}
	}
}

// TestClosedLoopFollowsStages: the number of concurrent requests the server
// sees follows the plan's steps.
func TestClosedLoopFollowsStages(t *testing.T) {
	for _, e := range httpEngines() {
		t.Run(string(e), func(t *testing.T) { testClosedLoopFollowsStages(t, e) })
	}
}

func testClosedLoopFollowsStages(t *testing.T, e httpEngine) {
	var cur, peak atomic.Int64
	var mu sync.Mutex
	peaks := map[int]int64{} // second → most concurrent requests seen
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		defer cur.Add(-1)
		sec := int(time.Since(start) / time.Second)
		mu.Lock()
		peaks[sec] = max(peaks[sec], c)
		mu.Unlock()
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
	}))
	defer srv.Close()
	plan, _ := ParseStages("1s:2,1s:8,1s:1")
	res, err := Run(context.Background(), withEngine(t, Config{Target: mustTarget(t, srv.URL), Mode: Closed, Plan: plan}, e, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if peaks[0] != 2 || peaks[1] != 8 {
		t.Errorf("concurrency per second %v, want 2 then 8", peaks)
	}
	if peak.Load() != 8 {
		t.Errorf("peak concurrency %d, want 8", peak.Load())
	}
	if len(res.Samples) < 3 || res.Samples[1].Target != 8 {
		t.Errorf("samples %+v", res.Samples)
	}
}

// TestOpenLoopRate: sends at the asked rate (±10 %) and records each second.
func TestOpenLoopRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var samples []Sample
	res, err := Run(context.Background(), Config{
		Target: mustTarget(t, srv.URL), Mode: Open, Plan: Plan{{2 * time.Second, 300, 300}},
		OnSample: func(s Sample) { samples = append(samples, s) },
		Replicas: func() (int, int) { return 3, 2 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Summary.Sent; s < 560 || s > 601 {
		t.Errorf("sent %d in 2 s at 300/s", s)
	}
	if len(samples) < 2 || samples[0].Span != 1 || samples[0].Sent < 250 || samples[0].DesiredReplicas != 3 || samples[0].ReadyReplicas != 2 {
		t.Errorf("samples %+v", samples)
	}
}

// TestHTTP2Cleartext: --h2 against an http URL speaks h2c and reuses one connection.
func TestHTTP2Cleartext(t *testing.T) {
	var proto sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto, true)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, h2 := range []bool{false, true} {
		proto.Clear()
		conns.Store(0)
		_, err := Run(context.Background(), Config{
			Target: mustTarget(t, srv.URL), Mode: Closed, MaxRequests: 50, Plan: Plan{{Forever, 1, 1}},
			Client: NewClient(ClientOptions{Timeout: time.Second, HTTP2: h2}),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		var got []string
		proto.Range(func(k, _ any) bool { got = append(got, k.(string)); return true })
		if len(got) != 1 || got[0] != want {
			t.Errorf("h2=%v: server saw %v, want only %s", h2, got, want)
		}
		if conns.Load() != 1 {
			t.Errorf("h2=%v: %d connections for 50 sequential requests, want 1 (reuse)", h2, conns.Load())
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	tg := mustTarget(t, "http://127.0.0.1:1/")
	for _, c := range []Config{
		{Mode: Open, Plan: Plan{{time.Second, 1, 1}}},
		{Target: tg, Mode: Open},
		{Target: tg, Mode: "sideways", Plan: Plan{{time.Second, 1, 1}}},
	} {
		if _, err := Run(context.Background(), c); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("Run(%+v) error = %v, want one line", c, err)
		}
	}
}

// TestTraceSampleStartsTraces: --trace-sample's share of requests carries a
// well-formed, sampled traceparent with a trace id of its own; the rest none.
func TestTraceSampleStartsTraces(t *testing.T) {
	valid := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)
	var mu sync.Mutex
	seen := map[string]bool{}
	var without atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp := r.Header.Get("traceparent")
		if tp == "" {
			without.Add(1)
			return
		}
		if !valid.MatchString(tp) || strings.Contains(tp, "-"+strings.Repeat("0", 32)+"-") {
			t.Errorf("malformed traceparent %q", tp)
		}
		mu.Lock()
		seen[tp[3:35]] = true
		mu.Unlock()
	}))
	defer srv.Close()
	for _, c := range []struct {
		share    float64
		min, max int // requests with a traceparent, of 400
	}{{0, 0, 0}, {1, 400, 400}, {0.25, 60, 140}} {
		mu.Lock()
		clear(seen)
		mu.Unlock()
		without.Store(0)
		cfg := Config{Target: mustTarget(t, srv.URL), Mode: Closed, MaxRequests: 400,
			Plan: Plan{{Forever, 8, 8}}, TraceSample: c.share, Seed: 7}
		if c.share == 0.25 {
			cfg = withHTTP1(t, cfg, time.Second) // the own HTTP/1.1 client carries them too
		}
		if c.share == 1 {
			cfg = withEngine(t, cfg, eventLoops, time.Second) // and its event loops
		}
		_, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		traced := len(seen) // distinct trace ids: one per traced request
		mu.Unlock()
		if traced < c.min || traced > c.max || traced+int(without.Load()) != 400 {
			t.Errorf("share %g: %d requests started distinct traces, %d had none; want %d to %d of 400", c.share, traced, without.Load(), c.min, c.max)
		}
	}
	if _, err := Run(context.Background(), Config{Target: mustTarget(t, srv.URL), Mode: Closed, Plan: Plan{{Forever, 1, 1}}, MaxRequests: 1, TraceSample: 2}); err == nil || !strings.Contains(err.Error(), "trace sample") {
		t.Fatal("a trace share of 2 was accepted")
	}
}

// TestOpenLoopRunsAnIdleTail: a plan that ends with a rate-0 stage keeps the
// run, and its samples, going to the plan's end (a queue's backlog drains
// then), and the backlog is sampled each second.
func TestOpenLoopRunsAnIdleTail(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	backlog := int64(500)
	res, err := Run(context.Background(), Config{
		Target: mustTarget(t, srv.URL), Mode: Open, Plan: Plan{{time.Second, 100, 100}, {2500 * time.Millisecond, 0, 0}},
		Backlog: func() int64 { backlog -= 100; return backlog },
	})
	if err != nil {
		t.Fatal(err)
	}
	// 3.5 s of plan: the ticks at 1, 2 and 3 s all fall inside it (a tick at
	// the plan's very end races with the stop, and an idle last second is
	// not kept).
	if n := len(res.Samples); n < 3 {
		t.Fatalf("%d samples; the idle 2.5 s were cut off", n)
	}
	if s := res.Summary.Sent; s < 95 || s > 101 {
		t.Errorf("sent %d, want 100 in the first second only", s)
	}
	if res.Samples[0].Backlog != 400 || res.Samples[2].Backlog != 200 {
		t.Errorf("backlog samples %d, %d; want 400 then 200", res.Samples[0].Backlog, res.Samples[2].Backlog)
	}
}
