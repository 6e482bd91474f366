package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Histogram gradient boosting (sklearn.ensemble._hist_gradient_boosting,
// sklearn 1.2).
//
// Unlike the other trees, HistGradientBoosting predicts on float64 X: each
// TreePredictor node holds a float64 num_threshold, and a row goes left when
// X[row, feature] <= num_threshold, or, when the value is NaN, when the node's
// missing_go_to_left flag says so. Leaf values already include the learning
// rate. The raw prediction is _baseline_prediction plus every iteration's tree
// output, added in order, which this reproduces bit for bit. The loss's
// inverse link (exp, expit, softmax) uses glibcExp, the C library's exp, which
// scipy's expit and numpy's np.exp call; only where numpy uses its own
// AVX-512 exp do the outputs differ from sklearn's, by a few ulps.

func init() {
	register("sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier", buildHGBClassifier)
	register("sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor", buildHGBRegressor)
	allowHelper(
		"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
		"sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
		"sklearn._loss.link.Interval",
		"sklearn._loss.link.IdentityLink",
		"sklearn._loss.link.LogLink",
		"sklearn._loss.link.LogitLink",
		"sklearn._loss.link.MultinomialLogit",
	)
	for _, loss := range hgbLossNames {
		allowHelper("sklearn._loss.loss."+loss,
			// Each loss keeps a Cython twin, pickled through its module's
			// __pyx_unpickle_ function: recorded, never called.
			"sklearn._loss._loss.Cy"+loss,
			"sklearn._loss._loss.__pyx_unpickle_Cy"+loss)
	}
}

// hgbLossNames are the sklearn._loss.loss classes HistGradientBoosting uses.
var hgbLossNames = []string{
	"HalfSquaredError", "AbsoluteError", "PinballLoss", "HalfPoissonLoss", "HalfGammaLoss",
	"HalfTweedieLoss", "HalfTweedieLossIdentity", "HalfBinomialLoss", "HalfMultinomialLoss",
}

// hgbLink is the inverse link that maps raw predictions to outputs.
type hgbLink int

const (
	linkIdentity    hgbLink = iota
	linkLog                 // outputs exp(raw)
	linkLogit               // binary: p1 = expit(raw), p0 = 1 - p1
	linkMultinomial         // softmax over the classes
)

var hgbLinks = map[string]hgbLink{
	"sklearn._loss.link.IdentityLink":     linkIdentity,
	"sklearn._loss.link.LogLink":          linkLog,
	"sklearn._loss.link.LogitLink":        linkLogit,
	"sklearn._loss.link.MultinomialLogit": linkMultinomial,
}

// histNode is one TreePredictor node, 24 bytes.
type histNode struct {
	// threshold is the split value (go left when x <= threshold); on a leaf it
	// holds the leaf's (already shrunk) value instead.
	threshold float64
	// feature is the column compared at a split, or -1 on a leaf.
	feature     int32
	left, right int32
	// missing is the child NaN goes to: left or right, per missing_go_to_left.
	missing int32
}

// histTree is a TreePredictor whose every child index follows its parent and
// every feature is in range, checked when it was built.
type histTree struct{ nodes []histNode }

func (t *histTree) predict(row []float64) float64 {
	nodes := t.nodes
	i := int32(0)
	for {
		n := &nodes[i]
		if n.feature < 0 {
			return n.threshold
		}
		x := row[n.feature]
		switch {
		case x <= n.threshold:
			i = n.left
		case x != x: // NaN
			i = n.missing
		default:
			i = n.right
		}
	}
}

// hgbEnsemble is what both HistGradientBoosting estimators share.
type hgbEnsemble struct {
	nFeatures int
	k         int // trees per iteration (1, or the number of classes)
	baseline  []float64
	// trees[i*k+j] is iteration i's tree for raw output j.
	trees []*histTree
	link  hgbLink
}

// AcceptsNonFinite reports that NaN (a missing value) and ±Inf are valid input:
// HistGradientBoosting validates X with force_all_finite=False.
func (e *hgbEnsemble) AcceptsNonFinite() (nan, inf bool) { return true, true }

// raw returns n×k raw predictions, tree by tree over all rows so that a
// batch walks each tree while it is in cache.
func (e *hgbEnsemble) raw(X []float64, n int) []float64 {
	out := make([]float64, n*e.k)
	for i := 0; i < n; i++ {
		copy(out[i*e.k:(i+1)*e.k], e.baseline)
	}
	for s, tree := range e.trees {
		j := s % e.k
		for i := 0; i < n; i++ {
			out[i*e.k+j] += tree.predict(X[i*e.nFeatures : (i+1)*e.nFeatures])
		}
	}
	return out
}

// hgbRegressor is a fitted HistGradientBoostingRegressor.
type hgbRegressor struct{ hgbEnsemble }

func (r *hgbRegressor) NumFeatures() int { return r.nFeatures }
func (r *hgbRegressor) NumTargets() int  { return 1 }

func (r *hgbRegressor) Predict(X []float64, n int) []float64 {
	out := r.raw(X, n)
	if r.link == linkLog {
		for i, v := range out {
			out[i] = glibcExp(v)
		}
	}
	return out
}

// hgbClassifier is a fitted HistGradientBoostingClassifier. Its predict is the
// first argmax of PredictProba, as in sklearn.
type hgbClassifier struct {
	hgbEnsemble
	classes Labels
}

func (c *hgbClassifier) NumFeatures() int { return c.nFeatures }
func (c *hgbClassifier) Classes() Labels  { return c.classes }

func (c *hgbClassifier) PredictProba(X []float64, n int) []float64 {
	raw := c.raw(X, n)
	if c.link == linkMultinomial {
		for i := 0; i < n; i++ {
			sklearnSoftmax(raw[i*c.k : (i+1)*c.k])
		}
		return raw
	}
	out := make([]float64, 2*n)
	for i, r := range raw {
		p1 := scipyExpit(r)
		out[2*i], out[2*i+1] = 1-p1, p1
	}
	return out
}

// sklearnSoftmax is sklearn.utils.extmath.softmax on one row, in place:
// subtract the row maximum, exponentiate, divide by the numpy sum.
func sklearnSoftmax(v []float64) {
	m := v[0]
	for _, x := range v[1:] {
		if x > m || math.IsNaN(x) {
			m = x
		}
	}
	for i := range v {
		v[i] = glibcExp(v[i] - m)
	}
	s := numpySum(v)
	for i := range v {
		v[i] /= s
	}
}

func buildHGBRegressor(obj *pickle.Object) (any, error) {
	e, err := readHGBEnsemble(obj)
	if err != nil {
		return nil, err
	}
	if e.k != 1 || (e.link != linkIdentity && e.link != linkLog) {
		return nil, fmt.Errorf("_loss is not a regression loss")
	}
	return &hgbRegressor{*e}, nil
}

func buildHGBClassifier(obj *pickle.Object) (any, error) {
	classes, err := classLabels(obj)
	if err != nil {
		return nil, err
	}
	e, err := readHGBEnsemble(obj)
	if err != nil {
		return nil, err
	}
	switch {
	case e.link == linkLogit && e.k == 1 && classes.Len() == 2:
	case e.link == linkMultinomial && e.k == classes.Len() && e.k > 2:
	default:
		return nil, fmt.Errorf("%d trees per iteration do not fit %d classes with this loss", e.k, classes.Len())
	}
	return &hgbClassifier{hgbEnsemble: *e, classes: classes}, nil
}

func readHGBEnsemble(obj *pickle.Object) (*hgbEnsemble, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	if err := rejectCategorical(obj); err != nil {
		return nil, err
	}
	k, err := obj.Int("n_trees_per_iteration_")
	if err != nil {
		return nil, err
	}
	if k < 1 || k > 1<<16 {
		return nil, fmt.Errorf("invalid n_trees_per_iteration_ %d", k)
	}
	e := &hgbEnsemble{nFeatures: nFeatures, k: int(k)}
	if e.link, err = hgbLossLink(obj); err != nil {
		return nil, err
	}
	base, err := obj.Array("_baseline_prediction")
	if err != nil {
		return nil, err
	}
	if e.baseline, err = base.Float64s(); err != nil {
		return nil, fmt.Errorf("_baseline_prediction: %w", err)
	}
	if len(e.baseline) != e.k {
		return nil, fmt.Errorf("_baseline_prediction has %d values for %d trees per iteration", len(e.baseline), e.k)
	}
	iterations, err := obj.Items("_predictors")
	if err != nil {
		return nil, err
	}
	for i, it := range iterations {
		var trees []any
		switch l := it.(type) {
		case *pickle.List:
			trees = l.Items
		case pickle.Tuple:
			trees = l
		default:
			return nil, fmt.Errorf("_predictors[%d]: want a list, got %s", i, pickle.TypeName(it))
		}
		if len(trees) != e.k {
			return nil, fmt.Errorf("_predictors[%d] has %d trees, want %d", i, len(trees), e.k)
		}
		for j, tv := range trees {
			t, err := decodeHistTree(tv, nFeatures)
			if err != nil {
				return nil, fmt.Errorf("_predictors[%d][%d]: %w", i, j, err)
			}
			e.trees = append(e.trees, t)
		}
	}
	return e, nil
}

// hgbLossLink checks _loss and returns its inverse link.
func hgbLossLink(obj *pickle.Object) (hgbLink, error) {
	loss, err := obj.Object("_loss")
	if err != nil {
		return 0, err
	}
	known := false
	for _, name := range hgbLossNames {
		known = known || loss.Class() == "sklearn._loss.loss."+name
	}
	if !known {
		return 0, fmt.Errorf("loss %s is not supported", loss.Class())
	}
	link, err := loss.Object("link")
	if err != nil {
		return 0, fmt.Errorf("_loss: %w", err)
	}
	l, ok := hgbLinks[link.Class()]
	if !ok {
		return 0, fmt.Errorf("_loss.link %s is not supported", link.Class())
	}
	return l, nil
}

// rejectCategorical refuses models fitted with categorical features, whose
// splits test category bitsets rather than thresholds.
func rejectCategorical(obj *pickle.Object) error {
	v, ok := obj.Attr("is_categorical_")
	if !ok || v == nil {
		return nil
	}
	a, ok := v.(*pickle.NDArray)
	if !ok {
		return fmt.Errorf("is_categorical_: want an array or None, got %s", pickle.TypeName(v))
	}
	flags, err := a.Int64s()
	if err != nil {
		return fmt.Errorf("is_categorical_: %w", err)
	}
	for f, c := range flags {
		if c != 0 {
			return fmt.Errorf("categorical features are not supported yet (feature %d is categorical)", f)
		}
	}
	return nil
}

// decodeHistTree reads a TreePredictor's nodes array and checks every index.
func decodeHistTree(v any, nFeatures int) (*histTree, error) {
	obj, ok := v.(*pickle.Object)
	if !ok || obj.Class() != "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" {
		return nil, fmt.Errorf("want a TreePredictor, got %s", pickle.TypeName(v))
	}
	nodes, err := obj.Array("nodes")
	if err != nil {
		return nil, err
	}
	if len(nodes.Shape) != 1 || nodes.Len() < 1 {
		return nil, fmt.Errorf("nodes has shape %v", nodes.Shape)
	}
	value, err := floatField(nodes, "value")
	if err != nil {
		return nil, err
	}
	threshold, err := floatField(nodes, "num_threshold")
	if err != nil {
		return nil, err
	}
	cols := map[string][]int64{}
	for _, name := range []string{"feature_idx", "left", "right", "missing_go_to_left", "is_leaf", "is_categorical"} {
		if cols[name], err = intField(nodes, name); err != nil {
			return nil, err
		}
	}
	n := int64(nodes.Len())
	t := &histTree{nodes: make([]histNode, n)}
	for i := int64(0); i < n; i++ {
		if cols["is_leaf"][i] != 0 {
			t.nodes[i] = histNode{feature: -1, threshold: value[i]}
			continue
		}
		if cols["is_categorical"][i] != 0 {
			return nil, fmt.Errorf("node %d: categorical splits are not supported yet", i)
		}
		l, r, f := cols["left"][i], cols["right"][i], cols["feature_idx"][i]
		if l <= i || l >= n || r <= i || r >= n {
			return nil, fmt.Errorf("node %d: children %d and %d out of range (%d nodes, children must follow their parent)", i, l, r, n)
		}
		if f < 0 || f >= int64(nFeatures) {
			return nil, fmt.Errorf("node %d: feature %d out of range (%d features)", i, f, nFeatures)
		}
		missing := r
		if cols["missing_go_to_left"][i] != 0 {
			missing = l
		}
		t.nodes[i] = histNode{
			threshold: threshold[i],
			feature:   int32(f),
			left:      int32(l),
			right:     int32(r),
			missing:   int32(missing),
		}
	}
	return t, nil
}
