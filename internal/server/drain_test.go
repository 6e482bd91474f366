package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/formats/formatstest"
)

// TestDrainFinishesInFlightRequests is what makes Kubernetes rollouts lossless: once
// told to stop, the server reports unready at once, keeps answering during the drain
// delay, lets a slow in-flight request finish, and returns nil.
func TestDrainFinishesInFlightRequests(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 700}
	s := newTestServer(t, Options{DrainDelay: 300 * time.Millisecond, DrainTimeout: 5 * time.Second}, map[string]formatstest.Spec{"slow": slow})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	waitReady(t, base)

	// A request that will still be running when the stop comes.
	inflight := make(chan string, 1)
	go func() {
		resp, err := http.Post(base+"/predict", "application/json", strings.NewReader(`{"feature1":1,"feature2":0}`))
		if err != nil {
			inflight <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- resp.Status + " " + string(b)
	}()
	time.Sleep(150 * time.Millisecond)
	stop()
	time.Sleep(50 * time.Millisecond)

	// During the drain delay: not ready, but still serving, and asking clients to
	// reconnect elsewhere.
	resp, err := http.Get(base + "/v2/health/ready")
	if err != nil {
		t.Fatalf("ready probe during drain delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ready during drain = %d, want 503", resp.StatusCode)
	}
	if !resp.Close { // the client saw "Connection: close"
		t.Errorf("no Connection: close while draining")
	}

	if got := <-inflight; got != `200 OK {"prediction":[1]}` {
		t.Fatalf("in-flight request: %s", got)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil after a clean drain", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after drain")
	}
	if _, err := http.Get(base + "/v2/health/live"); err == nil {
		t.Fatal("server still accepting after drain")
	}
}

func TestDrainTimeoutReportsUnfinishedRequests(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 3000}
	s := newTestServer(t, Options{DrainTimeout: 200 * time.Millisecond}, map[string]formatstest.Spec{"slow": slow})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	waitReady(t, base)
	go http.Post(base+"/predict", "application/json", strings.NewReader(`{"feature1":1,"feature2":0}`))
	time.Sleep(150 * time.Millisecond)
	stop()
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "still running after 200ms") {
			t.Fatalf("Serve returned %v, want a drain timeout error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not give up after the drain timeout")
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server never became ready")
}

// drainServer serves one fast model with opts and returns its base URL, the
// function that starts the drain, and Serve's result.
func drainServer(t *testing.T, opts Options) (base string, stop context.CancelFunc, served chan error) {
	t.Helper()
	s := newTestServer(t, opts, map[string]formatstest.Spec{"m": {Weights: []float64{1, -1}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	served = make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	waitReady(t, base)
	return base, stop, served
}

// every calls try every interval until done is closed, and returns the
// failures it met (a refused connection among them).
func every(interval time.Duration, done <-chan struct{}, try func() error) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var failed []string
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				out <- failed
				return
			case <-tick.C:
			}
			if err := try(); err != nil {
				failed = append(failed, err.Error())
			}
		}
	}()
	return out
}

// everyFresh sends GET path on a new connection every interval until done is
// closed, and returns the failures it met.
func everyFresh(base, path string, interval time.Duration, done <-chan struct{}) <-chan []string {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	return every(interval, done, func() error {
		resp, err := client.Get(base + path)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// drained waits up to limit for Serve's clean return and says how long it took.
func drained(t *testing.T, served <-chan error, limit time.Duration, why string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil after a clean drain", err)
		}
	case <-time.After(limit):
		t.Fatalf("Serve had not returned after %s: %s", limit, why)
	}
	return time.Since(start)
}

// TestDrainKeepsListeningWhileClientsArrive is the lagging route: the drain delay
// is over, yet the node's Service rules still send new connections here. The
// server must keep accepting them, and close its listeners once they stop.
// (The quiet period is twelve times the clients' interval, so that a busy
// machine's stall of the client does not look like the route moving.)
func TestDrainKeepsListeningWhileClientsArrive(t *testing.T) {
	base, stop, served := drainServer(t, Options{DrainDelay: 100 * time.Millisecond, DrainQuiet: 600 * time.Millisecond, DrainTimeout: 20 * time.Second})
	done := make(chan struct{})
	failures := everyFresh(base, "/v2/models/m", 50*time.Millisecond, done)
	stop()
	listensWhileClientsArrive(t, served, done, failures, "requests")
}

// listensWhileClientsArrive checks a drain that began with clients arriving
// (quiet 600 ms, timeout 20 s): Serve goes on for 1.5 s (15x the 100 ms delay)
// while they come, none of them fails, and once done stops them Serve returns
// after the quiet period, within a margin for a busy machine (without the
// arrivals stopping it would be half the timeout, 10 s).
func listensWhileClientsArrive(t *testing.T, served <-chan error, done chan struct{}, failures <-chan []string, what string) {
	t.Helper()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while clients still arrived, 15x the drain delay", err)
	case <-time.After(1500 * time.Millisecond):
	}
	close(done)
	if f := <-failures; len(f) > 0 {
		t.Fatalf("%d %s failed during the drain; first: %s", len(f), what, f[0])
	}
	drained(t, served, 5*time.Second, "it kept listening after the clients stopped")
}

// TestDrainQuietIgnoresProbesAndScrapes: the kubelet's probes and Prometheus's
// scrapes reach the pod directly whatever the Service does; if they counted, a
// pod would keep listening for half its drain timeout on every rollout (10 s
// here, against the 100 ms delay).
func TestDrainQuietIgnoresProbesAndScrapes(t *testing.T) {
	base, stop, served := drainServer(t, Options{DrainDelay: 100 * time.Millisecond, DrainQuiet: 500 * time.Millisecond, DrainTimeout: 20 * time.Second})
	done := make(chan struct{})
	defer close(done)
	for _, path := range []string{"/v2/health/ready", "/v2/health/live", "/metrics"} {
		everyFresh(base, path, 30*time.Millisecond, done)
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	drained(t, served, 5*time.Second, "probes and scrapes kept the server listening")
}

// TestDrainQuietIsBoundedByHalfTheTimeout: clients that never stop coming (a
// route that never moves) keep the listeners open for at most half of the drain
// timeout past the delay, so the pod still exits inside its grace period.
func TestDrainQuietIsBoundedByHalfTheTimeout(t *testing.T) {
	base, stop, served := drainServer(t, Options{DrainDelay: 100 * time.Millisecond, DrainQuiet: 500 * time.Millisecond, DrainTimeout: 2 * time.Second})
	done := make(chan struct{})
	defer close(done)
	everyFresh(base, "/v2/models/m", 30*time.Millisecond, done)
	time.Sleep(100 * time.Millisecond)
	stop()
	// 100 ms delay + 1 s (half the timeout); below 800 ms it stopped listening
	// while the clients still came, above 5 s it ignored the bound.
	if took := drained(t, served, 5*time.Second, "clients that never stop kept it listening past half its drain timeout"); took < 800*time.Millisecond {
		t.Errorf("drain took %s, want about 1.1 s (delay + half the timeout)", took.Round(time.Millisecond))
	}
}
