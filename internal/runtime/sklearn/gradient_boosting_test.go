package sklearn

import (
	"strings"
	"testing"
)

// TestGradientBoostingFixtures: raw scores (init + learning_rate × trees) and
// regression predictions are bit-exact; probabilities go through exp, where
// Go's math.Exp and the C library sklearn used may differ in the last bits.
// 1 - p1 for a p1 near 1 magnifies that: the exponential loss's
// expit(2·raw) shows the largest differences.
func TestGradientBoostingFixtures(t *testing.T) {
	runFixtures(t, func(file string) uint64 {
		if strings.Contains(file, "regression") {
			return 0
		}
		return 32
	}, "gb_")
}
