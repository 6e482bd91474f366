package xgboost

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/formats/treewalk"
)

// node is one tree node in 16 bytes. A leaf has left == -1 and keeps its value
// in value; a split node keeps its threshold there.
type node struct {
	value float32
	left  int32
	right int32
	// feature is the split's feature index, with flags in the top bits.
	feature uint32
}

const (
	defaultLeftFlag = 1 << 31 // a missing value (NaN) goes left
	categoricalFlag = 1 << 30 // the split tests category membership
	featureMask     = categoricalFlag - 1
)

// tree is one regression tree: compiled for fast walks (walk) when every split
// is numeric with a threshold above -Inf, else as decoded (nodes).
type tree struct {
	// walk's leaves carry the index of their value in leafValues.
	walk       *treewalk.Tree[float32]
	leafValues []float32
	nodes      []node
	// categories holds, for each categorical split node, the set of categories
	// that go right, as a bit set; nil when the tree has no categorical split.
	categories [][]uint64
}

// read builds and checks a tree from its JSON object. After read, every child
// index is in range and every node is reached from the root at most once, so a
// walk from the root always ends at a leaf.
func (t *tree) read(obj map[string]any, path string, numFeature int) error {
	tpObj, err := objectField(obj, "tree_param", path)
	if err != nil {
		return err
	}
	if err := checkScalarLeaves(tpObj, path+".tree_param"); err != nil {
		return err
	}
	n64, err := intParam(tpObj, "num_nodes", path+".tree_param", 1, maxNodes)
	if err != nil {
		return err
	}
	n := int(n64)
	left, err := ints(obj, "left_children", path, -1, n64-1)
	if err != nil {
		return err
	}
	right, err := ints(obj, "right_children", path, -1, n64-1)
	if err != nil {
		return err
	}
	features, err := ints(obj, "split_indices", path, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	conds, err := float32s(obj, "split_conditions", path)
	if err != nil {
		return err
	}
	defaults, err := ints(obj, "default_left", path, 0, 1)
	if err != nil {
		return err
	}
	// split_type is absent from models older than XGBoost 1.6: all splits
	// are numeric then.
	var splitType []int64
	if _, ok := obj["split_type"]; ok {
		if splitType, err = ints(obj, "split_type", path, 0, 1); err != nil {
			return err
		}
	}
	lengths := []struct {
		name string
		len  int
	}{
		{"left_children", len(left)}, {"right_children", len(right)}, {"split_indices", len(features)},
		{"split_conditions", len(conds)}, {"default_left", len(defaults)},
	}
	if splitType != nil {
		lengths = append(lengths, struct {
			name string
			len  int
		}{"split_type", len(splitType)})
	}
	for _, a := range lengths {
		if a.len != n {
			return fmt.Errorf("%s.%s has %d entries for %d nodes", path, a.name, a.len, n)
		}
	}

	t.nodes = make([]node, n)
	hasCategorical := false
	for i := range t.nodes {
		nd := &t.nodes[i]
		nd.value, nd.left, nd.right = conds[i], int32(left[i]), int32(right[i])
		if nd.left == -1 {
			if nd.right != -1 {
				return fmt.Errorf("%s: node %d has no left child but right child %d", path, i, nd.right)
			}
			continue
		}
		if nd.right == -1 {
			return fmt.Errorf("%s: node %d has left child %d but no right child", path, i, nd.left)
		}
		if features[i] >= int64(numFeature) {
			return fmt.Errorf("%s: node %d splits on feature %d, but the model has %d features", path, i, features[i], numFeature)
		}
		nd.feature = uint32(features[i])
		if defaults[i] == 1 {
			nd.feature |= defaultLeftFlag
		}
		if splitType != nil && splitType[i] == 1 {
			nd.feature |= categoricalFlag
			hasCategorical = true
		} else if math.IsNaN(float64(nd.value)) {
			return fmt.Errorf("%s: node %d has a NaN threshold", path, i)
		}
	}
	if err := t.checkShape(path); err != nil {
		return err
	}
	if hasCategorical {
		return t.readCategories(obj, path)
	}
	return t.compile(numFeature)
}

// compile replaces the decoded nodes with a compiled tree, unless a threshold
// is -Inf: XGBoost sends x left when x < threshold, which the compiled walk
// asks as "right when x > the float32 below threshold", and below -Inf there
// is none. (Categorical trees are never compiled.)
func (t *tree) compile(numFeature int) error {
	if numFeature < 1 {
		return nil // a model of constant trees: nothing to compile a walk over
	}
	for _, nd := range t.nodes {
		if nd.left >= 0 && math.IsInf(float64(nd.value), -1) {
			return nil
		}
	}
	walk, values, err := treewalk.CompileValues(len(t.nodes), numFeature, func(i int) (treewalk.Split[float32], float32) {
		nd := t.nodes[i]
		if nd.left < 0 {
			return treewalk.Split[float32]{Leaf: true}, nd.value
		}
		return treewalk.Split[float32]{Feature: int(nd.feature & featureMask), Threshold: treewalk.Below(nd.value),
			NaNRight: nd.feature&defaultLeftFlag == 0, Left: int(nd.left), Right: int(nd.right)}, 0
	})
	if err != nil {
		return err
	}
	t.walk, t.nodes, t.leafValues = walk, nil, values
	return nil
}

// checkShape walks the tree from the root and refuses a node reached twice (a
// cycle or a shared subtree) or a child that points at the root.
func (t *tree) checkShape(path string) error {
	seen := make([]bool, len(t.nodes))
	seen[0] = true
	stack := []int32{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nd := t.nodes[i]
		if nd.left == -1 {
			continue
		}
		for _, c := range [2]int32{nd.left, nd.right} {
			if seen[c] {
				return fmt.Errorf("%s: node %d is reached twice (from node %d): the tree has a cycle or a shared node", path, c, i)
			}
			seen[c] = true
			stack = append(stack, c)
		}
	}
	return nil
}

// readCategories reads the category sets of categorical splits. XGBoost stores
// them flat: categories_nodes[k] is a node, whose categories are
// categories[categories_segments[k] : +categories_sizes[k]].
func (t *tree) readCategories(obj map[string]any, path string) error {
	nodes, err := ints(obj, "categories_nodes", path, 0, int64(len(t.nodes)-1))
	if err != nil {
		return err
	}
	segments, err := ints(obj, "categories_segments", path, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	sizes, err := ints(obj, "categories_sizes", path, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	cats, err := ints(obj, "categories", path, 0, maxCategory-1)
	if err != nil {
		return err
	}
	if len(segments) != len(nodes) || len(sizes) != len(nodes) {
		return fmt.Errorf("%s: categories_nodes, categories_segments and categories_sizes have %d, %d and %d entries",
			path, len(nodes), len(segments), len(sizes))
	}
	t.categories = make([][]uint64, len(t.nodes))
	for k, nid := range nodes {
		if t.nodes[nid].feature&categoricalFlag == 0 {
			return fmt.Errorf("%s: categories_nodes[%d] is node %d, which is not a categorical split", path, k, nid)
		}
		if t.categories[nid] != nil {
			return fmt.Errorf("%s: node %d has two category sets", path, nid)
		}
		beg, size := segments[k], sizes[k]
		if beg > int64(len(cats)) || size > int64(len(cats))-beg {
			return fmt.Errorf("%s: node %d's categories [%d, +%d) lie outside the %d stored", path, nid, beg, size, len(cats))
		}
		set := cats[beg : beg+size]
		var top int64
		for _, c := range set {
			top = max(top, c)
		}
		bits := make([]uint64, top/64+1)
		for _, c := range set {
			bits[c/64] |= 1 << (c % 64)
		}
		t.categories[nid] = bits
	}
	for i, nd := range t.nodes {
		if nd.left != -1 && nd.feature&categoricalFlag != 0 && t.categories[i] == nil {
			return fmt.Errorf("%s: categorical split node %d has no category set", path, i)
		}
	}
	return nil
}

// leaf walks the tree for one row of float32 features (NaN = missing) and
// returns the leaf's value. The decisions are XGBoost's: a missing value takes
// the default branch; otherwise x < threshold goes left; a category in the
// node's set goes right, and any other (including a negative or too large
// value) goes left.
func (t *tree) leaf(x []float32) float32 {
	if t.walk != nil {
		return t.leafValues[t.walk.Leaf(x)]
	}
	nodes := t.nodes
	i := int32(0)
	for {
		nd := &nodes[i]
		if nd.left < 0 {
			return nd.value
		}
		v := x[nd.feature&featureMask]
		switch {
		case v != v: // NaN
			if nd.feature&defaultLeftFlag != 0 {
				i = nd.left
			} else {
				i = nd.right
			}
		case nd.feature&categoricalFlag != 0:
			if inCategorySet(t.categories[i], v) {
				i = nd.right
			} else {
				i = nd.left
			}
		case v < nd.value:
			i = nd.left
		default:
			i = nd.right
		}
	}
}

// inCategorySet reports whether feature value v, truncated to an integer
// category as XGBoost does, is in the set.
func inCategorySet(set []uint64, v float32) bool {
	if !(v >= 0 && v < maxCategory) {
		return false
	}
	c := uint32(v)
	w := c / 64
	return int(w) < len(set) && set[w]&(1<<(c%64)) != 0
}
