package xgboost

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// Hand-built models whose answers can be worked out by reading them: they pin
// down XGBoost's decision rules independently of the generated fixtures.

// testTree is one tree in XGBoost's JSON layout.
type testTree struct {
	left, right []int
	features    []int
	conds       []float64
	defaults    []int
	splitType   []int
	// categories per categorical node, in XGBoost's flat layout.
	catNodes, catSegments, catSizes, cats []int
}

func (t testTree) json() map[string]any {
	st := t.splitType
	if st == nil {
		st = make([]int, len(t.left))
	}
	orEmpty := func(v []int) []int {
		if v == nil {
			return []int{}
		}
		return v
	}
	return map[string]any{
		"tree_param":          map[string]any{"num_nodes": json.Number(itoa(len(t.left))), "num_feature": "3", "num_deleted": "0", "size_leaf_vector": "0"},
		"left_children":       t.left,
		"right_children":      t.right,
		"split_indices":       t.features,
		"split_conditions":    t.conds,
		"default_left":        t.defaults,
		"split_type":          st,
		"categories_nodes":    orEmpty(t.catNodes),
		"categories_segments": orEmpty(t.catSegments),
		"categories_sizes":    orEmpty(t.catSizes),
		"categories":          orEmpty(t.cats),
		"id":                  0,
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// testDoc is a model document with the given objective, base_score and trees
// (all in group 0) over three features.
func testDoc(objective, baseScore string, trees ...testTree) map[string]any {
	list := make([]any, len(trees))
	info := make([]int, len(trees))
	for i, t := range trees {
		list[i] = t.json()
	}
	return map[string]any{
		"version": []int{1, 7, 4},
		"learner": map[string]any{
			"feature_names": []string{},
			"feature_types": []string{},
			"learner_model_param": map[string]any{
				"base_score": baseScore, "num_class": "0", "num_feature": "3", "num_target": "1", "boost_from_average": "1",
			},
			"objective": map[string]any{"name": objective},
			"gradient_booster": map[string]any{
				"name": "gbtree",
				"model": map[string]any{
					"gbtree_model_param": map[string]any{"num_trees": itoa(len(trees)), "num_parallel_tree": "1", "size_leaf_vector": "0"},
					"tree_info":          info,
					"trees":              list,
				},
			},
		},
	}
}

// stumpTree splits feature 0 at 1.5: left leaf -1, right leaf +1, NaN right.
var stumpTree = testTree{
	left: []int{1, -1, -1}, right: []int{2, -1, -1}, features: []int{0, 0, 0},
	conds: []float64{1.5, -1, 1}, defaults: []int{0, 0, 0},
}

// catTree splits feature 1 on categories {1, 3, 64} (right, leaf 10), all
// others left (leaf 20), missing left.
var catTree = testTree{
	left: []int{1, -1, -1}, right: []int{2, -1, -1}, features: []int{1, 0, 0},
	conds: []float64{math.NaN(), 20, 10}, defaults: []int{1, 0, 0}, splitType: []int{1, 0, 0},
	catNodes: []int{0}, catSegments: []int{0}, catSizes: []int{3}, cats: []int{1, 3, 64},
}

func mustMarshal(t testing.TB, doc any) []byte {
	t.Helper()
	b, err := marshalWithNaN(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// marshalWithNaN writes doc as JSON, NaN thresholds as XGBoost writes them
// (a bare NaN, which encoding/json refuses to write).
func marshalWithNaN(doc any) ([]byte, error) {
	b, err := json.Marshal(replaceNaN(doc))
	return bytes.ReplaceAll(b, []byte(`"`+nanPlaceholder+`"`), []byte("NaN")), err
}

const nanPlaceholder = "nan-placeholder"

func replaceNaN(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = replaceNaN(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = replaceNaN(e)
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, f := range x {
			if math.IsNaN(f) {
				out[i] = nanPlaceholder
			} else {
				out[i] = f
			}
		}
		return out
	}
	return v
}

func TestDecisionRules(t *testing.T) {
	nan := float32(math.NaN())
	b, err := decode(mustMarshal(t, testDoc("reg:squarederror", "5E-1", stumpTree, catTree)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		x    [3]float32
		want float32 // base 0.5 + stump leaf + category leaf
	}{
		{"below threshold goes left", [3]float32{1.4999999, 0, 0}, 0.5 - 1 + 20},
		{"equal to threshold goes right", [3]float32{1.5, 0, 0}, 0.5 + 1 + 20},
		{"missing takes the default branch (right)", [3]float32{nan, 0, 0}, 0.5 + 1 + 20},
		{"category in the set goes right", [3]float32{0, 3, 0}, 0.5 - 1 + 10},
		{"a set beyond the first 64 categories", [3]float32{0, 64, 0}, 0.5 - 1 + 10},
		{"category not in the set goes left", [3]float32{0, 2, 0}, 0.5 - 1 + 20},
		{"a fraction is truncated to its category", [3]float32{0, 3.9, 0}, 0.5 - 1 + 10},
		{"category above every set member goes left", [3]float32{0, 1000, 0}, 0.5 - 1 + 20},
		{"negative category goes left", [3]float32{0, -1, 0}, 0.5 - 1 + 20},
		{"category beyond float32's integers goes left", [3]float32{0, 1 << 24, 0}, 0.5 - 1 + 20},
		{"missing category takes the default branch (left)", [3]float32{0, nan, 0}, 0.5 - 1 + 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]float32, 1)
			b.margins(tc.x[:], 1, out)
			if out[0] != tc.want {
				t.Errorf("margin %v, want %v", out[0], tc.want)
			}
		})
	}
}

// TestDecisionRulesInABatch: the same rules hold when rows go through the
// compiled batch walk (8 rows or more) as when they go one by one, for a
// compiled tree (the stump), a categorical one (kept decoded) and one with a
// -Inf threshold (kept decoded: "x < -Inf" has no float below it), side by side.
func TestDecisionRulesInABatch(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	minusInf := testTree{
		left: []int{1, -1, -1}, right: []int{2, -1, -1}, features: []int{2, 0, 0},
		conds: []float64{-12345.5, 100, 200}, defaults: []int{1, 0, 0}, // -12345.5: written as -Infinity below
	}
	doc := bytes.Replace(mustMarshal(t, testDoc("reg:squarederror", "5E-1", stumpTree, catTree, minusInf)), []byte("-12345.5"), []byte("-Infinity"), 1)
	b, err := decode(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.trees[0].walk == nil || b.trees[1].walk != nil || b.trees[2].walk != nil {
		t.Fatalf("compiled: stump %v, categorical %v, -Inf %v; want only the stump",
			b.trees[0].walk != nil, b.trees[1].walk != nil, b.trees[2].walk != nil)
	}
	rows := [][3]float32{
		{1.4999999, 0, 0}, {1.5, 0, 0}, {nan, 0, 0}, {0, 3, 0}, {0, 64, 0}, {0, 2, 0}, {0, 3.9, 0},
		{0, nan, nan}, {-inf, 1, -inf}, {inf, 1 << 24, inf}, {-0.0, -1, 0}, {2, 3, nan}, {0, -0.5, 0}, {0, float32(math.Copysign(0, -1)), 0},
		{0, 127.5, 0}, {0, 128, 0}, {0, 1e30, 0},
	}
	var X []float32
	for len(X) < 40*3 {
		for _, r := range rows {
			X = append(X, r[:]...)
		}
	}
	n := len(X) / 3
	batch := make([]float32, n)
	b.margins(X, n, batch)
	for r := 0; r < n; r++ {
		one := make([]float32, 1)
		b.margins(X[r*3:(r+1)*3], 1, one)
		if math.Float32bits(one[0]) != math.Float32bits(batch[r]) {
			t.Fatalf("row %d %v: %v alone, %v in a batch", r, X[r*3:(r+1)*3], one[0], batch[r])
		}
	}
}

// TestSingleLeafTree: a tree that is only a root leaf (what pruning leaves when
// no split pays for itself) adds its value to every row.
func TestSingleLeafTree(t *testing.T) {
	leaf := testTree{left: []int{-1}, right: []int{-1}, features: []int{0}, conds: []float64{0.25}, defaults: []int{0}}
	b, err := decode(mustMarshal(t, testDoc("reg:squarederror", "5E-1", leaf, stumpTree)), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 2)
	b.margins([]float32{0, 0, 0, 2, 0, 0}, 2, out)
	if want := []float32{0.5 + 0.25 - 1, 0.5 + 0.25 + 1}; out[0] != want[0] || out[1] != want[1] {
		t.Fatalf("margins %v, want %v", out, want)
	}
}

func TestBaseScoreLinks(t *testing.T) {
	for _, tc := range []struct {
		objective, baseScore string
		want                 float32
	}{
		{"reg:squarederror", "2.5E-1", 0.25},
		{"binary:logistic", "5E-1", 0},
		{"binary:logistic", "7.3105857E-1", float32(-math.Log(1/0.73105857 - 1))},
		{"reg:logistic", "2E-1", float32(-math.Log(4))},
		{"binary:logitraw", "5E-1", 0.5},
		{"count:poisson", "1E0", 0},
		{"reg:gamma", "2.7182817E0", float32(math.Log(2.7182817))},
		{"reg:tweedie", "5E-1", float32(math.Log(0.5))},
		{"multi:softprob", "5E-1", 0.5},
		{"rank:pairwise", "5E-1", 0.5},
		{"reg:absoluteerror", "[1.5E0]", 1.5}, // XGBoost 3 brackets it
	} {
		t.Run(tc.objective+"/"+tc.baseScore, func(t *testing.T) {
			doc := testDoc(tc.objective, tc.baseScore, stumpTree)
			if tc.objective == "multi:softprob" {
				doc["learner"].(map[string]any)["learner_model_param"].(map[string]any)["num_class"] = "2"
			}
			b, err := decode(mustMarshal(t, doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(float64(b.base-tc.want)) > 1e-6 {
				t.Errorf("base margin %v, want %v", b.base, tc.want)
			}
		})
	}
}

// XGBoost reads a value below 0 as no category, -0.5 included (LightGBM
// truncates it to category 0), and -0 as category 0; one row at a time and in
// a batch, with category 0 in the set.
func TestFractionsBelowZeroAreNoCategory(t *testing.T) {
	zeroTree := catTree
	zeroTree.cats = []int{0, 3, 64}
	b, err := decode(mustMarshal(t, testDoc("reg:squarederror", "0", zeroTree)), nil)
	if err != nil {
		t.Fatal(err)
	}
	negZero := float32(math.Copysign(0, -1))
	xs := []float32{-0.5, negZero, 0.5, -1, -1e-30, 0}
	want := []float32{20, 10, 10, 20, 20, 10}
	X := make([]float32, 0, 3*len(xs)*2)
	for range 2 { // 12 rows: a batch
		for _, x := range xs {
			X = append(X, 0, x, 0)
		}
	}
	batch := make([]float32, len(X)/3)
	b.margins(X, len(X)/3, batch)
	for i, x := range xs {
		one := make([]float32, 1)
		b.margins([]float32{0, x, 0}, 1, one)
		if one[0] != want[i] || batch[i] != want[i] || batch[i+len(xs)] != want[i] {
			t.Errorf("category value %v: one row %v, in a batch %v and %v; want %v", x, one[0], batch[i], batch[i+len(xs)], want[i])
		}
	}
}
