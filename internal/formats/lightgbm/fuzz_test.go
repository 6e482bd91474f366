package lightgbm

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/tensor"
)

// FuzzParse feeds arbitrary bytes to the text reader. A file either fails to
// load with an error or loads into a model that predicts without panicking
// (missing values, negative and huge categories included), and whose batch
// walks give the row walk's scores; a walk that never ends (a cycle the checks
// missed) fails by timeout.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"model_simple.txt", "lg_rf_iris.model"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=0\nobjective=regression\n\nTree=0\nnum_leaves=1\nleaf_value=1\n\nend of trees\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parse(data, nil)
		if err != nil {
			return
		}
		nf := e.numFeature
		if nf > 1<<12 {
			return // valid, but wide rows teach the fuzzer nothing about the parser
		}
		m, err := newModel(e, formats.Config{})
		if err != nil {
			t.Fatalf("a parsed model failed to build: %v", err)
		}
		X := make([]float64, 4*nf)
		for i := 0; i < nf; i++ {
			X[i] = math.NaN()
			X[nf+i] = -3.5
			X[2*nf+i] = 1e300
			X[3*nf+i] = float64(i%40) + 0.5
		}
		in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{4, int64(nf)}, Data: X}
		if _, err := m.Predict(context.Background(), []*tensor.Tensor{in}); err != nil {
			t.Fatalf("predict: %v", err)
		}
		// The same rows four times over make a batch the compiled walks take:
		// its scores must be the row walk's, bit for bit.
		const rows = 16
		batch := make([]float64, 0, rows*nf)
		for len(batch) < rows*nf {
			batch = append(batch, X...)
		}
		k := e.treesPerIteration
		got, want := make([]float64, rows*k), make([]float64, rows*k)
		e.rawScores(batch, rows, got)
		for r := 0; r < rows; r++ {
			e.scores(batch[r*nf:(r+1)*nf], want[r*k:(r+1)*k])
		}
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
				t.Fatalf("row %d score %d: batch %v, row walk %v", i/k, i%k, got[i], want[i])
			}
		}
	})
}
