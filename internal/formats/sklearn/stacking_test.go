package sklearn

import (
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The stacking fixtures (gen_linear.py) are checked in TestFixtures: labels
// exact, probabilities within 1.9e-15 (the final logistic regression's BLAS
// order over the stacked columns), the regressor and a predict-stacked tree
// bit-exact. Here: forged stacks are refused by attribute.
func TestStackingRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      func(o *pickle.Object) any
		want       string
	}{
		{"stacking_binary.p4.pkl", "stack_method_", func(*pickle.Object) any { return &pickle.List{Items: []any{"predict"}} }, "stack_method_ has 1 entries for 3 estimators"},
		{"stacking_binary.p4.pkl", "stack_method_", func(*pickle.Object) any {
			return &pickle.List{Items: []any{"predict_proba", "guess", "predict_proba"}}
		}, `stack_method_[1] "guess" is not`},
		{"stacking_multiclass_passthrough.p4.pkl", "passthrough", func(*pickle.Object) any { return false }, "final_estimator_ takes 13 features, the members give 9"},
		{"stacking_regressor.p4.pkl", "final_estimator_", func(*pickle.Object) any { return nil }, "final_estimator_"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value(o)) }, tc.want)
		})
	}
}
