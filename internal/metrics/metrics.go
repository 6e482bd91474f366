// Package metrics owns Tide's Prometheus series: their names, help, labels and
// buckets, in one place, because they are a contract with the Helm chart's
// autoscaling rules and the Grafana dashboard. The server records requests; each
// served model version (package serving) records its own in-flight, queue and
// batch series through the handles ForModel looks up once.
package metrics

import (
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Set is one server's Prometheus series. Rename with care (see the package doc).
type Set struct {
	Registry *prometheus.Registry

	requests     *prometheus.CounterVec   // model, protocol, code
	duration     *prometheus.HistogramVec // model, protocol
	inflight     *prometheus.GaugeVec     // model
	loadDuration *prometheus.GaugeVec     // model, version
	modelReady   *prometheus.GaugeVec     // model, version

	// Admission and batching: the queue-based autoscaling signals.
	queueDepth *prometheus.GaugeVec     // model
	queueTime  *prometheus.HistogramVec // model
	batchRows  *prometheus.HistogramVec // model
	shed       *prometheus.CounterVec   // model
	expired    *prometheus.CounterVec   // model

	// Model quality (monitoring.go).
	feedbackTotal *prometheus.CounterVec   // model, result
	feedbackDelay *prometheus.HistogramVec // model
	payloadLog    *prometheus.CounterVec   // result

	// The queue worker's (queue.go), registered on first use.
	queueOnce sync.Once
	queue     *QueueSeries
}

// latencyBuckets span 50µs (a tree on one row) to 10s (a stalled request).
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// New registers Tide's series, Go runtime and process metrics, and build info.
func New(version string) *Set {
	reg := prometheus.NewRegistry()
	m := &Set{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tide_requests_total",
			Help: "Inference and metadata requests, by model, protocol and HTTP status code.",
		}, []string{"model", "protocol", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tide_request_duration_seconds",
			Help:    "Time from request arrival to the last byte of the response, by model and protocol.",
			Buckets: latencyBuckets,
		}, []string{"model", "protocol"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tide_inflight_requests",
			Help: "Inference requests being served right now, by model.",
		}, []string{"model"}),
		loadDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tide_model_load_duration_seconds",
			Help: "How long the last load of each model version took.",
		}, []string{"model", "version"}),
		modelReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tide_model_ready",
			Help: "1 if the model version is loaded and serving, else 0.",
		}, []string{"model", "version"}),
	}
	m.queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tide_queue_depth",
		Help: "Requests waiting for a model run slot or a batch, by model.",
	}, []string{"model"})
	m.queueTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tide_queue_duration_seconds",
		Help:    "Time requests waited in the queue before their model run started.",
		Buckets: latencyBuckets,
	}, []string{"model"})
	m.batchRows = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tide_batch_rows",
		Help:    "Rows per model run (above 1 request's rows when dynamic batching joins requests).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	}, []string{"model"})
	m.shed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tide_shed_requests_total",
		Help: "Requests refused with 429 because the model's run slots and queue were full.",
	}, []string{"model"})
	m.expired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tide_expired_requests_total",
		Help: "Requests whose deadline passed while queued; they were not run.",
	}, []string{"model"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tide_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "goversion", "revision"})
	goVersion, revision := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	build.WithLabelValues(version, goVersion, revision).Set(1)
	reg.MustRegister(m.requests, m.duration, m.inflight, m.loadDuration, m.modelReady, build,
		m.queueDepth, m.queueTime, m.batchRows, m.shed, m.expired,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newMonitoringSeries(m)...)
	return m
}

// ObserveLoad records one model version's load: how long it took and whether the
// version now serves.
func (m *Set) ObserveLoad(model, version string, d time.Duration, loaded bool) {
	m.loadDuration.WithLabelValues(model, version).Set(d.Seconds())
	ready := 0.0
	if loaded {
		ready = 1
	}
	m.modelReady.WithLabelValues(model, version).Set(ready)
}

// RecordRequest counts one finished request and its duration. modelName is ""
// for names the server does not serve, so that they cannot grow the label set.
// traceID, when not "", is kept as the duration's exemplar: the trace of a
// request in that latency bucket, shown to OpenMetrics scrapers.
func (m *Set) RecordRequest(modelName, protocol string, status int, d time.Duration, traceID string) {
	m.requests.WithLabelValues(modelName, protocol, codeLabel(status)).Inc()
	h := m.duration.WithLabelValues(modelName, protocol)
	if traceID != "" {
		h.(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": traceID})
		return
	}
	h.Observe(d.Seconds())
}

// Model is one model's series, looked up once when its version starts serving (a
// label lookup hashes the label values on every call, too dear per request).
type Model struct {
	Inflight   prometheus.Gauge
	QueueDepth prometheus.Gauge
	QueueTime  prometheus.Observer
	BatchRows  prometheus.Observer
	Shed       prometheus.Counter
	Expired    prometheus.Counter
}

// ForModel returns the series of one model name.
func (m *Set) ForModel(name string) Model {
	return Model{
		Inflight:   m.inflight.WithLabelValues(name),
		QueueDepth: m.queueDepth.WithLabelValues(name),
		QueueTime:  m.queueTime.WithLabelValues(name),
		BatchRows:  m.batchRows.WithLabelValues(name),
		Shed:       m.shed.WithLabelValues(name),
		Expired:    m.expired.WithLabelValues(name),
	}
}

// statusText caches the code label strings so the hot path does not format them.
var statusText = func() map[int]string {
	out := map[int]string{}
	for c := 100; c < 600; c++ {
		out[c] = strconv.Itoa(c)
	}
	return out
}()

func codeLabel(code int) string {
	if s, ok := statusText[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}
