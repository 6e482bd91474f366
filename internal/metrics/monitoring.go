package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The monitoring series (package monitor computes them; their names and labels
// are a contract with the chart's PrometheusRule and the Grafana dashboard).
// Gauges are computed when scraped, from the served versions' windows, so a
// version that stops serving leaves them. Cardinality: per served version,
// 6 stats × its monitored features (at most --monitoring-max-features, 100 by
// default), 6 × 2 prediction series and 10 quality metrics.
const (
	// FeatureDrift: model, version, feature, stat (psi, js, ks, missing,
	// out_of_range, unseen).
	FeatureDrift = "tide_feature_drift"
	// PredictionDrift: model, version, prediction (class, score), stat.
	PredictionDrift = "tide_prediction_drift"
	// MonitoringWindowRows: model, version; the rows the drift window holds.
	MonitoringWindowRows = "tide_monitoring_window_rows"
	// ModelQuality: model, version, metric (accuracy, precision, recall, f1,
	// roc_auc, log_loss, brier, mae, rmse, mean_error).
	ModelQuality = "tide_model_quality"
	// FeedbackWindowRows: model, version; the labelled rows ModelQuality covers.
	FeedbackWindowRows = "tide_feedback_window_rows"
	// FeedbackKept: model; prediction rows waiting for their labels.
	FeedbackKept = "tide_feedback_predictions_kept"
	// PredictionShare: model, version, class, window (live, reference); the
	// share of each predicted class (at most the first 50 classes).
	PredictionShare = "tide_prediction_share"
)

var monitoringDescs = map[string]*prometheus.Desc{
	FeatureDrift: prometheus.NewDesc(FeatureDrift,
		"Drift of a feature's live window from its reference profile, by statistic (psi, js, ks, missing, out_of_range, unseen).",
		[]string{"model", "version", "feature", "stat"}, nil),
	PredictionDrift: prometheus.NewDesc(PredictionDrift,
		"Drift of the predictions (class shares, or the score or value) from the reference profile, by statistic.",
		[]string{"model", "version", "prediction", "stat"}, nil),
	MonitoringWindowRows: prometheus.NewDesc(MonitoringWindowRows,
		"Rows in the drift window; statistics are exported once it holds the minimum.",
		[]string{"model", "version"}, nil),
	ModelQuality: prometheus.NewDesc(ModelQuality,
		"Rolling quality over the last labelled predictions (feedback), by metric.",
		[]string{"model", "version", "metric"}, nil),
	FeedbackWindowRows: prometheus.NewDesc(FeedbackWindowRows,
		"Labelled rows the rolling quality figures cover.",
		[]string{"model", "version"}, nil),
	PredictionShare: prometheus.NewDesc(PredictionShare,
		"Share of each predicted class in the drift window (window=live) and on the profiled data (window=reference).",
		[]string{"model", "version", "class", "window"}, nil),
	FeedbackKept: prometheus.NewDesc(FeedbackKept,
		"Prediction rows kept for feedback (bounded; the oldest leave first).",
		[]string{"model"}, nil),
}

// Sample is one monitoring gauge value: a series name above and its label values
// in the order listed there.
type Sample struct {
	Name   string
	Labels []string
	Value  float64
}

// monitoringCollector asks its source for the samples at each scrape. It
// describes nothing up front (an unchecked collector), as its series come and
// go with the served versions.
type monitoringCollector struct{ source func(emit func(Sample)) }

func (c monitoringCollector) Describe(chan<- *prometheus.Desc) {}

func (c monitoringCollector) Collect(ch chan<- prometheus.Metric) {
	c.source(func(s Sample) {
		if d, ok := monitoringDescs[s.Name]; ok {
			if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, s.Value, s.Labels...); err == nil {
				ch <- m
			}
		}
	})
}

// SetMonitoringSource registers the function that yields the monitoring gauges
// at each scrape. Call it once.
func (m *Set) SetMonitoringSource(source func(emit func(Sample))) {
	m.Registry.MustRegister(monitoringCollector{source})
}

// FeedbackSeries are one model's feedback counters.
type FeedbackSeries struct {
	Result func(result string)
	Delay  func(d time.Duration)
}

// Feedback returns a model's feedback series: tide_feedback_total by result
// (ok, unknown, expired, duplicate, invalid) and tide_feedback_delay_seconds,
// how long ground truth took to arrive after its prediction.
func (m *Set) Feedback(model string) FeedbackSeries {
	delay := m.feedbackDelay.WithLabelValues(model)
	return FeedbackSeries{
		Result: func(r string) { m.feedbackTotal.WithLabelValues(model, r).Inc() },
		Delay:  func(d time.Duration) { delay.Observe(d.Seconds()) },
	}
}

// PayloadLog counts one payload by result: sent, dropped (the queue was full),
// failed (the sink refused it).
func (m *Set) PayloadLog(result string) { m.payloadLog.WithLabelValues(result).Inc() }

// labelDelayBuckets span a second to a week: ground truth arrives from a click
// a second later to a chargeback weeks later.
var labelDelayBuckets = []float64{1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400}

func newMonitoringSeries(m *Set) []prometheus.Collector {
	m.feedbackTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tide_feedback_total",
		Help: "Ground-truth feedback items, by model and result (ok, unknown, expired, duplicate, invalid).",
	}, []string{"model", "result"})
	m.feedbackDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tide_feedback_delay_seconds",
		Help:    "Time from a prediction to its matched ground truth.",
		Buckets: labelDelayBuckets,
	}, []string{"model"})
	m.payloadLog = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tide_payload_log_total",
		Help: "Logged request/response payloads, by result (sent, dropped, failed).",
	}, []string{"result"})
	return []prometheus.Collector{m.feedbackTotal, m.feedbackDelay, m.payloadLog}
}
