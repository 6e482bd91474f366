package sklearn

import (
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The neighbour fixtures (gen_linear.py) are checked in TestFixtures, all
// bit-exact: kd-tree and ball-tree models, uniform and distance weights,
// euclidean, manhattan, chebyshev and minkowski p=3, classifier and
// regressor. Here: a query equal to a training row (distance weights give it
// all the weight), and forged models.
func TestNeighborsZeroDistance(t *testing.T) {
	nb := &neighbors{p: 1, fitX: []float64{0, 1, 2, 10}, k: 3, distance: true, metric: "euclidean"}
	r := &kNeighborsRegressor{neighbors: nb, y: []float64{5, 7, 9, 100}}
	if got := r.Predict([]float64{1}, 1)[0]; got != 7 {
		t.Errorf("at a training row: %v, want its target 7", got)
	}
	if got, want := r.Predict([]float64{1.5}, 1)[0], (7/0.5+9/0.5+5/1.5)/(1/0.5+1/0.5+1/1.5); got-want > 1e-12 || want-got > 1e-12 {
		t.Errorf("between rows: %v, want %v", got, want)
	}
}

func TestNeighborsRejectMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      any
		want       string
	}{
		{"knn_uniform_kdtree.p4.pkl", "n_neighbors", int64(0), "n_neighbors 0 out of range"},
		{"knn_uniform_kdtree.p4.pkl", "weights", "inverse", `weights "inverse" is not uniform or distance`},
		{"knn_manhattan.p4.pkl", "effective_metric_", "haversine", `metric "haversine" is not supported`},
		{"knn_regressor_uniform.p4.pkl", "_y", nil, "_y"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value) }, tc.want)
		})
	}
}
