package sklearn

import (
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The voting and bagging fixtures (gen_linear.py) are checked with every other
// fixture in TestFixtures: labels exact, probabilities and predictions within
// 1e-12 (measured: bagged trees and votes and every regressor bit-exact, the
// soft votes within 7.7e-16). Here: forged ensembles are refused by attribute.
func TestEnsemblesRejectMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      func(o *pickle.Object) any
		want       string
	}{
		{"voting_soft_weighted.p4.pkl", "weights", func(*pickle.Object) any { return &pickle.List{Items: []any{1.0}} }, "weights has 1 entries for 3 estimators"},
		{"voting_soft.p4.pkl", "voting", func(*pickle.Object) any { return "loud" }, `voting "loud" is not soft or hard`},
		{"voting_soft.p4.pkl", "estimators_", func(*pickle.Object) any { return &pickle.List{} }, "estimators_ is empty"},
		{"bagging_trees.p4.pkl", "n_estimators", func(*pickle.Object) any { return int64(99) }, "n_estimators is 99 but estimators_ has 15"},
		{"bagging_trees.p4.pkl", "estimators_features_", func(o *pickle.Object) any {
			items, _ := o.Items("estimators_features_")
			bad := *items[0].(*pickle.NDArray)
			bad.Data = append([]byte(nil), bad.Data...)
			bad.Data[0] = 40
			return &pickle.List{Items: append([]any{&bad}, items[1:]...)}
		}, "estimators_features_[0]: feature 40 out of range"},
		{"bagging_regressor.p4.pkl", "estimators_features_", func(o *pickle.Object) any {
			items, _ := o.Items("estimators_features_")
			return &pickle.List{Items: items[1:]}
		}, "estimators_features_ has 9 entries for 10 estimators"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value(o)) }, tc.want)
		})
	}
}
