package sklearn

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/tideserve/tide/internal/formats/treewalk"
	"github.com/tideserve/tide/internal/pickle"
)

// Decision trees (sklearn.tree): DecisionTreeClassifier, DecisionTreeRegressor and
// their randomised ExtraTree siblings, which share the same fitted structure.
//
// sklearn stores a fitted tree as a sklearn.tree._tree.Tree whose pickle is
// Tree(n_features, n_classes, n_outputs) plus a state dict with a structured
// "nodes" array (left_child, right_child, feature, threshold, ...) and a
// "values" array of shape (node_count, n_outputs, max_n_classes). At predict
// time sklearn casts X to float32 and sends a row left when
// X[row, feature] <= threshold (float32 widened to float64 against a float64
// threshold). sklearn 1.2 refuses NaN and infinities for every estimator in
// this file and in forest.go and gradient_boosting.go (none implements
// NonFiniteAcceptor, so the model rejects such input); should one reach a
// walk anyway it goes right, where NaN <= threshold sends it. sklearn also
// refuses finite values beyond float32's range, which here become ±Inf.

func init() {
	register("sklearn.tree._classes.DecisionTreeClassifier", buildTreeClassifier)
	register("sklearn.tree._classes.ExtraTreeClassifier", buildTreeClassifier)
	register("sklearn.tree._classes.DecisionTreeRegressor", buildTreeRegressor)
	register("sklearn.tree._classes.ExtraTreeRegressor", buildTreeRegressor)
	allowHelper("sklearn.tree._tree.Tree")
}

// treeLeaf marks a missing child in sklearn's node array (_tree.TREE_LEAF).
const treeLeaf = -1

// flatTree is a fitted tree compiled for walking (internal/formats/treewalk),
// with its leaves' outputs side by side. Every index in it was checked when it
// was built: features are below the model's feature count and leaf offsets lie
// inside leafValues.
type flatTree struct {
	// walk's leaves carry the offset of their outputs in leafValues. Its
	// thresholds are sklearn's float64 thresholds rounded down to float32: for
	// any float32 x, x <= threshold exactly when float64(x) <= the original,
	// so the walk compares float32s and the nodes stay small.
	walk *treewalk.Tree[float32]
	// leafValues holds width outputs per leaf, at the leaf's offset.
	leafValues []float64
	width      int
}

// leaf walks one row, already rounded to float32 as sklearn does, and returns
// the offset of the leaf's outputs. A row goes left when x <= threshold; NaN
// compares false and goes right, as in sklearn.
func (t *flatTree) leaf(row []float32) int { return int(t.walk.Leaf(row)) }

// sizeBytes is what the tree's arrays occupy.
func (t *flatTree) sizeBytes() int64 {
	return t.walk.SizeBytes() + int64(cap(t.leafValues))*8
}

// outputs returns the leaf outputs for one float32 row.
func (t *flatTree) outputs(row []float32) []float64 {
	off := t.leaf(row)
	return t.leafValues[off : off+t.width]
}

// float32Below is the largest float32 that is <= t (NaN stays NaN), the
// float32 threshold equivalent to t for float32 inputs.
func float32Below(t float64) float32 {
	f := float32(t)
	if float64(f) > t {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// toFloat32 rounds X to float32, as sklearn's check_array(dtype=np.float32)
// does before any tree sees it; Go's conversion rounds to nearest even, like
// numpy's astype.
func toFloat32(X []float64) []float32 {
	out := make([]float32, len(X))
	for i, v := range X {
		out[i] = float32(v)
	}
	return out
}

// sklearnTree is a decoded sklearn.tree._tree.Tree, checked but not yet flattened.
type sklearnTree struct {
	nFeatures int
	nOutputs  int
	nClasses  []int // per output; all 1 for regression
	maxClass  int   // values' last dimension
	left      []int64
	right     []int64
	feature   []int64
	threshold []float64
	// values is node_count × nOutputs × maxClass, row-major.
	values []float64
}

// decodeTree reads a Tree object and checks every index in it against
// nFeatures, the feature count of the estimator that holds it.
func decodeTree(v any, nFeatures int) (*sklearnTree, error) {
	obj, ok := v.(*pickle.Object)
	if !ok || obj.Class() != "sklearn.tree._tree.Tree" {
		return nil, fmt.Errorf("tree_: want a sklearn.tree._tree.Tree, got %s", pickle.TypeName(v))
	}
	if len(obj.Args) != 3 {
		return nil, fmt.Errorf("tree_: want 3 constructor arguments, got %d", len(obj.Args))
	}
	nf, ok1 := pickle.ToInt(obj.Args[0])
	nOut, ok2 := pickle.ToInt(obj.Args[2])
	classArr, ok3 := obj.Args[1].(*pickle.NDArray)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("tree_: constructor arguments are not (int, array, int)")
	}
	if int(nf) != nFeatures {
		return nil, fmt.Errorf("tree_: built for %d features, estimator has %d", nf, nFeatures)
	}
	if nOut < 1 || nOut > 1<<16 {
		return nil, fmt.Errorf("tree_: invalid n_outputs %d", nOut)
	}
	nClasses, err := classArr.Int64s()
	if err != nil {
		return nil, fmt.Errorf("tree_: n_classes: %w", err)
	}
	if len(nClasses) != int(nOut) {
		return nil, fmt.Errorf("tree_: n_classes has %d entries for %d outputs", len(nClasses), nOut)
	}
	t := &sklearnTree{nFeatures: nFeatures, nOutputs: int(nOut), nClasses: make([]int, nOut)}
	for i, c := range nClasses {
		if c < 1 || c > 1<<20 {
			return nil, fmt.Errorf("tree_: invalid class count %d", c)
		}
		t.nClasses[i] = int(c)
		t.maxClass = max(t.maxClass, int(c))
	}

	state := obj.Attrs()
	if state == nil {
		return nil, fmt.Errorf("tree_: state is %s, not a dict", pickle.TypeName(obj.State))
	}
	nodeCount, err := obj.Int("node_count")
	if err != nil {
		return nil, fmt.Errorf("tree_: %w", err)
	}
	nodes, err := obj.Array("nodes")
	if err != nil {
		return nil, fmt.Errorf("tree_: %w", err)
	}
	if nodeCount < 1 || int64(nodes.Len()) != nodeCount || len(nodes.Shape) != 1 {
		return nil, fmt.Errorf("tree_: nodes has shape %v, node_count is %d", nodes.Shape, nodeCount)
	}
	if t.left, err = intField(nodes, "left_child"); err != nil {
		return nil, err
	}
	if t.right, err = intField(nodes, "right_child"); err != nil {
		return nil, err
	}
	if t.feature, err = intField(nodes, "feature"); err != nil {
		return nil, err
	}
	if t.threshold, err = floatField(nodes, "threshold"); err != nil {
		return nil, err
	}
	values, err := obj.Array("values")
	if err != nil {
		return nil, fmt.Errorf("tree_: %w", err)
	}
	want := []int{int(nodeCount), t.nOutputs, t.maxClass}
	if !sameShape(values.Shape, want) {
		return nil, fmt.Errorf("tree_: values has shape %v, want %v", values.Shape, want)
	}
	if t.values, err = values.Float64s(); err != nil {
		return nil, fmt.Errorf("tree_: values: %w", err)
	}
	// Flattened trees index nodes and leaf values with int32.
	if len(t.values) > math.MaxInt32 {
		return nil, fmt.Errorf("tree_: %d values is more than this reader supports", len(t.values))
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("tree_: %w", err)
	}
	return t, nil
}

// check validates the node links: a node is a leaf (both children -1) or a
// split on a known feature whose children come after it. sklearn numbers
// nodes depth-first, parent before children, so this holds for every tree it
// writes, and it makes every walk finish within node_count steps.
func (t *sklearnTree) check() error {
	n := int64(len(t.left))
	for i := int64(0); i < n; i++ {
		l, r := t.left[i], t.right[i]
		if l == treeLeaf && r == treeLeaf {
			continue
		}
		if l <= i || l >= n || r <= i || r >= n {
			return fmt.Errorf("node %d: children %d and %d out of range (%d nodes, children must follow their parent)", i, l, r, n)
		}
		if f := t.feature[i]; f < 0 || f >= int64(t.nFeatures) {
			return fmt.Errorf("node %d: feature %d out of range (%d features)", i, f, t.nFeatures)
		}
	}
	return nil
}

// nodeValues returns values[node, output, :nClasses[output]].
func (t *sklearnTree) nodeValues(node, output int) []float64 {
	off := (node*t.nOutputs + output) * t.maxClass
	return t.values[off : off+t.nClasses[output]]
}

// flatten lays the tree out for walking. leafOutputs computes a leaf's width
// outputs from its node index; it runs once per leaf, at build time.
func (t *sklearnTree) flatten(width int, leafOutputs func(node int, out []float64)) (*flatTree, error) {
	// Counted first so that the leaf array is allocated once at its exact size: a
	// forest holds hundreds of these, and append's spare capacity would add a
	// quarter to the model's memory.
	leaves := 0
	for _, l := range t.left {
		if l == treeLeaf {
			leaves++
		}
	}
	ft := &flatTree{leafValues: make([]float64, 0, leaves*width), width: width}
	splits := make([]treewalk.Split[float32], len(t.left))
	for i := range t.left {
		if t.left[i] == treeLeaf {
			off := len(ft.leafValues)
			ft.leafValues = ft.leafValues[:off+width]
			leafOutputs(i, ft.leafValues[off:off+width])
			splits[i] = treewalk.Split[float32]{Leaf: true, Payload: uint32(off)}
			continue
		}
		// Right when not x <= threshold: when x > threshold or x is NaN.
		splits[i] = treewalk.Split[float32]{
			Feature:   int(t.feature[i]),
			Threshold: float32Below(t.threshold[i]),
			NaNRight:  true,
			Left:      int(t.left[i]),
			Right:     int(t.right[i]),
		}
	}
	walk, err := treewalk.Compile(splits, t.nFeatures)
	if err != nil {
		return nil, fmt.Errorf("tree_: %w", err)
	}
	ft.walk = walk
	return ft, nil
}

// classProba fills out with a single-output classifier leaf's class
// probabilities exactly as DecisionTreeClassifier.predict_proba computes them:
// the leaf's weighted class counts divided by their numpy sum (a sum of 0
// divides by 1).
func (t *sklearnTree) classProba(node int, out []float64) {
	counts := t.nodeValues(node, 0)
	norm := numpySum(counts)
	if norm == 0 {
		norm = 1
	}
	for k, c := range counts {
		out[k] = c / norm
	}
}

// regression fills out with a regression leaf's value for every output.
func (t *sklearnTree) regression(node int, out []float64) {
	for o := range out {
		out[o] = t.values[(node*t.nOutputs+o)*t.maxClass]
	}
}

// treeClassifier is a fitted DecisionTreeClassifier or ExtraTreeClassifier.
type treeClassifier struct {
	nFeatures int
	classes   Labels
	tree      *flatTree // leaf outputs are class probabilities
	// argmax is the predicted class index for each leaf offset / width.
	argmax []int
}

func (c *treeClassifier) NumFeatures() int { return c.nFeatures }
func (c *treeClassifier) sizeBytes() int64 {
	return c.tree.sizeBytes() + int64(cap(c.argmax))*int64(unsafe.Sizeof(int(0)))
}
func (c *treeClassifier) Classes() Labels { return c.classes }

func (c *treeClassifier) PredictProba(X []float64, n int) []float64 {
	x32 := toFloat32(X[:n*c.nFeatures])
	k := c.tree.width
	out := make([]float64, n*k)
	for i := 0; i < n; i++ {
		copy(out[i*k:(i+1)*k], c.tree.outputs(x32[i*c.nFeatures:(i+1)*c.nFeatures]))
	}
	return out
}

// PredictIndex is sklearn's predict: the first argmax of the leaf's raw class
// counts, which can differ from the argmax of the rounded probabilities when
// two counts are within a rounding step of each other.
func (c *treeClassifier) PredictIndex(X []float64, n int) []int {
	x32 := toFloat32(X[:n*c.nFeatures])
	out := make([]int, n)
	for i := range out {
		out[i] = c.argmax[c.tree.leaf(x32[i*c.nFeatures:(i+1)*c.nFeatures])/c.tree.width]
	}
	return out
}

// treeRegressor is a fitted DecisionTreeRegressor or ExtraTreeRegressor.
type treeRegressor struct {
	nFeatures int
	tree      *flatTree // leaf outputs are the targets
}

func (r *treeRegressor) NumFeatures() int { return r.nFeatures }
func (r *treeRegressor) sizeBytes() int64 { return r.tree.sizeBytes() }
func (r *treeRegressor) NumTargets() int  { return r.tree.width }

func (r *treeRegressor) Predict(X []float64, n int) []float64 {
	x32 := toFloat32(X[:n*r.nFeatures])
	w := r.tree.width
	out := make([]float64, n*w)
	for i := 0; i < n; i++ {
		copy(out[i*w:(i+1)*w], r.tree.outputs(x32[i*r.nFeatures:(i+1)*r.nFeatures]))
	}
	return out
}

func buildTreeClassifier(obj *pickle.Object) (any, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	classes, err := classLabels(obj)
	if err != nil {
		return nil, err
	}
	ft, argmax, err := classifierTree(obj, nFeatures, classes.Len())
	if err != nil {
		return nil, err
	}
	return &treeClassifier{nFeatures: nFeatures, classes: classes, tree: ft, argmax: argmax}, nil
}

// classifierTree decodes the tree_ of a single-output classifier with
// nClasses classes into a flat tree whose leaves hold class probabilities,
// and the first argmax of each leaf's raw counts.
func classifierTree(obj *pickle.Object, nFeatures, nClasses int) (*flatTree, []int, error) {
	v, err := obj.Object("tree_")
	if err != nil {
		return nil, nil, err
	}
	t, err := decodeTree(v, nFeatures)
	if err != nil {
		return nil, nil, err
	}
	if t.nOutputs != 1 {
		return nil, nil, fmt.Errorf("multi-output classifiers (%d outputs) are not supported", t.nOutputs)
	}
	if t.nClasses[0] != nClasses {
		return nil, nil, fmt.Errorf("tree_ has %d classes, classes_ has %d", t.nClasses[0], nClasses)
	}
	var leafClass []int
	ft, err := t.flatten(nClasses, func(node int, out []float64) {
		t.classProba(node, out)
		leafClass = append(leafClass, argmax(t.nodeValues(node, 0)))
	})
	return ft, leafClass, err
}

func buildTreeRegressor(obj *pickle.Object) (any, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	ft, err := regressorTree(obj, nFeatures)
	if err != nil {
		return nil, err
	}
	return &treeRegressor{nFeatures: nFeatures, tree: ft}, nil
}

// regressorTree decodes a regressor's tree_ into a flat tree whose leaves hold
// one value per output.
func regressorTree(obj *pickle.Object, nFeatures int) (*flatTree, error) {
	v, err := obj.Object("tree_")
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(v, nFeatures)
	if err != nil {
		return nil, err
	}
	for _, c := range t.nClasses {
		if c != 1 {
			return nil, fmt.Errorf("tree_ is a classification tree (%d classes), not a regression tree", c)
		}
	}
	return t.flatten(t.nOutputs, t.regression)
}

// nFeaturesIn reads n_features_in_, the number of columns the estimator was
// fitted on.
func nFeaturesIn(obj *pickle.Object) (int, error) {
	n, err := obj.Int("n_features_in_")
	if err != nil {
		return 0, err
	}
	if n < 1 || n > 1<<24 {
		return 0, fmt.Errorf("invalid n_features_in_ %d", n)
	}
	return int(n), nil
}

// classLabels reads classes_ and requires at least two classes.
func classLabels(obj *pickle.Object) (Labels, error) {
	arr, err := obj.Array("classes_")
	if err != nil {
		return Labels{}, err
	}
	if len(arr.Shape) != 1 {
		return Labels{}, fmt.Errorf("classes_ has shape %v; multi-output classifiers are not supported", arr.Shape)
	}
	labels, err := LabelsFromArray(arr)
	if err != nil {
		return Labels{}, fmt.Errorf("classes_: %w", err)
	}
	if labels.Len() < 1 {
		return Labels{}, fmt.Errorf("classes_ is empty")
	}
	return labels, nil
}

func intField(a *pickle.NDArray, name string) ([]int64, error) {
	v, err := a.FieldInt64s(name)
	if err != nil {
		return nil, fmt.Errorf("nodes.%s: %w", name, err)
	}
	return v, nil
}

func floatField(a *pickle.NDArray, name string) ([]float64, error) {
	v, err := a.FieldFloat64s(name)
	if err != nil {
		return nil, fmt.Errorf("nodes.%s: %w", name, err)
	}
	return v, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
