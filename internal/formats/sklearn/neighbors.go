package sklearn

import (
	"fmt"
	"math"
	"sort"

	"github.com/tideserve/tide/internal/pickle"
)

// Nearest neighbours (sklearn.neighbors): KNeighborsClassifier and
// KNeighborsRegressor with uniform or distance weights and the euclidean,
// manhattan, chebyshev and minkowski metrics. The k nearest training rows
// are found exhaustively with the distance formula sklearn's trees use (the
// reduced distance summed over features in order, then its root), nearest
// first; rows at exactly the same distance are taken in training order, where
// sklearn's tree may take them in another (the only way the answers can
// differ). Then, as scikit-learn 1.2: the classifier's probabilities are the
// neighbours' weights added to their classes in neighbour order and
// normalised, its predict the most frequent (or heaviest) class, the smallest
// on a tie; the regressor's prediction is the (weighted) mean of the
// neighbours' targets.

func init() {
	register("sklearn.neighbors._classification.KNeighborsClassifier", buildKNeighborsClassifier)
	register("sklearn.neighbors._regression.KNeighborsRegressor", buildKNeighborsRegressor)
	// The fitted search trees are recorded, not used: the search is exhaustive.
	allowHelper("sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
		"sklearn.metrics._dist_metrics.EuclideanDistance", "sklearn.metrics._dist_metrics.ManhattanDistance",
		"sklearn.metrics._dist_metrics.ChebyshevDistance", "sklearn.metrics._dist_metrics.MinkowskiDistance",
		"sklearn.neighbors._kd_tree.newObj", "sklearn.neighbors._ball_tree.newObj",
		"sklearn.metrics._dist_metrics.newObj")
}

type neighbors struct {
	p        int
	fitX     []float64 // n×p
	k        int
	distance bool // weights="distance"
	metric   string
	power    float64 // minkowski's p
}

func (nb *neighbors) NumFeatures() int { return nb.p }

// search is one request's scratch for nearest: an order and a reduced
// distance per training row, reused across the request's rows.
type search struct {
	all []int
	d   []float64
}

func (nb *neighbors) newSearch() *search {
	n := len(nb.fitX) / nb.p
	return &search{all: make([]int, n), d: make([]float64, n)}
}

// nearest returns the indices and distances of x's k nearest training rows,
// nearest first (training order among equal distances).
func (nb *neighbors) nearest(x []float64, idx []int, dist []float64, sc *search) {
	all, d := sc.all, sc.d
	for i := range all {
		all[i] = i
		d[i] = nb.reduced(x, nb.fitX[i*nb.p:(i+1)*nb.p])
	}
	sort.SliceStable(all, func(a, b int) bool { return d[all[a]] < d[all[b]] })
	for j := 0; j < nb.k; j++ {
		idx[j] = all[j]
		dist[j] = nb.root(d[all[j]])
	}
}

// reduced is the metric's reduced distance (what orders neighbours).
func (nb *neighbors) reduced(x, y []float64) float64 {
	s := 0.0
	switch nb.metric {
	case "euclidean":
		for j, v := range x {
			t := v - y[j]
			s += t * t
		}
	case "manhattan":
		for j, v := range x {
			s += math.Abs(v - y[j])
		}
	case "chebyshev":
		for j, v := range x {
			s = math.Max(s, math.Abs(v-y[j]))
		}
	case "minkowski":
		for j, v := range x {
			s += math.Pow(math.Abs(v-y[j]), nb.power)
		}
	}
	return s
}

// root turns a reduced distance into the distance.
func (nb *neighbors) root(r float64) float64 {
	switch nb.metric {
	case "euclidean":
		return math.Sqrt(r)
	case "minkowski":
		return math.Pow(r, 1/nb.power)
	}
	return r
}

// weights are the neighbours' weights: 1 each, or 1/distance, with a row
// holding a zero distance weighted 1 there and 0 elsewhere.
func (nb *neighbors) weights(dist, w []float64) {
	if !nb.distance {
		for i := range w {
			w[i] = 1
		}
		return
	}
	zero := false
	for _, d := range dist {
		zero = zero || d == 0
	}
	for i, d := range dist {
		switch {
		case zero && d == 0:
			w[i] = 1
		case zero:
			w[i] = 0
		default:
			w[i] = 1.0 / d
		}
	}
}

func readNeighbors(obj *pickle.Object) (*neighbors, error) {
	fitX, shape, err := floatArrayAttr(obj, "_fit_X")
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || shape[0] < 1 || shape[1] < 1 {
		return nil, fmt.Errorf("_fit_X has shape %v", shape)
	}
	nb := &neighbors{p: shape[1], fitX: fitX}
	if err := checkFeatureCount(obj, nb.p, "_fit_X"); err != nil {
		return nil, err
	}
	k, err := obj.Int("n_neighbors")
	if err != nil {
		return nil, err
	}
	if k < 1 || k > int64(shape[0]) {
		return nil, fmt.Errorf("n_neighbors %d out of range (%d training rows)", k, shape[0])
	}
	nb.k = int(k)
	w, err := obj.String("weights")
	if err != nil {
		return nil, fmt.Errorf("weights: %w (callable weights are not supported)", err)
	}
	switch w {
	case "uniform":
	case "distance":
		nb.distance = true
	default:
		return nil, fmt.Errorf("weights %q is not uniform or distance", w)
	}
	metric, err := obj.String("effective_metric_")
	if err != nil {
		return nil, fmt.Errorf("effective_metric_: %w (callable metrics are not supported)", err)
	}
	switch metric {
	case "euclidean", "l2":
		nb.metric = "euclidean"
	case "manhattan", "cityblock", "l1":
		nb.metric = "manhattan"
	case "chebyshev", "infinity":
		nb.metric = "chebyshev"
	case "minkowski":
		nb.metric = "minkowski"
		nb.power = 2
		if params, ok := obj.Attr("effective_metric_params_"); ok {
			if d, ok := params.(*pickle.Dict); ok {
				if v, ok := d.Get("p"); ok {
					if f, ok := pickle.ToFloat(v); ok {
						nb.power = f
					}
				}
			}
		}
		if !(nb.power >= 1) || math.IsInf(nb.power, 0) {
			return nil, fmt.Errorf("minkowski p=%v is not supported", nb.power)
		}
	default:
		return nil, fmt.Errorf("metric %q is not supported (euclidean, manhattan, chebyshev and minkowski are)", metric)
	}
	return nb, nil
}

// kNeighborsClassifier is a fitted KNeighborsClassifier (one output).
type kNeighborsClassifier struct {
	*neighbors
	classes Labels
	y       []int // encoded labels of the training rows
}

func (c *kNeighborsClassifier) Classes() Labels { return c.classes }

func (c *kNeighborsClassifier) PredictProba(X []float64, n int) []float64 {
	proba, _ := c.votes(X, n)
	return proba
}

// PredictIndex is the class with the most (weighted) neighbours, the smallest
// on a tie (scipy's mode, sklearn's weighted_mode).
func (c *kNeighborsClassifier) PredictIndex(X []float64, n int) []int {
	_, idx := c.votes(X, n)
	return idx
}

func (c *kNeighborsClassifier) votes(X []float64, n int) ([]float64, []int) {
	k := c.classes.Len()
	proba := make([]float64, n*k)
	label := make([]int, n)
	idx := make([]int, c.k)
	dist := make([]float64, c.k)
	w := make([]float64, c.k)
	counts := make([]float64, k)
	sc := c.newSearch()
	for r := 0; r < n; r++ {
		c.nearest(X[r*c.p:(r+1)*c.p], idx, dist, sc)
		c.weights(dist, w)
		p := proba[r*k : (r+1)*k]
		clear(counts)
		for i, j := range idx {
			p[c.y[j]] += w[i]
			counts[c.y[j]] += w[i]
		}
		label[r] = argmax(counts)
		norm := pairwiseSum(p)
		if norm == 0 {
			norm = 1
		}
		for j := range p {
			p[j] /= norm
		}
	}
	return proba, label
}

func buildKNeighborsClassifier(obj *pickle.Object) (any, error) {
	nb, err := readNeighbors(obj)
	if err != nil {
		return nil, err
	}
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	if v, _ := obj.Attr("outputs_2d_"); v == true {
		return nil, fmt.Errorf("multi-output neighbours are not supported")
	}
	ys, err := obj.Array("_y")
	if err != nil {
		return nil, err
	}
	enc, err := ys.Int64s()
	if err != nil {
		return nil, fmt.Errorf("_y: %w", err)
	}
	if len(enc) != len(nb.fitX)/nb.p {
		return nil, fmt.Errorf("_y has %d labels for %d training rows", len(enc), len(nb.fitX)/nb.p)
	}
	c := &kNeighborsClassifier{neighbors: nb, classes: classes, y: make([]int, len(enc))}
	for i, v := range enc {
		if v < 0 || v >= int64(classes.Len()) {
			return nil, fmt.Errorf("_y[%d] = %d is not a class index", i, v)
		}
		c.y[i] = int(v)
	}
	return c, nil
}

// kNeighborsRegressor is a fitted KNeighborsRegressor (one target).
type kNeighborsRegressor struct {
	*neighbors
	y []float64
}

func (r *kNeighborsRegressor) NumTargets() int { return 1 }

func (r *kNeighborsRegressor) Predict(X []float64, n int) []float64 {
	out := make([]float64, n)
	idx := make([]int, r.k)
	dist := make([]float64, r.k)
	w := make([]float64, r.k)
	ys := make([]float64, r.k)
	sc := r.newSearch()
	for q := range out {
		r.nearest(X[q*r.p:(q+1)*r.p], idx, dist, sc)
		for i, j := range idx {
			ys[i] = r.y[j]
		}
		if !r.distance {
			out[q] = pairwiseSum(ys) / float64(r.k) // np.mean
			continue
		}
		r.weights(dist, w)
		denom := pairwiseSum(w)
		for i := range ys {
			ys[i] *= w[i]
		}
		out[q] = pairwiseSum(ys) / denom
	}
	return out
}

func buildKNeighborsRegressor(obj *pickle.Object) (any, error) {
	nb, err := readNeighbors(obj)
	if err != nil {
		return nil, err
	}
	y, shape, err := floatArrayAttr(obj, "_y")
	if err != nil {
		return nil, err
	}
	if len(shape) != 1 || shape[0] != len(nb.fitX)/nb.p {
		return nil, fmt.Errorf("_y has shape %v for %d training rows (multi-output neighbours are not supported)", shape, len(nb.fitX)/nb.p)
	}
	return &kNeighborsRegressor{neighbors: nb, y: y}, nil
}
