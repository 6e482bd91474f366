//go:build cgo

package onnx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// load opens a testdata model through the registered runtime, as the
// repository does, and closes it when the test ends.
func load(tb testing.TB, name string, cfg formats.Config) model.Model {
	tb.Helper()
	requireRuntime(tb)
	rt, ok := formats.Lookup("onnx")
	if !ok {
		tb.Fatal("onnx runtime not registered")
	}
	m, err := rt.Loader.Load(context.Background(), "testdata/"+name, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.(model.Closer).Close() })
	return m
}

// torchFixture is what testdata/gen_torch.py writes next to each model.
type torchFixture struct {
	Input, Output string
	Cases         []struct {
		Shape       []int64
		Input       []float64
		OutputShape []int64 `json:"output_shape"`
		Output      []float64
	}
}

func readTorchFixture(tb testing.TB, name string) torchFixture {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		tb.Fatal(err)
	}
	var f torchFixture
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	return f
}

func fp32Tensor(name string, shape []int64, v []float64) *tensor.Tensor {
	d := make([]float32, len(v))
	for i, x := range v {
		d[i] = float32(x)
	}
	return &tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape, Data: d}
}

func TestTorchFixturesMatchTorch(t *testing.T) {
	const tolerance = 1e-5
	for _, tc := range []struct {
		name      string
		wantIn    []int64
		wantOut   []int64
		wantBatch []int64
	}{
		{name: "mlp", wantIn: []int64{-1, 32}, wantOut: []int64{-1, 10}},
		{name: "cnn", wantIn: []int64{-1, 1, 12, 12}, wantOut: []int64{-1, 10}},
		{name: "mlp256", wantIn: []int64{-1, 64}, wantOut: []int64{-1, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, tc.name+".onnx", formats.Config{})
			fx := readTorchFixture(t, tc.name)
			meta := m.Metadata()
			wantMeta := model.Metadata{
				Platform: "onnx",
				Inputs:   []model.TensorSpec{{Name: fx.Input, Datatype: tensor.FP32, Shape: tc.wantIn}},
				Outputs:  []model.TensorSpec{{Name: fx.Output, Datatype: tensor.FP32, Shape: tc.wantOut}},
			}
			meta.Features = nil // checked in TestTabularFeatures
			if !reflect.DeepEqual(meta, wantMeta) {
				t.Fatalf("metadata %+v, want %+v", meta, wantMeta)
			}
			if len(fx.Cases) < 2 {
				t.Fatalf("fixture has %d cases; the dynamic batch needs at least two sizes", len(fx.Cases))
			}
			for _, c := range fx.Cases {
				out, err := m.Predict(context.Background(), []*tensor.Tensor{fp32Tensor(fx.Input, c.Shape, c.Input)})
				if err != nil {
					t.Fatalf("batch %d: %v", c.Shape[0], err)
				}
				if len(out) != 1 || out[0].Name != fx.Output || !reflect.DeepEqual(out[0].Shape, c.OutputShape) {
					t.Fatalf("batch %d: got %d outputs, first %q %v; want %q %v", c.Shape[0], len(out), out[0].Name, out[0].Shape, fx.Output, c.OutputShape)
				}
				got := out[0].Data.([]float32)
				worst := 0.0
				for i, want := range c.Output {
					worst = math.Max(worst, math.Abs(float64(got[i])-want))
				}
				if worst > tolerance {
					t.Errorf("batch %d: max abs difference from torch %.3g > %g", c.Shape[0], worst, tolerance)
				}
				t.Logf("batch %d: max abs difference from torch %.3g", c.Shape[0], worst)
			}
		})
	}
}

// typedData makes n elements of datatype dt with distinct, type-appropriate values.
func typedData(dt tensor.Datatype, n int) any {
	switch dt {
	case tensor.Bool:
		d := make([]bool, n)
		for i := range d {
			d[i] = i%3 == 1
		}
		return d
	case tensor.Uint8:
		return fill[uint8](n, func(i int) uint8 { return uint8(250 - i) })
	case tensor.Uint16:
		return fill[uint16](n, func(i int) uint16 { return uint16(65000 + i) })
	case tensor.Uint32:
		return fill[uint32](n, func(i int) uint32 { return uint32(4e9) + uint32(i) })
	case tensor.Uint64:
		return fill[uint64](n, func(i int) uint64 { return 1<<63 + uint64(i) })
	case tensor.Int8:
		return fill[int8](n, func(i int) int8 { return int8(-120 + i) })
	case tensor.Int16:
		return fill[int16](n, func(i int) int16 { return int16(-30000 + i) })
	case tensor.Int32:
		return fill[int32](n, func(i int) int32 { return int32(-2e9) + int32(i) })
	case tensor.Int64:
		return fill[int64](n, func(i int) int64 { return -1<<62 + int64(i) })
	case tensor.FP16:
		return fill[uint16](n, func(i int) uint16 { return tensor.Float32ToHalf(float32(i) - 2.5) })
	case tensor.BF16:
		return fill[uint16](n, func(i int) uint16 { return tensor.Float32ToBFloat16(float32(i) * 1e20) })
	case tensor.FP32:
		return fill[float32](n, func(i int) float32 { return float32(i) * -1.25e-30 })
	case tensor.FP64:
		return fill[float64](n, func(i int) float64 { return float64(i) * 1e300 })
	case tensor.Bytes:
		// Arbitrary bytes, embedded NUL and invalid UTF-8 included.
		return fill[[]byte](n, func(i int) []byte { return []byte("s\x00\xffabc")[:i%6] })
	}
	panic("no data for " + dt.String())
}

func fill[T any](n int, f func(int) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

var allDatatypes = []tensor.Datatype{
	tensor.Bool, tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64,
	tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64,
	tensor.FP16, tensor.BF16, tensor.FP32, tensor.FP64, tensor.Bytes,
}

// TestEveryDatatypeRoundTrips sends each OIP datatype through an Identity node,
// in batches of 3 and of 0 (empty tensors), and expects it back unchanged.
func TestEveryDatatypeRoundTrips(t *testing.T) {
	m := load(t, "types.onnx", formats.Config{})
	meta := m.Metadata()
	if len(meta.Inputs) != len(allDatatypes) || len(meta.Outputs) != len(allDatatypes) {
		t.Fatalf("metadata has %d inputs and %d outputs, want %d each", len(meta.Inputs), len(meta.Outputs), len(allDatatypes))
	}
	for i, dt := range allDatatypes {
		wantIn := model.TensorSpec{Name: "in_" + dt.String(), Datatype: dt, Shape: []int64{-1, 2}}
		if !reflect.DeepEqual(meta.Inputs[i], wantIn) {
			t.Errorf("input %d: %+v, want %+v", i, meta.Inputs[i], wantIn)
		}
		if want := "out_" + dt.String(); meta.Outputs[i].Name != want || meta.Outputs[i].Datatype != dt {
			t.Errorf("output %d: %+v, want %s of %s", i, meta.Outputs[i], want, dt)
		}
	}
	for _, rows := range []int{3, 0} {
		t.Run(fmt.Sprintf("rows=%d", rows), func(t *testing.T) {
			var inputs []*tensor.Tensor
			for _, dt := range allDatatypes {
				inputs = append(inputs, &tensor.Tensor{Name: "in_" + dt.String(), Datatype: dt, Shape: []int64{int64(rows), 2}, Data: typedData(dt, rows*2)})
			}
			out, err := m.Predict(context.Background(), inputs)
			if err != nil {
				t.Fatal(err)
			}
			for i, dt := range allDatatypes {
				got, want := out[i], inputs[i]
				if got.Datatype != dt || !reflect.DeepEqual(got.Shape, want.Shape) || got.Len() != want.Len() {
					t.Errorf("%s: got %s %v (%d elements), want %s %v", dt, got.Datatype, got.Shape, got.Len(), dt, want.Shape)
					continue
				}
				if rows > 0 && !reflect.DeepEqual(got.Data, want.Data) {
					t.Errorf("%s: got %v, want %v", dt, got.Data, want.Data)
				}
			}
		})
	}
}

func TestModelWithoutInputs(t *testing.T) {
	m := load(t, "noinputs.onnx", formats.Config{})
	if n := len(m.Metadata().Inputs); n != 0 {
		t.Fatalf("%d inputs, want 0", n)
	}
	out, err := m.Predict(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []*tensor.Tensor{
		{Name: "matrix", Datatype: tensor.FP32, Shape: []int64{2, 2}, Data: []float32{1.5, -2, 3.25, 4}},
		{Name: "count", Datatype: tensor.Int64, Shape: []int64{}, Data: []int64{42}},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v, want %v", describe(out), describe(want))
	}
}

func TestScalarTensors(t *testing.T) {
	m := load(t, "scalar.onnx", formats.Config{})
	wantMeta := []model.TensorSpec{{Name: "x", Datatype: tensor.FP32, Shape: []int64{}}, {Name: "h", Datatype: tensor.FP16, Shape: []int64{}}}
	if got := m.Metadata().Inputs; !reflect.DeepEqual(got, wantMeta) {
		t.Fatalf("inputs %+v, want %+v", got, wantMeta)
	}
	for _, x := range []float32{1.25, -3, 0} {
		h := float32(x) / 4
		out, err := m.Predict(context.Background(), []*tensor.Tensor{
			{Name: "h", Datatype: tensor.FP16, Shape: []int64{}, Data: []uint16{tensor.Float32ToHalf(h)}},
			{Name: "x", Datatype: tensor.FP32, Shape: []int64{}, Data: []float32{x}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []*tensor.Tensor{
			{Name: "y", Datatype: tensor.FP32, Shape: []int64{}, Data: []float32{2 * x}},
			{Name: "f", Datatype: tensor.FP32, Shape: []int64{}, Data: []float32{h}},
		}
		if !reflect.DeepEqual(out, want) {
			t.Errorf("x=%v: got %v, want %v", x, describe(out), describe(want))
		}
	}
}

func TestNonTensorOutputsAreLeftOut(t *testing.T) {
	m := load(t, "seqout.onnx", formats.Config{})
	if got := m.Metadata().Outputs; len(got) != 1 || got[0].Name != "y" {
		t.Fatalf("outputs %+v, want only y", got)
	}
	x := fp32Tensor("x", []int64{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	out, err := m.Predict(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !reflect.DeepEqual(out[0].Data, x.Data) {
		t.Fatalf("got %v", describe(out))
	}
}

// TestTreeEnsembleLabels checks the label fix: ONNX Runtime answers label 1 for
// every row of this binary forest; the labels must follow the probabilities.
func TestTreeEnsembleLabels(t *testing.T) {
	m := load(t, "tree.onnx", formats.Config{Outputs: []string{"predict", "predict_proba"}})
	// Rows chosen to hit every leaf pair; see gen_edge.py for the trees.
	x := fp32Tensor("X", []int64{4, 2}, []float64{0, 0, 1, 2, 0, 2, 1, 0})
	out, err := m.Predict(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	wantProba := []float64{0.8, 0.2, 0.3, 0.7, 0.65, 0.35, 0.45, 0.55}
	gotProba, _ := out[1].Float64s()
	for i := range wantProba {
		if math.Abs(gotProba[i]-wantProba[i]) > 1e-6 {
			t.Fatalf("probabilities %v, want %v", gotProba, wantProba)
		}
	}
	if want := []int64{0, 1, 0, 1}; !reflect.DeepEqual(out[0].Data, want) {
		t.Fatalf("labels %v, want %v (the argmax of the probabilities)", out[0].Data, want)
	}
	if out[0].Name != "predict" || out[1].Name != "predict_proba" {
		t.Fatalf("outputs named %q, %q; the config renames them", out[0].Name, out[1].Name)
	}
}

func TestInvalidInputIsTheCallersError(t *testing.T) {
	m := load(t, "mlp.onnx", formats.Config{})
	row := func(n int) []float64 { return make([]float64, n) }
	for _, tc := range []struct {
		name   string
		inputs []*tensor.Tensor
		want   string
	}{
		{"unknown name", []*tensor.Tensor{fp32Tensor("nope", []int64{1, 32}, row(32))}, `unknown input "nope"`},
		{"missing input", nil, `missing input "input"`},
		{"given twice", []*tensor.Tensor{fp32Tensor("input", []int64{1, 32}, row(32)), fp32Tensor("input", []int64{1, 32}, row(32))}, "given twice"},
		{"wrong rank", []*tensor.Tensor{fp32Tensor("input", []int64{32}, row(32))}, "rank 1"},
		{"wrong width", []*tensor.Tensor{fp32Tensor("input", []int64{2, 16}, row(32))}, "wants [-1 32]"},
		{"data short of shape", []*tensor.Tensor{fp32Tensor("input", []int64{2, 32}, row(32))}, "needs 64 elements"},
		{"bytes for floats", []*tensor.Tensor{{Name: "input", Datatype: tensor.Bytes, Shape: []int64{1, 32}, Data: make([][]byte, 32)}}, "datatype BYTES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Predict(context.Background(), tc.inputs)
			if !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want an invalid-input error containing %q", err, tc.want)
			}
		})
	}
}

// TestNumericInputsConvertToFloat: JSON clients send FP64 or integers to a
// FP32 model, and get the same answer as with FP32.
func TestNumericInputsConvertToFloat(t *testing.T) {
	m := load(t, "mlp.onnx", formats.Config{})
	fx := readTorchFixture(t, "mlp")
	c := fx.Cases[0]
	want, err := m.Predict(context.Background(), []*tensor.Tensor{fp32Tensor("input", c.Shape, c.Input)})
	if err != nil {
		t.Fatal(err)
	}
	f32 := fp32Tensor("input", c.Shape, c.Input).Data.([]float32)
	f64 := make([]float64, len(f32))
	for i, v := range f32 {
		f64[i] = float64(v)
	}
	got, err := m.Predict(context.Background(), []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: c.Shape, Data: f64}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0].Data, want[0].Data) {
		t.Fatalf("FP64 input gave %v, FP32 gave %v", got[0].Data, want[0].Data)
	}
}

func TestTabularFeatures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		cfg     []string
		want    []string
		wantErr string
	}{
		{file: "tree.onnx", want: []string{"feature1", "feature2"}},
		{file: "tree.onnx", cfg: []string{"age", "income"}, want: []string{"age", "income"}},
		{file: "tree.onnx", cfg: []string{"age"}, wantErr: "config lists 1 features but the model takes 2"},
		{file: "cnn.onnx"},
		{file: "cnn.onnx", cfg: []string{"a"}, wantErr: "not a single n×k matrix"},
	} {
		t.Run(fmt.Sprint(tc.file, tc.cfg), func(t *testing.T) {
			requireRuntime(t)
			m, err := loadModel("testdata/"+tc.file, formats.Config{Features: tc.cfg})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.(model.Closer).Close()
			if got := m.Metadata().Features; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("features %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutputRenamingErrors(t *testing.T) {
	requireRuntime(t)
	for _, tc := range []struct {
		outputs []string
		want    string
	}{
		{[]string{"a", "b", "c"}, "config names 3 outputs but the model has 2"},
		{[]string{""}, "config output 1 has an empty name"},
		{[]string{"probabilities"}, `two outputs are named "probabilities"`},
	} {
		_, err := loadModel("testdata/tree.onnx", formats.Config{Outputs: tc.outputs})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("outputs %q: error %v, want %q", tc.outputs, err, tc.want)
		}
	}
}

func TestLoadErrorsAreOneLine(t *testing.T) {
	requireRuntime(t)
	dir := t.TempDir()
	garbage := dir + "/garbage.onnx"
	if err := os.WriteFile(garbage, []byte("this is not a protobuf\n\x00\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir + "/missing.onnx", garbage} {
		_, err := loadModel(path, formats.Config{})
		if err == nil {
			t.Fatalf("%s loaded", path)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "load "+path+": ") || strings.Contains(msg, "\n") {
			t.Errorf("error %q: want one line starting with the path", msg)
		}
	}
}

// TestConcurrentPredict shares one session between goroutines, each with its
// own batch, and checks every answer against a sequential run.
func TestConcurrentPredict(t *testing.T) {
	m := load(t, "mlp.onnx", formats.Config{})
	const workers, runs = 8, 100
	inputs := make([]*tensor.Tensor, workers)
	wants := make([][]float32, workers)
	for w := range inputs {
		rows := w + 1
		v := make([]float64, rows*32)
		for i := range v {
			v[i] = math.Sin(float64(w*1000 + i))
		}
		inputs[w] = fp32Tensor("input", []int64{int64(rows), 32}, v)
		out, err := m.Predict(context.Background(), []*tensor.Tensor{inputs[w]})
		if err != nil {
			t.Fatal(err)
		}
		wants[w] = out[0].Data.([]float32)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < runs; r++ {
				out, err := m.Predict(context.Background(), []*tensor.Tensor{inputs[w]})
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(out[0].Data.([]float32), wants[w]) {
					errs <- fmt.Errorf("worker %d run %d: wrong result", w, r)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancelledContext(t *testing.T) {
	m := load(t, "mlp.onnx", formats.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Predict(ctx, []*tensor.Tensor{fp32Tensor("input", []int64{1, 32}, make([]float64, 32))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestPredictAfterClose(t *testing.T) {
	requireRuntime(t)
	m, err := loadModel("testdata/mlp.onnx", formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m.(model.Closer).Close()
	m.(model.Closer).Close() // twice is harmless
	if _, err := m.Predict(context.Background(), []*tensor.Tensor{fp32Tensor("input", []int64{1, 32}, make([]float64, 32))}); err == nil {
		t.Fatal("predict on a closed model succeeded")
	}
}

func TestSessionOptionsApply(t *testing.T) {
	requireRuntime(t)
	for _, o := range []Options{{IntraOpThreads: 1}, {IntraOpThreads: 2, InterOpThreads: 2, ParallelExecution: true}} {
		s, err := newSession(modelSource{path: "testdata/mlp.onnx"}, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		s.close()
	}
}

func describe(ts []*tensor.Tensor) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "{%s %s %v %v} ", t.Name, t.Datatype, t.Shape, t.Data)
	}
	return b.String()
}

// TestCancellationStopsARunningModel cancels a run that would never end on
// its own: ONNX Runtime's terminate flag must stop it.
func TestCancellationStopsARunningModel(t *testing.T) {
	m := load(t, "slow.onnx", formats.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.Predict(ctx, []*tensor.Tensor{fp32Tensor("start", []int64{1}, []float64{0})})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cancelled run took %v to stop", took)
	}
}

// TestCUDAProvider: selecting CUDA either works (a GPU build on a GPU machine:
// answers match the CPU's) or fails to load with a message that names the
// CUDA provider and what it needs; it never falls back silently or crashes.
func TestCUDAProvider(t *testing.T) {
	requireRuntime(t)
	cpu, err := openModel("testdata/mlp.onnx", formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	defer SetOptions(currentOptions())
	if err := SetOptions(Options{Provider: CUDA}); err != nil {
		t.Fatal(err)
	}
	gpu, err := openModel("testdata/mlp.onnx", formats.Config{})
	if err != nil {
		if os.Getenv("TIDE_REQUIRE_CUDA") == "1" {
			t.Fatalf("TIDE_REQUIRE_CUDA=1: %v", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "CUDA execution provider") || strings.Contains(msg, "\n") {
			t.Fatalf("error %q: want one line naming the CUDA execution provider", msg)
		}
		t.Logf("CUDA unavailable, as expected without ONNX Runtime's GPU build: %v", err)
		return
	}
	defer gpu.Close()
	fx := readTorchFixture(t, "mlp")
	for _, c := range fx.Cases {
		in := []*tensor.Tensor{fp32Tensor("input", c.Shape, c.Input)}
		want, err := cpu.Predict(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gpu.Predict(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want[0].Data.([]float32) {
			if g := got[0].Data.([]float32)[i]; math.Abs(float64(g-w)) > 1e-4 {
				t.Fatalf("batch %d element %d: CUDA %v, CPU %v", c.Shape[0], i, g, w)
			}
		}
	}
}

// TestUnknownRank: a tensor declared without a shape accepts any rank (ONNX
// Runtime reports it like a scalar; the graph says otherwise).
func TestUnknownRank(t *testing.T) {
	m := load(t, "anyrank.onnx", formats.Config{})
	want := model.TensorSpec{Name: "x", Datatype: tensor.Int32, Shape: []int64{-1}}
	if got := m.Metadata().Inputs; len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("inputs %+v, want %+v", got, want)
	}
	for _, shape := range [][]int64{{}, {3}, {2, 2}, {1, 2, 1, 2}} {
		n := int(tensor.NumElements(shape))
		x := &tensor.Tensor{Name: "x", Datatype: tensor.Int32, Shape: shape, Data: fill[int32](n, func(i int) int32 { return int32(i * 7) })}
		out, err := m.Predict(context.Background(), []*tensor.Tensor{x})
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if !reflect.DeepEqual(out[0].Data, x.Data) || len(out[0].Shape) != len(shape) {
			t.Fatalf("shape %v: got %v %v", shape, out[0].Shape, out[0].Data)
		}
	}
}
