package sklearn

import (
	"testing"
)

// TestHistGradientBoostingFixtures: raw scores (baseline + trees, on float64 X
// with NaN following missing_go_to_left) and identity-link regression are
// bit-exact; outputs through exp (Poisson, expit, softmax) are allowed a few
// ulps for the difference between Go's math.Exp and numpy's.
func TestHistGradientBoostingFixtures(t *testing.T) {
	runFixtures(t, func(file string) uint64 {
		if file == "hgb_regression.joblib" {
			return 0
		}
		return 8
	}, "hgb_")
}
