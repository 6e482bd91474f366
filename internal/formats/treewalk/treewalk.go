// Package treewalk lays a binary decision tree out for fast walks over batches
// of rows, and walks it. The sklearn, XGBoost and LightGBM runtimes compile
// their trees into it; each keeps its own decoding, its leaf values and the
// order in which it adds trees up, so their answers stay bit for bit the
// libraries'. A split compares a value with a threshold or tests a category's
// membership in a set (LightGBM's categorical splits; XGBoost's categorical
// trees stay on that runtime's own walk, which measured faster for them).
//
// Why it is fast: a node's two children sit side by side, so a step is
// "left + (go right ? 1 : 0)" and needs no branch the processor must guess (a
// tree split is a coin toss to the branch predictor, and a wrong guess costs
// about as much as the step). A batch walks a block of rows through one tree
// level by level, several rows at once, so the memory loads of different rows
// overlap instead of waiting on each other; the tree stays in cache for the
// whole block. Leaves loop to themselves, so a row that reaches one early
// simply stays there until the deepest row of its block is done. On amd64 a
// batch walks two groups at a time in assembly (walkPair for float32 trees,
// walkPair64 for float64): sixteen rows in flight, and a step of seven
// instructions where the compiler makes about eleven (twelve with NaN's
// direction, where the compiler's step branches on NaN). Trees with category
// sets take a plainer Go walk of their own (categoricalLeaves).
//
// The walks read nodes and row values through unsafe pointers: a step is a few
// instructions, and two bounds checks per step cost about a third of them. It
// is sound because Compile checked every child offset and feature, and each
// walk checks its rows' length against the tree's feature count first.
package treewalk

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Float is a tree's threshold and feature type: float32 for sklearn's decision
// trees and XGBoost, float64 for HistGradientBoosting.
type Float interface{ ~float32 | ~float64 }

// Split is one node of a tree as its runtime decoded it, the input of Compile.
type Split[T Float] struct {
	// Leaf marks a leaf; only Payload matters then.
	Leaf bool
	// Feature is the column a split compares.
	Feature int
	// A row goes right when its value is greater than Threshold, and, when it
	// is NaN, when NaNRight is set. (Runtimes whose rule is "x < t goes left"
	// pass the float just below t; see Below.)
	Threshold T
	NaNRight  bool
	// Left and Right index the children in the runtime's node array.
	Left, Right int
	// Payload is what a walk that ends at this leaf returns: the runtime's
	// offset or index of the leaf's values, below 2^31.
	Payload uint32
	// Categories, when not nil, makes the split a test of membership instead
	// of a threshold: a row goes right when its value is a category in the
	// set (category c is bit c%32 of Categories[c/32]) and left when it is
	// not. A value is category c when it lies above Threshold and truncates
	// toward zero to c; Threshold must be at least -1, so that no value that
	// passes truncates below 0. NaN goes where NaNRight says. (Threshold is
	// where a runtime's categories begin: -1 for LightGBM, which reads -0.5 as
	// category 0; Below(0) for a runtime that reads it as no category, as
	// XGBoost does.)
	Categories []uint32
}

// MaxSetWords bounds a category set (categories below 2^24), so that its size
// in bits, the value a walk compares a row against, is exact in a float32 and
// fits an int32. A runtime keeps a tree with a larger set on a walk of its own.
const MaxSetWords = 1 << 24 / 32

// node is one compiled node: 16 bytes for float32 trees, 24 for float64.
// Offsets are in bytes, so that a step needs no multiplication.
type node[T Float] struct {
	threshold T
	// feature is the column's byte offset in a Batch's group of rows
	// (column × lanes × the value's size); a single row's walk divides it by
	// lanes.
	feature uint32
	// left is the left child's byte offset in the node array; the right child
	// follows it. A leaf's left is its own offset and its threshold NaN, so
	// every step keeps it there.
	left uint32
	// payload is a leaf's payload; on a split, its top bit sends NaN right,
	// and the rest is 0 for a threshold or, for a test of membership, its
	// set's index in Tree.sets plus one. (Kept out of feature, so that a step
	// on a batch without NaN does not have to mask it off.)
	payload uint32
}

const nanRightBit = 1 << 31

// Tree is a compiled tree. It is immutable and safe for concurrent walks.
type Tree[T Float] struct {
	nodes []node[T]
	// depth is the number of steps from the root to the deepest leaf.
	depth int
	// nFeatures is the row length every walk checks for.
	nFeatures int
	// sets are the tree's category sets, their words in words; a tree with
	// any walks with categoricalLeaf and categoricalLeaves, never the pair
	// walks, whose assembly knows only thresholds.
	sets  []categorySet[T]
	words []uint32
}

// categorySet is one split's set of categories: words[start:] holds its
// bits, and values from limit on are in no set.
type categorySet[T Float] struct {
	start int
	limit T
}

// Compile lays out the tree whose root is splits[0]. Every child index must lie
// in splits and every node be reached once; features must be below nFeatures.
func Compile[T Float](splits []Split[T], nFeatures int) (*Tree[T], error) {
	var zero T
	nodeSize, valueSize := int(unsafe.Sizeof(node[T]{})), int(unsafe.Sizeof(zero))
	if len(splits) == 0 || len(splits) > math.MaxInt32/nodeSize {
		return nil, fmt.Errorf("a tree of %d nodes", len(splits))
	}
	if nFeatures < 1 || nFeatures > math.MaxInt32/(lanes*valueSize) {
		return nil, fmt.Errorf("a tree over %d features", nFeatures)
	}
	t := &Tree[T]{nodes: make([]node[T], 0, len(splits)), nFeatures: nFeatures}
	seen := make([]bool, len(splits))
	// Depth first, left before right, each split's children side by side:
	// a left child's own children follow it closely, so a single row's walk
	// touches few cache lines. The stack holds (source index, compiled
	// index, depth).
	type item struct{ src, dst, depth int }
	stack := []item{{0, 0, 0}}
	seen[0] = true
	t.nodes = append(t.nodes, node[T]{})
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		s := splits[it.src]
		self := uint32(it.dst * nodeSize)
		if s.Leaf {
			// The payload's top bit is the splits' NaN bit, which a leaf must
			// not have: a NaN value would move the walk off it.
			if s.Payload >= nanRightBit {
				return nil, fmt.Errorf("leaf %d has payload %d, above 2^31", it.src, s.Payload)
			}
			t.nodes[it.dst] = node[T]{threshold: T(math.NaN()), left: self, payload: s.Payload}
			t.depth = max(t.depth, it.depth)
			continue
		}
		if s.Feature < 0 || s.Feature >= nFeatures {
			return nil, fmt.Errorf("node %d splits on feature %d of %d", it.src, s.Feature, nFeatures)
		}
		for _, c := range [2]int{s.Left, s.Right} {
			if c < 0 || c >= len(splits) || seen[c] {
				return nil, fmt.Errorf("node %d has child %d, out of range or reached twice", it.src, c)
			}
			seen[c] = true
		}
		left := len(t.nodes)
		n := node[T]{threshold: s.Threshold, feature: uint32(s.Feature * lanes * valueSize), left: uint32(left * nodeSize)}
		if s.Categories != nil {
			if !(s.Threshold >= -1) || len(s.Categories) > MaxSetWords {
				return nil, fmt.Errorf("node %d tests categories above %v in a set of %d words", it.src, s.Threshold, len(s.Categories))
			}
			// A value above the threshold and below the limit truncates to a
			// category below the limit, but for (-1, 0) and a limit of 0:
			// no value passes -1 below an empty set's.
			limit := T(32 * len(s.Categories))
			if limit == 0 {
				limit = -1
			}
			t.sets = append(t.sets, categorySet[T]{start: len(t.words), limit: limit})
			t.words = append(t.words, s.Categories...)
			n.payload = uint32(len(t.sets)) // below 2^31: a set per split, fewer splits than nodes
		}
		if s.NaNRight {
			n.payload |= nanRightBit
		}
		t.nodes[it.dst] = n
		t.nodes = append(t.nodes, node[T]{}, node[T]{})
		stack = append(stack, item{s.Right, left + 1, it.depth + 1}, item{s.Left, left, it.depth + 1})
	}
	return t, nil
}

// CompileValues compiles a tree whose leaves hold one value each. node(i)
// describes node i as a Split (a leaf's Payload is ignored) and, for a leaf,
// its value; the compiled leaves carry their value's index in the returned
// slice.
func CompileValues[T Float, V any](count, nFeatures int, node func(i int) (Split[T], V)) (*Tree[T], []V, error) {
	splits := make([]Split[T], count)
	var values []V
	for i := range splits {
		s, v := node(i)
		if s.Leaf {
			s.Payload = uint32(len(values))
			values = append(values, v)
		}
		splits[i] = s
	}
	t, err := Compile(splits, nFeatures)
	if err != nil {
		return nil, nil, err
	}
	return t, slices.Clip(values), nil
}

// Below returns the largest float32 less than t, so that for any float32 x
// that is not NaN, x >= t exactly when x > Below(t). It is for runtimes whose
// rule is "x < t goes left"; t must be greater than -Inf and not NaN.
func Below(t float32) float32 { return math.Nextafter32(t, float32(math.Inf(-1))) }

// SizeBytes is what the compiled nodes and category sets occupy.
func (t *Tree[T]) SizeBytes() int64 {
	return int64(cap(t.nodes))*int64(unsafe.Sizeof(node[T]{})) +
		int64(cap(t.sets))*int64(unsafe.Sizeof(categorySet[T]{})) + int64(cap(t.words))*4
}

// at is the node at byte offset off of the array at base.
func at[T Float](base unsafe.Pointer, off uint32) *node[T] {
	return (*node[T])(unsafe.Add(base, off))
}

// value is the row's value that node n compares.
func value[T Float](row unsafe.Pointer, n *node[T]) T {
	return *(*T)(unsafe.Add(row, n.feature/lanes))
}

// step is one move down, without a branch on the split: the offset of the
// child that the row's value x sends it to. nan says whether x may be NaN; a
// batch without one saves the check (the branch on nan is always guessed
// right).
func step[T Float](n *node[T], x T, nan bool) uint32 {
	right := uint32(0)
	if x > n.threshold {
		right = 1
	}
	if nan && x != x {
		right = n.payload >> 31
	}
	return n.left + right*uint32(unsafe.Sizeof(*n))
}

// Leaf walks one row and returns its leaf's payload. Unlike a batch, one row
// has nothing to overlap its memory loads with, so this walk branches: the
// processor guesses each split and starts loading the guessed child before the
// comparison is done, which on a tree larger than the cache is worth more than
// the wrong guesses cost.
func (t *Tree[T]) Leaf(row []T) uint32 {
	if len(row) < t.nFeatures {
		panic(fmt.Sprintf("treewalk: a row of %d values for a tree over %d features", len(row), t.nFeatures))
	}
	if t.sets != nil {
		return t.categoricalLeaf(row)
	}
	base, x0 := unsafe.Pointer(unsafe.SliceData(t.nodes)), unsafe.Pointer(unsafe.SliceData(row))
	off := uint32(0)
	for {
		n := at[T](base, off)
		if n.left == off {
			return n.payload
		}
		x := value(x0, n)
		switch {
		case x <= n.threshold:
			off = n.left
		case x != x && n.payload&nanRightBit == 0:
			off = n.left
		default:
			off = n.left + uint32(unsafe.Sizeof(*n))
		}
	}
}

// lanes is how many rows a batch walk moves together: their steps do not
// depend on each other, so the processor overlaps them.
const lanes = 1 << lanesShift

// lanesShift turns a node's feature offset in a group into one in a row.
const lanesShift = 3

// MinBatch is the batch size from which a runtime should walk its rows through
// a Batch: a group always walks lanes rows, so fewer rows pay for padding and
// are better walked one by one with Leaf.
const MinBatch = lanes

// Batch is rows laid out for Leaves: in groups of lanes rows, each group
// column by column, so that one lane's value of a column sits at a fixed
// distance from the group's start and a step needs no pointer per row. The
// last group is padded with zeros. Reuse a Batch with Load.
type Batch[T Float] struct {
	values    []T
	n         int
	nFeatures int
	nan       bool
}

// Load lays out the n rows of X (row-major, nFeatures values each).
func (b *Batch[T]) Load(X []T, n, nFeatures int) {
	groups := (n + lanes - 1) / lanes
	size := groups * nFeatures * lanes
	if cap(b.values) < size {
		b.values = make([]T, size)
	}
	b.values = b.values[:size]
	b.n, b.nFeatures, b.nan = n, nFeatures, false
	for r := 0; r < n; r++ {
		g := b.values[(r/lanes)*nFeatures*lanes:]
		for f, v := range X[r*nFeatures : (r+1)*nFeatures] {
			g[f*lanes+r%lanes] = v
			if v != v {
				b.nan = true
			}
		}
	}
	for r := n; r < groups*lanes; r++ {
		g := b.values[(r/lanes)*nFeatures*lanes:]
		for f := 0; f < nFeatures; f++ {
			g[f*lanes+r%lanes] = 0
		}
	}
}

// Len is the number of rows loaded.
func (b *Batch[T]) Len() int { return b.n }

// Leaves writes to out[i] the payload of the leaf that row from+i of the batch
// reaches, for len(out) rows; from must be a multiple of lanes (8).
func (t *Tree[T]) Leaves(b *Batch[T], from int, out []uint32) {
	if b.nFeatures < t.nFeatures || from%lanes != 0 || from < 0 || from+len(out) > b.n {
		panic(fmt.Sprintf("treewalk: rows %d..%d of a batch of %d rows of %d features, tree over %d",
			from, from+len(out), b.n, b.nFeatures, t.nFeatures))
	}
	groupLen := b.nFeatures * lanes
	if t.sets != nil {
		t.categoricalLeaves(b.values[from/lanes*groupLen:], groupLen, out)
		return
	}
	g := 0
	if usePairWalk {
		g = t.pairs(b.values[from/lanes*groupLen:], groupLen, b.nan, out)
	}
	var partial [lanes]uint32
	for ; g*lanes < len(out); g++ {
		// A whole group writes its leaves straight into out (a copy per group
		// was a call to memmove for 32 bytes, 8 % of an XGBoost batch's time);
		// only a last, partial group goes through partial.
		whole := (g+1)*lanes <= len(out)
		leaves := &partial
		if whole {
			leaves = (*[lanes]uint32)(out[g*lanes:])
		}
		t.group(b.values[(from/lanes+g)*groupLen:][:groupLen], b.nan, leaves)
		if !whole {
			copy(out[g*lanes:], partial[:])
		}
	}
}

// usePairWalk sends whole pairs of groups of a batch through walkPair (float32)
// or walkPair64 where the architecture has it; the tests turn it off to
// check the Go walk on its own.
var usePairWalk = pairWalk

// pairs walks the whole groups of out two at a time with walkPair, writing
// their payloads to out, and returns how many groups it walked. values starts
// at out's first group; each group is groupLen values.
func (t *Tree[T]) pairs(values []T, groupLen int, nan bool, out []uint32) int {
	base := unsafe.Pointer(unsafe.SliceData(t.nodes))
	walk := walkPair
	if unsafe.Sizeof(values[0]) == 8 {
		walk = walkPair64
	}
	g := 0
	for ; (g+2)*lanes <= len(out); g += 2 {
		v0 := unsafe.Pointer(unsafe.SliceData(values[g*groupLen:]))
		v1 := unsafe.Pointer(unsafe.SliceData(values[(g+1)*groupLen:]))
		o0, o1 := (*[lanes]uint32)(out[g*lanes:]), (*[lanes]uint32)(out[(g+1)*lanes:])
		*o0, *o1 = [lanes]uint32{}, [lanes]uint32{}
		// Eight levels at a time, then the same early stop as group's.
		for d := 0; d < t.depth; d += 8 {
			walk(base, v0, v1, min(8, t.depth-d), nan, o0, o1)
			if d+8 < t.depth && allLeaves[T](base, o0) && allLeaves[T](base, o1) {
				break
			}
		}
		for l := range lanes {
			o0[l] = at[T](base, o0[l]).payload
			o1[l] = at[T](base, o1[l]).payload
		}
	}
	return g
}

func allLeaves[T Float](base unsafe.Pointer, offsets *[lanes]uint32) bool {
	for _, off := range offsets {
		if !isLeaf[T](base, uintptr(off)) {
			return false
		}
	}
	return true
}

// group walks one group of lanes rows to their leaves. The lanes are written
// out by hand and the walk is written twice, with and without the NaN check:
// the compiler keeps neither a loop over lanes nor a loop-invariant test out
// of the step, and this loop is where a batch spends its time.
func (t *Tree[T]) group(values []T, nan bool, leaves *[lanes]uint32) {
	base := unsafe.Pointer(unsafe.SliceData(t.nodes))
	g := unsafe.Pointer(unsafe.SliceData(values))
	nodeSize, size := unsafe.Sizeof(node[T]{}), unsafe.Sizeof(values[0])
	var o0, o1, o2, o3, o4, o5, o6, o7 uintptr
	// Every row starts at the root: its first step reads one node for all of
	// them (an eighth of the steps of a depth-8 tree).
	d := 1
	if root := (*node[T])(base); !nan && t.depth > 0 {
		o0 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature))) > root.threshold)*nodeSize
		o1 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+1*size)) > root.threshold)*nodeSize
		o2 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+2*size)) > root.threshold)*nodeSize
		o3 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+3*size)) > root.threshold)*nodeSize
		o4 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+4*size)) > root.threshold)*nodeSize
		o5 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+5*size)) > root.threshold)*nodeSize
		o6 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+6*size)) > root.threshold)*nodeSize
		o7 = uintptr(root.left) + right(*(*T)(unsafe.Add(g, uintptr(root.feature)+7*size)) > root.threshold)*nodeSize
		d = 2
	}
	for ; d <= t.depth; d++ {
		if nan {
			n0 := (*node[T])(unsafe.Add(base, o0))
			n1 := (*node[T])(unsafe.Add(base, o1))
			n2 := (*node[T])(unsafe.Add(base, o2))
			n3 := (*node[T])(unsafe.Add(base, o3))
			n4 := (*node[T])(unsafe.Add(base, o4))
			n5 := (*node[T])(unsafe.Add(base, o5))
			n6 := (*node[T])(unsafe.Add(base, o6))
			n7 := (*node[T])(unsafe.Add(base, o7))
			x0 := *(*T)(unsafe.Add(g, uintptr(n0.feature)))
			x1 := *(*T)(unsafe.Add(g, uintptr(n1.feature)+1*size))
			x2 := *(*T)(unsafe.Add(g, uintptr(n2.feature)+2*size))
			x3 := *(*T)(unsafe.Add(g, uintptr(n3.feature)+3*size))
			x4 := *(*T)(unsafe.Add(g, uintptr(n4.feature)+4*size))
			x5 := *(*T)(unsafe.Add(g, uintptr(n5.feature)+5*size))
			x6 := *(*T)(unsafe.Add(g, uintptr(n6.feature)+6*size))
			x7 := *(*T)(unsafe.Add(g, uintptr(n7.feature)+7*size))
			o0 = uintptr(step(n0, x0, true))
			o1 = uintptr(step(n1, x1, true))
			o2 = uintptr(step(n2, x2, true))
			o3 = uintptr(step(n3, x3, true))
			o4 = uintptr(step(n4, x4, true))
			o5 = uintptr(step(n5, x5, true))
			o6 = uintptr(step(n6, x6, true))
			o7 = uintptr(step(n7, x7, true))
		} else {
			n0 := (*node[T])(unsafe.Add(base, o0))
			n1 := (*node[T])(unsafe.Add(base, o1))
			n2 := (*node[T])(unsafe.Add(base, o2))
			n3 := (*node[T])(unsafe.Add(base, o3))
			n4 := (*node[T])(unsafe.Add(base, o4))
			n5 := (*node[T])(unsafe.Add(base, o5))
			n6 := (*node[T])(unsafe.Add(base, o6))
			n7 := (*node[T])(unsafe.Add(base, o7))
			x0 := *(*T)(unsafe.Add(g, uintptr(n0.feature)))
			x1 := *(*T)(unsafe.Add(g, uintptr(n1.feature)+1*size))
			x2 := *(*T)(unsafe.Add(g, uintptr(n2.feature)+2*size))
			x3 := *(*T)(unsafe.Add(g, uintptr(n3.feature)+3*size))
			x4 := *(*T)(unsafe.Add(g, uintptr(n4.feature)+4*size))
			x5 := *(*T)(unsafe.Add(g, uintptr(n5.feature)+5*size))
			x6 := *(*T)(unsafe.Add(g, uintptr(n6.feature)+6*size))
			x7 := *(*T)(unsafe.Add(g, uintptr(n7.feature)+7*size))
			o0 = uintptr(n0.left) + right(x0 > n0.threshold)*nodeSize
			o1 = uintptr(n1.left) + right(x1 > n1.threshold)*nodeSize
			o2 = uintptr(n2.left) + right(x2 > n2.threshold)*nodeSize
			o3 = uintptr(n3.left) + right(x3 > n3.threshold)*nodeSize
			o4 = uintptr(n4.left) + right(x4 > n4.threshold)*nodeSize
			o5 = uintptr(n5.left) + right(x5 > n5.threshold)*nodeSize
			o6 = uintptr(n6.left) + right(x6 > n6.threshold)*nodeSize
			o7 = uintptr(n7.left) + right(x7 > n7.threshold)*nodeSize
		}
		// Every few levels, stop once all rows are at leaves: trees whose
		// leaves lie at very different depths need not walk the deepest. (Not
		// at the last level, where the loop ends anyway: for a tree of depth 8,
		// XGBoost's default, that check was eight loads per group for nothing.)
		if d%8 == 0 && d < t.depth && isLeaf[T](base, o0) && isLeaf[T](base, o1) && isLeaf[T](base, o2) && isLeaf[T](base, o3) &&
			isLeaf[T](base, o4) && isLeaf[T](base, o5) && isLeaf[T](base, o6) && isLeaf[T](base, o7) {
			break
		}
	}
	for l, o := range [lanes]uintptr{o0, o1, o2, o3, o4, o5, o6, o7} {
		leaves[l] = (*node[T])(unsafe.Add(base, o)).payload
	}
}

// Trees with category sets walk apart from the others: a membership test is a
// bounds check and a bit read where a threshold is one comparison, and the
// threshold walks above stay free of a check for it on every step.

// categoricalLeaf is Leaf for a tree with category sets.
func (t *Tree[T]) categoricalLeaf(row []T) uint32 {
	return t.categoricalWalk(unsafe.Pointer(unsafe.SliceData(row)), lanesShift)
}

// categoricalLeaves is Leaves for a tree with category sets. Each row walks to
// its leaf on its own, branching as Leaf does, where the threshold walks move
// a group level by level: LightGBM's trees, grown leaf by leaf, are deep on
// one side, and a level-by-level walk, paced by its deepest row, took as long
// as the runtime's own row walk on its Poisson model (bench_test.go), where
// this one is 1.1-1.25 times as fast. values starts at out's first group;
// each group is groupLen values.
func (t *Tree[T]) categoricalLeaves(values []T, groupLen int, out []uint32) {
	size := unsafe.Sizeof(values[0])
	for i := range out {
		group := unsafe.Pointer(unsafe.SliceData(values[i/lanes*groupLen:]))
		out[i] = t.categoricalWalk(unsafe.Add(group, uintptr(i%lanes)*size), 0)
	}
}

// categoricalWalk walks the row whose first value x0 points at and returns its
// leaf's payload; a value lies at a node's feature offset shifted right by
// shift (0 in a Batch's group, lanesShift in a row).
func (t *Tree[T]) categoricalWalk(x0 unsafe.Pointer, shift uint32) uint32 {
	base := unsafe.Pointer(unsafe.SliceData(t.nodes))
	nodeSize := uint32(unsafe.Sizeof(node[T]{}))
	off := uint32(0)
	for {
		n := at[T](base, off)
		if n.left == off {
			return n.payload
		}
		x := *(*T)(unsafe.Add(x0, n.feature>>shift))
		switch set := n.payload &^ nanRightBit; {
		case x != x:
			off = n.left + n.payload>>31*nodeSize
		case set != 0:
			off = n.left + t.inSet(set-1, n.threshold, x)*nodeSize
		case x > n.threshold:
			off = n.left + nodeSize
		default:
			off = n.left
		}
	}
}

// inSet is 1 when x, a value above from (at least -1) truncated toward zero,
// is a category in set i, and 0 when not.
func (t *Tree[T]) inSet(i uint32, from, x T) uint32 {
	s := t.sets[i]
	if !(x > from && x < s.limit) {
		return 0
	}
	c := uint32(int32(x))
	return t.words[s.start+int(c/32)] >> (c % 32) & 1
}

// right is 1 for true and 0 for false, without a branch.
func right(b bool) uintptr {
	r := uintptr(0)
	if b {
		r = 1
	}
	return r
}

func isLeaf[T Float](base unsafe.Pointer, off uintptr) bool {
	return uintptr((*node[T])(unsafe.Add(base, off)).left) == off
}

// minRowsPerWorker is the smallest share of a batch worth a goroutine of its
// own: below it, the handoff costs more than the walk it would split.
const minRowsPerWorker = 128

// Blocks lays out the n rows of X (row-major, nFeatures values each) as a
// Batch and calls fn for each block of up to block rows (a multiple of lanes),
// split across cores as rows splits them. fn gets the batch, the block's rows
// [start, end) and scratch for one payload per row (Leaves' out). A runtime
// sends each block through every tree in its order before the next block, so
// that a tree serves a whole block while it is in cache.
func Blocks[T Float](X []T, n, nFeatures, block int, fn func(b *Batch[T], start, end int, leaves []uint32)) {
	if block < lanes || block%lanes != 0 {
		panic(fmt.Sprintf("treewalk: blocks of %d rows", block))
	}
	var batch Batch[T]
	batch.Load(X, n, nFeatures)
	rows(n, func(lo, hi int) {
		leaves := make([]uint32, min(block, hi-lo))
		for start := lo; start < hi; start += block {
			end := min(hi, start+block)
			fn(&batch, start, end, leaves[:end-start])
		}
	})
}

// rows runs fn over [0, n) in contiguous ranges that start at multiples of
// lanes, one per goroutine, on up to GOMAXPROCS goroutines when the batch is
// large enough to pay for them, and returns when every range is done. Each
// row is in exactly one range, so a runtime that adds its trees up per row in
// fn gets the same answer as one goroutine would.
//
// The ranges are equal halves (thirds, ...), not small chunks handed out as
// workers come free: a chunk walks every tree of the model, and a tree brought
// into the cache for few rows costs more than it saves (a 200-tree forest of
// depth 16 took 1.7 times as long per row in blocks of 64 rows as in blocks of
// 256, bench/trees.sh). The price is that the caller's range waits for the
// other goroutine's start: on a virtual machine, waking an idle core takes
// about a tenth of a millisecond.
//
// A panic in another goroutine's range (a runtime's bug that some row
// triggers) is carried back and raised in the caller once every range is done,
// where the server contains it as it does one in the caller's own range; in
// the goroutine it would end the process.
func rows(n int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/minRowsPerWorker)
	if workers <= 1 {
		fn(0, n)
		return
	}
	per := ((n+workers-1)/workers + lanes - 1) / lanes * lanes
	var wg sync.WaitGroup
	var panicked atomic.Pointer[any]
	for lo := per; lo < n; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicked.CompareAndSwap(nil, &p)
				}
			}()
			fn(lo, hi)
		}(lo, min(n, lo+per))
	}
	func() {
		defer wg.Wait() // the others' ranges end before this one's panic goes on
		fn(0, min(n, per))
	}()
	if p := panicked.Load(); p != nil {
		panic(*p)
	}
}
