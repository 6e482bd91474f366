package sklearn

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The fixtures under testdata/trees are written by testdata/gen_trees.py with
// sklearn 1.2.1: joblib files and, per data set, a JSON file with the rows to
// predict and sklearn's outputs for each model.

const treeFixtures = "testdata/trees"

// fixtureFloat is a float in the fixtures' JSON: a number, or "nan", "inf", "-inf".
type fixtureFloat float64

func (f *fixtureFloat) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*f = fixtureFloat(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = fixtureFloat(v)
	return nil
}

type fixtureModel struct {
	File string `json:"file"`
	X    string `json:"x"` // key into fixtureSet.X
	Kind string `json:"kind"`
	// Predict holds labels (classifiers: ints or strings), target values, or
	// rows of target values (multi-output).
	Predict  []json.RawMessage `json:"predict"`
	Proba    [][]fixtureFloat  `json:"proba"`
	Decision []fixtureFloat    `json:"decision"`
}

type fixtureSet struct {
	X      map[string][][]fixtureFloat `json:"X"`
	Models []fixtureModel              `json:"models"`
}

func loadFixtureSet(t testing.TB, name string) *fixtureSet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(treeFixtures, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var s fixtureSet
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	return &s
}

// flatX returns the fixture's rows as a row-major matrix.
func (s *fixtureSet) flatX(t testing.TB, key string) ([]float64, int) {
	rows, ok := s.X[key]
	if !ok || len(rows) == 0 {
		t.Fatalf("fixture has no X %q", key)
	}
	var out []float64
	for _, r := range rows {
		for _, v := range r {
			out = append(out, float64(v))
		}
	}
	return out, len(rows)
}

// loadEstimator reads a fixture file with the package's allow-list and builds it.
func loadEstimator(t testing.TB, file string) any {
	t.Helper()
	v, err := pickle.Load(filepath.Join(treeFixtures, file), pickle.Options{Allow: allowed})
	if err != nil {
		t.Fatal(err)
	}
	est, err := build(v)
	if err != nil {
		t.Fatalf("build %s: %v", file, err)
	}
	return est
}

// labelString formats classes[i] the way json.Marshal writes sklearn's label.
func labelString(l Labels, i int) string {
	switch {
	case l.Ints != nil:
		return strconv.FormatInt(l.Ints[i], 10)
	case l.Strings != nil:
		b, _ := json.Marshal(l.Strings[i])
		return string(b)
	case l.Floats != nil:
		return strconv.FormatFloat(l.Floats[i], 'g', -1, 64)
	default:
		return strconv.FormatBool(l.Bools[i])
	}
}

// ulps is the distance between a and b in units in the last place (0 when
// both are the same NaN or infinity).
func ulps(a, b float64) uint64 {
	if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
		return 0
	}
	if math.IsNaN(a) || math.IsNaN(b) || math.Signbit(a) != math.Signbit(b) {
		return math.MaxUint64
	}
	x, y := math.Float64bits(a), math.Float64bits(b)
	if x > y {
		return x - y
	}
	return y - x
}

// agreement counts how many values match sklearn's exactly and the largest
// difference in ulps.
type agreement struct {
	n, exact int
	maxULP   uint64
	worst    string
}

func (a *agreement) add(got, want float64, where string) {
	a.n++
	d := ulps(got, want)
	if d == 0 {
		a.exact++
	}
	if d > a.maxULP || (a.worst == "" && d > 0) {
		a.maxULP = d
		a.worst = fmt.Sprintf("%s: got %v, want %v", where, got, want)
	}
}

func (a agreement) String() string {
	return fmt.Sprintf("%d/%d bit-exact, max %d ulp", a.exact, a.n, a.maxULP)
}

// predictIndex is the class index sklearn's predict picks.
func predictIndex(c Classifier, X []float64, n int) []int {
	if ip, ok := c.(IndexPredictor); ok {
		return ip.PredictIndex(X, n)
	}
	proba, k := c.PredictProba(X, n), c.Classes().Len()
	out := make([]int, n)
	for i := range out {
		out[i] = firstArgmax(proba[i*k : (i+1)*k])
	}
	return out
}

// checkFixtureModel compares one fixture model's every output with sklearn's,
// allowing up to maxULP ulps on probabilities and predicted values (0:
// bit-exact), and requiring every predicted label and every raw score
// (decision_function, where the estimator has one) to match exactly.
func checkFixtureModel(t *testing.T, set *fixtureSet, m fixtureModel, maxULP uint64) {
	t.Helper()
	X, n := set.flatX(t, m.X)
	est := loadEstimator(t, m.File)
	if len(m.Predict) != n {
		t.Fatalf("fixture has %d predictions for %d rows", len(m.Predict), n)
	}
	var agree agreement
	switch e := est.(type) {
	case Classifier:
		if m.Kind != "classifier" {
			t.Fatalf("built a classifier from a %s", m.Kind)
		}
		k := e.Classes().Len()
		proba := e.PredictProba(X, n)
		for i, row := range m.Proba {
			for j, want := range row {
				agree.add(proba[i*k+j], float64(want), fmt.Sprintf("row %d proba[%d]", i, j))
			}
		}
		wrong := 0
		for i, idx := range predictIndex(e, X, n) {
			if got := labelString(e.Classes(), idx); got != string(m.Predict[i]) {
				if wrong++; wrong <= 5 {
					t.Errorf("row %d: predict %s, sklearn %s", i, got, m.Predict[i])
				}
			}
		}
		if raw, ok := est.(interface {
			raw([]float64, int) []float64
		}); ok && m.Decision != nil {
			var dec agreement
			r := raw.raw(X, n)
			for i, want := range m.Decision {
				dec.add(r[i], float64(want), fmt.Sprintf("decision[%d]", i))
			}
			t.Logf("%s on %s X: decision_function %v", m.File, m.X, dec)
			// The raw scores involve no transcendental functions after
			// loading: they must be bit-exact whatever the output tolerance.
			if dec.maxULP > 0 {
				t.Errorf("decision_function: %v; worst %s", dec, dec.worst)
			}
		}
	case Regressor:
		if m.Kind != "regressor" {
			t.Fatalf("built a regressor from a %s", m.Kind)
		}
		w := e.NumTargets()
		pred := e.Predict(X, n)
		for i, raw := range m.Predict {
			var want []fixtureFloat
			if w == 1 {
				var v fixtureFloat
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				want = []fixtureFloat{v}
			} else if err := json.Unmarshal(raw, &want); err != nil || len(want) != w {
				t.Fatalf("row %d: want %d targets, fixture has %s", i, w, raw)
			}
			for j, v := range want {
				agree.add(pred[i*w+j], float64(v), fmt.Sprintf("row %d target %d", i, j))
			}
		}
	default:
		t.Fatalf("built %T, neither classifier nor regressor", est)
	}
	t.Logf("%s on %s X: %d rows, %v", m.File, m.X, n, agree)
	if agree.maxULP > maxULP {
		t.Errorf("%v, allowed %d ulp; worst %s", agree, maxULP, agree.worst)
	}
}

// runFixtures checks every model of the fixture sets whose file name starts
// with one of prefixes.
func runFixtures(t *testing.T, maxULP func(file string) uint64, prefixes ...string) {
	for _, name := range []string{"binary", "multiclass", "regression", "multioutput", "poisson"} {
		set := loadFixtureSet(t, name)
		for _, m := range set.Models {
			match := false
			for _, p := range prefixes {
				match = match || strings.HasPrefix(m.File, p)
			}
			if !match {
				continue
			}
			t.Run(strings.TrimSuffix(m.File, ".joblib")+"/"+m.X, func(t *testing.T) {
				checkFixtureModel(t, set, m, maxULP(m.File))
			})
		}
	}
}

func bitExact(string) uint64 { return 0 }

// TestDecisionTreeFixtures: single trees must match sklearn bit for bit.
func TestDecisionTreeFixtures(t *testing.T) {
	runFixtures(t, bitExact, "dt_")
}
