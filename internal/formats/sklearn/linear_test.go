package sklearn

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// Hand-built pickle values, shaped like the decoder's output for sklearn 1.2 files.

// f8 is a little-endian float64 array ('<f8') of the given shape.
func f8(shape []int, v ...float64) *pickle.NDArray {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'f', ItemSize: 8}, Shape: shape, Data: b}
}

// i8 is a little-endian int64 array ('<i8').
func i8(v ...int64) *pickle.NDArray {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'i', ItemSize: 8}, Shape: []int{len(v)}, Data: b}
}

// strs is an object array of str, as sklearn stores string labels and
// feature_names_in_.
func strs(v ...string) *pickle.NDArray {
	objs := make([]any, len(v))
	for i, s := range v {
		objs[i] = s
	}
	return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{len(v)}, Objects: objs}
}

// obj builds an instance of a fully qualified class with attributes given as
// name, value pairs.
func obj(class string, attrs ...any) *pickle.Object {
	dot := strings.LastIndex(class, ".")
	o := &pickle.Object{Module: class[:dot], Name: class[dot+1:], State: &pickle.Dict{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		o.State.(*pickle.Dict).Set(attrs[i].(string), attrs[i+1])
	}
	return o
}

// with returns a copy of o with attributes replaced (a nil-valued "-name" pair
// deletes name).
func with(o *pickle.Object, attrs ...any) *pickle.Object {
	c := &pickle.Object{Module: o.Module, Name: o.Name, State: &pickle.Dict{}}
	src := o.State.(*pickle.Dict)
	dst := c.State.(*pickle.Dict)
	for i, k := range src.Keys {
		dst.Set(k, src.Values[i])
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		name := attrs[i].(string)
		if strings.HasPrefix(name, "-") {
			name = name[1:]
			for j, k := range dst.Keys {
				if k == name {
					dst.Keys = append(dst.Keys[:j], dst.Keys[j+1:]...)
					dst.Values = append(dst.Values[:j], dst.Values[j+1:]...)
					break
				}
			}
			continue
		}
		dst.Set(name, attrs[i+1])
	}
	return c
}

const (
	logRegClass = "sklearn.linear_model._logistic.LogisticRegression"
	linRegClass = "sklearn.linear_model._base.LinearRegression"
	ridgeClass  = "sklearn.linear_model._ridge.Ridge"
)

// logReg is a fitted LogisticRegression over two features.
func logReg(multiClass string, classes *pickle.NDArray, coef *pickle.NDArray, intercept any) *pickle.Object {
	return obj(logRegClass,
		"multi_class", multiClass, "solver", "lbfgs", "n_features_in_", int64(2),
		"classes_", classes, "coef_", coef, "intercept_", intercept)
}

func buildOK(t *testing.T, o *pickle.Object) any {
	t.Helper()
	est, err := build(o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return est
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-15 }

// TestLogisticProbabilities checks each probability mode on decision values whose
// probabilities are known in closed form.
func TestLogisticProbabilities(t *testing.T) {
	ln3 := math.Log(3)
	tests := []struct {
		name  string
		model *pickle.Object
		x     []float64
		want  []float64
		index int
	}{
		{"binary ovr at zero", logReg("auto", i8(0, 1), f8([]int{1, 2}, 1, 0), f8([]int{1}, 0)), []float64{0, 5}, []float64{0.5, 0.5}, 0},
		{"binary ovr", logReg("ovr", i8(0, 1), f8([]int{1, 2}, 1, 0), f8([]int{1}, 0)), []float64{ln3, 0}, []float64{0.25, 0.75}, 1},
		{"binary intercept", logReg("auto", i8(0, 1), f8([]int{1, 2}, 0, 0), f8([]int{1}, -ln3)), []float64{7, 7}, []float64{0.75, 0.25}, 0},
		// softmax(-d, d) with d = ln3/2 is (1/4, 3/4), the same as the sigmoid of 2d.
		{"binary multinomial", logReg("multinomial", i8(0, 1), f8([]int{1, 2}, 0.5, 0), f8([]int{1}, 0)), []float64{ln3, 0}, []float64{0.25, 0.75}, 1},
		// decisions (0, ln2, ln5) → softmax (1, 2, 5)/8.
		{"multinomial", logReg("multinomial", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, 0, 1), f8([]int{3}, 0, 0, 0)), []float64{math.Log(2), math.Log(5)}, []float64{0.125, 0.25, 0.625}, 2},
		// auto with lbfgs and 3 classes is multinomial.
		{"auto multiclass", logReg("auto", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, 0, 1), f8([]int{3}, 0, 0, 0)), []float64{math.Log(2), math.Log(5)}, []float64{0.125, 0.25, 0.625}, 2},
		// decisions (0, ln3, -ln3) → sigmoids (1/2, 3/4, 1/4) → normalised (1/3, 1/2, 1/6).
		{"ovr multiclass", logReg("ovr", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, -1, 0), f8([]int{3}, 0, 0, 0)), []float64{ln3, 0}, []float64{1.0 / 3, 0.5, 1.0 / 6}, 1},
		{"auto newton-cholesky is ovr", with(logReg("auto", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, -1, 0), f8([]int{3}, 0, 0, 0)), "solver", "newton-cholesky"), []float64{ln3, 0}, []float64{1.0 / 3, 0.5, 1.0 / 6}, 1},
		{"sklearn 1.5 default is multinomial", logReg("deprecated", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, 0, 1), f8([]int{3}, 0, 0, 0)), []float64{math.Log(2), math.Log(5)}, []float64{0.125, 0.25, 0.625}, 2},
		{"auto liblinear is ovr", with(logReg("auto", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, -1, 0), f8([]int{3}, 0, 0, 0)), "solver", "liblinear"), []float64{ln3, 0}, []float64{1.0 / 3, 0.5, 1.0 / 6}, 1},
		// A tie between the two largest decisions goes to the first, as np.argmax.
		{"tie", logReg("ovr", i8(0, 1, 2), f8([]int{3, 2}, 0, 0, 1, 0, 1, 0), f8([]int{3}, 0, 0, 0)), []float64{ln3, 0}, []float64{0.25, 0.375, 0.375}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := buildOK(t, tc.model).(Classifier)
			got := c.PredictProba(tc.x, 1)
			for i := range tc.want {
				if !near(got[i], tc.want[i]) {
					t.Fatalf("proba = %v, want %v", got, tc.want)
				}
			}
			if idx := c.(IndexPredictor).PredictIndex(tc.x, 1); idx[0] != tc.index {
				t.Errorf("index %d, want %d", idx[0], tc.index)
			}
		})
	}
}

// TestLogisticPredictIsDecisionSign: for two classes predict is decision > 0,
// so a decision of exactly zero is class 0 even though both probabilities are 0.5.
func TestLogisticPredictIsDecisionSign(t *testing.T) {
	c := buildOK(t, logReg("auto", i8(3, 9), f8([]int{1, 2}, 1, -1), f8([]int{1}, 0))).(*logisticRegression)
	X := []float64{2, 2, 2, 1, 1, 2, math.MaxFloat64, -math.MaxFloat64}
	got := c.PredictIndex(X, 4)
	want := []int{0, 1, 0, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("indices %v, want %v", got, want)
		}
	}
}

func TestArgmaxLikeNumpy(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		v    []float64
		want int
	}{
		{[]float64{1, 3, 2}, 1},
		{[]float64{3, 3, 2}, 0},
		{[]float64{1, nan, 5}, 1},
		{[]float64{nan, nan}, 0},
		{[]float64{math.Inf(-1), math.Inf(-1)}, 0},
	}
	for _, tc := range tests {
		if got := argmax(tc.v); got != tc.want {
			t.Errorf("argmax(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

// TestPairwiseSum compares against numpy on inputs where the order of additions
// changes the result (1e16 absorbs small addends); the wanted values are
// np.array([v]).sum(axis=1) from numpy 1.24.
func TestPairwiseSum(t *testing.T) {
	big := 1e16
	zeros := func(n int) []float64 { return make([]float64, n) }
	cat := func(parts ...[]float64) []float64 {
		var out []float64
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		v    []float64
		want float64
	}{
		{"left to right below 8", []float64{1, big, -big}, 0},
		{"left to right, other order", []float64{big, -big, 1}, 1},
		{"8 accumulators", []float64{big, 1, 1, 1, 1, 1, 1, 1, -big}, 6},
		{"halves above 128", cat(zeros(200), []float64{big, 2, -big}), 2},
		{"halves apart", cat([]float64{big}, zeros(199), []float64{-big, 3}), 4},
		{"empty", nil, 0},
	}
	for _, tc := range tests {
		if got := pairwiseSum(tc.v); got != tc.want {
			t.Errorf("%s: pairwiseSum = %v, numpy %v", tc.name, got, tc.want)
		}
	}
}

func TestLinearRegressors(t *testing.T) {
	tests := []struct {
		name   string
		model  *pickle.Object
		x      []float64
		want   []float64
		twoDim bool
	}{
		{"single target", obj(linRegClass, "n_features_in_", int64(2), "coef_", f8([]int{2}, 2, 3), "intercept_", 1.5), []float64{1, 10}, []float64{33.5}, false},
		{"numpy scalar intercept", obj(ridgeClass, "coef_", f8([]int{2}, 2, 3), "intercept_", f8(nil, -1)), []float64{1, 1}, []float64{4}, false},
		{"column target", obj(linRegClass, "coef_", f8([]int{1, 2}, 2, 3), "intercept_", f8([]int{1}, 1)), []float64{1, 1}, []float64{6}, true},
		{"multi target", obj(ridgeClass, "coef_", f8([]int{3, 2}, 1, 0, 0, 1, 1, 1), "intercept_", f8([]int{3}, 10, 20, 30)), []float64{1, 2}, []float64{11, 22, 33}, true},
		{"multi target scalar intercept", obj(ridgeClass, "coef_", f8([]int{2, 2}, 1, 0, 0, 1), "intercept_", 0.0), []float64{4, 5}, []float64{4, 5}, true},
		{"int64 intercept", obj(linRegClass, "coef_", f8([]int{1}, 1), "intercept_", int64(2)), []float64{4}, []float64{6}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := buildOK(t, tc.model).(Regressor)
			if r.NumTargets() != len(tc.want) {
				t.Fatalf("NumTargets %d, want %d", r.NumTargets(), len(tc.want))
			}
			got := r.Predict(tc.x, 1)
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("predict = %v, want %v", got, tc.want)
				}
			}
			if r.(columnPredictor).predicts2D() != tc.twoDim {
				t.Errorf("predicts2D = %v, want %v", !tc.twoDim, tc.twoDim)
			}
		})
	}
}

// TestBuildLinearRejectsMalformed: a file whose attributes do not fit together is
// a load error that says what is wrong, never a panic.
func TestBuildLinearRejectsMalformed(t *testing.T) {
	good := logReg("auto", i8(0, 1, 2), f8([]int{3, 2}, 1, 2, 3, 4, 5, 6), f8([]int{3}, 0, 0, 0))
	if _, err := build(good); err != nil {
		t.Fatalf("the unmodified model does not build: %v", err)
	}
	truncated := f8([]int{3, 2}, 1, 2, 3, 4, 5, 6)
	truncated.Data = truncated.Data[:20]
	tests := []struct {
		name  string
		model *pickle.Object
		want  string
	}{
		{"missing coef_", with(good, "-coef_", nil), "attribute coef_ is missing"},
		{"missing intercept_", with(good, "-intercept_", nil), "attribute intercept_ is missing"},
		{"missing classes_", with(good, "-classes_", nil), "attribute classes_ is missing"},
		{"missing multi_class", with(good, "-multi_class", nil), "attribute multi_class is missing"},
		{"coef_ not an array", with(good, "coef_", "abc"), "coef_: want an array, got str"},
		{"coef_ of strings", with(good, "coef_", strs("a", "b")), "want a numeric array"},
		{"coef_ 3-D", with(good, "coef_", f8([]int{3, 1, 2}, 1, 2, 3, 4, 5, 6)), "want 1 or 2 dimensions"},
		{"coef_ vector", with(good, "coef_", f8([]int{2}, 1, 2), "intercept_", f8([]int{1}, 0)), "coef_ is a vector"},
		{"coef_ rows vs classes", with(good, "coef_", f8([]int{2, 2}, 1, 2, 3, 4), "intercept_", f8([]int{2}, 0, 0)), "coef_ has 2 rows for 3 classes, want 3"},
		{"coef_ width vs n_features_in_", with(good, "coef_", f8([]int{3, 1}, 1, 2, 3)), "coef_ has 1 features but n_features_in_ is 2"},
		{"coef_ empty", with(good, "coef_", f8([]int{3, 0})), "no features"},
		{"coef_ truncated", with(good, "coef_", truncated), "holds only 20 bytes"},
		{"coef_ negative shape", with(good, "coef_", f8([]int{-3, 2})), "invalid array shape"},
		{"coef_ huge shape", with(good, "coef_", f8([]int{1 << 30, 1 << 30})), "invalid array shape"},
		{"coef_ huge item size", with(good, "coef_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'f', ItemSize: 1 << 62}, Shape: []int{3, 2}, Data: make([]byte, 8)}), "holds only 8 bytes"},
		{"coef_ without dtype", with(good, "coef_", &pickle.NDArray{Shape: []int{3, 2}}), "array has no dtype"},
		{"object coef_ short", with(good, "coef_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O'}, Shape: []int{3, 2}, Objects: []any{1.0}}), "holds 1 elements"},
		{"intercept_ length", with(good, "intercept_", f8([]int{2}, 0, 0)), "intercept_ has shape [2], want [3]"},
		{"intercept_ 2-D", with(good, "intercept_", f8([]int{3, 1}, 0, 0, 0)), "intercept_ has shape [3 1]"},
		{"intercept_ string", with(good, "intercept_", "zero"), "intercept_: want a number or an array, got str"},
		{"one class", with(good, "classes_", i8(4), "coef_", f8([]int{1, 2}, 1, 2), "intercept_", f8([]int{1}, 0)), "1 classes, want at least 2"},
		{"classes_ 2-D", with(good, "classes_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'i', ItemSize: 8}, Shape: []int{3, 1}, Data: make([]byte, 24)}), "classes_ has shape [3 1]"},
		{"classes_ of mixed objects", with(good, "classes_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O'}, Shape: []int{3}, Objects: []any{"a", 1.5, "c"}}), "classes_"},
		{"n_features_in_ not an int", with(good, "n_features_in_", "two"), "n_features_in_: want a positive integer"},
		{"n_features_in_ zero", with(good, "n_features_in_", int64(0)), "n_features_in_: want a positive integer"},
		{"unknown multi_class", with(good, "multi_class", "crammer_singer"), `multi_class "crammer_singer"`},
		{"multi_class not a string", with(good, "multi_class", int64(1)), "multi_class: want a string"},
		{"no state", &pickle.Object{Module: "sklearn.linear_model._logistic", Name: "LogisticRegression"}, "attribute"},
		{"regressor coef_ vs n_features_in_", obj(ridgeClass, "n_features_in_", int64(3), "coef_", f8([]int{2}, 1, 2), "intercept_", 0.0), "n_features_in_ is 3"},
		{"regressor intercept_ length", obj(ridgeClass, "coef_", f8([]int{2, 2}, 1, 2, 3, 4), "intercept_", f8([]int{3}, 1, 2, 3)), "intercept_ has shape [3], want [2]"},
		{"regressor intercept_ None", obj(linRegClass, "coef_", f8([]int{2}, 1, 2), "intercept_", nil), "got None"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.model)
			if err == nil {
				t.Fatal("built")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.model.Name+": ") {
				t.Errorf("error %q does not start with the class name", err)
			}
		})
	}
}

// TestDecisionFunctionBits compares the decision function with sklearn's
// decision_function on the classifier fixtures: the dot products follow
// OpenBLAS's summation order, so on the machine that wrote the fixtures they agree
// to the bit.
func TestDecisionFunctionBits(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.expected.json"))
	checked := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var fx struct {
			X        [][]jsonFloat   `json:"X"`
			Decision json.RawMessage `json:"decision"`
			Files    []string        `json:"files"`
		}
		if err := json.Unmarshal(b, &fx); err != nil {
			t.Fatal(err)
		}
		if fx.Decision == nil {
			continue
		}
		v, err := pickle.Load(filepath.Join(fixtureDir, fx.Files[0]), pickle.Options{Allow: allowed})
		if err != nil {
			t.Fatal(err)
		}
		var f *linearFunction
		switch est := buildOK(t, v.(*pickle.Object)).(type) {
		case *logisticRegression:
			f = est.f
		case *linearClassifier:
			f = est.f
		default:
			continue // a pipeline: its decision is on transformed input
		}
		checked++
		var want []float64
		for _, x := range flattenJSON(t, fx.Decision) {
			want = append(want, anyFloat(t, x))
		}
		X := numbers(fx.X)
		got := make([]float64, len(fx.X)*f.nOutputs)
		f.eval(X, len(fx.X), got)
		exact := 0
		for i := range want {
			if got[i] == want[i] {
				exact++
			} else if !closeEnough(got[i], want[i]) {
				t.Errorf("%s: decision[%d] = %v, sklearn %v", fx.Files[0], i, got[i], want[i])
			}
		}
		t.Logf("%s: decision bit-exact %d/%d", fx.Files[0], exact, len(want))
	}
	if checked < 10 {
		t.Errorf("only %d linear classifier fixtures have a decision function", checked)
	}
}

const (
	linearSVCClass       = "sklearn.svm._classes.LinearSVC"
	ridgeClassifierClass = "sklearn.linear_model._ridge.RidgeClassifier"
)

func ridgeClassifier(yType string, classes *pickle.NDArray) *pickle.Object {
	lb := obj("sklearn.preprocessing._label.LabelBinarizer", "neg_label", int64(-1), "pos_label", int64(1),
		"sparse_output", false, "y_type_", yType, "sparse_input_", false, "classes_", classes)
	return obj(ridgeClassifierClass, "n_features_in_", int64(2), "coef_", f8([]int{1, 2}, 1, -1),
		"intercept_", 0.0, "_label_binarizer", lb)
}

func TestLinearClassifiers(t *testing.T) {
	svc := obj(linearSVCClass, "n_features_in_", int64(2), "classes_", strs("lo", "mid", "hi"),
		"coef_", f8([]int{3, 2}, 1, 0, 0, 1, -1, -1), "intercept_", f8([]int{3}, 0, 0, 0))
	tests := []struct {
		name  string
		model *pickle.Object
		x     []float64
		want  []int
	}{
		{"LinearSVC argmax", svc, []float64{2, 1, 1, 2, -1, -1}, []int{0, 1, 2}},
		{"RidgeClassifier sign", ridgeClassifier("binary", i8(4, 8)), []float64{2, 1, 1, 2, 1, 1}, []int{1, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			est := buildOK(t, tc.model)
			if _, ok := est.(Classifier); ok {
				t.Fatal("a decision-only classifier offers predict_proba")
			}
			lp := est.(LabelPredictor)
			got := lp.PredictIndex(tc.x, len(tc.want))
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("indices %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestBuildLinearClassifierRejectsMalformed(t *testing.T) {
	tests := []struct {
		name  string
		model *pickle.Object
		want  string
	}{
		{"multilabel", ridgeClassifier("multilabel-indicator", i8(0, 1)), "multilabel-indicator targets are not supported"},
		{"no binarizer", with(ridgeClassifier("binary", i8(0, 1)), "-_label_binarizer", nil), "attribute _label_binarizer is missing"},
		{"binarizer not an object", with(ridgeClassifier("binary", i8(0, 1)), "_label_binarizer", "x"), "want a LabelBinarizer, got str"},
		{"binarizer without classes", with(ridgeClassifier("binary", i8(0, 1)), "_label_binarizer", obj("sklearn.preprocessing._label.LabelBinarizer", "y_type_", "binary")), "_label_binarizer: attribute classes_ is missing"},
		{"svc rows vs classes", obj(linearSVCClass, "classes_", i8(0, 1, 2), "coef_", f8([]int{1, 2}, 1, 2), "intercept_", f8([]int{1}, 0)), "coef_ has 1 rows for 3 classes, want 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.model)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestLabelsFromObjectArrays: classes_ stored as an object array keep their
// elements' type, as sklearn's predict returns them.
func TestLabelsFromObjectArrays(t *testing.T) {
	objs := func(v ...any) *pickle.NDArray {
		return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{len(v)}, Objects: v}
	}
	tests := []struct {
		name string
		arr  *pickle.NDArray
		want Labels
		err  bool
	}{
		{"str", objs("a", "b"), Labels{Strings: []string{"a", "b"}}, false},
		{"bytes", objs([]byte("a"), []byte("b")), Labels{Strings: []string{"a", "b"}}, false},
		{"int", objs(int64(3), int64(5)), Labels{Ints: []int64{3, 5}}, false},
		{"float", objs(1.0, 2.5), Labels{Floats: []float64{1, 2.5}}, false},
		{"bool", objs(false, true), Labels{Bools: []bool{false, true}}, false},
		{"bool and int", objs(false, int64(1)), Labels{}, true},
		{"str and int", objs("a", int64(1)), Labels{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LabelsFromArray(tc.arr)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error: %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("labels %+v, want %+v", got, tc.want)
			}
		})
	}
}

func sgdClassifier(loss string, classes *pickle.NDArray, coef *pickle.NDArray, intercept *pickle.NDArray) *pickle.Object {
	return obj("sklearn.linear_model._stochastic_gradient.SGDClassifier", "loss", loss, "n_features_in_", int64(2),
		"classes_", classes, "coef_", coef, "intercept_", intercept,
		"loss_function_", &pickle.Object{Module: "sklearn.linear_model._sgd_fast", Name: "Hinge", Args: []any{1.0}})
}

// TestSGDClassifierByLoss: the loss decides whether there is a predict_proba and
// what it is. Decisions are chosen so the answers are exact.
func TestSGDClassifierByLoss(t *testing.T) {
	three := func(loss string) *pickle.Object {
		// decisions for x = (a, b): (a, b, -3)
		return sgdClassifier(loss, i8(0, 1, 2), f8([]int{3, 2}, 1, 0, 0, 1, 0, 0), f8([]int{3}, 0, 0, -3))
	}
	tests := []struct {
		name  string
		model *pickle.Object
		x     []float64
		proba []float64 // nil: no predict_proba
		index int
	}{
		// (clip(d)+1)/2 = (1, 0.75, 0) → normalised by 1.75.
		{"modified huber", three("modified_huber"), []float64{4, 0.5}, []float64{1 / 1.75, 0.75 / 1.75, 0}, 0},
		// Every decision ≤ -1: uniform, not 0/0.
		{"modified huber all clipped", three("modified_huber"), []float64{-2, -5}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, 0},
		{"modified huber binary", sgdClassifier("modified_huber", i8(0, 1), f8([]int{1, 2}, 1, 0), f8([]int{1}, 0)), []float64{0.5, 9}, []float64{0.25, 0.75}, 1},
		// OvR sigmoids (1/2, 1/2, expit(-3)) normalised.
		{"log loss", three("log_loss"), []float64{0, 0}, []float64{0.5 / (1 + expit(-3)), 0.5 / (1 + expit(-3)), expit(-3) / (1 + expit(-3))}, 0},
		{"hinge", three("hinge"), []float64{0, 1}, nil, 1},
		{"perceptron", three("perceptron"), []float64{0, -1}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			est := buildOK(t, tc.model)
			c, isClassifier := est.(Classifier)
			if isClassifier != (tc.proba != nil) {
				t.Fatalf("offers predict_proba: %v, want %v", isClassifier, tc.proba != nil)
			}
			if c != nil {
				got := c.PredictProba(tc.x, 1)
				for i := range tc.proba {
					if !near(got[i], tc.proba[i]) {
						t.Fatalf("proba %v, want %v", got, tc.proba)
					}
				}
			}
			if idx := est.(IndexPredictor).PredictIndex(tc.x, 1); idx[0] != tc.index {
				t.Errorf("index %d, want %d", idx[0], tc.index)
			}
		})
	}
	if _, err := build(with(three("hinge"), "loss", "quantile")); err == nil || !strings.Contains(err.Error(), `loss "quantile"`) {
		t.Errorf("unknown loss: err = %v", err)
	}
}
