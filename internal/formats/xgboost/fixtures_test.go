package xgboost

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/tensor"
)

// The fixtures in testdata are written by gen_xgboost.py with Debian's
// python3-xgboost 1.7.4: models and XGBoost's own outputs on 1000 rows each.

type dataset struct {
	Rows int    `json:"rows"`
	Cols int    `json:"cols"`
	Data string `json:"data"`
}

type expectation struct {
	Model       string `json:"model"`
	Dataset     string `json:"dataset"`
	Objective   string `json:"objective"`
	Groups      int    `json:"groups"`
	Margin      string `json:"margin"`
	Predict     string `json:"predict"`
	PredictCols int    `json:"predict_cols"`
}

func readJSONFile(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// float32sFromBase64 decodes the fixtures' little-endian float32 arrays.
func float32sFromBase64(t testing.TB, s string) []float32 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw)%4 != 0 {
		t.Fatalf("bad float32 array: %v (%d bytes)", err, len(raw))
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func loadDataset(t testing.TB, name string) (X []float32, rows, cols int) {
	t.Helper()
	var d dataset
	readJSONFile(t, filepath.Join("testdata", "X_"+name+".json"), &d)
	X = float32sFromBase64(t, d.Data)
	if len(X) != d.Rows*d.Cols {
		t.Fatalf("dataset %s: %d values for %d×%d", name, len(X), d.Rows, d.Cols)
	}
	return X, d.Rows, d.Cols
}

// ulps is the distance between two float32s in units in the last place.
func ulps(a, b float32) int64 {
	ia, ib := int64(int32(math.Float32bits(a))), int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}

// maxTransformULPs bounds how far the transformed outputs (sigmoid, softmax,
// exp) may differ from XGBoost's: Go's exp rounded to float32 against glibc's
// expf. Margins, the model's own arithmetic, must match exactly.
const maxTransformULPs = 2

func TestFixtures(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.expect.json"))
	if err != nil || len(paths) < 20 {
		t.Fatalf("want at least 20 fixtures, found %d (%v)", len(paths), err)
	}
	for _, p := range paths {
		var e expectation
		readJSONFile(t, p, &e)
		X, rows, cols := loadDataset(t, e.Dataset)
		if rows < 1000 || countNaN(X) < rows/10 {
			t.Fatalf("dataset %s: %d rows with %d NaN; the fixtures promise ≥ 1000 rows with missing values", e.Dataset, rows, countNaN(X))
		}
		wantMargin := float32sFromBase64(t, e.Margin)
		wantPredict := float32sFromBase64(t, e.Predict)
		if len(wantMargin) != rows*e.Groups || len(wantPredict) != rows*e.PredictCols {
			t.Fatalf("%s: %d margins and %d predictions for %d rows", p, len(wantMargin), len(wantPredict), rows)
		}
		files := []string{e.Model}
		if ubj := strings.TrimSuffix(e.Model, ".json") + ".ubj"; fileExists(filepath.Join("testdata", ubj)) {
			files = append(files, ubj)
		}
		for _, file := range files {
			t.Run(file, func(t *testing.T) {
				m, err := loader{}.Load(context.Background(), filepath.Join("testdata", file), formats.Config{})
				if err != nil {
					t.Fatal(err)
				}
				bm := m.(*boosterModel)
				if got := bm.b.obj.name; got != e.Objective {
					t.Fatalf("objective %q, want %q", got, e.Objective)
				}
				in := &tensor.Tensor{Name: "input", Datatype: tensor.FP32, Shape: []int64{int64(rows), int64(cols)}, Data: X}
				outs, err := m.Predict(context.Background(), []*tensor.Tensor{in})
				if err != nil {
					t.Fatal(err)
				}
				margin := outs[len(outs)-1].Data.([]float32)
				checkMargins(t, margin, wantMargin, e.Groups)
				checkTransform(t, bm.b.obj, margin, wantPredict, e.Groups, e.PredictCols)
				checkServedOutputs(t, bm, outs, margin, wantPredict, rows)
			})
		}
	}
}

func countNaN(X []float32) int {
	n := 0
	for _, x := range X {
		if x != x {
			n++
		}
	}
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkMargins requires every margin to have XGBoost's exact bits.
func checkMargins(t *testing.T, got, want []float32, groups int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d margins, want %d", len(got), len(want))
	}
	bad := 0
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if bad < 5 {
				t.Errorf("row %d group %d: margin %v (%#08x), XGBoost %v (%#08x)", i/groups, i%groups,
					got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d margins differ from XGBoost's", bad, len(want))
	}
}

// checkTransform compares the objective's transform of the margins with
// XGBoost's predict().
func checkTransform(t *testing.T, obj objective, margin, want []float32, groups, cols int) {
	t.Helper()
	rows := len(margin) / groups
	got := make([]float32, groups)
	var worst int64
	exact := 0
	for r := 0; r < rows; r++ {
		obj.transform(margin[r*groups:(r+1)*groups], got)
		for c := 0; c < cols; c++ {
			d := ulps(got[c], want[r*cols+c])
			if d == 0 {
				exact++
			}
			if d > worst {
				worst = d
			}
			if d > maxTransformULPs {
				t.Fatalf("row %d: predict[%d] = %v, XGBoost %v (%d ulps apart)", r, c, got[c], want[r*cols+c], d)
			}
		}
	}
	t.Logf("predict(): %d of %d values bit-exact, worst %d ulp", exact, rows*cols, worst)
}

// checkServedOutputs checks what the model serves against XGBoost's predict():
// classes and probabilities for classifiers, the prediction for regressors.
func checkServedOutputs(t *testing.T, m *boosterModel, outs []*tensor.Tensor, margin, want []float32, rows int) {
	t.Helper()
	for i, o := range outs {
		if o.Name != m.meta.Outputs[i].Name {
			t.Fatalf("output %d is %q, want %q", i, o.Name, m.meta.Outputs[i].Name)
		}
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		if o.Shape[0] != int64(rows) {
			t.Fatalf("output %q has shape %v for %d rows", o.Name, o.Shape, rows)
		}
	}
	if m.nClasses == 0 {
		pred := outs[0].Data.([]float32)
		for i := range want {
			if d := ulps(pred[i], want[i]); d > maxTransformULPs {
				t.Fatalf("value %d: predict %v, XGBoost %v", i, pred[i], want[i])
			}
		}
		return
	}
	labels := outs[0].Data.([]int64)
	proba := outs[1].Data.([]float32)
	k := m.nClasses
	for r := 0; r < rows; r++ {
		row := proba[r*k : (r+1)*k]
		var sum float64
		for _, p := range row {
			sum += float64(p)
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("row %d: probabilities %v sum to %v", r, row, sum)
		}
		var wantLabel int64
		switch m.b.obj.out {
		case outSigmoid: // XGBoost predicts p; XGBClassifier's class is p > 0.5
			if d := ulps(row[1], want[r]); d > maxTransformULPs {
				t.Fatalf("row %d: p = %v, XGBoost %v", r, row[1], want[r])
			}
			if want[r] > 0.5 {
				wantLabel = 1
			}
		case outIdentity: // binary:logitraw predicts the margin
			if margin[r] > 0 {
				wantLabel = 1
			}
		case outHinge, outArgmax: // XGBoost predicts the class itself
			wantLabel = int64(want[r])
		case outSoftmax:
			for c, p := range row {
				if d := ulps(p, want[r*k+c]); d > maxTransformULPs {
					t.Fatalf("row %d: proba[%d] = %v, XGBoost %v", r, c, p, want[r*k+c])
				}
			}
			wantLabel = int64(argmax(want[r*k : (r+1)*k]))
		}
		if labels[r] != wantLabel {
			t.Fatalf("row %d: class %d, want %d (probabilities %v)", r, labels[r], wantLabel, row)
		}
	}
}
