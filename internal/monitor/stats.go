package monitor

import (
	"math"
	"sort"
)

// The drift statistics compare two distributions over the same bins: the
// reference's share of rows per bin (from the profile) and the live window's.
// Each is a pure function of the two vectors, so its exactness is checked
// against numpy and scipy on the same bins (testdata/gen_stats.py).

// psiFloor is the share an empty bin counts as in PSI, whose terms are
// undefined at 0 (Evidently and most write-ups use 1e-4 too). It bounds one
// empty bin's contribution to (a-e)·ln(a/e) with e or a at 1e-4.
const psiFloor = 1e-4

// PSI is the population stability index of actual against expected:
// Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ), each share floored at psiFloor. Both are shares
// that sum to 1. Under 0.1 is usually read as stable, over 0.25 as a shift.
func PSI(expected, actual []float64) float64 {
	s := 0.0
	for i := range expected {
		e, a := math.Max(expected[i], psiFloor), math.Max(actual[i], psiFloor)
		s += (a - e) * math.Log(a/e)
	}
	return s
}

// JSDistance is the Jensen–Shannon distance with base-2 logarithms, the square
// root of the divergence, from 0 (same) to 1 (disjoint); what
// scipy.spatial.distance.jensenshannon(p, q, base=2) computes. Unlike PSI it
// needs no floor: an empty bin contributes nothing.
func JSDistance(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	if sp == 0 || sq == 0 {
		return math.NaN()
	}
	d := 0.0
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		if pi > 0 {
			d += pi * math.Log(pi/m)
		}
		if qi > 0 {
			d += qi * math.Log(qi/m)
		}
	}
	d /= 2 * math.Ln2
	if d < 0 { // rounding on identical inputs
		d = 0
	}
	return math.Sqrt(d)
}

// BinnedKS is the Kolmogorov–Smirnov statistic of two distributions known only
// by their shares of the same ordered bins: the largest gap between the two
// cumulative shares at the bin edges. The exact two-sample statistic of the
// rows behind them (scipy.stats.ks_2samp) lies between this and this plus the
// largest share either puts in one bin (KSBound): inside a bin both
// distribution functions move by at most that bin's share.
func BinnedKS(p, q []float64) float64 {
	cp, cq, d := 0.0, 0.0, 0.0
	for i := 0; i < len(p)-1; i++ {
		cp += p[i]
		cq += q[i]
		d = math.Max(d, math.Abs(cp-cq))
	}
	return d
}

// KSBound is how far the exact KS statistic can lie above BinnedKS(p, q).
func KSBound(p, q []float64) float64 {
	b := 0.0
	for i := range p {
		b = math.Max(b, math.Max(p[i], q[i]))
	}
	return b
}

// Shares turns bin counts into shares of their sum (all zero for no counts).
func Shares(counts []float64) []float64 {
	out := make([]float64, len(counts))
	s := sum(counts)
	if s == 0 {
		return out
	}
	for i, c := range counts {
		out[i] = c / s
	}
	return out
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// The quality metrics of a window of predictions with their ground truth. Each
// matches its sklearn.metrics namesake (testdata/gen_stats.py checks them).

// Binary holds one binary classifier's scored window: the positive class's
// predicted probability and whether the row was positive.
type Binary struct {
	Scores   []float64
	Positive []bool
}

// Counts at a threshold: a score ≥ threshold predicts positive.
func (b Binary) confusion(threshold float64) (tp, fp, tn, fn float64) {
	for i, s := range b.Scores {
		pred := s >= threshold
		switch {
		case pred && b.Positive[i]:
			tp++
		case pred:
			fp++
		case b.Positive[i]:
			fn++
		default:
			tn++
		}
	}
	return
}

// ClassifierMetrics are the rolling quality figures of a classifier. NaN means
// undefined for the window (AUC with one class only, precision with nothing
// predicted positive: sklearn would warn and answer 0; NaN is not a number a
// dashboard can mistake for a bad model).
type ClassifierMetrics struct {
	Accuracy, Precision, Recall, F1, ROCAUC, LogLoss, Brier float64
}

// BinaryMetrics computes a binary classifier's figures at threshold.
func BinaryMetrics(b Binary, threshold float64) ClassifierMetrics {
	n := float64(len(b.Scores))
	if n == 0 {
		nan := math.NaN()
		return ClassifierMetrics{nan, nan, nan, nan, nan, nan, nan}
	}
	tp, fp, tn, fn := b.confusion(threshold)
	m := ClassifierMetrics{Accuracy: (tp + tn) / n, Precision: ratio(tp, tp+fp), Recall: ratio(tp, tp+fn)}
	m.F1 = ratio(2*tp, 2*tp+fp+fn)
	m.ROCAUC = ROCAUC(b.Scores, b.Positive)
	probs := make([][]float64, len(b.Scores))
	truth := make([]int, len(b.Scores))
	brier := 0.0
	for i, s := range b.Scores {
		probs[i] = []float64{1 - s, s}
		y := 0.0
		if b.Positive[i] {
			truth[i], y = 1, 1
		}
		brier += (y - s) * (y - s)
	}
	m.LogLoss = LogLoss(probs, truth)
	m.Brier = brier / n
	return m
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// ROCAUC is the area under the ROC curve: the chance that a positive row scores
// above a negative one, ties counting half (the Mann–Whitney U statistic over
// mean ranks, which is what sklearn's trapezoids add up to). NaN when the window
// holds only one class.
func ROCAUC(scores []float64, positive []bool) float64 {
	n := len(scores)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var np, rankSum float64
	for i := 0; i < n; {
		j := i
		for j < n && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // mean of ranks i+1 … j
		for k := i; k < j; k++ {
			if positive[idx[k]] {
				np++
				rankSum += mid
			}
		}
		i = j
	}
	nn := float64(n) - np
	if np == 0 || nn == 0 {
		return math.NaN()
	}
	return (rankSum - np*(np+1)/2) / (np * nn)
}

// LogLoss is the mean negative log of the probability given to the true class,
// each row's probabilities normalised to sum 1 and clipped to [ε, 1−ε] with ε
// the float64 machine epsilon, as sklearn.metrics.log_loss does by default.
func LogLoss(probs [][]float64, truth []int) float64 {
	const eps = 2.220446049250313e-16
	s := 0.0
	for i, row := range probs {
		t := 0.0
		for _, p := range row {
			t += math.Min(math.Max(p, eps), 1-eps)
		}
		p := math.Min(math.Max(row[truth[i]], eps), 1-eps) / t
		s -= math.Log(p)
	}
	return s / float64(len(probs))
}

// RegressorMetrics are a regressor's rolling figures: mean absolute error, root
// mean squared error, and mean error (prediction − truth: above 0 the model
// predicts too high).
type RegressorMetrics struct{ MAE, RMSE, MeanError float64 }

// RegressionMetrics computes them for predictions and the true values.
func RegressionMetrics(pred, truth []float64) RegressorMetrics {
	n := float64(len(pred))
	if n == 0 {
		nan := math.NaN()
		return RegressorMetrics{nan, nan, nan}
	}
	var abs, sq, e float64
	for i := range pred {
		d := pred[i] - truth[i]
		abs += math.Abs(d)
		sq += d * d
		e += d
	}
	return RegressorMetrics{MAE: abs / n, RMSE: math.Sqrt(sq / n), MeanError: e / n}
}

// MulticlassMetrics computes accuracy, macro-averaged precision, recall and F1
// over the classes present in truth or prediction (sklearn's average="macro"),
// log loss and the multi-class Brier score (mean over rows of Σ (p − onehot)²,
// halved so that it reads on the same 0–1 scale as the binary score's).
// ROC AUC stays NaN: one-vs-rest needs a choice sklearn makes explicit.
func MulticlassMetrics(probs [][]float64, pred, truth []int, classes int) ClassifierMetrics {
	n := float64(len(truth))
	nan := math.NaN()
	if n == 0 {
		return ClassifierMetrics{nan, nan, nan, nan, nan, nan, nan}
	}
	tp := make([]float64, classes)
	predN := make([]float64, classes)
	trueN := make([]float64, classes)
	correct := 0.0
	for i := range truth {
		predN[pred[i]]++
		trueN[truth[i]]++
		if pred[i] == truth[i] {
			tp[pred[i]]++
			correct++
		}
	}
	var p, r, f, present float64
	for c := 0; c < classes; c++ {
		if predN[c] == 0 && trueN[c] == 0 {
			continue
		}
		present++
		pc, rc := zeroIfNaN(ratio(tp[c], predN[c])), zeroIfNaN(ratio(tp[c], trueN[c]))
		p += pc
		r += rc
		f += zeroIfNaN(ratio(2*tp[c], predN[c]+trueN[c]))
	}
	m := ClassifierMetrics{Accuracy: correct / n, Precision: p / present, Recall: r / present, F1: f / present, ROCAUC: nan}
	if probs != nil {
		m.LogLoss = LogLoss(probs, truth)
		b := 0.0
		for i, row := range probs {
			for c, q := range row {
				y := 0.0
				if c == truth[i] {
					y = 1
				}
				b += (q - y) * (q - y)
			}
		}
		m.Brier = b / n / 2
	} else {
		m.LogLoss, m.Brier = nan, nan
	}
	return m
}

func zeroIfNaN(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}
