package sklearn

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
)

// TestForestFixtures: RandomForest and ExtraTrees average their trees in
// sklearn's order and must match it bit for bit.
func TestForestFixtures(t *testing.T) {
	runFixtures(t, bitExact, "rf_", "et_")
}

// benchModels are the serving tutorial's 100-tree, depth-8 RandomForest and a
// 100-iteration HistGradientBoosting on the same data, too large to commit:
// gen_trees.py --bench writes them, with sklearn's predict_proba on 256 rows,
// once per test binary, or TIDE_TREE_BENCH_DIR names a folder it wrote before
// (to benchmark on a machine without Python).
type benchModels struct {
	dir     string
	X       []float64 // 256 rows × 2 features
	rfProba []float64
	hgbProb []float64
}

var (
	benchOnce sync.Once
	benchSet  *benchModels
	benchErr  error
)

func loadBenchModels(b *testing.B) *benchModels {
	b.Helper()
	benchOnce.Do(func() {
		dir := os.Getenv("TIDE_TREE_BENCH_DIR")
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "tide-bench-trees"); err != nil {
				benchErr = err
				return
			}
			out, err := exec.Command("/usr/bin/python3", "testdata/gen_trees.py", "--bench", dir).CombinedOutput()
			if err != nil {
				benchErr = fmt.Errorf("gen_trees.py --bench (needs Debian's python3-sklearn): %v: %s", err, out)
				return
			}
		}
		raw, err := os.ReadFile(filepath.Join(dir, "bench.json"))
		if err != nil {
			benchErr = err
			return
		}
		var doc struct {
			X        [][]float64 `json:"X"`
			RFProba  [][]float64 `json:"rf_proba"`
			HGBProba [][]float64 `json:"hgb_proba"`
		}
		if benchErr = json.Unmarshal(raw, &doc); benchErr != nil {
			return
		}
		benchSet = &benchModels{dir: dir}
		for i := range doc.X {
			benchSet.X = append(benchSet.X, doc.X[i]...)
			benchSet.rfProba = append(benchSet.rfProba, doc.RFProba[i]...)
			benchSet.hgbProb = append(benchSet.hgbProb, doc.HGBProba[i]...)
		}
	})
	if benchErr != nil {
		b.Skip(benchErr)
	}
	return benchSet
}

// benchClassifier loads one of the bench models and checks it against
// sklearn's probabilities before it is timed.
func benchClassifier(b *testing.B, file string, want []float64) Classifier {
	m := loadBenchModels(b)
	v, err := pickle.Load(filepath.Join(m.dir, file), pickle.Options{Allow: allowed})
	if err != nil {
		b.Fatal(err)
	}
	est, err := build(v)
	if err != nil {
		b.Fatal(err)
	}
	c := est.(Classifier)
	n := len(m.X) / c.NumFeatures()
	var agree agreement
	for i, p := range c.PredictProba(m.X, n) {
		agree.add(p, want[i], fmt.Sprintf("proba[%d]", i))
	}
	if agree.maxULP > 0 {
		b.Fatalf("%s: %v against sklearn; worst %s", file, agree, agree.worst)
	}
	return c
}

// benchPredict times PredictProba on batches of rows, taking successive
// batches from X so that, as in serving, the trees see different rows (one
// row repeated would let the branch predictor learn its path).
func benchPredict(b *testing.B, c Classifier, X []float64, rows int) {
	nf := c.NumFeatures()
	batches := len(X) / (rows * nf)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % batches
		c.PredictProba(X[j*rows*nf:(j+1)*rows*nf], rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

// BenchmarkRandomForest100Trees1Row is the tutorial's model answering one
// request of one row (sklearn behind FastAPI: about 3.5 ms).
func BenchmarkRandomForest100Trees1Row(b *testing.B) {
	m := loadBenchModels(b)
	benchPredict(b, benchClassifier(b, "bench_rf.joblib", m.rfProba), m.X, 1)
}

func BenchmarkRandomForest100Trees256Rows(b *testing.B) {
	m := loadBenchModels(b)
	benchPredict(b, benchClassifier(b, "bench_rf.joblib", m.rfProba), m.X, 256)
}

func forestObject(name string, members []any, classes ...int64) *pickle.Object {
	state := dict("n_features_in_", int64(2), "n_outputs_", int64(1), "estimators_", &pickle.List{Items: members})
	if classes != nil {
		state.Set("classes_", i8Array(classes...))
	}
	return &pickle.Object{Module: "sklearn.ensemble._forest", Name: name, State: state}
}

// TestForestAverages: the mean of the members' leaf probabilities, summed in
// order and divided once.
func TestForestAverages(t *testing.T) {
	members := []any{
		treeClassifierObject(stump(0.5, []float64{1, 2}, []float64{3, 0}), 0, 1),
		treeClassifierObject(stump(0.25, []float64{1, 1}, []float64{0, 5}), 0, 1),
		treeClassifierObject(stump(0.75, []float64{0, 3}, []float64{7, 0}), 0, 1),
	}
	est, err := build(forestObject("ExtraTreesClassifier", members, 4, 9))
	if err != nil {
		t.Fatal(err)
	}
	// x=0.6: right of 0.5 and 0.25, left of 0.75.
	got := est.(Classifier).PredictProba([]float64{0.6, 0}, 1)
	want := []float64{(1.0 + 0 + 0) / 3, (0 + 1.0 + 1) / 3}
	if got[0] != want[0] || got[1] != want[1] {
		t.Errorf("proba %v, want %v", got, want)
	}
}

func TestForestRejectsMalformed(t *testing.T) {
	good := treeClassifierObject(stump(0.5, []float64{1, 2}, []float64{3, 0}), 0, 1)
	reg1 := treeRegressorObject(stump(0.5, []float64{1}, []float64{2}))
	// A two-output regression tree: one leaf holding two targets.
	reg2 := treeRegressorObject(&pickle.Object{Module: "sklearn.tree._tree", Name: "Tree",
		Args: []any{int64(2), i8Array(1, 1), int64(2)},
		State: dict("node_count", int64(1), "nodes", nodeArray(testNode{-1, -1, -2, -2}),
			"values", f8Array([]int{1, 2, 1}, 1, 2))})
	tests := []struct {
		name string
		obj  *pickle.Object
		want string
	}{
		{"no trees", forestObject("RandomForestClassifier", nil, 0, 1), "estimators_ is empty"},
		{"not a tree", forestObject("RandomForestClassifier", []any{good, "tree"}, 0, 1), "estimators_[1] is a str"},
		{"foreign estimator", forestObject("RandomForestClassifier", []any{&pickle.Object{Module: "sklearn.linear_model._base", Name: "LinearRegression"}}, 0, 1), "not a decision tree"},
		{"class count", forestObject("RandomForestClassifier", []any{good}, 0, 1, 2), "estimators_[0]: tree_ has 2 classes, classes_ has 3"},
		{"targets differ", forestObject("RandomForestRegressor", []any{reg1, reg2}), "predicts 2 targets"},
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

// TestForestSizeBytes: a forest reports exactly what its flattened trees occupy,
// and the arrays carry no spare capacity (the leaf arrays are allocated at their
// final size).
func TestForestSizeBytes(t *testing.T) {
	for _, file := range []string{"rf_binary.joblib", "et_multiclass.joblib", "rf_regression.joblib"} {
		m, err := loader{}.Load(t.Context(), filepath.Join("testdata", "trees", file), formats.Config{Name: "m"})
		if err != nil {
			t.Fatal(err)
		}
		em := m.(*estimatorModel)
		var trees []*flatTree
		switch f := any(em.clf).(type) {
		case *forestClassifier:
			trees = f.trees
		default:
			trees = em.reg.(*forestRegressor).trees
		}
		var want int64
		for i, ft := range trees {
			if cap(ft.leafValues) != len(ft.leafValues) || len(ft.leafValues)%ft.width != 0 {
				t.Fatalf("%s tree %d: leaf values %d/%d of width %d", file, i, len(ft.leafValues), cap(ft.leafValues), ft.width)
			}
			want += ft.walk.SizeBytes() + int64(len(ft.leafValues))*8
		}
		if got := m.(model.Sizer).SizeBytes(); got != want || got == 0 {
			t.Errorf("%s: SizeBytes %d, want %d (the compiled nodes, 8 bytes a leaf value)", file, got, want)
		}
	}
}
