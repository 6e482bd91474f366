package xgboost

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

func loadFixture(t testing.TB, name string, cfg formats.Config) *boosterModel {
	t.Helper()
	m, err := loader{}.Load(context.Background(), filepath.Join("testdata", name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*boosterModel)
}

func TestRegistered(t *testing.T) {
	rt, ok := formats.Lookup("xgboost")
	if !ok {
		t.Fatal("format xgboost is not registered")
	}
	for _, p := range []string{"m.ubj", "model.XGB"} {
		got, err := formats.ForFile(p)
		if err != nil || got.Format != "xgboost" {
			t.Errorf("ForFile(%q) = %q, %v; want xgboost", p, got.Format, err)
		}
	}
	if _, err := rt.Loader.Load(context.Background(), filepath.Join("testdata", "reg_squarederror.ubj"), formats.Config{}); err != nil {
		t.Fatal(err)
	}
	_, err := rt.Loader.Load(context.Background(), filepath.Join("testdata", "missing.json"), formats.Config{})
	if err == nil || !strings.HasPrefix(err.Error(), "load testdata/missing.json: ") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestLegacyBinaryFile loads a model that XGBoost 1.7 saved in its old binary
// format: the error says which file and how to convert it.
func TestLegacyBinaryFile(t *testing.T) {
	path := filepath.Join("testdata", "legacy_binary.model")
	_, err := loader{}.Load(context.Background(), path, formats.Config{})
	want := "load " + path + ": this is XGBoost's old binary model format, which Tide does not read; " +
		`load it in XGBoost and re-save it as JSON with model.save_model("model.json")`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
}

// TestConcurrentPredict shares one model between goroutines, as the server
// does; each must get the answers a lone caller gets.
func TestConcurrentPredict(t *testing.T) {
	m := loadFixture(t, "multi_softprob.json", formats.Config{})
	X, rows, cols := loadDataset(t, "dense")
	predict := func(r int) []float32 {
		in := &tensor.Tensor{Name: "input", Datatype: tensor.FP32, Shape: []int64{1, int64(cols)}, Data: X[r*cols : (r+1)*cols]}
		outs, err := m.Predict(context.Background(), []*tensor.Tensor{in})
		if err != nil {
			t.Error(err)
			return nil
		}
		return outs[1].Data.([]float32)
	}
	want := make([][]float32, rows)
	for r := range want {
		want[r] = predict(r)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := g; r < rows; r += 3 {
				if got := predict(r); !reflect.DeepEqual(got, want[r]) {
					t.Errorf("row %d: %v, alone %v", r, got, want[r])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMatchesName(t *testing.T) {
	for name, want := range map[string]bool{
		"xgboost.json": true, "/m/1/churn.xgboost.json": true, "Model.XGBoost.JSON": true,
		"model.ubj": true, "model.xgb": true,
		"model.json": false, "xgboost.txt": false, "myxgboost.json": false, "model.pkl": false,
	} {
		if got := MatchesName(name); got != want {
			t.Errorf("MatchesName(%q) = %v, want %v", name, got, want)
		}
	}
}

// Any .json or .ubj that is an XGBoost model is found by its content, whatever
// its name; other JSON files, and files that are not regular, are left alone.
func TestMatchesFileByContent(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fifo := filepath.Join(dir, "pipe.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		write("model.json", read("binary_logistic.json")):                    true,
		write("churn.ubj", read("binary_logistic.ubj")):                      true,
		write("pretty.json", []byte("{\n  \"learner\": {}}")):                true,
		write("spaced.JSON", []byte(` { "learner" : {} }`)):                  true,
		write("int8key.json", append([]byte{'{', 'i', 7}, "learner{}}"...)):  true,
		write("config.json", []byte(`{"model": "binary_logistic", "x": 1}`)): false,
		write("data.json", read("X_dense.json")):                             false,
		write("learner.txt", []byte(`{"learner": {}}`)):                      false,
		write("empty.json", nil):                                             false,
		fifo:                                                                 false,
		filepath.Join(dir, "missing.json"):                                   false,
	} {
		if got := MatchesFile(path); got != want {
			t.Errorf("MatchesFile(%s) = %v, want %v", filepath.Base(path), got, want)
		}
	}
	rt, err := formats.ForFile(filepath.Join(dir, "model.json"))
	if err != nil || rt.Format != "xgboost" {
		t.Fatalf("ForFile(model.json) = %q, %v", rt.Format, err)
	}
}

func TestMetadata(t *testing.T) {
	for _, tc := range []struct {
		file     string
		cfg      formats.Config
		outputs  []model.TensorSpec
		features []string
	}{
		{"binary_logistic.json", formats.Config{},
			[]model.TensorSpec{
				{Name: "predict", Datatype: tensor.Int64, Shape: []int64{-1}},
				{Name: "predict_proba", Datatype: tensor.FP32, Shape: []int64{-1, 2}},
				{Name: "margin", Datatype: tensor.FP32, Shape: []int64{-1}},
			},
			[]string{"feature1", "feature2", "feature3", "feature4", "feature5", "feature6"}},
		{"multi_softprob.json", formats.Config{Outputs: []string{"label", "probabilities"}},
			[]model.TensorSpec{
				{Name: "label", Datatype: tensor.Int64, Shape: []int64{-1}},
				{Name: "probabilities", Datatype: tensor.FP32, Shape: []int64{-1, 4}},
				{Name: "margin", Datatype: tensor.FP32, Shape: []int64{-1, 4}},
			},
			[]string{"feature1", "feature2", "feature3", "feature4", "feature5", "feature6"}},
		{"reg_squarederror.json", formats.Config{Features: []string{"a", "b", "c", "d", "e", "f"}}, // the file's names win
			[]model.TensorSpec{
				{Name: "predict", Datatype: tensor.FP32, Shape: []int64{-1}},
				{Name: "margin", Datatype: tensor.FP32, Shape: []int64{-1}},
			},
			[]string{"age", "income", "score", "grade", "rate", "flag"}},
		{"reg_squarederror.ubj", formats.Config{}, // UBJSON carries the names too
			[]model.TensorSpec{
				{Name: "predict", Datatype: tensor.FP32, Shape: []int64{-1}},
				{Name: "margin", Datatype: tensor.FP32, Shape: []int64{-1}},
			},
			[]string{"age", "income", "score", "grade", "rate", "flag"}},
		{"multi_target.json", formats.Config{Features: []string{"a", "b", "c", "d", "e", "f"}},
			[]model.TensorSpec{
				{Name: "predict", Datatype: tensor.FP32, Shape: []int64{-1, 2}},
				{Name: "margin", Datatype: tensor.FP32, Shape: []int64{-1, 2}},
			},
			[]string{"a", "b", "c", "d", "e", "f"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			meta := loadFixture(t, tc.file, tc.cfg).Metadata()
			if meta.Platform != "xgboost" {
				t.Errorf("platform %q", meta.Platform)
			}
			wantIn := []model.TensorSpec{{Name: "input", Datatype: tensor.FP32, Shape: []int64{-1, int64(len(tc.features))}}}
			if !reflect.DeepEqual(meta.Inputs, wantIn) {
				t.Errorf("inputs %+v, want %+v", meta.Inputs, wantIn)
			}
			if !reflect.DeepEqual(meta.Outputs, tc.outputs) {
				t.Errorf("outputs %+v, want %+v", meta.Outputs, tc.outputs)
			}
			if !reflect.DeepEqual(meta.Features, tc.features) {
				t.Errorf("features %v, want %v", meta.Features, tc.features)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  formats.Config
		want string
	}{
		{formats.Config{Features: []string{"a"}}, "config lists 1 features but the model takes 6"},
		{formats.Config{Outputs: []string{"a", "b", "c", "d"}}, "config names 4 outputs but the model has 3"},
		{formats.Config{Outputs: []string{"a", ""}}, "config output 2 has an empty name"},
		{formats.Config{Outputs: []string{"margin"}}, `config names two outputs "margin"`},
	} {
		_, err := loader{}.Load(context.Background(), filepath.Join("testdata", "binary_logistic.json"), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestInputDatatypes sends the same rows as every numeric datatype: the
// margins must be those of the FP32 request.
func TestInputDatatypes(t *testing.T) {
	m := loadFixture(t, "reg_squarederror.json", formats.Config{})
	// Small non-negative integers: every datatype holds them exactly.
	flat := func() []float64 { return []float64{1, 2, 0, 3, 0, 1, 0, 1, 2, 1, 1, 0} }
	predict := func(in *tensor.Tensor) []float32 {
		t.Helper()
		outs, err := m.Predict(context.Background(), []*tensor.Tensor{in})
		if err != nil {
			t.Fatalf("%s: %v", in.Datatype, err)
		}
		return outs[len(outs)-1].Data.([]float32)
	}
	want := predict(&tensor.Tensor{Name: "input", Datatype: tensor.FP32, Shape: []int64{2, 6}, Data: convertSlice[float32](flat())})
	for _, in := range []*tensor.Tensor{
		{Datatype: tensor.FP64, Data: flat()},
		{Datatype: tensor.Int64, Data: convertSlice[int64](flat())},
		{Datatype: tensor.Int8, Data: convertSlice[int8](flat())},
		{Datatype: tensor.Uint8, Data: convertSlice[uint8](flat())},
	} {
		in.Name, in.Shape = "input", []int64{2, 6}
		if got := predict(in); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: margins %v, want %v", in.Datatype, got, want)
		}
	}
}

func convertSlice[T int8 | uint8 | int64 | float32](v []float64) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

func TestInvalidInput(t *testing.T) {
	m := loadFixture(t, "binary_logistic.json", formats.Config{})
	row := func(x float64) []float64 { return []float64{x, 0, 0, 0, 0, 0} }
	for _, tc := range []struct {
		name   string
		inputs []*tensor.Tensor
		want   string
	}{
		{"no input", nil, `want 1 input tensor "input", got 0`},
		{"two inputs", []*tensor.Tensor{{}, {}}, "got 2"},
		{"a vector", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{6}, Data: row(0)}}, "want shape [n, 6], got [6]"},
		{"too few columns", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{2, 3}, Data: row(0)}}, "want shape [n, 6], got [2 3]"},
		{"data shorter than its shape", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{2, 6}, Data: row(0)}}, "needs 12 elements, got 6"},
		{"strings", []*tensor.Tensor{{Name: "input", Datatype: tensor.Bytes, Shape: []int64{1, 6}, Data: make([][]byte, 6)}}, "not numeric"},
		{"infinity", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 6}, Data: row(math.Inf(-1))}}, "row 0, column 0 is infinite"},
		{"too large for float32", []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 6}, Data: row(1e300)}}, "too large for float32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Predict(context.Background(), tc.inputs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !errors.Is(err, model.ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 6}, Data: row(0)}
	if _, err := m.Predict(ctx, []*tensor.Tensor{in}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// TestEmptyBatch: zero rows are a valid request with empty outputs.
func TestEmptyBatch(t *testing.T) {
	m := loadFixture(t, "multi_softprob.json", formats.Config{})
	outs, err := m.Predict(context.Background(), []*tensor.Tensor{{Name: "input", Datatype: tensor.FP32, Shape: []int64{0, 6}, Data: []float32{}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if err := o.Validate(); err != nil || o.Shape[0] != 0 {
			t.Errorf("%s: shape %v, %v", o.Name, o.Shape, err)
		}
	}
}
