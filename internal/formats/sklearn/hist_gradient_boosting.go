package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/formats/treewalk"
	"github.com/tideserve/tide/internal/pickle"
)

// Histogram gradient boosting (sklearn.ensemble._hist_gradient_boosting,
// sklearn 1.2).
//
// Unlike the other trees, HistGradientBoosting predicts on float64 X: each
// TreePredictor node holds a float64 num_threshold, and a row goes left when
// X[row, feature] <= num_threshold, or, when the value is NaN, when the node's
// missing_go_to_left flag says so. Categorical splits send a row left when its
// category is in the split's bitset, right when it is another category seen in
// training, and the missing-value way otherwise. Leaf values already include the learning
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

// histNode is one TreePredictor node, 32 bytes.
type histNode struct {
	// threshold is the split value (go left when x <= threshold); on a leaf it
	// holds the leaf's (already shrunk) value instead.
	threshold float64
	// feature is the column compared at a split, or -1 on a leaf.
	feature     int32
	left, right int32
	// missing is the child NaN goes to: left or right, per missing_go_to_left.
	missing int32
	// leftCats is, for a categorical split, the index in histTree.leftCats of
	// the categories that go left; -1 for a numeric split.
	leftCats int32
}

// categorySet is a bitset of category codes 0..255, as sklearn's
// BITSET_DTYPE (8 × uint32).
type categorySet [8]uint32

func (s *categorySet) has(c uint8) bool { return s[c/32]>>(c%32)&1 != 0 }

// categoryCode converts a raw categorical value to its code the way sklearn
// 1.2's compiled predictor does: a C cast of the double to uint8, which
// x86-64 code performs by truncating to int32 and keeping the low byte, and
// which gives 0 for values from 2^31 up (out of int32's range). Negative
// values and NaN never get here: they count as missing.
func categoryCode(x float64) uint8 {
	if x >= 0x1p31 {
		return 0
	}
	return uint8(int32(x))
}

// histTree is a TreePredictor whose every child index follows its parent and
// every feature and bitset index is in range, checked when it was built. A tree
// without categorical splits is compiled for fast walks (walk, whose leaves
// carry the index of their value in leafValues) and keeps no nodes.
type histTree struct {
	walk       *treewalk.Tree[float64]
	leafValues []float64
	nodes      []histNode
	// leftCats holds the categorical splits' left-category sets.
	leftCats []categorySet
	// known is, per feature, the categories seen in training (nil for
	// numeric features); shared by every tree of the model.
	known []*categorySet
}

func (t *histTree) predict(row []float64) float64 {
	if t.walk != nil {
		return t.leafValues[t.walk.Leaf(row)]
	}
	nodes := t.nodes
	i := int32(0)
	for {
		n := &nodes[i]
		if n.feature < 0 {
			return n.threshold
		}
		x := row[n.feature]
		switch {
		case n.leftCats >= 0:
			i = t.categorical(n, x)
		case x <= n.threshold:
			i = n.left
		case x != x: // NaN
			i = n.missing
		default:
			i = n.right
		}
	}
}

// categorical routes x at a categorical split: NaN, negative values and
// categories not seen in training take the missing-value way.
func (t *histTree) categorical(n *histNode, x float64) int32 {
	if x != x || x < 0 {
		return n.missing
	}
	c := categoryCode(x)
	switch {
	case t.leftCats[n.leftCats].has(c):
		return n.left
	case t.known[n.feature].has(c):
		return n.right
	default:
		return n.missing
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

// raw returns n×k raw predictions, tree by tree over blocks of rows so that
// a batch walks each tree while it is in cache; each row adds its trees up in
// iteration order, as sklearn does. Large batches are split across cores.
func (e *hgbEnsemble) raw(X []float64, n int) []float64 {
	out := make([]float64, n*e.k)
	for i := 0; i < n; i++ {
		copy(out[i*e.k:(i+1)*e.k], e.baseline)
	}
	if n < treewalk.MinBatch {
		for s, tree := range e.trees {
			j := s % e.k
			for i := 0; i < n; i++ {
				out[i*e.k+j] += tree.predict(X[i*e.nFeatures : (i+1)*e.nFeatures])
			}
		}
		return out
	}
	treewalk.Blocks(X, n, e.nFeatures, hgbBlockRows, func(b *treewalk.Batch[float64], start, end int, leaves []uint32) {
		for s, tree := range e.trees {
			j := s % e.k
			if tree.walk == nil {
				for i := start; i < end; i++ {
					out[i*e.k+j] += tree.predict(X[i*e.nFeatures : (i+1)*e.nFeatures])
				}
				continue
			}
			tree.walk.Leaves(b, start, leaves)
			for i, l := range leaves {
				out[(start+i)*e.k+j] += tree.leafValues[l]
			}
		}
	})
	return out
}

// hgbBlockRows is how many rows a batch sends through one tree before taking
// the next. HistGradientBoosting's trees are small (31 leaves by default) and
// stay in cache; a smaller block keeps the rows there too (256 rows measured
// 6 % faster than 1,024 in bench/trees).
const hgbBlockRows = 256

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
			softmax(raw[i*c.k : (i+1)*c.k])
		}
		return raw
	}
	out := make([]float64, 2*n)
	for i, r := range raw {
		p1 := expit(r)
		out[2*i], out[2*i+1] = 1-p1, p1
	}
	return out
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
	known, err := knownCategories(obj, nFeatures)
	if err != nil {
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
			t, err := decodeHistTree(tv, known)
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

// knownCategories returns, per feature, the categories seen in training
// (_bin_mapper.bin_thresholds_ of the features marked in is_categorical_, as
// sklearn's make_known_categories_bitsets reads them), or nil for a numeric
// feature. All nil when the model has no categorical features.
func knownCategories(obj *pickle.Object, nFeatures int) ([]*categorySet, error) {
	known := make([]*categorySet, nFeatures)
	v, ok := obj.Attr("is_categorical_")
	if !ok || v == nil {
		return known, nil
	}
	a, ok := v.(*pickle.NDArray)
	if !ok {
		return nil, fmt.Errorf("is_categorical_: want an array or None, got %s", pickle.TypeName(v))
	}
	flags, err := a.Int64s()
	if err != nil {
		return nil, fmt.Errorf("is_categorical_: %w", err)
	}
	if len(flags) != nFeatures {
		return nil, fmt.Errorf("is_categorical_ has %d flags for %d features", len(flags), nFeatures)
	}
	binMapper, err := obj.Object("_bin_mapper")
	if err != nil {
		return nil, err
	}
	thresholds, err := binMapper.Items("bin_thresholds_")
	if err != nil {
		return nil, fmt.Errorf("_bin_mapper: %w", err)
	}
	if len(thresholds) != nFeatures {
		return nil, fmt.Errorf("_bin_mapper.bin_thresholds_ has %d entries for %d features", len(thresholds), nFeatures)
	}
	for f, c := range flags {
		if c == 0 {
			continue
		}
		arr, ok := thresholds[f].(*pickle.NDArray)
		if !ok {
			return nil, fmt.Errorf("_bin_mapper.bin_thresholds_[%d]: want an array, got %s", f, pickle.TypeName(thresholds[f]))
		}
		cats, err := arr.Float64s()
		if err != nil {
			return nil, fmt.Errorf("_bin_mapper.bin_thresholds_[%d]: %w", f, err)
		}
		set := &categorySet{}
		for _, c := range cats {
			if !(c >= 0) { // also NaN
				return nil, fmt.Errorf("_bin_mapper.bin_thresholds_[%d]: invalid category %v", f, c)
			}
			code := categoryCode(c)
			set[code/32] |= 1 << (code % 32)
		}
		known[f] = set
	}
	return known, nil
}

// decodeHistTree reads a TreePredictor's nodes array and checks every index.
// known holds the model's categories per feature (nil for numeric ones).
func decodeHistTree(v any, known []*categorySet) (*histTree, error) {
	obj, ok := v.(*pickle.Object)
	if !ok || obj.Class() != "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" {
		return nil, fmt.Errorf("want a TreePredictor, got %s", pickle.TypeName(v))
	}
	nodes, err := obj.Array("nodes")
	if err != nil {
		return nil, err
	}
	if len(nodes.Shape) != 1 || nodes.Len() < 1 || nodes.Len() > math.MaxInt32 {
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
	for _, name := range []string{"feature_idx", "left", "right", "missing_go_to_left", "is_leaf", "is_categorical", "bitset_idx"} {
		if cols[name], err = intField(nodes, name); err != nil {
			return nil, err
		}
	}
	n := int64(nodes.Len())
	nFeatures := int64(len(known))
	t := &histTree{nodes: make([]histNode, n), known: known}
	for i := int64(0); i < n; i++ {
		if cols["is_leaf"][i] != 0 {
			t.nodes[i] = histNode{feature: -1, threshold: value[i], leftCats: -1}
			continue
		}
		l, r, f := cols["left"][i], cols["right"][i], cols["feature_idx"][i]
		if l <= i || l >= n || r <= i || r >= n {
			return nil, fmt.Errorf("node %d: children %d and %d out of range (%d nodes, children must follow their parent)", i, l, r, n)
		}
		if f < 0 || f >= nFeatures {
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
			leftCats:  -1,
		}
		if cols["is_categorical"][i] != 0 {
			if known[f] == nil {
				return nil, fmt.Errorf("node %d: categorical split on feature %d, which is_categorical_ does not mark", i, f)
			}
			if t.leftCats == nil {
				if t.leftCats, err = leftCategorySets(obj); err != nil {
					return nil, err
				}
			}
			b := cols["bitset_idx"][i]
			if b < 0 || b >= int64(len(t.leftCats)) {
				return nil, fmt.Errorf("node %d: bitset_idx %d out of range (%d bitsets)", i, b, len(t.leftCats))
			}
			t.nodes[i].leftCats = int32(b)
		}
	}
	if t.leftCats == nil {
		return t, t.compile(len(known))
	}
	return t, nil
}

// compile replaces a numeric tree's nodes with a compiled tree: x <= threshold
// goes left, so x > threshold goes right, and NaN goes to the missing child.
func (t *histTree) compile(nFeatures int) error {
	walk, values, err := treewalk.CompileValues(len(t.nodes), nFeatures, func(i int) (treewalk.Split[float64], float64) {
		n := t.nodes[i]
		if n.feature < 0 {
			return treewalk.Split[float64]{Leaf: true}, n.threshold
		}
		return treewalk.Split[float64]{Feature: int(n.feature), Threshold: n.threshold, NaNRight: n.missing == n.right,
			Left: int(n.left), Right: int(n.right)}, 0
	})
	if err != nil {
		return err
	}
	t.walk, t.nodes, t.leafValues = walk, nil, values
	return nil
}

// leftCategorySets reads raw_left_cat_bitsets, shape (splits, 8) of uint32.
func leftCategorySets(obj *pickle.Object) ([]categorySet, error) {
	a, err := obj.Array("raw_left_cat_bitsets")
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 2 || a.Shape[1] != 8 || a.Dtype.Kind != 'u' || a.Dtype.ItemSize != 4 {
		return nil, fmt.Errorf("raw_left_cat_bitsets: want (n, 8) uint32, got %s of shape %v", a.Dtype, a.Shape)
	}
	words, err := a.Int64s()
	if err != nil {
		return nil, fmt.Errorf("raw_left_cat_bitsets: %w", err)
	}
	sets := make([]categorySet, a.Shape[0])
	for i := range sets {
		for j := range sets[i] {
			sets[i][j] = uint32(words[i*8+j])
		}
	}
	return sets, nil
}
