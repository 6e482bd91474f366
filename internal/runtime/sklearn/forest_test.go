package sklearn

import "testing"

// TestForestFixtures: RandomForest and ExtraTrees average their trees in
// sklearn's order and must match it bit for bit.
func TestForestFixtures(t *testing.T) {
	runFixtures(t, bitExact, "rf_", "et_")
}
