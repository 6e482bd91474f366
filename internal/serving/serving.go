// Package serving owns a loaded model version while it serves: the runtime model,
// its admission control and batcher, the feature index /predict and KServe v1 use,
// and its metrics handles. They are made together when a version finishes loading
// (Factory.New) and closed together after the last request that uses them
// (Release after Retire). Nothing else keeps per-model state: the repository
// decides which Model serves a name and version, and the protocol front ends look
// one up and call Infer.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tideserve/tide/internal/batcher"
	"github.com/tideserve/tide/internal/metrics"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tracing"
)

// Admission is the server-wide admission control and batching (the --max-* flags).
type Admission struct {
	MaxInFlight   int
	MaxQueue      int
	MaxBatchSize  int
	MaxQueueDelay time.Duration
}

// Overrides are one model's admission settings from its config file: a set field
// wins over the server-wide Admission.
type Overrides struct {
	MaxInFlight         *int
	MaxQueue            *int
	MaxBatchSize        *int
	MaxQueueDelay       *time.Duration
	PreferredBatchSizes []int
	// Monitoring turns on drift, feedback and payload logging for the model
	// (its config's monitoring section, or a profile beside it).
	Monitoring *Monitoring
}

// Monitoring is what a model's monitoring starts from: its settings, and its
// reference profile (nil, with ProfileError saying why when one was found but
// could not be used).
type Monitoring struct {
	Settings     monitor.Settings
	Profile      *monitor.Profile
	ProfileError string
}

// Factory makes the Model of each loaded version with the server's admission
// defaults and metrics. The zero Factory is usable: no limits, no batching, and
// series in a private registry (for tests of the layers below the server).
type Factory struct {
	Admission Admission
	Metrics   *metrics.Set
	Log       *slog.Logger
	// Monitoring is the server's model-quality monitoring; nil: none.
	Monitoring *monitor.Hub

	privateOnce sync.Once
	private     *metrics.Set // the series when Metrics is nil, made once
}

// series is the set every model of this factory records into.
func (f *Factory) series() *metrics.Set {
	if f.Metrics != nil {
		return f.Metrics
	}
	f.privateOnce.Do(func() { f.private = metrics.New("") })
	return f.private
}

// New makes the serving state of one loaded version. It takes ownership of rt:
// on error rt is closed.
func (f *Factory) New(name, version string, rt model.Model, ov *Overrides) (*Model, error) {
	m := &Model{Name: name, Version: version, Runtime: rt, Meta: rt.Metadata(), series: f.series().ForModel(name)}
	cfg := f.admission(m, ov)
	s := m.series
	hooks := batcher.Hooks{
		QueueDepth: func(n int) { s.QueueDepth.Set(float64(n)) },
		QueueTime:  func(d time.Duration) { s.QueueTime.Observe(d.Seconds()) },
		BatchRows:  func(rows, reqs int) { s.BatchRows.Observe(float64(rows)) },
		Shed:       s.Shed.Inc,
		Expired:    s.Expired.Inc,
	}
	b, err := batcher.New(rt.Predict, cfg, hooks, nil)
	if err != nil {
		closeRuntime(rt)
		return nil, fmt.Errorf("model %s: batching config: %w", name, err)
	}
	m.batcher = b
	m.features = newFeatures(m.Meta)
	if ov != nil && ov.Monitoring != nil && f.Monitoring != nil {
		mo := ov.Monitoring
		m.monitor = f.Monitoring.New(name, version, m.Meta, mo.Settings, mo.Profile, mo.ProfileError)
	}
	return m, nil
}

// ObserveLoad records how long a version's load took and whether it now serves.
func (f *Factory) ObserveLoad(name, version string, d time.Duration, loaded bool) {
	f.series().ObserveLoad(name, version, d, loaded)
}

// admission merges the server's defaults with the model's overrides, and turns
// batching off for a model that has no batch dimension to join requests along.
func (f *Factory) admission(m *Model, ov *Overrides) batcher.Config {
	d := f.Admission
	cfg := batcher.Config{MaxInFlight: d.MaxInFlight, MaxQueue: d.MaxQueue, MaxBatchSize: d.MaxBatchSize, MaxQueueDelay: d.MaxQueueDelay}
	if ov != nil {
		if ov.MaxInFlight != nil {
			cfg.MaxInFlight = *ov.MaxInFlight
		}
		if ov.MaxQueue != nil {
			cfg.MaxQueue = *ov.MaxQueue
		}
		if ov.MaxBatchSize != nil {
			cfg.MaxBatchSize = *ov.MaxBatchSize
		}
		if ov.MaxQueueDelay != nil {
			cfg.MaxQueueDelay = *ov.MaxQueueDelay
		}
		cfg.PreferredBatchSizes = ov.PreferredBatchSizes
	}
	if cfg.Batching() && !batchable(m.Meta) {
		log := f.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("model has no batch dimension on every input and output; dynamic batching is off for it", "model", m.Name, "version", m.Version)
		cfg.MaxBatchSize, cfg.PreferredBatchSizes = 0, nil
	}
	if cfg.Batching() && cfg.MaxQueue == 0 {
		cfg.MaxQueue = 4 * cfg.MaxBatchSize // batching needs somewhere to gather requests
	}
	return cfg
}

// batchable: every input and output has a variable first (batch) dimension.
func batchable(md model.Metadata) bool {
	for _, list := range [][]model.TensorSpec{md.Inputs, md.Outputs} {
		for _, sp := range list {
			if len(sp.Shape) == 0 || sp.Shape[0] != -1 {
				return false
			}
		}
	}
	return len(md.Inputs) > 0
}

// Model is one loaded model version while it serves. It is safe for concurrent use.
type Model struct {
	Name, Version string
	// Runtime is the loaded model; Meta is its metadata, read once.
	Runtime model.Model
	Meta    model.Metadata

	batcher  *batcher.Batcher
	features *Features
	series   metrics.Model
	monitor  *monitor.Monitor // nil: not monitored

	refs     atomic.Int64
	retired  atomic.Bool
	closed   sync.Once
	isClosed atomic.Bool
}

// Closed reports whether m has been closed (its batcher stopped, its runtime released).
func (m *Model) Closed() bool { return m.isClosed.Load() }

// Hold begins one use of m (a request); Release ends it. The repository holds a
// Model for each request it hands out, under its lock, so a reload that retires m
// meanwhile cannot close it under the request.
func (m *Model) Hold() { m.refs.Add(1) }

// Release ends one use begun by Hold. The last release of a retired Model closes it.
func (m *Model) Release() {
	if m.refs.Add(-1) == 0 && m.retired.Load() {
		// On the last request's goroutine, after its answer was computed: the
		// batcher has no queued work left to wait for.
		m.Close()
	}
}

// Retire takes m out of service: it closes now if unused, else after its last
// Release.
func (m *Model) Retire() {
	m.retired.Store(true)
	if m.refs.Load() == 0 {
		m.Close()
	}
}

// Close stops the batcher (running what it still holds) and releases the
// runtime's resources. It is idempotent; only the repository calls it directly.
func (m *Model) Close() {
	m.closed.Do(func() {
		m.isClosed.Store(true)
		if m.batcher != nil {
			m.batcher.Close()
		}
		if m.monitor != nil {
			m.monitor.Close()
		}
		closeRuntime(m.Runtime)
	})
}

func closeRuntime(rt model.Model) {
	if c, ok := rt.(model.Closer); ok {
		c.Close()
	}
}

// Monitor is the version's model-quality monitoring, nil when it has none.
func (m *Model) Monitor() *monitor.Monitor { return m.monitor }

// Infer runs the model on inputs through admission control and batching, checking
// input names against the metadata, and returns the outputs: all of them, or the
// requested ones in request order. id is the request's id: a monitored model
// keeps its predictions under it, for ground truth to be matched with later
// ("" keeps nothing).
func (m *Model) Infer(ctx context.Context, id string, inputs []*tensor.Tensor, requested []string) ([]*tensor.Tensor, error) {
	ordered, err := matchInputs(&m.Meta, inputs)
	if err != nil {
		return nil, err
	}
	m.series.Inflight.Inc()
	defer m.series.Inflight.Dec()
	var outs []*tensor.Tensor
	if tracing.Recording(ctx) != nil {
		outs, err = m.tracedDo(ctx, ordered)
	} else {
		outs, err = m.batcher.Do(ctx, ordered)
	}
	if err != nil {
		return nil, err
	}
	if m.monitor != nil {
		m.monitor.Observe(id, ordered, outs)
	}
	if len(requested) == 0 {
		return outs, nil
	}
	picked := make([]*tensor.Tensor, 0, len(requested))
	for _, name := range requested {
		t := findTensor(outs, name)
		if t == nil {
			return nil, model.InvalidInputf("model %s has no output %q (outputs: %s)", m.Name, name, specNames(m.Meta.Outputs))
		}
		picked = append(picked, t)
	}
	return picked, nil
}

// Features is what the feature-object protocols (/predict, KServe v1 instances)
// need of a tabular model: its columns by name and how they reach the model.
// A numeric model takes them as one matrix, Input; a model with string
// columns takes one input per column (Columns), each of its kind.
type Features struct {
	Input string
	Names []string
	Index map[string]int
	// Columns is set when each feature is an input of its own; Kinds then
	// says what each takes.
	Columns bool
	Kinds   []ColumnKind
}

// ColumnKind is what a per-column input takes.
type ColumnKind uint8

const (
	ColumnNumber ColumnKind = iota // numbers (FP64), null as NaN
	ColumnText                     // strings (BYTES), null as missing
	ColumnAny                      // a column the model ignores: any value
)

func newFeatures(md model.Metadata) *Features {
	if len(md.Features) == 0 {
		return nil
	}
	f := &Features{Names: md.Features, Index: make(map[string]int, len(md.Features))}
	for i, n := range md.Features {
		f.Index[n] = i
	}
	switch {
	case len(md.Inputs) == 1:
		f.Input = md.Inputs[0].Name
	case len(md.Inputs) == len(md.Features):
		f.Columns, f.Kinds = true, make([]ColumnKind, len(md.Inputs))
		for i, in := range md.Inputs {
			if in.Name != md.Features[i] {
				return nil
			}
			switch {
			case in.Unused:
				f.Kinds[i] = ColumnAny
			case in.Datatype == tensor.Bytes:
				f.Kinds[i] = ColumnText
			}
		}
	default:
		return nil
	}
	return f
}

// Features returns the model's feature index, or an invalid-input error naming the
// OIP route for a model that does not take named features.
func (m *Model) Features() (*Features, error) {
	if m.features == nil {
		return nil, model.InvalidInputf("model %s does not take named features; use POST /v2/models/%s/infer", m.Name, m.Name)
	}
	return m.features, nil
}

// tracedDo is batcher.Do for a traced request: the infer span, and under it the
// request's wait (queue), the run it joined (batch) and the runtime's own share
// of that run (model), each at the times the batcher noted. A joined run is
// shared, so each of its requests' traces shows the same batch and model times,
// with the run's rows and requests as attributes.
func (m *Model) tracedDo(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	rows := 0
	if len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		rows = int(inputs[0].Shape[0])
	}
	ctx, span := tracing.Tracer().Start(ctx, tracing.SpanInfer, trace.WithAttributes(
		tracing.Model.String(m.Name), tracing.ModelVersion.String(m.Version), tracing.RequestRows.Int(rows)))
	defer span.End()
	var tm batcher.Timing
	outs, err := m.batcher.DoTimed(ctx, inputs, &tm)
	end := time.Now()
	// A request that gave up (deadline, cancel) or was shed may return while a
	// run still writes its timing: then only Queued, its own, is read.
	ran := err == nil || (ctx.Err() == nil && !errors.Is(err, batcher.ErrOverloaded) && !tm.RunStart.IsZero())
	if !tm.Queued.IsZero() {
		queueEnd := end
		if ran {
			queueEnd = tm.Started
		}
		_, q := tracing.Tracer().Start(ctx, tracing.SpanQueue, trace.WithTimestamp(tm.Queued))
		q.SetAttributes(tracing.QueueSeconds.Float64(queueEnd.Sub(tm.Queued).Seconds()))
		if !ran && err != nil {
			q.SetStatus(codes.Error, err.Error())
		}
		q.End(trace.WithTimestamp(queueEnd))
	}
	if ran {
		bctx, b := tracing.Tracer().Start(ctx, tracing.SpanBatch, trace.WithTimestamp(tm.Started), trace.WithAttributes(
			tracing.BatchRows.Int(tm.Rows), tracing.BatchRequests.Int(tm.Requests)))
		_, run := tracing.Tracer().Start(bctx, tracing.SpanModel, trace.WithTimestamp(tm.RunStart))
		if err != nil {
			run.SetStatus(codes.Error, err.Error())
		}
		run.End(trace.WithTimestamp(tm.RunEnd))
		b.End(trace.WithTimestamp(end))
	}
	if err != nil {
		tracing.Fail(span, err)
	}
	return outs, err
}
