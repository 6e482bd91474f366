package sklearn

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// served builds a hand-made pickle value into a model.
func served(t *testing.T, v *pickle.Object, cfg formats.Config) *estimatorModel {
	t.Helper()
	m, err := newModelFromValue(v, cfg)
	if err != nil {
		t.Fatalf("newModel: %v", err)
	}
	return m
}

func rows(p int, v ...float64) *tensor.Tensor {
	return &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{int64(len(v) / p), int64(p)}, Data: v}
}

func predict(t *testing.T, m model.Model, in ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	outs, err := m.Predict(context.Background(), in)
	if err != nil {
		t.Fatalf("predict: %v", err)
	}
	return outs
}

func spec(name string, dt tensor.Datatype, shape ...int64) model.TensorSpec {
	return model.TensorSpec{Name: name, Datatype: dt, Shape: shape}
}

func TestModelMetadata(t *testing.T) {
	ridge3 := obj(ridgeClass, "coef_", f8([]int{3, 2}, 1, 0, 0, 1, 1, 1), "intercept_", f8([]int{3}, 0, 0, 0))
	tests := []struct {
		name    string
		model   *pickle.Object
		outputs []model.TensorSpec
	}{
		{"int labels", binaryLogReg(), []model.TensorSpec{spec("predict", tensor.Int64, -1), spec("predict_proba", tensor.FP64, -1, 2)}},
		{"string labels", with(binaryLogReg(), "classes_", strs("no", "yes")), []model.TensorSpec{spec("predict", tensor.Bytes, -1), spec("predict_proba", tensor.FP64, -1, 2)}},
		{"float labels", with(binaryLogReg(), "classes_", f8([]int{2}, 0.5, 1.5)), []model.TensorSpec{spec("predict", tensor.FP64, -1), spec("predict_proba", tensor.FP64, -1, 2)}},
		{"bool labels", with(binaryLogReg(), "classes_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'b', ItemSize: 1}, Shape: []int{2}, Data: []byte{0, 1}}), []model.TensorSpec{spec("predict", tensor.Bool, -1), spec("predict_proba", tensor.FP64, -1, 2)}},
		{"decision-only classifier", obj(linearSVCClass, "classes_", i8(0, 1), "coef_", f8([]int{1, 2}, 1, 2), "intercept_", f8([]int{1}, 0)), []model.TensorSpec{spec("predict", tensor.Int64, -1)}},
		{"decision-only classifier in a pipeline", pipe("s", standardScaler2(true, true), "svc", ridgeClassifier("binary", strs("a", "b"))), []model.TensorSpec{spec("predict", tensor.Bytes, -1)}},
		{"regressor", obj(linRegClass, "coef_", f8([]int{2}, 1, 2), "intercept_", 0.0), []model.TensorSpec{spec("predict", tensor.FP64, -1)}},
		{"regressor on a column", obj(linRegClass, "coef_", f8([]int{1, 2}, 1, 2), "intercept_", f8([]int{1}, 0)), []model.TensorSpec{spec("predict", tensor.FP64, -1, 1)}},
		{"multi-target regressor", ridge3, []model.TensorSpec{spec("predict", tensor.FP64, -1, 3)}},
		{"pipeline classifier", pipe("s", standardScaler2(true, true), "clf", binaryLogReg()), []model.TensorSpec{spec("predict", tensor.Int64, -1), spec("predict_proba", tensor.FP64, -1, 2)}},
		{"transformer pipeline", pipe("s", standardScaler2(true, true), "m", minMaxScaler2(false)), []model.TensorSpec{spec("transform", tensor.FP64, -1, 2)}},
		{"bare transformer", minMaxScaler2(true), []model.TensorSpec{spec("transform", tensor.FP64, -1, 2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			meta := served(t, tc.model, formats.Config{}).Metadata()
			want := model.Metadata{
				Platform: "sklearn",
				Inputs:   []model.TensorSpec{spec("input", tensor.FP64, -1, 2)},
				Outputs:  tc.outputs,
				Features: []string{"feature1", "feature2"},
			}
			if !reflect.DeepEqual(meta, want) {
				t.Errorf("metadata\n got %+v\nwant %+v", meta, want)
			}
		})
	}
}

func TestModelConfig(t *testing.T) {
	named := with(binaryLogReg(), "feature_names_in_", strs("amount", "age"))
	tests := []struct {
		name     string
		model    *pickle.Object
		cfg      formats.Config
		outputs  []string
		features []string
		err      string
	}{
		{"defaults", binaryLogReg(), formats.Config{}, []string{"predict", "predict_proba"}, []string{"feature1", "feature2"}, ""},
		{"rename both", binaryLogReg(), formats.Config{Outputs: []string{"label", "scores"}}, []string{"label", "scores"}, []string{"feature1", "feature2"}, ""},
		{"rename first", binaryLogReg(), formats.Config{Outputs: []string{"label"}}, []string{"label", "predict_proba"}, []string{"feature1", "feature2"}, ""},
		{"too many outputs", binaryLogReg(), formats.Config{Outputs: []string{"a", "b", "c"}}, nil, nil, "config names 3 outputs but the model has 2 (predict, predict_proba)"},
		{"empty output name", binaryLogReg(), formats.Config{Outputs: []string{""}}, nil, nil, "config output 1 has an empty name"},
		{"duplicate output", binaryLogReg(), formats.Config{Outputs: []string{"predict_proba"}}, nil, nil, `two outputs "predict_proba"`},
		{"file features", named, formats.Config{}, []string{"predict", "predict_proba"}, []string{"amount", "age"}, ""},
		{"file features win", named, formats.Config{Features: []string{"f1", "f2"}}, []string{"predict", "predict_proba"}, []string{"amount", "age"}, ""},
		{"config features checked even when the file's win", named, formats.Config{Features: []string{"f1"}}, nil, nil, "config lists 1 features but the model takes 2"},
		{"config features", binaryLogReg(), formats.Config{Features: []string{"a", "b"}}, []string{"predict", "predict_proba"}, []string{"a", "b"}, ""},
		{"config features too few", binaryLogReg(), formats.Config{Features: []string{"a"}}, nil, nil, "config lists 1 features but the model takes 2"},
		{"file features too many", with(binaryLogReg(), "feature_names_in_", strs("a", "b", "c")), formats.Config{}, nil, nil, "feature_names_in_ lists 3 features but the model takes 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newModelFromValue(tc.model, tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			meta := m.Metadata()
			var outs []string
			for _, o := range meta.Outputs {
				outs = append(outs, o.Name)
			}
			if !reflect.DeepEqual(outs, tc.outputs) || !reflect.DeepEqual(meta.Features, tc.features) {
				t.Errorf("outputs %v features %v; want %v %v", outs, meta.Features, tc.outputs, tc.features)
			}
			got := predict(t, m, rows(2, 1, 2))
			for i, o := range got {
				if o.Name != tc.outputs[i] {
					t.Errorf("output %d named %q, want %q", i, o.Name, tc.outputs[i])
				}
			}
		})
	}
}

func TestPredictRejectsBadInput(t *testing.T) {
	m := served(t, binaryLogReg(), formats.Config{})
	good := rows(2, 1, 2)
	tests := []struct {
		name   string
		inputs []*tensor.Tensor
		want   string
	}{
		{"no input", nil, `want 1 input tensor "input", got 0`},
		{"two inputs", []*tensor.Tensor{good, good}, "got 2"},
		{"nil input", []*tensor.Tensor{nil}, "want 1 input tensor"},
		{"rank 1", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{2}, Data: []float64{1, 2}}}, "want shape [n, 2], got [2]"},
		{"rank 3", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 1, 2}, Data: []float64{1, 2}}}, "want shape [n, 2], got [1 1 2]"},
		{"too wide", []*tensor.Tensor{rows(3, 1, 2, 3)}, "want shape [n, 2], got [1 3]"},
		{"short data", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{2, 2}, Data: []float64{1, 2}}}, "needs 4 elements, got 2"},
		{"negative rows", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{-1, 2}, Data: []float64{1, 2}}}, "invalid shape"},
		{"data type mismatch", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []int32{1, 2}}}, "does not match datatype"},
		{"strings", []*tensor.Tensor{{Name: "input", Datatype: tensor.Bytes, Shape: []int64{1, 2}, Data: [][]byte{{'a'}, {'b'}}}}, "not numeric"},
		{"NaN", []*tensor.Tensor{rows(2, 1, 2, math.NaN(), 0)}, `input row 1, feature "feature1" (column 0) is NaN`},
		{"Inf", []*tensor.Tensor{rows(2, 1, math.Inf(-1))}, `input row 0, feature "feature2" (column 1) is infinite, which the model does not accept`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Predict(context.Background(), tc.inputs)
			if !errors.Is(err, model.ErrInvalidInput) {
				t.Fatalf("err = %v, want an invalid-input error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestPredictNonFinite follows sklearn: scalers let NaN through (and the step
// after them decides), nothing here accepts ±Inf, and a value a step makes
// infinite is caught before the next step, naming both steps.
func TestPredictNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	huge := with(minMaxScaler2(false), "scale_", f8([]int{2}, 1e300, 1))
	tests := []struct {
		name  string
		model *pickle.Object
		x     []float64
		err   string // "" when the input is accepted
	}{
		{"scaler passes NaN", standardScaler2(true, true), []float64{nan, 1}, ""},
		{"scaler rejects Inf", standardScaler2(true, true), []float64{inf, 1}, `input row 0, feature "feature1" (column 0) is infinite`},
		{"transform pipeline passes NaN", pipe("s", standardScaler2(true, true), "m", minMaxScaler2(true)), []float64{1, nan}, ""},
		{"classifier after scaler rejects NaN", pipe("s", standardScaler2(true, true), "clf", binaryLogReg()), []float64{1, nan}, `step "s" made column 1 NaN, which step "clf" does not accept`},
		{"overflow between steps", pipe("mm", huge, "clf", binaryLogReg()), []float64{1e10, 1}, `step "mm" made column 0 infinite, which step "clf" does not accept`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := served(t, tc.model, formats.Config{})
			outs, err := m.Predict(context.Background(), []*tensor.Tensor{rows(2, tc.x...)})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if y := outs[0].Data.([]float64); !math.IsNaN(y[0]) && !math.IsNaN(y[1]) {
					t.Errorf("transform = %v, want NaN to pass through", y)
				}
				return
			}
			if !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want an invalid-input error containing %q", err, tc.err)
			}
		})
	}
}

// TestPredictAnyNumericInput: integer, float32 and bool inputs give the same
// answer as the same values in float64.
func TestPredictAnyNumericInput(t *testing.T) {
	m := served(t, with(binaryLogReg(), "classes_", i8(3, 9)), formats.Config{})
	want := predict(t, m, rows(2, 1, 0, 0, 1))
	inputs := []*tensor.Tensor{
		{Name: "input", Datatype: tensor.Int32, Shape: []int64{2, 2}, Data: []int32{1, 0, 0, 1}},
		{Name: "input", Datatype: tensor.Int64, Shape: []int64{2, 2}, Data: []int64{1, 0, 0, 1}},
		{Name: "input", Datatype: tensor.FP32, Shape: []int64{2, 2}, Data: []float32{1, 0, 0, 1}},
		{Name: "input", Datatype: tensor.Uint8, Shape: []int64{2, 2}, Data: []uint8{1, 0, 0, 1}},
		{Name: "input", Datatype: tensor.Bool, Shape: []int64{2, 2}, Data: []bool{true, false, false, true}},
	}
	for _, in := range inputs {
		got := predict(t, m, in)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s input: %v %v, want %v %v", in.Datatype, got[0].Data, got[1].Data, want[0].Data, want[1].Data)
		}
	}
	// Labels are classes_ values, not indices: decision 1-0+0.5 > 0 → 9.
	if got := want[0].Data.([]int64); !reflect.DeepEqual(got, []int64{9, 3}) {
		t.Errorf("labels %v, want [9 3]", got)
	}
}

func TestPredictZeroRows(t *testing.T) {
	m := served(t, binaryLogReg(), formats.Config{})
	outs := predict(t, m, &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{0, 2}, Data: []float64{}})
	if !reflect.DeepEqual(outs[0].Shape, []int64{0}) || !reflect.DeepEqual(outs[1].Shape, []int64{0, 2}) {
		t.Errorf("shapes %v %v", outs[0].Shape, outs[1].Shape)
	}
	for _, o := range outs {
		if err := o.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestPredictCancelled(t *testing.T) {
	m := served(t, binaryLogReg(), formats.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Predict(ctx, []*tensor.Tensor{rows(2, 1, 2)}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// fakeClassifier stands for a classifier without IndexPredictor (a tree
// ensemble): predict is then the first argmax of its probabilities.
type fakeClassifier struct {
	proba   []float64 // per row, repeated
	classes Labels
	short   bool // return too few probabilities, as a buggy estimator might
}

func (f *fakeClassifier) NumFeatures() int { return 1 }
func (f *fakeClassifier) Classes() Labels  { return f.classes }
func (f *fakeClassifier) PredictProba(X []float64, n int) []float64 {
	var out []float64
	for i := 0; i < n; i++ {
		out = append(out, f.proba...)
	}
	if f.short {
		return out[:len(out)-1]
	}
	return out
}

func TestPredictGenericClassifier(t *testing.T) {
	c := &fakeClassifier{proba: []float64{0.25, 0.375, 0.375}, classes: Labels{Strings: []string{"a", "b", "c"}}}
	m, err := newModel(c, nil, formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	outs := predict(t, m, rows(1, 7, 8))
	if got := outs[0].Data.([][]byte); string(got[0]) != "b" || string(got[1]) != "b" {
		t.Errorf("labels %q, want the first of the tied maxima, b", got)
	}
	c.short = true
	if _, err := m.Predict(context.Background(), []*tensor.Tensor{rows(1, 7)}); err == nil || errors.Is(err, model.ErrInvalidInput) {
		t.Errorf("err = %v, want an internal error for a short probability matrix", err)
	}
}

func TestNewModelRejects(t *testing.T) {
	if _, err := newModel(struct{}{}, nil, formats.Config{}); err == nil {
		t.Error("newModel accepted a value that is no estimator")
	}
	if _, err := newModel(&fakeClassifier{}, nil, formats.Config{}); err == nil {
		t.Error("newModel accepted a classifier without classes")
	}
}

// TestPredictConcurrent: one model serves many goroutines with the same answers
// (run under -race to check for shared mutable state).
func TestPredictConcurrent(t *testing.T) {
	m := loadFile(t, filepath.Join(fixtureDir, "pipe_std_lr.joblib"), formats.Config{})
	in := rows(4, 1, 1000, -3, 2, 0.5, 900, -2.9, 1, -1, 1100, -3.1, 3)
	want := predict(t, m, in)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				got, err := m.Predict(context.Background(), []*tensor.Tensor{in})
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want) {
					errs <- errors.New("concurrent predict gave a different answer")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func benchmarkPredict1Row(b *testing.B, file string) {
	m := loadFile(b, filepath.Join(fixtureDir, file), formats.Config{})
	p := m.Metadata().Inputs[0].Shape[1]
	x := make([]float64, p)
	for i := range x {
		x[i] = 0.5 + float64(i)
	}
	in := []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, p}, Data: x}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Predict(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPredictLogReg1Row is the tutorial's request: one row through the
// fraud LogisticRegression, through the model.Model interface.
func BenchmarkPredictLogReg1Row(b *testing.B) { benchmarkPredict1Row(b, "lr_fraud.joblib") }

// BenchmarkPredictPipeline is one row through StandardScaler → multinomial
// LogisticRegression.
func BenchmarkPredictPipeline(b *testing.B) { benchmarkPredict1Row(b, "pipe_std_lr.joblib") }
