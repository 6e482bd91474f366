package xgboost

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/tensor"
)

// FuzzLoad feeds arbitrary bytes to the JSON and UBJSON readers and the model
// builder. A file either fails to load with an error or loads into a model that
// predicts without panicking; a walk that never ends (a cycle) fails by timeout.
func FuzzLoad(f *testing.F) {
	f.Add(mustMarshal(f, testDoc("reg:squarederror", "5E-1", stumpTree, catTree)))
	f.Add(mustMarshal(f, testDoc("binary:logistic", "3E-1", catTree)))
	for _, name := range []string{"categorical_partition.json", "categorical_partition.ubj", "linear_regression.ubj", "dart_binary.ubj"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decode(data, nil)
		if err != nil {
			return
		}
		nf := b.numFeature
		if nf > 1<<12 {
			// Valid, but naming a million features takes a while and
			// teaches the fuzzer nothing about the parsers.
			return
		}
		m, err := newModel(b, formats.Config{})
		if err != nil {
			t.Fatalf("a decoded model failed to build: %v", err)
		}
		X := make([]float32, 3*nf)
		for i := range X[:nf] {
			X[i] = float32(math.NaN())
		}
		for i := range X[2*nf:] {
			X[2*nf+i] = float32(i%7) - 2.5
		}
		in := &tensor.Tensor{Name: "input", Datatype: tensor.FP32, Shape: []int64{3, int64(nf)}, Data: X}
		if _, err := m.Predict(context.Background(), []*tensor.Tensor{in}); err != nil {
			t.Fatalf("a loaded model failed to predict: %v", err)
		}
	})
}
