package lightgbm

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats/treewalk"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// model_simple.txt by hand: both trees split on feature 1's category 100
// (categorical, NaN missing type), then on feature 0 <= 340.5 (default left).
func TestSimpleModelByHand(t *testing.T) {
	e, err := parse([]byte(readFixture(t, "model_simple.txt")), nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(a, b float64) float64 { return a + b }
	inSet := leaf(0.56697267424823339, 0.12883103567558912)
	low := leaf(0.3584987837673016, -0.063872842243335157)
	high := leaf(0.41213915936587919, -0.016484332942214807)
	nan := math.NaN()
	for _, tc := range []struct {
		x    []float64
		want float64
		why  string
	}{
		{[]float64{0, 100}, inSet, "category 100 is in the set"},
		{[]float64{500, 100.7}, inSet, "categories truncate toward zero"},
		{[]float64{0, nan}, low, "a NaN category goes right"},
		{[]float64{0, -0.5}, low, "-0.5 truncates to category 0, not in the set"},
		{[]float64{0, -1}, low, "negative categories go right"},
		{[]float64{0, 1e10}, low, "categories beyond int32 go right"},
		{[]float64{340.5, 3}, low, "<= threshold goes left"},
		{[]float64{340.50000000000011, 3}, high, "just above the threshold goes right"},
		{[]float64{nan, 3}, low, "missing type None: NaN is read as 0"},
	} {
		raw := make([]float64, 1)
		e.scores(tc.x, raw)
		if raw[0] != tc.want {
			t.Errorf("%v (%s): raw %v, want %v", tc.x, tc.why, raw[0], tc.want)
		}
		if p := e.obj.transform(raw[0]); p != sigmoid(tc.want) {
			t.Errorf("%v: probability %v, want %v", tc.x, p, sigmoid(tc.want))
		}
	}
}

// The missing-value rules of numerical splits, one decision_type at a time.
func TestNumericalMissingValueRules(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		decisionType string
		x            float64
		left         bool
	}{
		{"0", nan, false},  // None: NaN is 0, 0 > -1
		{"2", nan, false},  // None + default left: still 0 > -1, default unused
		{"6", 0, true},     // Zero missing, default left: 0 is missing
		{"6", 1e-36, true}, // |x| <= 1e-35 is zero
		{"6", nan, true},   // NaN is 0 first, then missing
		{"6", 0.5, false},
		{"4", 0, false},   // Zero missing, default right
		{"8", nan, false}, // NaN missing, default right
		{"10", nan, true}, // NaN missing, default left
		{"10", 0, false},  // 0 is a value here: 0 > -1
		{"10", -2, true},
	} {
		fields := map[string]string{
			"num_leaves": "2", "split_feature": "0", "threshold": "-1", "decision_type": tc.decisionType,
			"left_child": "-1", "right_child": "-2", "leaf_value": "10 20",
		}
		tr, err := parseTree(fields, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.leaf([]float64{tc.x}) == 0; got != tc.left {
			t.Errorf("decision_type %s, x=%v: left=%v, want %v", tc.decisionType, tc.x, got, tc.left)
		}
		// The batch walk takes every rule but zero-as-missing (4 and 6),
		// which stays with the row walk.
		if zero := tc.decisionType == "4" || tc.decisionType == "6"; (tr.walk == nil) != zero {
			t.Fatalf("decision_type %s: compiled walk %v", tc.decisionType, tr.walk != nil)
		}
		if tr.walk != nil {
			var batch treewalk.Batch[float64]
			batch.Load([]float64{tc.x, tc.x, tc.x, tc.x, tc.x, tc.x, tc.x, tc.x}, treewalk.MinBatch, 1)
			leaves := make([]uint32, treewalk.MinBatch)
			tr.walk.Leaves(&batch, 0, leaves)
			if got := leaves[0] == 0; got != tc.left {
				t.Errorf("decision_type %s, x=%v, batch walk: left=%v, want %v", tc.decisionType, tc.x, got, tc.left)
			}
		}
	}
}

func TestTreeFragments(t *testing.T) {
	for name, want := range map[string]float64{"tree_1leaf.txt": 0.123, "tree_2leaves.txt": 0.43, "tree_3leaves.txt": 0.35} {
		fields := map[string]string{}
		for _, line := range strings.Split(readFixture(t, name), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				fields[k] = v
			}
		}
		tr, err := parseTree(fields, 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		x := []float64{1, 3} // tree_2leaves: 1 <= 5 → left; tree_3leaves: category 3 not in {100} → 1 <= 756 → leaf 1
		if got := tr.leafValue[tr.leaf(x)]; got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

func TestObjectives(t *testing.T) {
	for _, tc := range []struct {
		line    string
		in, out float64
	}{
		{"regression", -2, -2},
		{"regression sqrt", -2, -4},
		{"regression_l1", 3, 3},
		{"huber", 3, 3},
		{"quantile", 3, 3},
		{"poisson", 1, math.E},
		{"gamma", 0, 1},
		{"tweedie", 2, math.Exp(2)},
		{"cross_entropy", 0, 0.5},
		{"cross_entropy_lambda", 0, math.Log(2)},
		{"lambdarank", 7, 7},
		{"rank_xendcg", 7, 7},
		{"binary sigmoid:2", 1, sigmoid(2)},
		{"", 5, 5}, // custom objective: raw
	} {
		o, err := parseObjective(tc.line)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := o.transform(tc.in); math.Abs(got-tc.out) > 1e-15 {
			t.Errorf("%q(%v) = %v, want %v", tc.line, tc.in, got, tc.out)
		}
	}
	ova, err := parseObjective("multiclassova num_class:3 sigmoid:1")
	if err != nil || !ova.multiclass || ova.numClass != 3 {
		t.Fatalf("multiclassova: %+v %v", ova, err)
	}
	e := &ensemble{obj: ova, treesPerIteration: 3}
	p := make([]float64, 3)
	e.probabilities([]float64{0, 1, -1}, p)
	if p[0] != 0.5 || p[1] != sigmoid(1) || p[2] != sigmoid(-1) {
		t.Errorf("multiclassova probabilities %v: one sigmoid per class", p)
	}
	for _, bad := range []string{"binary sigmoid:-1", "multiclass num_class:1", "multiclass", "lambdamart", "binary sigmoid:x"} {
		if _, err := parseObjective(bad); err == nil {
			t.Errorf("objective %q accepted", bad)
		}
	}
}

// Malformed files are refused with a one-line reason, never a panic or a
// model that could index out of range.
func TestMalformedModelsAreRefused(t *testing.T) {
	good := readFixture(t, "model_simple.txt")
	for _, tc := range []struct{ name, old, new, want string }{
		{"not a model", "tree\n", "forest\n", `first line is not "tree"`},
		{"future version", "version=v2", "version=v9", `version "v9" is not supported`},
		{"no trees", good[strings.Index(good, "Tree=0"):strings.Index(good, "end of trees")], "", "no trees"},
		{"classes disagree", "num_class=1", "num_class=3", "num_tree_per_iteration=1 with num_class=3"},
		{"names disagree", "feature_names=X1 X2", "feature_names=X1", "lists 1 names for 2 features"},
		{"feature out of range", "split_feature=1 0", "split_feature=1 2", `split_feature: "2" is not an integer from 0 to 1`},
		{"cycle", "left_child=-1 -2", "left_child=-1 0", "reached twice"},
		{"child out of range", "right_child=1 -3", "right_child=1 -4", `right_child: "-4"`},
		{"shared leaf", "right_child=1 -3", "right_child=1 -2", "leaf 1 is reached twice"},
		{"leaf count", "leaf_value=0.56697267424823339 0.3584987837673016 0.41213915936587919", "leaf_value=1 2", "leaf_value has 2 values, want 3"},
		{"not a number", "threshold=0 340.50000000000006", "threshold=0 lots", `threshold: "lots" is not a number`},
		{"unknown missing type", "decision_type=9 2", "decision_type=9 14", "unknown missing-value type"},
		{"category set out of range", "threshold=0 340.50000000000006", "threshold=1 340.50000000000006", "categorical node 0 names split set 1 of 1"},
		{"bitset bounds", "cat_boundaries=0 4", "cat_boundaries=0 5", "do not span cat_threshold's 4 words"},
		{"linear tree", "shrinkage=1\n", "shrinkage=1\nis_linear=1\n", "linear trees (linear_tree=true) are not supported"},
		{"out of order", "Tree=1", "Tree=7", `"Tree=7" out of order, want Tree=1`},
		{"unknown objective", "objective=binary sigmoid:1", "objective=lambdamart", `objective "lambdamart" is not supported`},
		{"truncated", good[strings.Index(good, "\nend of trees"):], "", "no \"end of trees\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("fixture has no %q", tc.old)
			}
			_, err := parse([]byte(strings.Replace(good, tc.old, tc.new, 1)), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tc.want)
			}
		})
	}
}
