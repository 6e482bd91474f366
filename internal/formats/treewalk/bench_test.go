package treewalk

import (
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkLeaves walks 1,000 rows of 30 features through 100 complete trees of
// depth 8 (XGBoost's default shape), in blocks of 256 rows as the XGBoost
// runtime does, with the Go walk alone and with the pair walk; "nan" batches
// have a tenth of their values missing, as sparse tabular data does.
//
//	go test ./internal/formats/treewalk -run '^$' -bench Leaves -count 5
func BenchmarkLeaves(b *testing.B) {
	const nFeatures, nRows, nTrees, depth, block = 30, 1000, 100, 8, 256
	rng := rand.New(rand.NewPCG(1, 2))
	trees := make([]*Tree[float32], nTrees)
	for i := range trees {
		var splits []Split[float32]
		var grow func(d int) int
		grow = func(d int) int {
			at := len(splits)
			splits = append(splits, Split[float32]{})
			if d == depth {
				splits[at] = Split[float32]{Leaf: true, Payload: uint32(at)}
				return at
			}
			s := Split[float32]{Feature: rng.IntN(nFeatures), Threshold: float32(rng.NormFloat64()), NaNRight: rng.IntN(2) == 0}
			s.Left = grow(d + 1)
			s.Right = grow(d + 1)
			splits[at] = s
			return at
		}
		grow(0)
		t, err := Compile(splits, nFeatures)
		if err != nil {
			b.Fatal(err)
		}
		trees[i] = t
	}
	for _, missing := range []bool{false, true} {
		X := make([]float32, nRows*nFeatures)
		for i := range X {
			X[i] = float32(rng.NormFloat64())
			if missing && rng.IntN(10) == 0 {
				X[i] = float32(math.NaN())
			}
		}
		var batch Batch[float32]
		batch.Load(X, nRows, nFeatures)
		leaves := make([]uint32, block)
		for _, pair := range []bool{false, true} {
			if pair && !pairWalk {
				continue
			}
			name := map[bool]string{false: "dense", true: "nan"}[missing] + "/" + map[bool]string{false: "go", true: "pair"}[pair]
			b.Run(name, func(b *testing.B) {
				defer func(was bool) { usePairWalk = was }(usePairWalk)
				usePairWalk = pair
				for b.Loop() {
					for start := 0; start < nRows; start += block {
						out := leaves[:min(block, nRows-start)]
						for _, t := range trees {
							t.Leaves(&batch, start, out)
						}
					}
				}
			})
		}
	}
}
