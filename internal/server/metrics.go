package server

import (
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the server's Prometheus series. Their names are a contract with the
// Helm chart's autoscaling rules and the Grafana dashboard: rename with care.
type Metrics struct {
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
}

// latencyBuckets span 50µs (a tree on one row) to 10s (a stalled request).
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// NewMetrics registers Tide's series, Go runtime and process metrics, and build info.
func NewMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
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
	return m
}

// observeLoad records one model version's load.
func (m *Metrics) observeLoad(model, version string, d time.Duration, err error) {
	m.loadDuration.WithLabelValues(model, version).Set(d.Seconds())
	ready := 0.0
	if err == nil {
		ready = 1
	}
	m.modelReady.WithLabelValues(model, version).Set(ready)
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
