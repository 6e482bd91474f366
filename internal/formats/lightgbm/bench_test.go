package lightgbm

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkScores: 1,000 rows through the fixture models, row by row (scores,
// what every batch did before) and as one batch (rawScores: the trees walked a
// block of rows at a time).
//
//	taskset -c 0 go test ./internal/formats/lightgbm -run '^$' -bench Scores -count 3
func BenchmarkScores(b *testing.B) {
	for _, name := range []string{"lg_breast_cancer.txt", "lgmulticlass.model", "genlin_fmtp_poisson_Frequency.model"} {
		e := loadEnsemble(b, name)
		const n = 1000
		X := hostileRows(e, n, rand.New(rand.NewPCG(5, 6)))
		raw := make([]float64, n*e.treesPerIteration)
		k, nf := e.treesPerIteration, e.numFeature
		b.Run(name+"/rows", func(b *testing.B) {
			for b.Loop() {
				for r := 0; r < n; r++ {
					e.scores(X[r*nf:(r+1)*nf], raw[r*k:(r+1)*k])
				}
			}
		})
		b.Run(name+"/batch", func(b *testing.B) {
			for b.Loop() {
				e.rawScores(X, n, raw)
			}
		})
	}
}
