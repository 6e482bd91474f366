package sklearn

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/xgboost"
	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// XGBoost's scikit-learn wrappers against XGBoost 1.7.4 and sklearn 1.2.1
// (testdata/gen_xgb_wrappers.py): regression predictions bit for bit
// (XGBoost's float32, widened), probabilities within the XGBoost runtime's
// promise (margins exact, the sigmoid or softmax within 2 float32 ulps), labels
// exactly, with missing values,
// early stopping (predict uses the best iteration), a random forest and a
// pipeline ending in the wrapper.
func TestXGBoostWrappersMatchXGBoost(t *testing.T) {
	raw, err := os.ReadFile("testdata/xgb/xgb.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			File         string
			X            [][]jsonFloat
			Predict      []jsonFloat
			PredictProba [][]jsonFloat `json:"predict_proba"`
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) != 6 {
		t.Fatalf("%d cases", len(doc.Cases))
	}
	for _, c := range doc.Cases {
		t.Run(c.File, func(t *testing.T) {
			m, err := loader{}.Load(context.Background(), "testdata/xgb/"+c.File, formats.Config{})
			if err != nil {
				t.Fatal(err)
			}
			n, p := len(c.X), len(c.X[0])
			X := make([]float64, 0, n*p)
			missing := 0
			for _, row := range c.X {
				for _, v := range row {
					X = append(X, float64(v))
					if math.IsNaN(float64(v)) {
						missing++
					}
				}
			}
			in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{int64(n), int64(p)}, Data: X}
			out, err := m.Predict(context.Background(), []*tensor.Tensor{in})
			if err != nil {
				t.Fatal(err)
			}
			exact := 0
			if c.PredictProba != nil {
				labels := out[0].Data.([]int64)
				proba := out[1].Data.([]float64)
				k := len(c.PredictProba[0])
				for i := range c.PredictProba {
					if labels[i] != int64(c.Predict[i]) {
						t.Fatalf("row %d: label %d, xgboost %v", i, labels[i], c.Predict[i])
					}
					for j, w := range c.PredictProba[i] {
						// Within maxXGBTransformULPs float32 ulps: the transform's
						// exp is Go's, XGBoost's is glibc's expf.
						d := float32ULPs(float32(proba[i*k+j]), float32(w))
						if d > maxXGBTransformULPs {
							t.Fatalf("row %d proba[%d]: %v, xgboost %v (%d ulps)", i, j, proba[i*k+j], w, d)
						}
						if d == 0 {
							exact++
						}
					}
				}
			} else {
				pred := out[0].Data.([]float64)
				for i, w := range c.Predict {
					if pred[i] != float64(w) {
						t.Fatalf("row %d: %v, xgboost %v", i, pred[i], w)
					}
				}
			}
			t.Logf("%d rows (%d missing values); %d probabilities bit-exact, the rest within %d ulps", n, missing, exact, maxXGBTransformULPs)
		})
	}
}

// Infinities and values beyond float32 are a 422, as XGBoost refuses them; a
// missing-value marker other than NaN is refused at load.
func TestXGBoostWrapperRefusals(t *testing.T) {
	m, err := loader{}.Load(context.Background(), "testdata/xgb/xgb_binary.joblib", formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[float64]string{math.Inf(1): "is infinite", 1e300: "too large for float32"} {
		X := []float64{0, 0, v, 0, 0, 0}
		in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 6}, Data: X}
		if _, err := m.Predict(context.Background(), []*tensor.Tensor{in}); !isInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want a 422 saying %q", v, err, want)
		}
	}
}

// maxXGBTransformULPs is the XGBoost runtime's bound on transformed outputs.
const maxXGBTransformULPs = 2

func float32ULPs(a, b float32) int64 {
	d := int64(int32(math.Float32bits(a))) - int64(int32(math.Float32bits(b)))
	if d < 0 {
		d = -d
	}
	return d
}

// The booster's decoding is charged to the load's budget: a budget that holds
// the pickle but not the booster's decoding refuses the load.
func TestXGBoostWrapperChargesItsBooster(t *testing.T) {
	path := "testdata/xgb/xgb_multiclass.joblib"
	if _, err := (loader{}).Load(context.Background(), path, formats.Config{Memory: loadmem.New(64 << 20)}); err != nil {
		t.Fatalf("a roomy budget: %v", err)
	}
	v, err := pickle.Load(path, pickle.Options{Allow: allowed})
	if err != nil {
		t.Fatal(err)
	}
	n := boosterBytes(v)
	if n < 10_000 {
		t.Fatalf("boosterBytes = %d, want the booster's ~12 KB snapshot", n)
	}
	_, err = loader{}.Load(context.Background(), path, formats.Config{Memory: loadmem.New(xgboost.SnapshotCost(n))})
	if !errors.Is(err, loadmem.ErrExceeded) || !strings.Contains(err.Error(), "pickled XGBoost boosters") {
		t.Fatalf("a budget below the booster's decoding: %v", err)
	}
}

// Forged or unsupported wrappers are refused at load, by attribute.
func TestXGBoostWrapperRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      any
		want       string
	}{
		{"xgb_binary.joblib", "missing", 0.0, "missing=0: only NaN as the missing-value marker is supported"},
		{"xgb_binary.joblib", "_Booster", "nope", "_Booster"},
		{"xgb_binary.joblib", "n_features_in_", int64(9), "the booster has 6 features but n_features_in_ is 9"},
		{"xgb_multiclass.joblib", "classes_", nil, "classes_"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, "testdata/xgb/"+tc.file, func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value) }, tc.want)
		})
	}
	// A booster whose bytes are not a snapshot.
	v, _ := pickle.Load("testdata/xgb/xgb_binary.joblib", pickle.Options{Allow: allowed})
	b, _ := v.(*pickle.Object).Object("_Booster")
	b.Attrs().Set("handle", []byte("binf\x00\x00old format"))
	if _, err := build(v); err == nil || !strings.Contains(err.Error(), "not a JSON or UBJSON snapshot") {
		t.Fatalf("old binary booster: %v", err)
	}
}
