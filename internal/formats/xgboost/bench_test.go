package xgboost

import (
	"context"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/tensor"
)

// The benchmarks report ns/row. The fixtures are small (≤ 20 trees of depth
// ≤ 4), so they measure the per-request overhead as much as the tree walks.

var benchModels = []string{"binary_logistic.json", "multi_softprob.json", "dart_binary.json", "linear_regression.json", "categorical_partition.json"}

func benchPredict(b *testing.B, rows int) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			m := loadFixture(b, name, formats.Config{})
			var e expectation
			readJSONFile(b, "testdata/"+name[:len(name)-len(".json")]+".expect.json", &e)
			X, _, cols := loadDataset(b, e.Dataset)
			in := &tensor.Tensor{Name: "input", Datatype: tensor.FP32, Shape: []int64{int64(rows), int64(cols)}, Data: X[:rows*cols]}
			inputs := []*tensor.Tensor{in}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Predict(ctx, inputs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}

func BenchmarkPredict1Row(b *testing.B)    { benchPredict(b, 1) }
func BenchmarkPredictBatch64(b *testing.B) { benchPredict(b, 64) }

func BenchmarkLoad(b *testing.B) {
	for _, name := range []string{"multi_softprob.json", "multi_softprob.ubj"} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				loadFixture(b, name, formats.Config{})
			}
		})
	}
}
