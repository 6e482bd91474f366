package sklearn

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// TestHistGradientBoostingFixtures: raw scores (baseline + trees, on float64 X
// with NaN following missing_go_to_left, and categorical splits on known,
// unknown, negative, fractional and out-of-range categories), regression
// through identity or exp, and probabilities through expit or softmax are
// all bit-exact.
func TestHistGradientBoostingFixtures(t *testing.T) {
	runFixtures(t, bitExact, "hgb_")
}

// histNodeSpec is one row of a TreePredictor's nodes array.
type histNodeSpec struct {
	value, threshold     float64
	feature, left, right int64
	missingLeft, leaf    bool
	categorical          bool
	bitset               uint32
}

// predictorObject builds a TreePredictor with a packed PREDICTOR_RECORD_DTYPE.
func predictorObject(nodes ...histNodeSpec) *pickle.Object {
	dt := func(kind byte, size int) *pickle.Dtype { return &pickle.Dtype{Kind: kind, ItemSize: size} }
	fields := []pickle.Field{
		{Name: "value", Dtype: dt('f', 8), Offset: 0},
		{Name: "count", Dtype: dt('u', 4), Offset: 8},
		{Name: "feature_idx", Dtype: dt('i', 8), Offset: 12},
		{Name: "num_threshold", Dtype: dt('f', 8), Offset: 20},
		{Name: "missing_go_to_left", Dtype: dt('u', 1), Offset: 28},
		{Name: "left", Dtype: dt('u', 4), Offset: 29},
		{Name: "right", Dtype: dt('u', 4), Offset: 33},
		{Name: "gain", Dtype: dt('f', 8), Offset: 37},
		{Name: "depth", Dtype: dt('u', 4), Offset: 45},
		{Name: "is_leaf", Dtype: dt('u', 1), Offset: 49},
		{Name: "bin_threshold", Dtype: dt('u', 1), Offset: 50},
		{Name: "is_categorical", Dtype: dt('u', 1), Offset: 51},
		{Name: "bitset_idx", Dtype: dt('u', 4), Offset: 52},
	}
	const size = 56
	data := make([]byte, size*len(nodes))
	flag := func(b bool) byte {
		if b {
			return 1
		}
		return 0
	}
	le := binary.LittleEndian
	for i, n := range nodes {
		rec := data[i*size : (i+1)*size]
		le.PutUint64(rec[0:], math.Float64bits(n.value))
		le.PutUint64(rec[12:], uint64(n.feature))
		le.PutUint64(rec[20:], math.Float64bits(n.threshold))
		rec[28] = flag(n.missingLeft)
		le.PutUint32(rec[29:], uint32(n.left))
		le.PutUint32(rec[33:], uint32(n.right))
		rec[49] = flag(n.leaf)
		rec[51] = flag(n.categorical)
		le.PutUint32(rec[52:], n.bitset)
	}
	arr := &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'V', ItemSize: size, Fields: fields}, Shape: []int{len(nodes)}, Data: data}
	return &pickle.Object{
		Module: "sklearn.ensemble._hist_gradient_boosting.predictor", Name: "TreePredictor",
		State: dict("nodes", arr),
	}
}

// histStump splits feature 1 at 0.5: left leaf -1, right leaf +1.
func histStump(missingLeft bool) *pickle.Object {
	return predictorObject(
		histNodeSpec{threshold: 0.5, feature: 1, left: 1, right: 2, missingLeft: missingLeft},
		histNodeSpec{value: -1, leaf: true},
		histNodeSpec{value: +1, leaf: true},
	)
}

func hgbRegressorObject(link string, baseline float64, iterations ...*pickle.Object) *pickle.Object {
	preds := &pickle.List{}
	for _, p := range iterations {
		preds.Items = append(preds.Items, &pickle.List{Items: []any{p}})
	}
	loss := &pickle.Object{Module: "sklearn._loss.loss", Name: "HalfSquaredError",
		State: dict("link", &pickle.Object{Module: "sklearn._loss.link", Name: link})}
	return &pickle.Object{
		Module: "sklearn.ensemble._hist_gradient_boosting.gradient_boosting", Name: "HistGradientBoostingRegressor",
		State: dict("n_features_in_", int64(2), "n_trees_per_iteration_", int64(1),
			"_loss", loss, "_baseline_prediction", f8Array([]int{1, 1}, baseline),
			"_predictors", preds, "is_categorical_", nil),
	}
}

// TestHistGradientBoostingRouting: float64 comparison (no float32 rounding),
// NaN where missing_go_to_left says, infinities compared as numbers, and the
// baseline plus every iteration's leaf, through the inverse link.
func TestHistGradientBoostingRouting(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name        string
		missingLeft bool
		link        string
		x           float64
		want        float64
	}{
		{"at threshold", false, "IdentityLink", 0.5, 10 - 1 - 1},
		{"just above", false, "IdentityLink", math.Nextafter(0.5, 1), 10 + 1 + 1},
		{"float32 would round down", false, "IdentityLink", 0.5000000001, 10 + 1 + 1},
		{"NaN goes right", false, "IdentityLink", nan, 10 + 1 + 1},
		{"NaN goes left", true, "IdentityLink", nan, 10 - 1 - 1},
		{"-Inf", false, "IdentityLink", -inf, 10 - 1 - 1},
		{"+Inf", true, "IdentityLink", inf, 10 + 1 + 1},
		{"log link", false, "LogLink", 0, math.Exp(8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := hgbRegressorObject(tt.link, 10, histStump(tt.missingLeft), histStump(tt.missingLeft))
			est, err := build(obj)
			if err != nil {
				t.Fatal(err)
			}
			got := est.(Regressor).Predict([]float64{0, tt.x}, 1)[0]
			if ulps(got, tt.want) > 0 {
				t.Errorf("predict(%v) = %v, want %v", tt.x, got, tt.want)
			}
			if nan, inf := est.(interface{ AcceptsNonFinite() (bool, bool) }).AcceptsNonFinite(); !nan || !inf {
				t.Errorf("AcceptsNonFinite() = %v, %v; HistGradientBoosting takes NaN and Inf", nan, inf)
			}
		})
	}
}

func TestHistGradientBoostingRejectsMalformed(t *testing.T) {
	leaf := histNodeSpec{leaf: true}
	withState := func(obj *pickle.Object, key string, v any) *pickle.Object {
		obj.State.(*pickle.Dict).Set(key, v)
		return obj
	}
	tests := []struct {
		name string
		obj  *pickle.Object
		want string
	}{
		{"child before parent", hgbRegressorObject("IdentityLink", 0, predictorObject(
			histNodeSpec{feature: 0, left: 1, right: 2}, histNodeSpec{feature: 0, left: 0, right: 2}, leaf)), "out of range"},
		{"child out of range", hgbRegressorObject("IdentityLink", 0, predictorObject(
			histNodeSpec{feature: 0, left: 1, right: 9}, leaf)), "out of range"},
		{"feature out of range", hgbRegressorObject("IdentityLink", 0, predictorObject(
			histNodeSpec{feature: 2, left: 1, right: 2}, leaf, leaf)), "feature 2 out of range"},
		{"categorical split on a numeric feature", hgbRegressorObject("IdentityLink", 0, predictorObject(
			histNodeSpec{feature: 0, left: 1, right: 2, categorical: true}, leaf, leaf)), "is_categorical_ does not mark"},
		{"categorical feature without bin mapper", withState(hgbRegressorObject("IdentityLink", 0, histStump(false)),
			"is_categorical_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'b', ItemSize: 1}, Shape: []int{2}, Data: []byte{0, 1}}),
			"_bin_mapper"},
		{"bitset out of range", categoricalRegressor(predictorObject(
			histNodeSpec{feature: 1, left: 1, right: 2, categorical: true, bitset: 1}, leaf, leaf), 1), "bitset_idx 1 out of range"},
		{"bitsets not uint32", withPredictorState(categoricalRegressor(predictorObject(
			histNodeSpec{feature: 1, left: 1, right: 2, categorical: true}, leaf, leaf), 1),
			"raw_left_cat_bitsets", f8Array([]int{1, 8}, make([]float64, 8)...)), "want (n, 8) uint32"},
		{"unknown link", hgbRegressorObject("PowerLink", 0, histStump(false)), "link"},
		{"baseline size", withState(hgbRegressorObject("IdentityLink", 0, histStump(false)),
			"_baseline_prediction", f8Array([]int{1, 2}, 0, 0)), "_baseline_prediction"},
		{"trees per iteration", withState(hgbRegressorObject("IdentityLink", 0, histStump(false)),
			"_predictors", &pickle.List{Items: []any{&pickle.List{Items: []any{histStump(false), histStump(false)}}}}), "has 2 trees, want 1"},
		{"not a predictor", withState(hgbRegressorObject("IdentityLink", 0, histStump(false)),
			"_predictors", &pickle.List{Items: []any{&pickle.List{Items: []any{"x"}}}}), "want a TreePredictor"},
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

func BenchmarkHistGradientBoosting100Iter1Row(b *testing.B) {
	m := loadBenchModels(b)
	benchPredict(b, benchClassifier(b, "bench_hgb.joblib", m.hgbProb), m.X, 1)
}

func BenchmarkHistGradientBoosting100Iter256Rows(b *testing.B) {
	m := loadBenchModels(b)
	benchPredict(b, benchClassifier(b, "bench_hgb.joblib", m.hgbProb), m.X, 256)
}

// categoricalRegressor is hgbRegressorObject with feature 1 categorical
// (categories 0, 2, 5 and 300, which the C cast stores as code 44) and the
// tree's left categories {2, 44}.
func categoricalRegressor(tree *pickle.Object, nBitsets int) *pickle.Object {
	obj := hgbRegressorObject("IdentityLink", 10, tree)
	st := obj.State.(*pickle.Dict)
	st.Set("is_categorical_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'b', ItemSize: 1}, Shape: []int{2}, Data: []byte{0, 1}})
	st.Set("_bin_mapper", &pickle.Object{Module: "sklearn.ensemble._hist_gradient_boosting.binning", Name: "_BinMapper",
		State: dict("bin_thresholds_", &pickle.List{Items: []any{f8Array([]int{3}, 0.5, 1.5, 2.5), f8Array([]int{4}, 0, 2, 5, 300)}})})
	words := make([]byte, 0, 32*nBitsets)
	for i := 0; i < nBitsets; i++ {
		var set categorySet
		set[0] |= 1 << 2
		set[1] |= 1 << (44 - 32)
		for _, w := range set {
			words = binary.LittleEndian.AppendUint32(words, w)
		}
	}
	tree.State.(*pickle.Dict).Set("raw_left_cat_bitsets",
		&pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'u', ItemSize: 4}, Shape: []int{nBitsets, 8}, Data: words})
	return obj
}

func withPredictorState(obj *pickle.Object, key string, v any) *pickle.Object {
	preds, _ := obj.Attr("_predictors")
	tree := preds.(*pickle.List).Items[0].(*pickle.List).Items[0].(*pickle.Object)
	tree.State.(*pickle.Dict).Set(key, v)
	return obj
}

// TestHistGradientBoostingCategories routes raw values at a categorical split
// as sklearn 1.2 does: left categories left, other known categories right,
// and NaN, negative values and unseen categories the missing-value way.
func TestHistGradientBoostingCategories(t *testing.T) {
	for _, missingLeft := range []bool{false, true} {
		split := histNodeSpec{feature: 1, left: 1, right: 2, categorical: true, missingLeft: missingLeft}
		obj := categoricalRegressor(predictorObject(split, histNodeSpec{value: -1, leaf: true}, histNodeSpec{value: 1, leaf: true}), 1)
		est, err := build(obj)
		if err != nil {
			t.Fatal(err)
		}
		missing := 11.0
		if missingLeft {
			missing = 9
		}
		tests := []struct {
			x    float64
			want float64
		}{
			{2, 9}, {2.9, 9}, // left category; fractions truncate
			{0, 11}, {5, 11}, {0.99, 11}, // other known categories
			{44, 9}, {300, 9}, {556, 9}, // code 44: 300 and 556 wrap to it, as in sklearn
			{-0.0, 11}, // -0 is category 0, not negative
			{math.NaN(), missing}, {-0.5, missing}, {-1, missing}, {math.Inf(-1), missing},
			{1, missing}, {7, missing}, {255, missing}, // unseen categories
			{0x1p31, 11}, {math.Inf(1), 11}, // out of int32 range: code 0, known
		}
		for _, tt := range tests {
			if got := est.(Regressor).Predict([]float64{0, tt.x}, 1)[0]; got != tt.want {
				t.Errorf("missing left %v: x=%v predicts %v, want %v", missingLeft, tt.x, got, tt.want)
			}
		}
	}
}

// FuzzHistTreeNodes flips bytes of a real categorical model's first
// predictor: building must fail cleanly or give trees whose walks end in
// range, whatever the node array says.
func FuzzHistTreeNodes(f *testing.F) {
	f.Add(0, []byte{0xff})
	f.Add(12, []byte{7})
	f.Add(51, []byte{1})
	f.Add(52, []byte{0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, at int, patch []byte) {
		v, err := pickle.Load(filepath.Join(treeFixtures, "hgb_categorical_binary.joblib"), pickle.Options{Allow: allowed})
		if err != nil {
			t.Fatal(err)
		}
		preds, _ := v.(*pickle.Object).Attr("_predictors")
		tree := preds.(*pickle.List).Items[0].(*pickle.List).Items[0].(*pickle.Object)
		nodes, _ := tree.Attr("nodes")
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
		X := []float64{3, 0.5, 1, -1, math.NaN(), math.Inf(1), -2, 1e300, 300, 0, 2.5, math.NaN()}
		if p := c.PredictProba(X, 3); len(p) != 6 {
			t.Fatalf("%d probabilities for 3 rows", len(p))
		}
	})
}
