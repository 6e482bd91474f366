package monitor

import (
	"encoding/json"
	"math"
	"os"
	"sort"
	"testing"
)

// stats.json is written by testdata/gen_stats.py with numpy, scipy and sklearn.
type statsFixture struct {
	Drift []struct {
		Reference, Live       []float64
		Bins                  int
		Edges                 []float64
		RefShares, LiveShares []float64 `json:"-"`
		RefSharesJ            []float64 `json:"ref_shares"`
		LiveSharesJ           []float64 `json:"live_shares"`
		PSI                   float64   `json:"psi"`
		JS                    float64   `json:"js"`
		BinnedKS              float64   `json:"binned_ks"`
		ExactKS               float64   `json:"exact_ks"`
	}
	Binary []struct {
		Scores                      []float64
		Positive                    []bool
		Accuracy, Recall, F1, Brier float64
		LogLoss                     float64  `json:"log_loss"`
		ROCAUC                      float64  `json:"roc_auc"`
		Precision                   *float64 `json:"precision"`
	}
	Multiclass []struct {
		Probs                           [][]float64
		Truth                           []int
		Classes                         int
		Accuracy, Precision, Recall, F1 float64
		LogLoss                         float64 `json:"log_loss"`
	}
	Regression []struct {
		Pred, Truth []float64
		MAE         float64 `json:"mae"`
		RMSE        float64 `json:"rmse"`
		MeanError   float64 `json:"mean_error"`
	}
}

func loadStats(t *testing.T) statsFixture {
	t.Helper()
	b, err := os.ReadFile("testdata/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var f statsFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 || math.IsNaN(got) != math.IsNaN(want) {
		t.Errorf("%s = %.17g, want %.17g (|Δ| %.3g)", what, got, want, math.Abs(got-want))
	}
}

// TestDriftMatchesNumpyAndScipy: the quantile edges, bin shares, PSI and JS
// distance equal numpy's and scipy's to 1e-12 on the same data, and the exact
// two-sample KS statistic (scipy.stats.ks_2samp on the raw rows) lies within the
// binned statistic's stated bound.
func TestDriftMatchesNumpyAndScipy(t *testing.T) {
	f := loadStats(t)
	if len(f.Drift) < 20 {
		t.Fatalf("%d drift cases", len(f.Drift))
	}
	for i, c := range f.Drift {
		sorted := append([]float64(nil), c.Reference...)
		sort.Float64s(sorted)
		edges := QuantileEdges(sorted, c.Bins)
		if len(edges) != len(c.Edges) {
			t.Fatalf("case %d: %d edges, numpy %d", i, len(edges), len(c.Edges))
		}
		for j := range edges {
			near(t, "edge", edges[j], c.Edges[j])
		}
		ref, live := binShares(edges, c.Reference), binShares(edges, c.Live)
		for j := range ref {
			near(t, "reference share", ref[j], c.RefSharesJ[j])
			near(t, "live share", live[j], c.LiveSharesJ[j])
		}
		near(t, "PSI", PSI(ref, live), c.PSI)
		near(t, "JS", JSDistance(ref, live), c.JS)
		ks := BinnedKS(ref, live)
		near(t, "binned KS", ks, c.BinnedKS)
		if bound := KSBound(ref, live); c.ExactKS < ks-1e-12 || c.ExactKS > ks+bound+1e-12 {
			t.Errorf("case %d: exact KS %.6f outside [binned %.6f, binned + bound %.6f]", i, c.ExactKS, ks, ks+bound)
		}
	}
}

func binShares(edges, x []float64) []float64 {
	counts := make([]float64, len(edges)+1)
	for _, v := range x {
		counts[Bin(edges, v)]++
	}
	return Shares(counts)
}

func TestQualityMatchesSklearn(t *testing.T) {
	f := loadStats(t)
	for _, c := range f.Binary {
		m := BinaryMetrics(Binary{Scores: c.Scores, Positive: c.Positive}, 0.5)
		near(t, "accuracy", m.Accuracy, c.Accuracy)
		near(t, "recall", m.Recall, c.Recall)
		near(t, "F1", m.F1, c.F1)
		near(t, "ROC AUC", m.ROCAUC, c.ROCAUC)
		near(t, "log loss", m.LogLoss, c.LogLoss)
		near(t, "Brier", m.Brier, c.Brier)
		if c.Precision != nil {
			near(t, "precision", m.Precision, *c.Precision)
		} else if !math.IsNaN(m.Precision) {
			t.Errorf("precision with nothing predicted positive = %v, want NaN (undefined)", m.Precision)
		}
	}
	for _, c := range f.Multiclass {
		pred := make([]int, len(c.Truth))
		for i, row := range c.Probs {
			pred[i] = argmax(row)
		}
		m := MulticlassMetrics(c.Probs, pred, c.Truth, c.Classes)
		near(t, "accuracy", m.Accuracy, c.Accuracy)
		near(t, "macro precision", m.Precision, c.Precision)
		near(t, "macro recall", m.Recall, c.Recall)
		near(t, "macro F1", m.F1, c.F1)
		near(t, "log loss", m.LogLoss, c.LogLoss)
	}
	for _, c := range f.Regression {
		m := RegressionMetrics(c.Pred, c.Truth)
		near(t, "MAE", m.MAE, c.MAE)
		near(t, "RMSE", m.RMSE, c.RMSE)
		near(t, "mean error", m.MeanError, c.MeanError)
	}
}
