package autoscaler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tideserve/tide/internal/autoscaler/externalscaler"
)

// script is a Source that plays back one sample per tick.
type script struct {
	mu   sync.Mutex
	rate func(now time.Time) float64
	fail bool
}

func (s *script) Collect(_ context.Context, now time.Time) (Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return Sample{At: now}, io.ErrUnexpectedEOF
	}
	r := s.rate(now)
	return Sample{At: now, Rate: r, Concurrency: r / 1000, ReadyPods: 2}, nil
}

// raiseLog is a Raiser over a Deployment count the test holds.
type raiseLog struct {
	mu       sync.Mutex
	replicas int
	calls    []int
}

func (r *raiseLog) Raise(_ context.Context, n int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, n)
	from := r.replicas
	if from > 0 && from < n {
		r.replicas = n
	}
	return from, nil
}

func testPolicy() Policy {
	return Policy{TargetConcurrency: 4, TargetRate: 350, StableWindow: time.Minute, PanicWindow: 6 * time.Second,
		PanicThreshold: 2, MinReplicas: 0, MaxReplicas: 6}
}

// TestScalerRaisesOnceOnABurst: the step raises the Deployment in one call, the
// decision holds without further calls, a lost tick keeps the windows, and the
// series say what was decided.
func TestScalerRaisesOnceOnABurst(t *testing.T) {
	src := &script{rate: func(now time.Time) float64 {
		if now.Sub(t0) >= 10*time.Second {
			return 2000
		}
		return 100
	}}
	dep := &raiseLog{replicas: 1}
	reg := prometheus.NewRegistry()
	s, err := New(testPolicy(), src, dep, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	for sec := range 20 {
		if sec == 15 {
			src.mu.Lock()
			src.fail = true
			src.mu.Unlock()
		}
		if sec == 16 {
			src.mu.Lock()
			src.fail = false
			src.mu.Unlock()
		}
		s.Tick(t.Context(), t0.Add(time.Duration(sec)*time.Second))
	}
	if d := s.Last(); d.Desired != 6 || !d.Panic {
		t.Errorf("last decision %+v; want 6 in panic", d)
	}
	if dep.replicas != 6 {
		t.Errorf("deployment at %d; want 6", dep.replicas)
	}
	// 1 replica to begin with (decision 1 = no raise), then one raise to 6.
	if len(dep.calls) != 2 || dep.calls[1] != 6 {
		t.Errorf("raise calls %v; want [1 6]", dep.calls)
	}
	if v := testutil.ToFloat64(s.series.desired); v != 6 {
		t.Errorf("tide_autoscaler_desired_replicas %v", v)
	}
	if v := testutil.ToFloat64(s.series.collectErrors); v != 1 {
		t.Errorf("tide_autoscaler_collect_errors_total %v; want 1", v)
	}
	if v := testutil.ToFloat64(s.series.panic); v != 1 {
		t.Errorf("tide_autoscaler_panic %v", v)
	}
}

// TestScalerLeavesZeroToKEDA: at zero the scaler does not wake the Deployment
// itself; once KEDA has, the next tick raises it.
func TestScalerLeavesZeroToKEDA(t *testing.T) {
	src := &script{rate: func(time.Time) float64 { return 2000 }}
	dep := &raiseLog{replicas: 0}
	s, _ := New(testPolicy(), src, dep, slog.New(slog.DiscardHandler), nil)
	s.Tick(t.Context(), t0)
	s.Tick(t.Context(), t0.Add(time.Second))
	if dep.replicas != 0 {
		t.Fatalf("woke the Deployment to %d", dep.replicas)
	}
	dep.mu.Lock()
	dep.replicas = 1 // KEDA's activation
	dep.mu.Unlock()
	s.Tick(t.Context(), t0.Add(2*time.Second))
	if dep.replicas != 6 {
		t.Errorf("after activation: %d; want 6", dep.replicas)
	}
}

// TestExternalScalerOverGRPC is KEDA's side of the contract, over a real gRPC
// connection: the metric spec and value give the HPA exactly the decision, and the
// push stream says "active" as soon as a tick sees demand.
func TestExternalScalerOverGRPC(t *testing.T) {
	var demand struct {
		sync.Mutex
		rate float64
	}
	src := &script{rate: func(time.Time) float64 { demand.Lock(); defer demand.Unlock(); return demand.rate }}
	s, _ := New(testPolicy(), src, nil, slog.New(slog.DiscardHandler), nil)
	s.Tick(t.Context(), t0)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := externalscaler.NewExternalScalerClient(conn)
	ref := &externalscaler.ScaledObjectRef{Name: "fraud-tide", Namespace: "models"}

	spec, err := c.GetMetricSpec(t.Context(), ref)
	if err != nil || len(spec.MetricSpecs) != 1 || spec.MetricSpecs[0].TargetSizeFloat != 1 {
		t.Fatalf("GetMetricSpec: %v, %v", spec, err)
	}
	act, err := c.IsActive(t.Context(), ref)
	if err != nil || act.Result {
		t.Fatalf("IsActive with no demand: %v, %v", act, err)
	}
	stream, err := c.StreamIsActive(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.Result {
		t.Fatalf("first push: %v, %v; want inactive", m, err)
	}
	demand.Lock()
	demand.rate = 1400
	demand.Unlock()
	s.Tick(t.Context(), t0.Add(time.Second))
	s.Tick(t.Context(), t0.Add(2*time.Second))
	pushed := make(chan bool, 1)
	go func() {
		m, err := stream.Recv()
		pushed <- err == nil && m.Result
	}()
	select {
	case ok := <-pushed:
		if !ok {
			t.Fatal("the push after demand was not active")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no push within 5 s of the demand")
	}
	req := &externalscaler.GetMetricsRequest{ScaledObjectRef: ref, MetricName: "s0-" + MetricName}
	if _, err := c.GetMetrics(t.Context(), req); status.Code(err) != codes.Unavailable {
		t.Fatalf("GetMetrics 2 s into a 1 min stable window: %v; want Unavailable (the HPA keeps its count)", err)
	}
	s.Tick(t.Context(), t0.Add(time.Minute))
	v, err := c.GetMetrics(t.Context(), req)
	if err != nil || len(v.MetricValues) != 1 || v.MetricValues[0].MetricValueFloat != 4 || v.MetricValues[0].MetricName != "s0-"+MetricName {
		t.Fatalf("GetMetrics: %v, %v; want 4 replicas (1400/s at 350 each, a minute on) under KEDA's metric name", v, err)
	}

	// Streams are bounded.
	var open []externalscaler.ExternalScaler_StreamIsActiveClient
	for range maxStreams - 1 {
		st, err := c.StreamIsActive(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		st.Recv()
		open = append(open, st)
	}
	extra, _ := c.StreamIsActive(t.Context(), ref)
	if _, err := extra.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("stream %d: %v; want ResourceExhausted", maxStreams+1, err)
	}
}

// TestDeploymentScaleSpeaksTheScaleSubresource checks the requests the raiser makes
// to an API server: a GET, then a merge patch only when the count must rise, with
// the service account's current token.
func TestDeploymentScaleSpeaksTheScaleSubresource(t *testing.T) {
	var mu sync.Mutex
	replicas := 2
	var seen []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		if r.URL.Path != "/apis/apps/v1/namespaces/models/deployments/fraud-tide/scale" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"kind":"Status","message":"deployments.apps \"x\" not found"}`)
			return
		}
		if r.Method == http.MethodPatch {
			var p struct{ Spec struct{ Replicas int } }
			if r.Header.Get("Content-Type") != "application/merge-patch+json" || json.NewDecoder(r.Body).Decode(&p) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			replicas = p.Spec.Replicas
		}
		json.NewEncoder(w).Encode(map[string]any{"spec": map[string]int{"replicas": replicas}})
	}))
	defer api.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("first\n"), 0o600)
	k := &DeploymentScale{Base: api.URL, Namespace: "models", Name: "fraud-tide", TokenFile: tok, Client: api.Client()}
	if from, err := k.Raise(t.Context(), 5); err != nil || from != 2 || replicas != 5 {
		t.Fatalf("raise 2->5: from %d, %v, now %d", from, err, replicas)
	}
	os.WriteFile(tok, []byte("rotated"), 0o600)
	if from, err := k.Raise(t.Context(), 3); err != nil || from != 5 || replicas != 5 {
		t.Fatalf("raise to 3 at 5: from %d, %v, now %d; want left alone", from, err, replicas)
	}
	want := []string{
		"GET /apis/apps/v1/namespaces/models/deployments/fraud-tide/scale Bearer first",
		"PATCH /apis/apps/v1/namespaces/models/deployments/fraud-tide/scale Bearer first",
		"GET /apis/apps/v1/namespaces/models/deployments/fraud-tide/scale Bearer rotated",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	k.Name = "gone"
	if _, err := k.Raise(t.Context(), 3); err == nil || !strings.Contains(err.Error(), "404") || strings.Count(err.Error(), "\n") > 0 {
		t.Errorf("missing Deployment: %v; want a one-line 404", err)
	}
}
