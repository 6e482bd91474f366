package sklearn

import (
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The AdaBoost fixtures (gen_linear.py) are checked in TestFixtures: labels
// exact, probabilities within 6.8e-16 (Go's log against glibc's), the
// regressor's weighted median bit-exact. Here: forged ensembles are refused.
func TestAdaBoostRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      any
		want       string
	}{
		{"adaboost_binary.p4.pkl", "algorithm", "SAMME.X", `algorithm "SAMME.X" is not SAMME or SAMME.R`},
		{"adaboost_binary.p4.pkl", "estimator_weights_", nil, "estimator_weights_"},
		{"adaboost_regressor.p4.pkl", "estimators_", &pickle.List{}, "estimators_ is empty"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value) }, tc.want)
		})
	}
	// A member fitted on other classes than the ensemble's.
	v, err := pickle.Load(filepath.Join(fixtureDir, "adaboost_multiclass.p4.pkl"), pickle.Options{Allow: allowed})
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(*pickle.Object)
	ests, _ := obj.Items("estimators_")
	first := ests[0].(*pickle.Object)
	c, _ := first.Array("classes_")
	short := *c
	short.Shape = []int{2}
	short.Data = c.Data[:2*c.Dtype.ItemSize]
	first.Attrs().Set("classes_", &short)
	if _, err := build(obj); err == nil {
		t.Fatal("a member with two of three classes was accepted")
	}
}
