package lightgbm

import (
	"math"

	"github.com/tideserve/tide/internal/formats/treewalk"
)

// Bits of a split's decision_type, as LightGBM's tree.h defines them.
const (
	categoricalMask = 1 // the split tests set membership, not a threshold
	defaultLeftMask = 2 // a missing value goes left
	// bits 2-3: how a missing value is recognised
	missingNone = 0 // none is: NaN is read as 0
	missingZero = 1 // zero (|x| <= 1e-35) is missing
	missingNaN  = 2 // NaN is missing
)

// zeroThreshold is LightGBM's kZeroThreshold: values this close to 0 are zero.
const zeroThreshold = 1e-35

// tree is one LightGBM tree in its own layout: internal nodes 0..n-2 with
// children that are node indices (>= 0) or leaves (^leaf, < 0).
type tree struct {
	splitFeature []int32
	threshold    []float64
	decisionType []uint8
	left, right  []int32
	leafValue    []float64
	// catBoundaries[i]..catBoundaries[i+1] are the words of categorical split
	// i's bitset in catThreshold; a categorical node's threshold is i.
	catBoundaries []int32
	catThreshold  []uint32
	// walk is the tree laid out for batches (compileWalk), nil when a split
	// follows a rule treewalk cannot express; batches then walk it row by row.
	walk *treewalk.Tree[float64]
}

// compileWalk lays the tree out for treewalk's batch walks. treewalk's rule is
// "right when x > threshold, NaN where the split says", which is LightGBM's
// "left when x <= threshold" for every value but NaN; for NaN, a split whose
// missing type is NaN sends it to its default side, and one whose missing
// type is none reads it as 0. A categorical split is treewalk's test of
// membership with its children swapped (LightGBM sends a category in the set
// left; NaN and values at or below -1, which are no category, right). A
// zero-as-missing split (values near zero take the default side whatever the
// threshold), a NaN threshold (which sends every value right) and a set too
// large for treewalk cannot be written that way: such a tree keeps walk nil.
// The leaves' payloads are their indices in leafValue.
func (t *tree) compileWalk(numFeature int) error {
	n := len(t.leafValue) - 1 // internal nodes
	splits := make([]treewalk.Split[float64], n+len(t.leafValue))
	child := func(c int32) int {
		if c >= 0 {
			return int(c)
		}
		return n + int(^c)
	}
	for i := 0; i < n; i++ {
		dt, th := t.decisionType[i], t.threshold[i]
		if dt&categoricalMask != 0 {
			set := t.catThreshold[t.catBoundaries[int(th)]:t.catBoundaries[int(th)+1]]
			if len(set) > treewalk.MaxSetWords {
				return nil
			}
			splits[i] = treewalk.Split[float64]{Feature: int(t.splitFeature[i]), Threshold: -1, Categories: set,
				Left: child(t.right[i]), Right: child(t.left[i])}
			continue
		}
		missing := (dt >> 2) & 3
		if missing == missingZero || math.IsNaN(th) {
			return nil
		}
		nanRight := 0 > th // missing type none: NaN is read as 0
		if missing == missingNaN {
			nanRight = dt&defaultLeftMask == 0
		}
		splits[i] = treewalk.Split[float64]{Feature: int(t.splitFeature[i]), Threshold: th, NaNRight: nanRight,
			Left: child(t.left[i]), Right: child(t.right[i])}
	}
	for l := range t.leafValue {
		splits[n+l] = treewalk.Split[float64]{Leaf: true, Payload: uint32(l)}
	}
	walk, err := treewalk.Compile(splits, numFeature)
	if err != nil {
		return err
	}
	t.walk = walk
	return nil
}

// leaf returns the index of the leaf row x falls in, exactly as LightGBM's
// Tree::GetLeaf: numerical and categorical decisions with its missing-value
// rules. The tree was checked at load (every child in range, no cycles).
func (t *tree) leaf(x []float64) int {
	if len(t.leafValue) == 1 {
		return 0
	}
	node := int32(0)
	for node >= 0 {
		fval := x[t.splitFeature[node]]
		dt := t.decisionType[node]
		if dt&categoricalMask != 0 {
			node = t.categorical(fval, node, dt)
		} else {
			node = t.numerical(fval, node, dt)
		}
	}
	return int(^node)
}

func (t *tree) numerical(fval float64, node int32, dt uint8) int32 {
	missing := (dt >> 2) & 3
	if math.IsNaN(fval) && missing != missingNaN {
		fval = 0
	}
	if (missing == missingZero && fval >= -zeroThreshold && fval <= zeroThreshold) ||
		(missing == missingNaN && math.IsNaN(fval)) {
		if dt&defaultLeftMask != 0 {
			return t.left[node]
		}
		return t.right[node]
	}
	if fval <= t.threshold[node] {
		return t.left[node]
	}
	return t.right[node]
}

// categorical sends a category in the split's set left. LightGBM casts the
// value to int (truncating toward zero); NaN, negative categories and values
// beyond int32 go right.
func (t *tree) categorical(fval float64, node int32, dt uint8) int32 {
	if math.IsNaN(fval) || fval <= -1 || fval >= math.MaxInt32 {
		return t.right[node]
	}
	cat := int(fval)
	i := int(t.threshold[node])
	words := t.catThreshold[t.catBoundaries[i]:t.catBoundaries[i+1]]
	if w := cat / 32; w < len(words) && words[w]>>(cat%32)&1 != 0 {
		return t.left[node]
	}
	return t.right[node]
}
