package sklearn

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestGradientBoostingFixtures: raw scores (init + learning_rate × trees),
// regression predictions and binary probabilities are bit-exact. Multiclass
// probabilities go through scipy's logsumexp, whose per-row log (the C
// library's) Go's math.Log matches only to within an ulp.
func TestGradientBoostingFixtures(t *testing.T) {
	runFixtures(t, func(file string) uint64 {
		if file == "gb_multiclass.joblib" {
			return 8
		}
		return 0
	}, "gb_")
}

// TestGlibcExp checks the port of the C library's exp against Python's
// math.exp on inputs across its range, including the rescaled paths above
// |x| = 512, subnormal results, overflow and non-finite input.
func TestGlibcExp(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(treeFixtures, "exp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]fixtureFloat
	if err := json.Unmarshal(b, &pairs); err != nil {
		t.Fatal(err)
	}
	if len(pairs) < 800 {
		t.Fatalf("exp.json has only %d cases", len(pairs))
	}
	for _, p := range pairs {
		x, want := float64(p[0]), float64(p[1])
		if got := glibcExp(x); math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("glibcExp(%v) = %v, C library %v", x, got, want)
		}
	}
}

// TestRoundedLog checks the load-time log against values whose correctly
// rounded log is known exactly or by identity.
func TestRoundedLog(t *testing.T) {
	tests := []struct {
		x, want float64
	}{
		{1, 0},
		{math.E, 1},
		{2, math.Ln2}, // math.Ln2 is the correctly rounded constant
		{0.5, -math.Ln2},
		{10, math.Ln10},
		{0x1p-23, -23 * math.Ln2}, // exact product rounds the same here
		{math.Inf(1), math.Inf(1)},
		{0, math.Inf(-1)},
	}
	for _, tt := range tests {
		if got := roundedLog(tt.x); got != tt.want {
			t.Errorf("roundedLog(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if got := roundedLog(-1); !math.IsNaN(got) {
		t.Errorf("roundedLog(-1) = %v, want NaN", got)
	}
	// Away from the special cases it never strays more than an ulp from math.Log.
	for x := 1e-300; x < 1e300; x *= 1.37e7 {
		if d := ulps(roundedLog(x), math.Log(x)); d > 1 {
			t.Errorf("roundedLog(%v) = %v, math.Log %v", x, roundedLog(x), math.Log(x))
		}
	}
}
