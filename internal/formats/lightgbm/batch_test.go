package lightgbm

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
)

// A batch's raw scores are the row-by-row scores bit for bit, on every
// fixture model: rows built from the models' own thresholds (ties), their
// neighbours, categories, NaN, zeros and values LightGBM counts as zero, more
// than a thousand of them, on one core and split across two.
func TestBatchesMatchRowByRow(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.model")
	paths = append(paths, "testdata/lg_breast_cancer.txt", "testdata/model_simple.txt")
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			e := loadEnsemble(t, name)
			// A tree walks in batches unless a split is zero-as-missing (or
			// has a NaN threshold, or a set of categories beyond 2^24, which
			// no fixture has).
			compiled := 0
			for i := range e.trees {
				tr := &e.trees[i]
				expressible := true
				for _, dt := range tr.decisionType {
					if (dt>>2)&3 == missingZero && dt&categoricalMask == 0 {
						expressible = false
					}
				}
				if (tr.walk != nil) != expressible {
					t.Fatalf("tree %d: compiled walk %v, expressible %v", i, tr.walk != nil, expressible)
				}
				if tr.walk != nil {
					compiled++
				}
			}
			t.Logf("%d of %d trees walk in batches", compiled, len(e.trees))
			rows := hostileRows(e, 1100, rand.New(rand.NewPCG(uint64(len(name)), 3)))
			k, n := e.treesPerIteration, len(rows)/e.numFeature
			want := make([]float64, n*k)
			for r := 0; r < n; r++ {
				e.scores(rows[r*e.numFeature:(r+1)*e.numFeature], want[r*k:(r+1)*k])
			}
			for _, procs := range []int{1, 2} {
				func() {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
					for _, size := range []int{n, 8, 37, 256} {
						got := make([]float64, size*k)
						e.rawScores(rows[:size*e.numFeature], size, got)
						for i := range got {
							if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
								t.Fatalf("%d CPUs, batch of %d: row %d score %d is %v, row by row %v", procs, size, i/k, i%k, got[i], want[i])
							}
						}
					}
				}()
			}
		})
	}
}

// hostileRows makes n rows (row-major) for e: each value one of the model's
// thresholds, the float next to one, a small category, NaN, 0, ±1e-36 or a
// wide random value.
func hostileRows(e *ensemble, n int, rng *rand.Rand) []float64 {
	var thresholds []float64
	for i := range e.trees {
		for j, th := range e.trees[i].threshold {
			if e.trees[i].decisionType[j]&categoricalMask == 0 {
				thresholds = append(thresholds, th)
			}
		}
	}
	X := make([]float64, n*e.numFeature)
	for i := range X {
		switch c := rng.IntN(10); {
		case c < 4 && len(thresholds) > 0:
			X[i] = thresholds[rng.IntN(len(thresholds))]
		case c < 6 && len(thresholds) > 0:
			th := thresholds[rng.IntN(len(thresholds))]
			X[i] = math.Nextafter(th, math.Inf(2*rng.IntN(2)-1))
		case c == 6:
			// Categories, fractions of them (truncated), values between -1
			// and 0 (category 0), -1 and below (none) and beyond any set.
			X[i] = []float64{float64(rng.IntN(12) - 2), float64(rng.IntN(64)) + rng.Float64(), -rng.Float64(), -1,
				math.MaxInt32, 1e300}[rng.IntN(6)]
		case c == 7:
			X[i] = math.NaN()
		case c == 8:
			X[i] = []float64{0, math.Copysign(0, -1), 1e-36, -1e-36}[rng.IntN(4)]
		default:
			X[i] = rng.NormFloat64() * 1000
		}
	}
	return X
}
