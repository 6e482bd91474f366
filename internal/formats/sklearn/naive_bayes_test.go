package sklearn

import (
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The naive Bayes fixtures (gen_linear.py) are checked with every other
// classifier fixture in TestFixtures: predict exactly, predict_proba within
// 1e-12 (measured: 1.8e-15 Gaussian, 3.5e-15 multinomial, 7.2e-15 complement
// and Bernoulli). Here: forged files are refused by attribute.
func TestNaiveBayesRejectsMalformed(t *testing.T) {
	shorter := func(name string) func(o *pickle.Object) any {
		return func(o *pickle.Object) any {
			a, _ := o.Array(name)
			b := *a
			b.Shape = []int{a.Shape[0] - 1}
			if len(a.Shape) == 2 {
				b.Shape = []int{a.Shape[0] - 1, a.Shape[1]}
			}
			b.Data = b.Data[:b.Len()*a.Dtype.ItemSize]
			return &b
		}
	}
	for _, tc := range []struct {
		file, attr string
		value      func(o *pickle.Object) any
		want       string
	}{
		{"gaussian_nb.p4.pkl", "var_", shorter("var_"), "var_ has shape [2 4], theta_ [3 4]"},
		{"gaussian_nb.p4.pkl", "class_prior_", shorter("class_prior_"), "class_prior_ has shape [2] for 3 classes"},
		{"gaussian_nb.p4.pkl", "theta_", shorter("theta_"), "theta_ has shape [2 4], want (3 classes, features)"},
		{"multinomial_nb.p4.pkl", "feature_log_prob_", shorter("feature_log_prob_"), "feature_log_prob_ has shape [2 6]"},
		{"multinomial_nb.p4.pkl", "n_features_in_", func(*pickle.Object) any { return int64(5) }, "feature_log_prob_ has 6 features but n_features_in_ is 5"},
		{"bernoulli_nb.p4.pkl", "binarize", func(*pickle.Object) any { return "high" }, "binarize is a str, not a number"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value(o)) }, tc.want)
		})
	}
}
