package rollout

import (
	"errors"
	"fmt"
	"math"
)

// Prediction is one answer's rows, as the router reads them from the stable and
// the candidate version's answers to the same request: a classifier's labels
// (strings, so numeric and named classes compare alike) and, when it returns them,
// its class probabilities; or a regressor's values.
type Prediction struct {
	Labels        []string
	Probabilities [][]float64
	Values        []float64
}

// Tolerance is how far a regressor's two values may be apart and still agree:
// within Relative of the larger magnitude, or within Absolute (for values near 0).
type Tolerance struct {
	Relative, Absolute float64
}

// Agreement accumulates comparisons.
type Agreement struct {
	Compared, Agreed int64
	// ProbabilityDiffSum and ProbabilityCells give the mean absolute difference
	// of class probabilities (classifiers that return them).
	ProbabilityDiffSum float64
	ProbabilityCells   int64
}

// Share is Agreed/Compared (1 with nothing compared).
func (a Agreement) Share() float64 {
	if a.Compared == 0 {
		return 1
	}
	return float64(a.Agreed) / float64(a.Compared)
}

// MeanProbabilityDiff is the mean absolute difference of the probabilities
// compared (0 with none).
func (a Agreement) MeanProbabilityDiff() float64 {
	if a.ProbabilityCells == 0 {
		return 0
	}
	return a.ProbabilityDiffSum / float64(a.ProbabilityCells)
}

// Add folds b into a.
func (a *Agreement) Add(b Agreement) {
	a.Compared += b.Compared
	a.Agreed += b.Agreed
	a.ProbabilityDiffSum += b.ProbabilityDiffSum
	a.ProbabilityCells += b.ProbabilityCells
}

// Compare compares two answers to the same rows. Answers of different kinds or
// row counts cannot be compared and are an error (counted apart by the caller:
// they mean the versions do not answer the same question).
func Compare(stable, candidate Prediction, tol Tolerance) (Agreement, error) {
	var a Agreement
	switch {
	case stable.Labels != nil && candidate.Labels != nil:
		if len(stable.Labels) != len(candidate.Labels) {
			return a, rowsDiffer(len(stable.Labels), len(candidate.Labels))
		}
		for i := range stable.Labels {
			a.Compared++
			if stable.Labels[i] == candidate.Labels[i] {
				a.Agreed++
			}
		}
		if len(stable.Probabilities) == len(stable.Labels) && len(candidate.Probabilities) == len(stable.Labels) {
			for i := range stable.Probabilities {
				s, c := stable.Probabilities[i], candidate.Probabilities[i]
				if len(s) != len(c) {
					return a, fmt.Errorf("row %d has %d and %d class probabilities", i, len(s), len(c))
				}
				for j := range s {
					a.ProbabilityDiffSum += math.Abs(s[j] - c[j])
					a.ProbabilityCells++
				}
			}
		}
	case stable.Values != nil && candidate.Values != nil:
		if len(stable.Values) != len(candidate.Values) {
			return a, rowsDiffer(len(stable.Values), len(candidate.Values))
		}
		for i := range stable.Values {
			a.Compared++
			if within(stable.Values[i], candidate.Values[i], tol) {
				a.Agreed++
			}
		}
	default:
		return a, errors.New("one answer has labels and the other values: the versions are not the same kind of model")
	}
	return a, nil
}

func rowsDiffer(s, c int) error {
	return fmt.Errorf("the stable version answered %d rows and the candidate %d", s, c)
}

// within: equal, both NaN, or within the tolerance (infinities only equal themselves).
func within(s, c float64, tol Tolerance) bool {
	if s == c || (math.IsNaN(s) && math.IsNaN(c)) {
		return true
	}
	if math.IsNaN(s) || math.IsNaN(c) || math.IsInf(s, 0) || math.IsInf(c, 0) {
		return false
	}
	d := math.Abs(s - c)
	return d <= tol.Absolute || d <= tol.Relative*math.Max(math.Abs(s), math.Abs(c))
}
