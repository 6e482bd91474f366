package sklearn

import (
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// fixture is one case written by testdata/gen_linear.py: the model files (the
// same estimator in several serialisations), the input and sklearn's outputs.
type fixture struct {
	Class        string          `json:"class"`
	NFeatures    int             `json:"n_features"`
	FeatureNames []string        `json:"feature_names"`
	X            [][]jsonFloat   `json:"X"`
	Predict      json.RawMessage `json:"predict"`
	LabelType    string          `json:"label_type"`
	PredictProba [][]jsonFloat   `json:"predict_proba"`
	Transform    [][]jsonFloat   `json:"transform"`
	Files        []string        `json:"files"`
}

const fixtureDir = "testdata/linear"

// jsonFloat is a fixture number: a JSON number, or "NaN", "Infinity" or
// "-Infinity" as gen_linear.py writes values strict JSON cannot hold.
type jsonFloat float64

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseFloat(s, 64)
		*f = jsonFloat(v)
		return err
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = jsonFloat(v)
	return err
}

// anyFloat is a decoded fixture value as a number ("NaN" and the like included).
func anyFloat(t testing.TB, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err == nil {
			return f
		}
	}
	t.Fatalf("fixture value %v is not a number", v)
	return 0
}

// numbers converts nested fixture rows to one flat slice.
func numbers(rows [][]jsonFloat) []float64 {
	var out []float64
	for _, r := range rows {
		for _, x := range r {
			out = append(out, float64(x))
		}
	}
	return out
}

func readFixtures(t testing.TB) map[string]*fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.expected.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in %s (run testdata/gen_linear.py): %v", fixtureDir, err)
	}
	out := map[string]*fixture{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{}
		if err := json.Unmarshal(b, f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".expected.json")] = f
	}
	return out
}

func loadFile(t testing.TB, path string, cfg formats.Config) model.Model {
	t.Helper()
	rt, ok := formats.Lookup("sklearn")
	if !ok {
		t.Fatal("sklearn runtime is not registered")
	}
	m, err := rt.Loader.Load(context.Background(), path, cfg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return m
}

func matrixTensor(rows [][]jsonFloat) *tensor.Tensor {
	return &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{int64(len(rows)), int64(len(rows[0]))}, Data: numbers(rows)}
}

// closeEnough is the promise: within 1e-12 relative, or 1e-15 absolute for
// values near zero (1 - p for p close to 1 loses all relative precision).
func closeEnough(got, want float64) bool {
	d := math.Abs(got - want)
	return d <= 1e-15 || d <= 1e-12*math.Abs(want)
}

// compareFloats compares got against want and reports mismatches and how many
// values are bit-for-bit sklearn's.
func compareFloats(t *testing.T, what string, got, want []float64) (exact int, maxRel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] == want[i] || (math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			exact++
			continue
		}
		if want[i] != 0 {
			maxRel = math.Max(maxRel, math.Abs(got[i]-want[i])/math.Abs(want[i]))
		}
		if !closeEnough(got[i], want[i]) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d] = %v, sklearn %v", what, i, got[i], want[i])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d values differ", what, bad)
	}
	return exact, maxRel
}

// flattenJSON turns a JSON list (or list of lists) into a flat list of values.
func flattenJSON(t *testing.T, raw json.RawMessage) []any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []any
	var walk func(any)
	walk = func(v any) {
		if l, ok := v.([]any); ok {
			for _, x := range l {
				walk(x)
			}
			return
		}
		out = append(out, v)
	}
	walk(v)
	return out
}

// TestFixtures loads every fixture in every serialisation and compares the
// model's outputs with sklearn's.
func TestFixtures(t *testing.T) {
	fixtures := readFixtures(t)
	for name, fx := range fixtures {
		for _, file := range fx.Files {
			t.Run(file, func(t *testing.T) {
				m := loadFile(t, filepath.Join(fixtureDir, file), formats.Config{})
				meta := m.Metadata()
				if meta.Platform != "sklearn" {
					t.Errorf("platform %q", meta.Platform)
				}
				if got := meta.Inputs[0].Shape; !reflect.DeepEqual(got, []int64{-1, int64(fx.NFeatures)}) {
					t.Errorf("input shape %v, want [-1 %d]", got, fx.NFeatures)
				}
				wantFeatures := fx.FeatureNames
				if wantFeatures == nil {
					for i := 1; i <= fx.NFeatures; i++ {
						wantFeatures = append(wantFeatures, "feature"+strconv.Itoa(i))
					}
				}
				if !reflect.DeepEqual(meta.Features, wantFeatures) {
					t.Errorf("features %v, want %v", meta.Features, wantFeatures)
				}
				outs, err := m.Predict(context.Background(), []*tensor.Tensor{matrixTensor(fx.X)})
				if err != nil {
					t.Fatal(err)
				}
				if len(outs) != len(meta.Outputs) {
					t.Fatalf("%d outputs, metadata says %d", len(outs), len(meta.Outputs))
				}
				for i, o := range outs {
					if err := o.Validate(); err != nil {
						t.Errorf("output %d: %v", i, err)
					}
					if o.Name != meta.Outputs[i].Name || o.Datatype != meta.Outputs[i].Datatype {
						t.Errorf("output %d is %s %s, metadata says %s %s", i, o.Name, o.Datatype, meta.Outputs[i].Name, meta.Outputs[i].Datatype)
					}
				}
				n := len(fx.X)
				switch {
				case fx.PredictProba != nil:
					checkLabels(t, fx, outs[0])
					exact, rel := compareFloats(t, "predict_proba", outs[1].Data.([]float64), numbers(fx.PredictProba))
					t.Logf("%s: predict_proba bit-exact %d/%d, max relative error %.2g", name, exact, n*len(fx.PredictProba[0]), rel)
				case fx.LabelType != "": // a classifier without predict_proba
					if len(outs) != 1 {
						t.Fatalf("%d outputs, want predict only", len(outs))
					}
					checkLabels(t, fx, outs[0])
				case fx.Transform != nil:
					if outs[0].Name != "transform" {
						t.Errorf("output %q, want transform", outs[0].Name)
					}
					want := numbers(fx.Transform)
					exact, rel := compareFloats(t, "transform", outs[0].Data.([]float64), want)
					t.Logf("%s: transform bit-exact %d/%d, max relative error %.2g", name, exact, len(want), rel)
					if wantShape := []int64{int64(n), int64(len(fx.Transform[0]))}; !reflect.DeepEqual(outs[0].Shape, wantShape) {
						t.Errorf("transform shape %v, want %v", outs[0].Shape, wantShape)
					}
				default:
					var want []float64
					for _, v := range flattenJSON(t, fx.Predict) {
						want = append(want, anyFloat(t, v))
					}
					exact, rel := compareFloats(t, "predict", outs[0].Data.([]float64), want)
					t.Logf("%s: predict bit-exact %d/%d, max relative error %.2g", name, exact, len(want), rel)
					wantShape := []int64{int64(n)}
					if fx.Predict[1] == '[' { // sklearn returned a 2-D array
						wantShape = append(wantShape, int64(len(want)/n))
					}
					if !reflect.DeepEqual(outs[0].Shape, wantShape) {
						t.Errorf("predict shape %v, want %v", outs[0].Shape, wantShape)
					}
				}
			})
		}
	}
}

func checkLabels(t *testing.T, fx *fixture, out *tensor.Tensor) {
	t.Helper()
	want := flattenJSON(t, fx.Predict)
	if int64(len(want)) != out.Shape[0] || len(out.Shape) != 1 {
		t.Fatalf("predict shape %v for %d rows", out.Shape, len(want))
	}
	for i, w := range want {
		var got any
		switch fx.LabelType {
		case "int":
			got = float64(out.Data.([]int64)[i]) // JSON numbers decode as float64
		case "float":
			got = out.Data.([]float64)[i]
		case "str":
			got = string(out.Data.([][]byte)[i])
		case "bool":
			got = out.Data.([]bool)[i]
		default:
			t.Fatalf("label type %q", fx.LabelType)
		}
		if got != w {
			t.Fatalf("predict[%d] = %v, sklearn %v", i, got, w)
		}
	}
}

// TestLoadTutorialModel: the tutorial's model.pkl (joblib.dump to a .pkl name)
// answers with the tutorial's feature names and integer labels.
func TestLoadTutorialModel(t *testing.T) {
	m := loadFile(t, filepath.Join(fixtureDir, "model.pkl"), formats.Config{})
	meta := m.Metadata()
	if !reflect.DeepEqual(meta.Features, []string{"feature1", "feature2"}) {
		t.Errorf("features %v", meta.Features)
	}
	in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{1.0, 2.0}}
	outs, err := m.Predict(context.Background(), []*tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Datatype != tensor.Int64 || len(outs[0].Data.([]int64)) != 1 {
		t.Errorf("predict = %s %v", outs[0].Datatype, outs[0].Data)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := os.ReadFile(filepath.Join(fixtureDir, "lr_fraud.p4.pkl"))
	if err != nil {
		t.Fatal(err)
	}
	// pickle.dumps(os.system) under protocol 2 names posix.system.
	evil := []byte("\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"os.system payload", "evil.pkl", evil, `refusing to load "posix.system": not an allowed class`},
		{"truncated", "trunc.pkl", good[:len(good)/2], "load "},
		{"not an estimator", "list.pkl", []byte("\x80\x04]\x94."), "not a scikit-learn estimator"},
		{"empty", "empty.pkl", nil, "load "},
	}
	rt, _ := formats.Lookup("sklearn")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.file, tc.data)
			_, err := rt.Loader.Load(context.Background(), p, formats.Config{})
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "load "+p+": ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting %q and containing %q", msg, "load "+p+": ", tc.want)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := rt.Loader.Load(ctx, filepath.Join(fixtureDir, "model.pkl"), formats.Config{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// TestLoadBitFlips: corrupting a valid file anywhere gives an error or a model,
// never a panic.
func TestLoadBitFlips(t *testing.T) {
	dir := t.TempDir()
	rt, _ := formats.Lookup("sklearn")
	for _, name := range []string{"pipe_std_lr.p4.pkl", "lr_ovr_strings.joblib"} {
		good, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		for i := 0; i < len(good); i += 3 {
			b := append([]byte(nil), good...)
			b[i] ^= 0x5a
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := rt.Loader.Load(context.Background(), p, formats.Config{})
			if err != nil {
				continue
			}
			// A flip in a coefficient still loads; it must still predict safely.
			x := make([]float64, 3*m.Metadata().Inputs[0].Shape[1])
			in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{3, m.Metadata().Inputs[0].Shape[1]}, Data: x}
			if _, err := m.Predict(context.Background(), []*tensor.Tensor{in}); err != nil && !errors.Is(err, model.ErrInvalidInput) {
				t.Logf("flip at %d: predict: %v", i, err)
			}
		}
	}
}

// FuzzBuildModel feeds mutated fixture files through the decoder, the builders and
// one predict: whatever the bytes, the result is an error or a working model,
// never a panic. Run with: go test -fuzz FuzzBuildModel -fuzztime 20s
func FuzzBuildModel(f *testing.F) {
	for _, name := range []string{"lr_fraud.p2.pkl", "lr_ovr_strings.p4.pkl", "pipe_nested_none.p5.pkl", "ridge_multi.joblib", "pipe_minmax_clip_ridge.p4.pkl", "gaussian_nb.p4.pkl", "bernoulli_nb.p4.pkl",
		// Every builder added with the ensembles, transformers, SVMs and neighbours.
		"voting_soft.p4.pkl", "bagging_trees.p4.pkl", "stacking_binary.p4.pkl", "adaboost_binary.p4.pkl",
		"calibrated_svc_sigmoid.p4.pkl", "calibrated_lr_isotonic.p4.pkl", "svc_poly_multiclass.p4.pkl", "svr_rbf.p4.pkl",
		"knn_manhattan.p4.pkl", "ct_index_onehot_lr.p4.pkl", "ordinal_nan_unknown.p4.pkl", "feature_union.p4.pkl",
		"poly3.p4.pkl", "kbins_onehot_dense_quantile.p4.pkl", "power_box_cox.p4.pkl", "quantile_normal.p4.pkl",
		"normalizer_l2.p4.pkl", "binarizer.p4.pkl", "ttr_standard_ridge.p4.pkl", "ttr_box_cox_tree.p4.pkl", "ttr_quantile_normal_tree.p4.pkl"} {
		b, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// IsolationForest and an XGBoost wrapper, decompressed so that mutations
	// reach the pickle and the builders rather than the zlib stream.
	for _, path := range []string{"testdata/iforest/iforest_small.joblib", "testdata/xgb/xgb_binary.joblib"} {
		z, err := os.Open(path)
		if err != nil {
			f.Fatal(err)
		}
		zr, err := zlib.NewReader(z)
		if err != nil {
			f.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		z.Close()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	// String columns: encoders and imputers of strings, ordinal levels out of
	// order, a ColumnTransformer mixing numbers and strings.
	for _, name := range []string{"ct_ordinal_lr.joblib", "impute_frequent_onehot_drop.joblib", "impute_marker_infrequent.joblib", "ordinal_given_order.joblib"} {
		b, err := os.ReadFile(filepath.Join(mixedDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := pickle.LoadBytes(data, pickle.Options{Allow: allowed})
		if err != nil {
			return
		}
		m, err := newModelFromValue(v, formats.Config{})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		ins := fuzzInputs(m.Metadata())
		if ins == nil {
			return // a forged width this large is valid but not worth a predict here
		}
		if _, err := m.Predict(context.Background(), ins); err != nil && !errors.Is(err, model.ErrInvalidInput) {
			t.Logf("predict: %v", err)
		}
	})
}

// A class that is not built, but whose model can be served another way, is
// refused with that way.
func TestRefusalSaysTheAlternative(t *testing.T) {
	mod, name := "sklearn.neural_network._multilayer_perceptron", "MLPClassifier"
	q := []byte{0x80, 4, 0x8c, byte(len(mod))}
	q = append(append(q, mod...), 0x8c, byte(len(name)))
	q = append(append(q, name...), 0x93, ')', 0x81, '.') // STACK_GLOBAL, EMPTY_TUPLE, NEWOBJ, STOP
	path := filepath.Join(t.TempDir(), "mlp.pkl")
	if err := os.WriteFile(path, q, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loader{}.Load(context.Background(), path, formats.Config{})
	if err == nil || !strings.Contains(err.Error(), "not an allowed class; export it to ONNX (skl2onnx's to_onnx) and serve the .onnx file") {
		t.Fatalf("error %v", err)
	}
}

// refusedAfter loads the fixture at path, lets edit forge its estimator,
// builds it and checks that the build fails with one line containing want:
// the shape of every "rejects malformed" test of a builder.
func refusedAfter(t *testing.T, path string, edit func(o *pickle.Object), want string) {
	t.Helper()
	v, err := pickle.Load(path, pickle.Options{Allow: allowed})
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(*pickle.Object)
	edit(obj)
	_, err = build(obj)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %v, want one line with %q", err, want)
	}
}

// fuzzInputs is a two-row request for a built model: zeros in its matrix, or
// per column zeros and strings (one known to no model, one missing).
func fuzzInputs(md model.Metadata) []*tensor.Tensor {
	if len(md.Inputs) > 1<<12 {
		return nil
	}
	if in := md.Inputs[0]; len(in.Shape) == 2 {
		p := in.Shape[1]
		if p > 1<<16 {
			return nil
		}
		return []*tensor.Tensor{{Name: in.Name, Datatype: tensor.FP64, Shape: []int64{2, p}, Data: make([]float64, 2*p)}}
	}
	var out []*tensor.Tensor
	for _, in := range md.Inputs {
		t := &tensor.Tensor{Name: in.Name, Datatype: in.Datatype, Shape: []int64{2}}
		if in.Datatype == tensor.Bytes {
			t.Data = [][]byte{[]byte("never-seen"), nil}
		} else {
			t.Data = make([]float64, 2)
		}
		out = append(out, t)
	}
	return out
}
