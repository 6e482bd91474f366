package serving

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tideserve/tide/internal/metrics"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// doubler is a two-feature runtime whose outputs are 2x and 3x its input; it
// counts its Close calls.
type doubler struct {
	batchDim bool
	features []string
	closes   atomic.Int32
	started  chan struct{} // if set, Predict signals it and waits for release
	release  chan struct{}
}

func (d *doubler) Metadata() model.Metadata {
	dim := int64(-1)
	if !d.batchDim {
		dim = 1
	}
	return model.Metadata{
		Platform: "test",
		Inputs:   []model.TensorSpec{{Name: "x", Datatype: tensor.FP64, Shape: []int64{dim, 2}}},
		Outputs: []model.TensorSpec{{Name: "double", Datatype: tensor.FP64, Shape: []int64{dim, 2}},
			{Name: "triple", Datatype: tensor.FP64, Shape: []int64{dim, 2}}},
		Features: d.features,
	}
}

func (d *doubler) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if d.started != nil {
		d.started <- struct{}{}
		<-d.release
	}
	x := in[0].Data.([]float64)
	two, three := make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		two[i], three[i] = 2*v, 3*v
	}
	return []*tensor.Tensor{
		{Name: "double", Datatype: tensor.FP64, Shape: in[0].Shape, Data: two},
		{Name: "triple", Datatype: tensor.FP64, Shape: in[0].Shape, Data: three},
	}, nil
}

func (d *doubler) Close() error { d.closes.Add(1); return nil }

func row(v ...float64) []*tensor.Tensor {
	return []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{int64(len(v) / 2), 2}, Data: v}}
}

func intp(v int) *int { return &v }

// TestLifecycle: the runtime and the batcher live and close together, after the
// last request of a retired version, exactly once.
func TestLifecycle(t *testing.T) {
	rt := &doubler{batchDim: true}
	f := &Factory{Admission: Admission{MaxBatchSize: 4, MaxQueueDelay: time.Millisecond}}
	m, err := f.New("m", "1", rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Hold() // a request in flight
	if out, err := m.Infer(context.Background(), "", row(1, 2), nil); err != nil || out[0].Data.([]float64)[1] != 4 {
		t.Fatalf("infer: %v %v", out, err)
	}
	m.Retire() // a reload replaced it
	if m.Closed() || rt.closes.Load() != 0 {
		t.Fatal("closed while a request still held it")
	}
	m.Release()
	if !m.Closed() || rt.closes.Load() != 1 {
		t.Fatalf("after the last release: closed %v, runtime closes %d; want closed once", m.Closed(), rt.closes.Load())
	}
	m.Retire()
	m.Close()
	if rt.closes.Load() != 1 {
		t.Fatalf("runtime closed %d times, want once", rt.closes.Load())
	}
	if _, err := m.Infer(context.Background(), "", row(1, 2), nil); err == nil {
		t.Error("a closed model's batcher still ran a request")
	}
}

// TestRetireUnusedClosesNow: a version nobody uses closes when it is retired.
func TestRetireUnusedClosesNow(t *testing.T) {
	rt := &doubler{batchDim: true}
	m, err := (&Factory{}).New("m", "1", rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Retire()
	if !m.Closed() || rt.closes.Load() != 1 {
		t.Fatal("an unused retired model was not closed")
	}
}

// TestBadBatchingConfigFailsTheLoad: an invalid config is the load's error, and the
// runtime, already loaded, is closed rather than leaked.
func TestBadBatchingConfigFailsTheLoad(t *testing.T) {
	rt := &doubler{batchDim: true}
	_, err := (&Factory{}).New("m", "1", rt, &Overrides{MaxBatchSize: intp(4), MaxQueue: intp(8), PreferredBatchSizes: []int{9}})
	if err == nil || !strings.Contains(err.Error(), "model m: batching config: preferred batch size 9") {
		t.Fatalf("err %v", err)
	}
	if rt.closes.Load() != 1 {
		t.Fatal("the runtime of a refused load was not closed")
	}
}

func TestAdmissionMerge(t *testing.T) {
	delay := 3 * time.Millisecond
	f := &Factory{Admission: Admission{MaxInFlight: 2, MaxQueue: 10, MaxBatchSize: 8, MaxQueueDelay: time.Millisecond}}
	batchable := &Model{Name: "m", Meta: (&doubler{batchDim: true}).Metadata()}
	for _, c := range []struct {
		name string
		m    *Model
		ov   *Overrides
		want string
	}{
		{"defaults", batchable, nil, "2 10 8 1ms []"},
		{"each override wins", batchable, &Overrides{MaxInFlight: intp(1), MaxQueue: intp(0), MaxBatchSize: intp(16), MaxQueueDelay: &delay, PreferredBatchSizes: []int{8, 16}}, "1 64 16 3ms [8 16]"},
		{"no batch dimension: batching off", &Model{Name: "s", Meta: (&doubler{}).Metadata()}, nil, "2 10 0 1ms []"},
	} {
		cfg := f.admission(c.m, c.ov)
		got := strings.Join([]string{itoa(cfg.MaxInFlight), itoa(cfg.MaxQueue), itoa(cfg.MaxBatchSize), cfg.MaxQueueDelay.String(), sizes(cfg.PreferredBatchSizes)}, " ")
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func sizes(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = itoa(v)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestInferOutputsAndInputs(t *testing.T) {
	m, err := (&Factory{}).New("m", "1", &doubler{batchDim: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	out, err := m.Infer(ctx, "", row(1, 2), []string{"triple", "double"})
	if err != nil || len(out) != 2 || out[0].Name != "triple" || out[1].Name != "double" {
		t.Fatalf("requested outputs: %v %v", out, err)
	}
	for _, c := range []struct {
		in   []*tensor.Tensor
		req  []string
		want string
	}{
		{row(1, 2), []string{"quadruple"}, `model m has no output "quadruple" (outputs: double, triple)`},
		{[]*tensor.Tensor{{Name: "y", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{1, 2}}}, nil, `missing input "x" (the model takes: x)`},
	} {
		_, err := m.Infer(ctx, "", c.in, c.req)
		if !errors.Is(err, model.ErrInvalidInput) || err.Error() != c.want {
			t.Errorf("err %v, want invalid input %q", err, c.want)
		}
	}
}

func TestFeatures(t *testing.T) {
	named, err := (&Factory{}).New("fraud", "1", &doubler{batchDim: true, features: []string{"amount", "hour"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	fs, err := named.Features()
	if err != nil || fs.Input != "x" || fs.Index["hour"] != 1 || len(fs.Names) != 2 {
		t.Fatalf("features %+v %v", fs, err)
	}
	plain, err := (&Factory{}).New("mlp", "1", &doubler{batchDim: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Features(); !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), "use POST /v2/models/mlp/infer") {
		t.Errorf("a model without feature names: %v", err)
	}
}

// TestMetricsFollowTheModel: in-flight counts a running request under the model's
// name, and a load is recorded per version.
func TestMetricsFollowTheModel(t *testing.T) {
	set := metrics.New("test")
	f := &Factory{Metrics: set}
	rt := &doubler{batchDim: true, started: make(chan struct{}), release: make(chan struct{})}
	m, err := f.New("fraud", "3", rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f.ObserveLoad("fraud", "3", 250*time.Millisecond, true)
	done := make(chan error)
	go func() { _, err := m.Infer(context.Background(), "", row(1, 2), nil); done <- err }()
	<-rt.started
	if n := testutil.ToFloat64(set.ForModel("fraud").Inflight); n != 1 {
		t.Errorf("in flight while running: %v, want 1", n)
	}
	rt.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(set.ForModel("fraud").Inflight); n != 0 {
		t.Errorf("in flight after: %v, want 0", n)
	}
	body, err := testutil.GatherAndCount(set.Registry, "tide_model_ready", "tide_model_load_duration_seconds")
	if err != nil || body != 2 {
		t.Errorf("load series: %d, %v; want ready and duration for fraud/3", body, err)
	}
}
