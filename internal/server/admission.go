package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tideserve/tide/internal/batcher"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/repository"
)

// AdmissionDefaults are the server-wide admission and batching settings; a model's
// config file overrides them field by field.
type AdmissionDefaults struct {
	MaxInFlight   int
	MaxQueue      int
	MaxBatchSize  int
	MaxQueueDelay time.Duration
}

// batcherFor returns the batcher of one loaded model, made on first use from its
// version's config. A reload gets a new one; the old one closes with its model.
func (s *Server) batcherFor(v *repository.Version, l *repository.Loaded) (*batcher.Batcher, error) {
	if b, ok := s.batchers.Load(l); ok {
		return b.(*batcher.Batcher), nil
	}
	s.batchersMu.Lock()
	defer s.batchersMu.Unlock()
	if b, ok := s.batchers.Load(l); ok {
		return b.(*batcher.Batcher), nil
	}
	cfg := s.admissionConfig(v, l.Meta)
	// The model's series are looked up once here, not per request (a label lookup
	// hashes the label values on every call).
	name := v.Name
	mt := s.metrics
	queueDepth, queueTime, batchRows := mt.queueDepth.WithLabelValues(name), mt.queueTime.WithLabelValues(name), mt.batchRows.WithLabelValues(name)
	shed, expired := mt.shed.WithLabelValues(name), mt.expired.WithLabelValues(name)
	hooks := batcher.Hooks{
		QueueDepth: func(n int) { queueDepth.Set(float64(n)) },
		QueueTime:  func(d time.Duration) { queueTime.Observe(d.Seconds()) },
		BatchRows:  func(rows, reqs int) { batchRows.Observe(float64(rows)) },
		Shed:       shed.Inc,
		Expired:    expired.Inc,
	}
	b, err := batcher.New(l.Model.Predict, cfg, hooks, nil)
	if err != nil {
		return nil, fmt.Errorf("model %s: batching config: %w", v.Name, err)
	}
	s.batchers.Store(l, b)
	return b, nil
}

// retired forgets what the server derived from a loaded model once the repository
// has closed it (after its last request).
func (s *Server) retired(l *repository.Loaded) {
	if b, ok := s.batchers.LoadAndDelete(l); ok {
		go b.(*batcher.Batcher).Close()
	}
	s.seedCache.Delete(l)
}

func (s *Server) admissionConfig(v *repository.Version, md model.Metadata) batcher.Config {
	d := s.opts.Admission
	cfg := batcher.Config{MaxInFlight: d.MaxInFlight, MaxQueue: d.MaxQueue, MaxBatchSize: d.MaxBatchSize, MaxQueueDelay: d.MaxQueueDelay}
	if b := v.Config.Batching; b != nil {
		if b.MaxInFlight != nil {
			cfg.MaxInFlight = *b.MaxInFlight
		}
		if b.MaxQueue != nil {
			cfg.MaxQueue = *b.MaxQueue
		}
		if b.MaxBatchSize != nil {
			cfg.MaxBatchSize = *b.MaxBatchSize
		}
		if b.MaxQueueDelay != nil {
			cfg.MaxQueueDelay = time.Duration(*b.MaxQueueDelay)
		}
		cfg.PreferredBatchSizes = b.PreferredBatchSizes
	}
	if cfg.Batching() && !batchable(md) {
		s.log.Warn("model has no batch dimension on every input and output; dynamic batching is off for it", "model", v.Name, "version", v.Version)
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

// closeBatchers stops every batcher, running what they still hold.
func (s *Server) closeBatchers() {
	s.batchers.Range(func(k, b any) bool {
		b.(*batcher.Batcher).Close()
		return true
	})
}

// requestTimeoutHeader carries a client's deadline for one request, as a Go
// duration ("250ms") or whole milliseconds ("250"). Queued work that can no longer
// finish in time ends with 504 without running.
const requestTimeoutHeader = "Request-Timeout"

// withRequestDeadline applies the Request-Timeout header to ctx.
func withRequestDeadline(r *http.Request) (context.Context, context.CancelFunc, error) {
	h := r.Header.Get(requestTimeoutHeader)
	if h == "" {
		return r.Context(), func() {}, nil
	}
	d, err := time.ParseDuration(h)
	if err != nil {
		ms, err2 := strconv.ParseUint(h, 10, 32)
		if err2 != nil {
			return nil, nil, &httpError{http.StatusBadRequest, fmt.Sprintf("%s header %q: want a duration such as 250ms", requestTimeoutHeader, h)}
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d <= 0 {
		return nil, nil, &httpError{http.StatusBadRequest, fmt.Sprintf("%s header %q: must be positive", requestTimeoutHeader, h)}
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}
