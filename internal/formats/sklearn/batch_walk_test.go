package sklearn

import (
	"math"
	"runtime"
	"strings"
	"testing"
)

// The tree ensembles answer a batch through compiled batch walks, split across
// cores when it is large (internal/formats/treewalk); a row's answer must not
// depend on either. Each fixture's rows, tiled into a batch of more than a
// thousand, are predicted on one core and on four, and the first rows one at a
// time; every value must be bit for bit the same.
func TestTreeBatchesMatchSingleRows(t *testing.T) {
	for _, name := range []string{"binary", "multiclass", "regression", "multioutput", "poisson", "categorical"} {
		set := loadFixtureSet(t, name)
		for _, m := range set.Models {
			if !strings.HasPrefix(m.File, "rf_") && !strings.HasPrefix(m.File, "et_") && !strings.HasPrefix(m.File, "hgb_") {
				continue
			}
			t.Run(strings.TrimSuffix(m.File, ".joblib")+"/"+m.X, func(t *testing.T) {
				X, n := set.flatX(t, m.X)
				nf := len(X) / n
				var big []float64
				for len(big) < 1100*nf {
					big = append(big, X...)
				}
				rows := len(big) / nf
				est := loadEstimator(t, m.File)
				answer := func(X []float64, n int) []float64 {
					switch e := est.(type) {
					case Classifier:
						return e.PredictProba(X, n)
					case Regressor:
						return e.Predict(X, n)
					}
					t.Fatalf("%T is neither a classifier nor a regressor", est)
					return nil
				}
				prev := runtime.GOMAXPROCS(1)
				one := answer(big, rows)
				runtime.GOMAXPROCS(4)
				four := answer(big, rows)
				runtime.GOMAXPROCS(prev)
				width := len(one) / rows
				for i := range one {
					if math.Float64bits(one[i]) != math.Float64bits(four[i]) {
						t.Fatalf("row %d: %v on one core, %v on four", i/width, one[i], four[i])
					}
				}
				for r := 0; r < min(rows, 64); r++ {
					single := answer(big[r*nf:(r+1)*nf], 1)
					for k, v := range single {
						if math.Float64bits(v) != math.Float64bits(one[r*width+k]) {
							t.Fatalf("row %d output %d: %v alone, %v in the batch", r, k, v, one[r*width+k])
						}
					}
				}
			})
		}
	}
}
