package sklearn

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The transformed-target fixtures (gen_linear.py: a standard-scaled target
// under Ridge, a min-max-scaled one under a tree, the identity) are checked in
// TestFixtures, all bit-exact. Here: a transformer without a supported
// inverse is refused by name.
func TestTransformedTargetRejectsNonInvertible(t *testing.T) {
	v, err := pickle.Load(filepath.Join(fixtureDir, "ttr_standard_ridge.p4.pkl"), pickle.Options{Allow: allowed})
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(*pickle.Object)
	reg, _ := obj.Attr("regressor_")
	obj.Attrs().Set("transformer_", reg)
	if _, err := build(obj); err == nil || !strings.Contains(err.Error(), "transformer_ Ridge has no supported inverse_transform") {
		t.Fatalf("error %v", err)
	}
}
