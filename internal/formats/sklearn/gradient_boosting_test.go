package sklearn

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// TestGradientBoostingFixtures: raw scores (init + learning_rate × trees),
// regression predictions and binary probabilities are bit-exact. Multiclass
// probabilities go through scipy's logsumexp, whose per-row log (the C
// library's) Go's math.Log matches only to within an ulp.
func TestGradientBoostingFixtures(t *testing.T) {
	runFixtures(t, func(file string) uint64 {
		if file == "gb_multiclass.joblib" {
			return 8
		}
		return 0
	}, "gb_")
}

// TestGlibcExp checks the port of the C library's exp against Python's
// math.exp on inputs across its range, including the rescaled paths above
// |x| = 512, subnormal results, overflow and non-finite input.
func TestGlibcExp(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(treeFixtures, "exp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]fixtureFloat
	if err := json.Unmarshal(b, &pairs); err != nil {
		t.Fatal(err)
	}
	if len(pairs) < 800 {
		t.Fatalf("exp.json has only %d cases", len(pairs))
	}
	for _, p := range pairs {
		x, want := float64(p[0]), float64(p[1])
		if got := glibcExp(x); math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("glibcExp(%v) = %v, C library %v", x, got, want)
		}
	}
}

// TestRoundedLog checks the load-time log against values whose correctly
// rounded log is known exactly or by identity.
func TestRoundedLog(t *testing.T) {
	tests := []struct {
		x, want float64
	}{
		{1, 0},
		{math.E, 1},
		{2, math.Ln2}, // math.Ln2 is the correctly rounded constant
		{0.5, -math.Ln2},
		{10, math.Ln10},
		{0x1p-23, -23 * math.Ln2}, // exact product rounds the same here
		{math.Inf(1), math.Inf(1)},
		{0, math.Inf(-1)},
	}
	for _, tt := range tests {
		if got := roundedLog(tt.x); got != tt.want {
			t.Errorf("roundedLog(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if got := roundedLog(-1); !math.IsNaN(got) {
		t.Errorf("roundedLog(-1) = %v, want NaN", got)
	}
	// Away from the special cases it never strays more than an ulp from math.Log.
	for x := 1e-300; x < 1e300; x *= 1.37e7 {
		if d := ulps(roundedLog(x), math.Log(x)); d > 1 {
			t.Errorf("roundedLog(%v) = %v, math.Log %v", x, roundedLog(x), math.Log(x))
		}
	}
}

// gbObject is a pickled GradientBoosting model whose stages are regression
// stumps; leaves[i] is stage i's (left, right) values.
func gbObject(name, loss string, init any, k int, leaves [][2]float64, classes ...int64) *pickle.Object {
	arr := &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{len(leaves) / k, k}}
	for _, l := range leaves {
		arr.Objects = append(arr.Objects, treeRegressorObject(stump(0.5, []float64{l[0]}, []float64{l[1]})))
	}
	state := dict("n_features_in_", int64(2), "learning_rate", 0.1, "estimators_", arr, "init_", init,
		"_loss", &pickle.Object{Module: "sklearn.ensemble._gb_losses", Name: loss, State: dict("K", int64(k))})
	if classes != nil {
		state.Set("classes_", i8Array(classes...))
	}
	return &pickle.Object{Module: "sklearn.ensemble._gb", Name: name, State: state}
}

func dummyRegressor(c float64) *pickle.Object {
	return &pickle.Object{Module: "sklearn.dummy", Name: "DummyRegressor",
		State: dict("strategy", "mean", "constant_", f8Array([]int{1, 1}, c))}
}

func dummyClassifier(strategy string, prior ...float64) *pickle.Object {
	return &pickle.Object{Module: "sklearn.dummy", Name: "DummyClassifier",
		State: dict("strategy", strategy, "class_prior_", f8Array([]int{len(prior)}, prior...))}
}

// TestGradientBoostingStages: init, then learning_rate × each stage's leaf,
// rounded step by step as predict_stages does; and the binary decision rules.
func TestGradientBoostingStages(t *testing.T) {
	leaves := [][2]float64{{-1.5, 2.25}, {0.3, -0.7}}
	est, err := build(gbObject("GradientBoostingRegressor", "LeastSquaresError", dummyRegressor(3.1), 1, leaves))
	if err != nil {
		t.Fatal(err)
	}
	got := est.(Regressor).Predict([]float64{0, 0, 1, 0}, 2)
	for i, side := range []int{0, 1} {
		want := 3.1
		for _, l := range leaves {
			want += float64(0.1 * l[side])
		}
		if got[i] != want {
			t.Errorf("row %d: %v, want %v", i, got[i], want)
		}
	}

	// Exponential loss: predict is raw >= 0 even where the probabilities tie.
	exp, err := build(gbObject("GradientBoostingClassifier", "ExponentialLoss", "zero", 1,
		[][2]float64{{-1, 0}}, 7, 8))
	if err != nil {
		t.Fatal(err)
	}
	c := exp.(Classifier)
	if idx := c.(IndexPredictor).PredictIndex([]float64{0, 0, 1, 0}, 2); idx[0] != 0 || idx[1] != 1 {
		t.Errorf("exponential loss predict %v, want [0 1] (raw -0.1 and 0)", idx)
	}
	if p := c.PredictProba([]float64{1, 0}, 1); p[0] != 0.5 || p[1] != 0.5 {
		t.Errorf("raw 0: proba %v, want [0.5 0.5]", p)
	}

	// Binomial deviance with a prior: raw = log(p/(1-p)) + stages.
	bin, err := build(gbObject("GradientBoostingClassifier", "BinomialDeviance", dummyClassifier("prior", 0.8, 0.2), 1,
		[][2]float64{{0, 0}}, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	p := bin.(Classifier).PredictProba([]float64{0, 0}, 1)
	if want := 1 / (1 + 4.0); math.Abs(p[1]-want) > 1e-16 || p[0] != 1-p[1] {
		t.Errorf("prior 0.2: proba %v, want [%v %v]", p, 1-want, want)
	}
}

func TestGradientBoostingRejectsMalformed(t *testing.T) {
	one := [][2]float64{{0, 1}}
	withState := func(obj *pickle.Object, key string, v any) *pickle.Object {
		obj.State.(*pickle.Dict).Set(key, v)
		return obj
	}
	tests := []struct {
		name string
		obj  *pickle.Object
		want string
	}{
		{"user init estimator", gbObject("GradientBoostingRegressor", "LeastSquaresError",
			&pickle.Object{Module: "sklearn.linear_model._base", Name: "LinearRegression"}, 1, one), "init_ sklearn.linear_model._base.LinearRegression is not supported"},
		{"non-prior dummy", gbObject("GradientBoostingClassifier", "BinomialDeviance",
			dummyClassifier("uniform", 0.5, 0.5), 1, one, 0, 1), "strategy='prior'"},
		{"prior length", gbObject("GradientBoostingClassifier", "BinomialDeviance",
			dummyClassifier("prior", 1), 1, one, 0, 1), "class_prior_"},
		{"classifier with regression loss", gbObject("GradientBoostingClassifier", "LeastSquaresError",
			"zero", 1, one, 0, 1), "regression loss"},
		{"regressor with classification loss", gbObject("GradientBoostingRegressor", "BinomialDeviance",
			"zero", 1, one), "classification loss"},
		{"binary loss, three classes", gbObject("GradientBoostingClassifier", "BinomialDeviance",
			"zero", 1, one, 0, 1, 2), "binary loss for 3 classes"},
		{"multinomial width", gbObject("GradientBoostingClassifier", "MultinomialDeviance",
			"zero", 2, [][2]float64{{0, 1}, {1, 0}}, 0, 1, 2), "2 trees per stage for 3 classes"},
		{"loss K", withState(gbObject("GradientBoostingRegressor", "LeastSquaresError", "zero", 1, one),
			"_loss", &pickle.Object{Module: "sklearn.ensemble._gb_losses", Name: "LeastSquaresError", State: dict("K", int64(3))}),
			"_loss.K is 3 but estimators_ has 1 columns"},
		{"binary loss, two trees per stage", withState(gbObject("GradientBoostingClassifier", "BinomialDeviance",
			"zero", 2, [][2]float64{{0, 1}, {1, 0}}, 0, 1), "_loss", &pickle.Object{Module: "sklearn.ensemble._gb_losses", Name: "BinomialDeviance"}),
			"estimators_ has 2 columns; BinomialDeviance fits one tree per stage"},
		{"estimators_ not 2-D", withState(gbObject("GradientBoostingRegressor", "LeastSquaresError", "zero", 1, one),
			"estimators_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{1}, Objects: []any{nil}}), "2-D object array"},
		{"stage not a tree", withState(gbObject("GradientBoostingRegressor", "LeastSquaresError", "zero", 1, one),
			"estimators_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{1, 1}, Objects: []any{int64(3)}}), "estimators_[0, 0] is a int"},
		{"unknown loss", gbObject("GradientBoostingRegressor", "PoissonLoss", "zero", 1, one), "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(tt.obj)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("build: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
