package activator

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func newProxy(t *testing.T, target string, cfg Config) (*Proxy, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Target = u
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 20 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	p, err := New(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(func() { front.Close(); p.Close() })
	return p, front, reg
}

// echo answers with what it received, so a test sees exactly what was forwarded.
func echo(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	})
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestForwardsRequestAndResponse(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(echo(&hits))
	defer backend.Close()
	p, front, _ := newProxy(t, backend.URL, Config{})

	resp, body := post(t, front.URL+"/v2/models/m/infer?x=1", `{"inputs":[]}`)
	if resp.StatusCode != http.StatusCreated || body != `{"inputs":[]}` {
		t.Fatalf("got %d %q, want 201 and the body echoed", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Seen-Path"); got != "/v2/models/m/infer?x=1" {
		t.Errorf("backend saw path %q", got)
	}
	if got := resp.Header.Get("X-Seen-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client's address", got)
	}
	if got := testutil.ToFloat64(p.metrics.requests.WithLabelValues("201")); got != 1 {
		t.Errorf("tide_activator_requests_total{code=201} = %v, want 1", got)
	}
}

// TestHoldsUntilBackendStarts is the scale-from-zero case: the request arrives while
// nothing listens, waits, and is answered once the backend comes up, body intact.
func TestHoldsUntilBackendStarts(t *testing.T) {
	addr := freeAddr(t)
	p, front, reg := newProxy(t, "http://"+addr, Config{HoldTimeout: 10 * time.Second})

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Post(front.URL+"/predict", "application/json", strings.NewReader(`{"feature1":1}`))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b)}
	}()
	waitFor(t, "the request to be held", func() bool { return p.Held() == 1 })
	if got := testutil.ToFloat64(p.metrics.held); got != 1 {
		t.Errorf("tide_activator_held_requests = %v while holding, want 1", got)
	}

	time.Sleep(300 * time.Millisecond) // several refused attempts
	var hits atomic.Int64
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: echo(&hits)}
	go backend.Serve(l)
	defer backend.Close()

	r := <-done
	if r.err != nil || r.code != http.StatusCreated || r.body != `{"feature1":1}` {
		t.Fatalf("held request: %d %q %v, want 201 with the body delivered", r.code, r.body, r.err)
	}
	if hits.Load() != 1 {
		t.Errorf("backend got %d requests, want exactly 1", hits.Load())
	}
	if p.Held() != 0 || testutil.ToFloat64(p.metrics.held) != 0 {
		t.Errorf("still %d held after the answer", p.Held())
	}
	if n := histogramCount(t, reg); n != 1 {
		t.Errorf("tide_activator_wait_seconds count = %d, want 1", n)
	}
}

func TestHoldTimeoutAnswers503(t *testing.T) {
	p, front, _ := newProxy(t, "http://"+freeAddr(t), Config{HoldTimeout: 150 * time.Millisecond})
	start := time.Now()
	resp, body := post(t, front.URL+"/predict", `{}`)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on 503")
	}
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, "no 127.0.0.1:") {
		t.Errorf("body %q, want a JSON error naming the target", body)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Errorf("answered after %s, want about the hold timeout", el)
	}
	if got := testutil.ToFloat64(p.metrics.requests.WithLabelValues("503")); got != 1 {
		t.Errorf("requests_total{code=503} = %v", got)
	}
}

func TestRefusesBeyondMaxHeld(t *testing.T) {
	p, front, _ := newProxy(t, "http://"+freeAddr(t), Config{HoldTimeout: 5 * time.Second, MaxHeld: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "one held request", func() bool { return p.Held() == 1 })
	resp, body := post(t, front.URL+"/", `{}`)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "already waiting") {
		t.Fatalf("second request: %d %q, want 503 saying requests are already waiting", resp.StatusCode, body)
	}
	cancel()
	waitFor(t, "the cancelled request to stop being held", func() bool { return p.Held() == 0 })
}

func TestBodyTooLarge(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(echo(&hits))
	defer backend.Close()
	_, front, _ := newProxy(t, backend.URL, Config{MaxBodyBytes: 8})
	resp, body := post(t, front.URL+"/predict", `{"feature1": 1.0}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than 8 bytes") {
		t.Fatalf("got %d %q, want 413", resp.StatusCode, body)
	}
	if hits.Load() != 0 {
		t.Error("an oversized body reached the backend")
	}
}

// A backend that accepted the connection and then failed must not be sent the
// request again: it may have acted on it.
func TestNoRetryAfterTheRequestWasSent(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer backend.Close()
	_, front, _ := newProxy(t, backend.URL, Config{HoldTimeout: 2 * time.Second})
	resp, body := post(t, front.URL+"/predict", `{}`)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "backend request failed") {
		t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
	}
	if hits.Load() != 1 {
		t.Errorf("backend got %d requests, want 1 (no retry once sent)", hits.Load())
	}
}

func TestRejectsBadTarget(t *testing.T) {
	for _, target := range []string{"", "ftp://x", "http://"} {
		u, _ := url.Parse(target)
		if _, err := New(Config{Target: u}, nil, nil); err == nil {
			t.Errorf("New(target %q) accepted", target)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "tide_activator_wait_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
