package sklearn

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// IsolationForest and OneClassSVM against scikit-learn 1.2 (testdata/gen_iforest.py): predict
// exactly; score_samples and decision_function within 1e-15 of the score (the path
// lengths sum exactly as sklearn's; only the final power of 2 and the
// logarithm of the leaves' sample counts come from Go's math, not the C
// library's). Four models: defaults, a contamination offset with a feature
// subsample, tiny samples, bootstrap; and a one-class SVM with an RBF kernel.
func TestOutlierDetectorsMatchSklearn(t *testing.T) {
	raw, err := os.ReadFile("testdata/iforest/iforest.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		X      [][]float64
		Models []struct {
			File             string
			ScoreSamples     []float64 `json:"score_samples"`
			DecisionFunction []float64 `json:"decision_function"`
			Predict          []int64
			Offset           float64
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	n := len(doc.X)
	X := make([]float64, 0, n*len(doc.X[0]))
	for _, row := range doc.X {
		X = append(X, row...)
	}
	for _, want := range doc.Models {
		t.Run(want.File, func(t *testing.T) {
			m, err := loader{}.Load(context.Background(), "testdata/iforest/"+want.File, formats.Config{})
			if err != nil {
				t.Fatal(err)
			}
			md := m.Metadata()
			names := []string{md.Outputs[0].Name, md.Outputs[1].Name, md.Outputs[2].Name}
			if !reflect.DeepEqual(names, []string{"predict", "score_samples", "decision_function"}) || md.Outputs[0].Datatype != tensor.Int64 {
				t.Fatalf("outputs %v", md.Outputs)
			}
			in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{int64(n), int64(len(doc.X[0]))}, Data: X}
			out, err := m.Predict(context.Background(), []*tensor.Tensor{in})
			if err != nil {
				t.Fatal(err)
			}
			if got := out[0].Data.([]int64); !reflect.DeepEqual(got, want.Predict) {
				t.Errorf("predict differs from sklearn's")
			}
			outliers := 0
			for _, p := range want.Predict {
				if p == -1 {
					outliers++
				}
			}
			worst := 0.0
			// Errors are measured against the score's size: decision_function
			// subtracts offset_ (about -0.5) from scores near it, which
			// magnifies a last-bit difference of the score.
			for k, wantValues := range [][]float64{want.ScoreSamples, want.DecisionFunction} {
				got := out[1+k].Data.([]float64)
				for i, w := range wantValues {
					rel := math.Abs(got[i]-w) / math.Abs(want.ScoreSamples[i])
					worst = math.Max(worst, rel)
					if rel > 1e-15 {
						t.Fatalf("%s row %d: %.17g, sklearn %.17g", names[1+k], i, got[i], w)
					}
				}
			}
			t.Logf("%d rows, %d outliers; worst relative difference %.2g", n, outliers, worst)
			if outliers == 0 || outliers == n {
				t.Errorf("the fixture tells nothing apart: %d outliers of %d", outliers, n)
			}
		})
	}
}

// sklearn's check_array refuses NaN and infinities for IsolationForest.
func TestIsolationForestRefusesMissingValues(t *testing.T) {
	m, err := loader{}.Load(context.Background(), "testdata/iforest/iforest_small.joblib", formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 5}, Data: []float64{0, 0, math.NaN(), 0, 0}}
	_, err = m.Predict(context.Background(), []*tensor.Tensor{in})
	if !isInvalid(err) || !strings.Contains(err.Error(), `feature "feature3" (column 2) is NaN`) {
		t.Fatalf("NaN input: %v", err)
	}
}

func isInvalid(err error) bool { return errors.Is(err, model.ErrInvalidInput) }

func TestAveragePathLength(t *testing.T) {
	for n, want := range map[float64]float64{0: 0, 1: 0, 2: 1, 3: 2*(math.Log(2)+eulerGamma) - 2.0*2/3} {
		if got := averagePathLength(n); got != want {
			t.Errorf("c(%v) = %v, want %v", n, got, want)
		}
	}
}

// A forged IsolationForest is refused at load with the attribute named, never
// a model that could index out of range.
func TestIsolationForestRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      func(obj *pickle.Object) any
		want       string
	}{
		{"iforest_small.joblib", "_max_features", func(*pickle.Object) any { return int64(9) }, "_max_features 9 out of range"},
		{"iforest_small.joblib", "max_samples_", func(*pickle.Object) any { return int64(0) }, "invalid max_samples_ 0"},
		{"iforest_small.joblib", "offset_", func(*pickle.Object) any { return "x" }, "offset_"},
		{"iforest_small.joblib", "estimators_features_", func(o *pickle.Object) any {
			items, _ := o.Items("estimators_features_")
			return &pickle.List{Items: items[1:]}
		}, "estimators_features_ has 24 entries for 25 trees"},
		{"iforest_contamination.joblib", "estimators_features_", func(o *pickle.Object) any {
			items, _ := o.Items("estimators_features_")
			bad := *items[0].(*pickle.NDArray)
			bad.Data = append([]byte(nil), bad.Data...)
			bad.Data[0] = 77 // feature 77 of 5
			return &pickle.List{Items: append([]any{&bad}, items[1:]...)}
		}, "estimators_features_[0]: feature 77 out of range"},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			refusedAfter(t, "testdata/iforest/"+tc.file, func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value(o)) }, tc.want)
		})
	}
}
