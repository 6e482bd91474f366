package sklearn

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
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
		out[i] = argmax(proba[i*k : (i+1)*k])
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
	for _, name := range []string{"binary", "multiclass", "regression", "multioutput", "poisson", "categorical"} {
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

// Hand-built trees, for what the fixtures cannot show: malformed files and
// exact routing at a threshold.

// le64 appends v's little-endian bytes.
func le64(b []byte, v uint64) []byte {
	for i := 0; i < 8; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func f8Array(shape []int, v ...float64) *pickle.NDArray {
	var data []byte
	for _, x := range v {
		data = le64(data, math.Float64bits(x))
	}
	return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'f', ItemSize: 8}, Shape: shape, Data: data}
}

func i8Array(v ...int64) *pickle.NDArray {
	var data []byte
	for _, x := range v {
		data = le64(data, uint64(x))
	}
	return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'i', ItemSize: 8}, Shape: []int{len(v)}, Data: data}
}

// testNode is one row of sklearn 1.2's node array.
type testNode struct {
	left, right, feature int64
	threshold            float64
}

// nodeArray builds sklearn 1.2's structured NODE_DTYPE array.
func nodeArray(nodes ...testNode) *pickle.NDArray {
	i8 := &pickle.Dtype{Kind: 'i', ItemSize: 8}
	f8 := &pickle.Dtype{Kind: 'f', ItemSize: 8}
	dt := &pickle.Dtype{Kind: 'V', ItemSize: 56, Fields: []pickle.Field{
		{Name: "left_child", Dtype: i8, Offset: 0},
		{Name: "right_child", Dtype: i8, Offset: 8},
		{Name: "feature", Dtype: i8, Offset: 16},
		{Name: "threshold", Dtype: f8, Offset: 24},
		{Name: "impurity", Dtype: f8, Offset: 32},
		{Name: "n_node_samples", Dtype: i8, Offset: 40},
		{Name: "weighted_n_node_samples", Dtype: f8, Offset: 48},
	}}
	var data []byte
	for _, n := range nodes {
		data = le64(data, uint64(n.left))
		data = le64(data, uint64(n.right))
		data = le64(data, uint64(n.feature))
		data = le64(data, math.Float64bits(n.threshold))
		data = le64(data, 0)
		data = le64(data, 1)
		data = le64(data, math.Float64bits(1))
	}
	return &pickle.NDArray{Dtype: dt, Shape: []int{len(nodes)}, Data: data}
}

func dict(kv ...any) *pickle.Dict {
	d := &pickle.Dict{}
	for i := 0; i < len(kv); i += 2 {
		d.Set(kv[i], kv[i+1])
	}
	return d
}

// treeObject is a pickled sklearn.tree._tree.Tree with one output.
func treeObject(nFeatures, nClasses int, nodes *pickle.NDArray, values *pickle.NDArray) *pickle.Object {
	return &pickle.Object{
		Module: "sklearn.tree._tree", Name: "Tree",
		Args: []any{int64(nFeatures), i8Array(int64(nClasses)), int64(1)},
		State: dict("max_depth", int64(2), "node_count", int64(nodes.Len()),
			"nodes", nodes, "values", values),
	}
}

// stump splits feature 0 at threshold; the left leaf holds leftCounts, the
// right rightCounts (class counts, or one value for a regressor).
func stump(threshold float64, leftCounts, rightCounts []float64) *pickle.Object {
	k := len(leftCounts)
	vals := append(append(make([]float64, k), leftCounts...), rightCounts...)
	return treeObject(2, k, nodeArray(
		testNode{1, 2, 0, threshold},
		testNode{-1, -1, -2, -2},
		testNode{-1, -1, -2, -2},
	), f8Array([]int{3, 1, k}, vals...))
}

func treeClassifierObject(tree *pickle.Object, classes ...int64) *pickle.Object {
	return &pickle.Object{
		Module: "sklearn.tree._classes", Name: "DecisionTreeClassifier",
		State: dict("n_features_in_", int64(2), "n_outputs_", int64(1),
			"classes_", i8Array(classes...), "tree_", tree),
	}
}

func treeRegressorObject(tree *pickle.Object) *pickle.Object {
	return &pickle.Object{
		Module: "sklearn.tree._classes", Name: "DecisionTreeRegressor",
		State: dict("n_features_in_", int64(2), "n_outputs_", int64(1), "tree_", tree),
	}
}

// TestTreeThresholdUsesFloat32 routes values around a threshold that is not a
// float32: sklearn compares float32(x), so 0.1 (which rounds up to
// 0.10000000149) goes right of a 0.1 threshold, and a value just above the
// threshold that rounds down to it goes left.
func TestTreeThresholdUsesFloat32(t *testing.T) {
	const thr = 0.1
	est, err := build(treeRegressorObject(stump(thr, []float64{-1}, []float64{+1})))
	if err != nil {
		t.Fatal(err)
	}
	r := est.(Regressor)
	below := float64(math.Nextafter32(float32(thr), 0)) // the float32 just below
	tests := []struct {
		x    float64
		want float64
	}{
		{thr, +1},   // float32(0.1) > 0.1
		{below, -1}, // a float32 below the threshold
		{below + 1e-12, -1},
		{0.0999999999, +1}, // rounds up to float32(0.1) > 0.1
		{-3e38, -1},
		{3e38, +1},
		{math.NaN(), +1}, // NaN <= t is false
		{1e39, +1},       // overflows to +Inf in float32
	}
	for _, tt := range tests {
		if got := r.Predict([]float64{tt.x, 0}, 1)[0]; got != tt.want {
			t.Errorf("x=%v: leaf %v, want %v", tt.x, got, tt.want)
		}
	}
}

// TestFloat32Below: comparing a float32 with the rounded-down threshold gives
// the same answer as sklearn's float64 comparison, for every kind of value.
func TestFloat32Below(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	special := []float64{0, math.Copysign(0, -1), 0.1, -0.1, 1e-45, 1e-46, -1e-46, math.MaxFloat32,
		1e39, -1e39, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64}
	var thresholds, xs []float64
	thresholds = append(thresholds, special...)
	xs = append(xs, special...)
	for i := 0; i < 2000; i++ {
		v := (rng.Float64()*2 - 1) * math.Pow(10, float64(rng.IntN(80)-40))
		thresholds = append(thresholds, v)
		// x values on and around each threshold's float32 neighbours
		f := float32(v)
		xs = append(xs, float64(f), float64(math.Nextafter32(f, 0)), float64(math.Nextafter32(f, 1e38)))
	}
	for _, thr := range thresholds {
		t32 := float32Below(thr)
		for _, x := range xs {
			x32 := float32(x)
			if want, got := float64(x32) <= thr, x32 <= t32; got != want {
				t.Fatalf("x=%v thr=%v: float32 compare says %v, float64 %v", x32, thr, got, want)
			}
		}
	}
}

// TestTreeClassifierLeaves checks the leaf normalisation (an all-zero leaf
// divides by 1) and that predict takes the first of tied counts.
func TestTreeClassifierLeaves(t *testing.T) {
	est, err := build(treeClassifierObject(stump(0.5, []float64{0, 0, 0}, []float64{1, 3, 3}), 10, 20, 30))
	if err != nil {
		t.Fatal(err)
	}
	c := est.(Classifier)
	X := []float64{0, 0, 1, 0}
	proba := c.PredictProba(X, 2)
	want := []float64{0, 0, 0, 1.0 / 7, 3.0 / 7, 3.0 / 7}
	for i := range want {
		if proba[i] != want[i] {
			t.Errorf("proba[%d] = %v, want %v", i, proba[i], want[i])
		}
	}
	if got := c.(IndexPredictor).PredictIndex(X, 2); got[0] != 0 || got[1] != 1 {
		t.Errorf("predict indices %v, want [0 1]", got)
	}
}

// TestTreeRejectsMalformed: every broken index is a build error, so that no
// walk can loop or index out of range later.
func TestTreeRejectsMalformed(t *testing.T) {
	leaf := testNode{-1, -1, -2, -2}
	vals := func(n int) *pickle.NDArray { return f8Array([]int{n, 1, 2}, make([]float64, 2*n)...) }
	tests := []struct {
		name string
		obj  *pickle.Object
		want string
	}{
		{"child out of range", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{1, 7, 0, 0}, leaf, leaf), vals(3)), 0, 1), "out of range"},
		{"child before parent (cycle)", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{1, 2, 0, 0}, testNode{0, 2, 1, 0}, leaf), vals(3)), 0, 1), "out of range"},
		{"self loop", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{0, 0, 0, 0}), vals(1)), 0, 1), "out of range"},
		{"half leaf", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{-1, 1, 0, 0}, leaf), vals(2)), 0, 1), "out of range"},
		{"feature out of range", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{1, 2, 2, 0}, leaf, leaf), vals(3)), 0, 1), "feature 2 out of range"},
		{"negative feature", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{1, 2, -1, 0}, leaf, leaf), vals(3)), 0, 1), "feature -1 out of range"},
		{"values shape", treeClassifierObject(treeObject(2, 2,
			nodeArray(testNode{1, 2, 0, 0}, leaf, leaf), vals(2)), 0, 1), "values has shape"},
		{"class count", treeClassifierObject(treeObject(2, 2,
			nodeArray(leaf), vals(1)), 0, 1, 2), "classes"},
		{"feature count", treeClassifierObject(treeObject(3, 2,
			nodeArray(leaf), vals(1)), 0, 1), "built for 3 features"},
		{"tree_ of another class", treeClassifierObject(&pickle.Object{Module: "os", Name: "system"}, 0, 1), "sklearn.tree._tree.Tree"},
		{"regression tree with classes", treeRegressorObject(stump(0, []float64{1, 2}, []float64{3, 4})), "classification tree"},
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

// FuzzTreeNodes flips bytes of a real tree's node array: whatever the file
// says, building must fail cleanly or give a tree whose walk ends in range.
func FuzzTreeNodes(f *testing.F) {
	f.Add(0, []byte{0xff})
	f.Add(8, []byte{0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add(16, []byte{5})
	f.Fuzz(func(t *testing.T, at int, patch []byte) {
		v, err := pickle.Load(filepath.Join(treeFixtures, "dt_multiclass.joblib"), pickle.Options{Allow: allowed})
		if err != nil {
			t.Fatal(err)
		}
		tree, _ := v.(*pickle.Object).Attr("tree_")
		nodes, _ := tree.(*pickle.Object).Attr("nodes")
		data := nodes.(*pickle.NDArray).Data
		if at < 0 || len(data) == 0 {
			return
		}
		for i, b := range patch {
			data[(at+i)%len(data)] ^= b
		}
		est, err := build(v)
		if err != nil {
			return
		}
		c := est.(Classifier)
		X := []float64{0, 1, -1, 2, -2, 3, -3, 0.5, -0.5, 10}
		if p := c.PredictProba(X, 2); len(p) != 2*c.Classes().Len() {
			t.Fatalf("%d probabilities for 2 rows", len(p))
		}
	})
}
