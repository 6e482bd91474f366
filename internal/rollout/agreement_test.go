package rollout

import (
	"math"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	tol := Tolerance{Relative: 0.01, Absolute: 1e-9}
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name             string
		s, c             Prediction
		compared, agreed int64
		probDiff         float64
		err              string
	}{
		{name: "labels", s: Prediction{Labels: []string{"0", "1", "1"}}, c: Prediction{Labels: []string{"0", "0", "1"}}, compared: 3, agreed: 2},
		{name: "labels and probabilities", s: Prediction{Labels: []string{"a", "b"}, Probabilities: [][]float64{{0.9, 0.1}, {0.2, 0.8}}},
			c: Prediction{Labels: []string{"a", "b"}, Probabilities: [][]float64{{0.8, 0.2}, {0.2, 0.8}}}, compared: 2, agreed: 2, probDiff: 0.05},
		{name: "values within tolerance", s: Prediction{Values: []float64{100, 0, -50, nan, inf}}, c: Prediction{Values: []float64{100.9, 1e-10, -52, nan, inf}}, compared: 5, agreed: 4},
		{name: "nan against a number", s: Prediction{Values: []float64{nan, 1}}, c: Prediction{Values: []float64{1, inf}}, compared: 2, agreed: 0},
		{name: "row counts differ", s: Prediction{Labels: []string{"0"}}, c: Prediction{Labels: []string{"0", "1"}}, err: "answered 1 rows and the candidate 2"},
		{name: "kinds differ", s: Prediction{Labels: []string{"0"}}, c: Prediction{Values: []float64{0}}, err: "not the same kind"},
		{name: "probability widths differ", s: Prediction{Labels: []string{"a"}, Probabilities: [][]float64{{1, 0}}}, c: Prediction{Labels: []string{"a"}, Probabilities: [][]float64{{1}}}, err: "2 and 1 class probabilities"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Compare(c.s, c.c, tol)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || a.Compared != c.compared || a.Agreed != c.agreed || math.Abs(a.MeanProbabilityDiff()-c.probDiff) > 1e-12 {
				t.Fatalf("%+v %v, want %d/%d diff %g", a, err, c.agreed, c.compared, c.probDiff)
			}
		})
	}
	var total Agreement
	total.Add(Agreement{Compared: 10, Agreed: 9})
	total.Add(Agreement{Compared: 10, Agreed: 10})
	if total.Share() != 0.95 || (Agreement{}).Share() != 1 {
		t.Fatalf("share %v", total.Share())
	}
}
