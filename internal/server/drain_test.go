package server

import (
	"context"
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
