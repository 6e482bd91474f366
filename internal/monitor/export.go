package monitor

import "github.com/tideserve/tide/internal/metrics"

// Export yields the monitoring gauges of every served version (the
// tide_feature_drift family; see package metrics for names and labels).
func (h *Hub) Export(emit func(metrics.Sample)) {
	live := h.Live()
	serving := map[[2]string]bool{} // model, version: quality is exported for these only
	for _, m := range live {
		serving[[2]string{m.Model, m.Version}] = true
	}
	exported := map[string]bool{}
	for _, m := range live {
		if r := m.Drift(); r != nil {
			emit(metrics.Sample{Name: metrics.MonitoringWindowRows, Labels: []string{m.Model, m.Version}, Value: float64(r.Rows)})
			for _, c := range r.Features {
				c.export(func(stat string, v float64) {
					emit(metrics.Sample{Name: metrics.FeatureDrift, Labels: []string{m.Model, m.Version, c.Name, stat}, Value: v})
				})
			}
			for _, c := range r.Prediction {
				c.export(func(stat string, v float64) {
					emit(metrics.Sample{Name: metrics.PredictionDrift, Labels: []string{m.Model, m.Version, c.Name, stat}, Value: v})
				})
				if c.Name == "class" && m.outcome != nil {
					m.exportShares(c.Shares, emit)
				}
			}
		}
		if m.feedback == nil || exported[m.Model] {
			continue
		}
		exported[m.Model] = true
		emit(metrics.Sample{Name: metrics.FeedbackKept, Labels: []string{m.Model}, Value: float64(m.feedback.Kept())})
		for _, q := range m.feedback.Quality() {
			if !serving[[2]string{m.Model, q.Version}] {
				continue // a version no longer served: its window waits in the store, unexported
			}
			emit(metrics.Sample{Name: metrics.FeedbackWindowRows, Labels: []string{m.Model, q.Version}, Value: float64(q.Rows)})
			q.export(func(metric string, v float64) {
				emit(metrics.Sample{Name: metrics.ModelQuality, Labels: []string{m.Model, q.Version, metric}, Value: v})
			})
		}
	}
}

func (c *ColumnReport) export(emit func(stat string, v float64)) {
	for _, s := range []struct {
		name string
		v    *float64
	}{{"psi", c.PSI}, {"js", c.JS}, {"ks", c.KS}, {"missing", c.Missing}, {"out_of_range", c.OutOfRange}, {"unseen", c.Unseen}} {
		if s.v != nil {
			emit(s.name, *s.v)
		}
	}
}

func (q *QualityReport) export(emit func(metric string, v float64)) {
	for _, s := range []struct {
		name string
		v    *float64
	}{{"accuracy", q.Accuracy}, {"precision", q.Precision}, {"recall", q.Recall}, {"f1", q.F1}, {"roc_auc", q.ROCAUC},
		{"log_loss", q.LogLoss}, {"brier", q.Brier}, {"mae", q.MAE}, {"rmse", q.RMSE}, {"mean_error", q.MeanError}} {
		if s.v != nil {
			emit(s.name, *s.v)
		}
	}
}

// maxExportedClasses bounds tide_prediction_share's class label.
const maxExportedClasses = 50

// exportShares emits the live and reference share of each predicted class.
func (m *Monitor) exportShares(live []float64, emit func(metrics.Sample)) {
	o := m.outcome
	for i, name := range o.Classes {
		if i >= maxExportedClasses {
			break
		}
		emit(metrics.Sample{Name: metrics.PredictionShare, Labels: []string{m.Model, m.Version, name, "reference"}, Value: o.Shares[i]})
		if i < len(live) {
			emit(metrics.Sample{Name: metrics.PredictionShare, Labels: []string{m.Model, m.Version, name, "live"}, Value: live[i]})
		}
	}
}
