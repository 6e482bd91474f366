package sklearn

import (
	"testing"
)

// TestHistGradientBoostingFixtures: raw scores (baseline + trees, on float64 X
// with NaN following missing_go_to_left), regression through identity or exp,
// and probabilities through expit or softmax are all bit-exact.
func TestHistGradientBoostingFixtures(t *testing.T) {
	runFixtures(t, bitExact, "hgb_")
}
