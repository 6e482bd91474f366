package treewalk

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// reference walks splits as the runtimes define a tree, one branch at a time.
func reference[T Float](splits []Split[T], row []T) uint32 {
	i := 0
	for {
		s := splits[i]
		if s.Leaf {
			return s.Payload
		}
		x := row[s.Feature]
		switch {
		case x != x:
			if s.NaNRight {
				i = s.Right
			} else {
				i = s.Left
			}
		case s.Categories != nil:
			c := math.Trunc(float64(x))
			if float64(x) > float64(s.Threshold) && c < float64(32*len(s.Categories)) && s.Categories[int(c)/32]>>(int(c)%32)&1 == 1 {
				i = s.Right
			} else {
				i = s.Left
			}
		case x > s.Threshold:
			i = s.Right
		default:
			i = s.Left
		}
	}
}

// randomTree builds a tree of up to maxNodes nodes in a shuffled node order
// (children not necessarily after their parents), with thresholds drawn from
// values that rows also take, so that ties are common. With categorical, about
// a third of the splits test membership in a random set of categories.
func randomTree[T Float](rng *rand.Rand, nFeatures, maxNodes int, values []T, categorical bool) []Split[T] {
	type pending struct{ idx, depth int }
	splits := []Split[T]{{}}
	queue := []pending{{0, 0}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if len(splits)+2 > maxNodes || rng.IntN(4) == 0 && p.depth > 0 {
			splits[p.idx] = Split[T]{Leaf: true, Payload: uint32(rng.IntN(1 << 31))}
			continue
		}
		l, r := len(splits), len(splits)+1
		splits = append(splits, Split[T]{}, Split[T]{})
		splits[p.idx] = Split[T]{Feature: rng.IntN(nFeatures), Threshold: values[rng.IntN(len(values))],
			NaNRight: rng.IntN(2) == 0, Left: l, Right: r}
		if categorical && rng.IntN(3) == 0 {
			// Where categories begin: LightGBM's -1, XGBoost's "just below 0",
			// 0 and 2 (categories 0 and 1, or 0 to 2, in no set).
			from := []T{-1, T(-math.SmallestNonzeroFloat32), 0, 2}
			set := make([]uint32, rng.IntN(4)) // up to category 127, or an empty set
			for w := range set {
				set[w] = rng.Uint32() & rng.Uint32()
			}
			splits[p.idx].Threshold, splits[p.idx].Categories = from[rng.IntN(len(from))], set
		}
		queue = append(queue, pending{l, p.depth + 1}, pending{r, p.depth + 1})
	}
	// Shuffle the node order, keeping the root first, to show that Compile
	// does not rely on the runtimes' layouts.
	perm := append([]int{0}, rng.Perm(len(splits)-1)...)
	for i := 1; i < len(perm); i++ {
		perm[i]++
	}
	where := make([]int, len(splits))
	for newIdx, old := range perm {
		where[old] = newIdx
	}
	out := make([]Split[T], len(splits))
	for old, s := range splits {
		if !s.Leaf {
			s.Left, s.Right = where[s.Left], where[s.Right]
		}
		out[where[old]] = s
	}
	return out
}

func specialValues[T Float]() []T {
	var zero T
	return []T{T(math.Inf(1)), T(math.Inf(-1)), -zero, zero, 1, -1, 0.5, T(math.SmallestNonzeroFloat32), -2.5, 3, 1e30, -1e30}
}

func checkAgainstReference[T Float](t *testing.T, seed uint64, categorical bool) {
	rng := rand.New(rand.NewPCG(seed, 7))
	nFeatures := 1 + rng.IntN(12)
	values := specialValues[T]()
	for i := 0; i < 20; i++ {
		values = append(values, T(rng.NormFloat64()))
	}
	if categorical {
		// Categories, fractions of them, the ends of sets' words, and what
		// lies between -1 and 0.
		values = append(values, -0.5, -0.99, 1.5, 2, 2.99, 7, 31, 31.5, 32, 63, 64, 95, 96, 127, 128, 1e6)
		for i := 0; i < 20; i++ {
			values = append(values, T(rng.IntN(130)))
		}
	}
	splits := randomTree(rng, nFeatures, 2+rng.IntN(400), values, categorical)
	tree, err := Compile(splits, nFeatures)
	if err != nil {
		t.Fatal(err)
	}
	nRows := 1 + rng.IntN(300)
	X := make([]T, nRows*nFeatures)
	withNaN := rng.IntN(2) == 0
	for i := range X {
		X[i] = values[rng.IntN(len(values))]
		if withNaN && rng.IntN(10) == 0 {
			X[i] = T(math.NaN())
		}
	}
	var batch Batch[T]
	batch.Load(X, nRows, nFeatures)
	if batch.Len() != nRows {
		t.Fatalf("Len %d, loaded %d rows", batch.Len(), nRows)
	}
	for r := 0; r < nRows; r++ {
		row := X[r*nFeatures : (r+1)*nFeatures]
		if got, want := tree.Leaf(row), reference(splits, row); got != want {
			t.Fatalf("seed %d row %d: Leaf %d, reference %d (row %v)", seed, r, got, want, row)
		}
	}
	// Every aligned start and length, as the runtimes' blocks take them.
	for from := 0; from < nRows; from += lanes {
		out := make([]uint32, 1+rng.IntN(nRows-from))
		tree.Leaves(&batch, from, out)
		for i, got := range out {
			row := X[(from+i)*nFeatures : (from+i+1)*nFeatures]
			if want := reference(splits, row); got != want {
				t.Fatalf("seed %d rows from %d, row %d: Leaves %d, reference %d (row %v, NaN in batch %v)", seed, from, from+i, got, want, row, withNaN)
			}
		}
	}
}

// eachWalk runs check once with the Go walk alone and, where this
// architecture has it, once more with the assembly pair walk taking the
// float32 batches it can.
func eachWalk(t *testing.T, check func(t *testing.T)) {
	defer func(was bool) { usePairWalk = was }(usePairWalk)
	walks := []bool{false}
	if pairWalk {
		walks = append(walks, true)
	}
	for _, pair := range walks {
		usePairWalk = pair
		name := "go"
		if pair {
			name = "pair"
		}
		t.Run(name, check)
	}
}

// The pair walks' assembly reads nodes at these offsets.
func TestNodeLayoutIsTheAssemblys(t *testing.T) {
	var n32 node[float32]
	var n64 node[float64]
	got := [][4]uintptr{
		{unsafe.Offsetof(n32.feature), unsafe.Offsetof(n32.left), unsafe.Offsetof(n32.payload), unsafe.Sizeof(n32)},
		{unsafe.Offsetof(n64.feature), unsafe.Offsetof(n64.left), unsafe.Offsetof(n64.payload), unsafe.Sizeof(n64)},
	}
	if want := [][4]uintptr{{4, 8, 12, 16}, {8, 12, 16, 24}}; got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("node layouts (feature, left, payload, size) %v, the assembly's %v", got, want)
	}
}

func TestWalksMatchTheReference(t *testing.T) {
	eachWalk(t, func(t *testing.T) {
		for seed := uint64(0); seed < 300; seed++ {
			checkAgainstReference[float32](t, seed, false)
			checkAgainstReference[float64](t, seed, false)
		}
	})
}

// Trees with tests of membership beside thresholds, single rows and batches,
// with and without NaN.
func TestCategoricalWalksMatchTheReference(t *testing.T) {
	eachWalk(t, func(t *testing.T) {
		for seed := uint64(0); seed < 300; seed++ {
			checkAgainstReference[float32](t, seed, true)
			checkAgainstReference[float64](t, seed, true)
		}
	})
}

// The edges of a membership test, one at a time: where categories begin, the
// set's last category and the first beyond it, and values no category is.
func TestCategoryEdges(t *testing.T) {
	nan := math.NaN()
	full := []uint32{1<<0 | 1<<5, 1<<31 | 1<<0} // categories 0, 5, 32 and 63
	for _, c := range []struct {
		from     float64
		x        float64
		nanRight bool
		right    bool
		empty    bool // test membership of an empty set instead
	}{
		// -0.5 is category 0, which an empty set's words would not reach.
		{-1, -0.5, false, false, true}, {-1, 0, false, false, true}, {-1, nan, true, true, true},
		{-1, 0, false, true, false}, {-1, -0.5, false, true, false}, {-1, -1, false, false, false}, {-1, -0.9999, false, true, false},
		{-math.SmallestNonzeroFloat32, -0.5, false, false, false}, {-math.SmallestNonzeroFloat32, math.Copysign(0, -1), false, true, false},
		{-1, 5.9, false, true, false}, {-1, 6, false, false, false}, {-1, 32, false, true, false}, {-1, 63.99, false, true, false},
		{-1, 64, false, false, false}, {-1, 1e30, false, false, false}, {-1, math.Inf(1), false, false, false}, {-1, math.Inf(-1), false, false, false},
		{-1, 1, false, false, false}, {-1, nan, false, false, false}, {-1, nan, true, true, false}, {0, 0, false, false, false}, {0, 0.5, false, true, false},
	} {
		set := full
		if c.empty {
			set = []uint32{}
		}
		splits := []Split[float64]{{Feature: 0, Threshold: c.from, Categories: set, NaNRight: c.nanRight, Left: 1, Right: 2},
			{Leaf: true, Payload: 0}, {Leaf: true, Payload: 1}}
		tree, err := Compile(splits, 1)
		if err != nil {
			t.Fatal(err)
		}
		X := make([]float64, 9)
		for i := range X {
			X[i] = c.x
		}
		var b Batch[float64]
		b.Load(X, len(X), 1)
		out := make([]uint32, len(X))
		tree.Leaves(&b, 0, out)
		want := uint32(0)
		if c.right {
			want = 1
		}
		if got := tree.Leaf(X[:1]); got != want || out[0] != want || out[8] != want {
			t.Errorf("categories from above %v (empty set %v), x=%v, NaN right %v: Leaf %d, Leaves %d and %d; want %d", c.from, c.empty, c.x, c.nanRight, got, out[0], out[8], want)
		}
	}
}

// A tree deeper than the eight levels a walk takes between its checks for
// "every row at a leaf": rows that stop early, rows that need every level,
// and batches where the check ends the walk after eight levels.
func TestDeepTreesWalkEveryLevel(t *testing.T) {
	// A right-leaning chain: node 2i splits on feature 0 at threshold i; its
	// left child is a leaf with payload i, its right child the next split.
	const depth = 21
	var splits []Split[float32]
	for i := 0; i < depth; i++ {
		next := len(splits) + 2
		splits = append(splits, Split[float32]{Feature: 0, Threshold: float32(i), Left: len(splits) + 1, Right: next},
			Split[float32]{Leaf: true, Payload: uint32(i)})
	}
	splits = append(splits, Split[float32]{Leaf: true, Payload: depth})
	tree, err := Compile(splits, 1)
	if err != nil {
		t.Fatal(err)
	}
	eachWalk(t, func(t *testing.T) {
		for _, top := range []float32{3, 7, 8, 9, 16, 17, depth + 5} {
			// 40 rows from -1 to top: all shallow when top is small, a mix
			// otherwise.
			X := make([]float32, 40)
			for i := range X {
				X[i] = -1 + (top+1)*float32(i)/float32(len(X)-1)
			}
			var batch Batch[float32]
			batch.Load(X, len(X), 1)
			out := make([]uint32, len(X))
			tree.Leaves(&batch, 0, out)
			for i, x := range X {
				if want := reference(splits, []float32{x}); out[i] != want {
					t.Fatalf("rows up to %v: row %d (x=%v) reached leaf %d, want %d", top, i, x, out[i], want)
				}
			}
		}
	})
}

// A leaf whose row value is NaN stays a leaf (the NaN bit lives in a split's
// payload, which a leaf's payload must not reach).
func TestLeavesStayPutOnNaN(t *testing.T) {
	splits := []Split[float32]{
		{Feature: 0, Threshold: 0, NaNRight: true, Left: 1, Right: 2},
		{Leaf: true, Payload: 1<<31 - 1},
		{Leaf: true, Payload: 5},
	}
	tree, err := Compile(splits, 1)
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	X := []float32{nan, -1, 1, nan, nan, -1, 1, 0, nan}
	var batch Batch[float32]
	batch.Load(X, len(X), 1)
	out := make([]uint32, len(X))
	tree.Leaves(&batch, 0, out)
	for i, x := range X {
		want := uint32(5)
		if x <= 0 {
			want = 1<<31 - 1
		}
		if out[i] != want {
			t.Errorf("row %d (%v): leaf %d, want %d", i, x, out[i], want)
		}
	}
}

func TestCompileRefusesBrokenTrees(t *testing.T) {
	leaf := Split[float32]{Leaf: true}
	cases := map[string][]Split[float32]{
		"out of range":   {{Feature: 0, Left: 1, Right: 3}, leaf, leaf},
		"reached twice":  {{Feature: 0, Left: 1, Right: 1}, leaf},
		"cycle":          {{Feature: 0, Left: 1, Right: 2}, {Feature: 0, Left: 0, Right: 2}, leaf},
		"feature":        {{Feature: 3, Left: 1, Right: 2}, leaf, leaf},
		"negative":       {{Feature: -1, Left: 1, Right: 2}, leaf, leaf},
		"payload":        {{Leaf: true, Payload: 1 << 31}},
		"empty":          {},
		"negative child": {{Feature: 0, Left: -1, Right: 1}, leaf},
		// Below -1 a value would truncate to a negative category; NaN is
		// no beginning.
		"categories from -2":  {{Feature: 0, Threshold: -2, Categories: []uint32{1}, Left: 1, Right: 2}, leaf, leaf},
		"categories from NaN": {{Feature: 0, Threshold: float32(math.NaN()), Categories: []uint32{1}, Left: 1, Right: 2}, leaf, leaf},
		"category set":        {{Feature: 0, Threshold: -1, Categories: make([]uint32, MaxSetWords+1), Left: 1, Right: 2}, leaf, leaf},
	}
	for name, splits := range cases {
		if _, err := Compile(splits, 2); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	if _, err := Compile([]Split[float32]{leaf}, 0); err == nil || !strings.Contains(err.Error(), "features") {
		t.Errorf("no features: %v", err)
	}
}

func TestBelow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	thresholds := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, float32(math.Inf(1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32}
	xs := append([]float32{float32(math.Inf(-1)), float32(math.Inf(1))}, thresholds...)
	for i := 0; i < 1000; i++ {
		thresholds = append(thresholds, float32(rng.NormFloat64()))
		xs = append(xs, float32(rng.NormFloat64()))
	}
	for _, th := range thresholds {
		b := Below(th)
		for _, x := range append(xs, th, b, math.Nextafter32(th, float32(math.Inf(1)))) {
			if (x >= th) != (x > b) {
				t.Fatalf("threshold %v: x=%v: x >= t is %v, x > Below(t)=%v is %v", th, x, x >= th, b, x > b)
			}
		}
	}
}

func TestRowsCoversEveryRowOnceFromLaneMultiples(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, n := range []int{0, 1, 7, 8, 127, 128, 255, 256, 257, 1000, 4099} {
		seen := make([]int32, n)
		var starts []int
		var mu sync.Mutex
		rows(n, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, lo)
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: row %d covered %d times", n, i, c)
			}
		}
		for _, s := range starts {
			if s%lanes != 0 {
				t.Fatalf("n=%d: a range starts at %d", n, s)
			}
		}
		if n >= 4*minRowsPerWorker && len(starts) < 2 {
			t.Fatalf("n=%d on 4 procs ran in one range", n)
		}
	}
}

// A panic in a range that another goroutine walks reaches rows' caller, after
// every range is done, instead of ending the process.
func TestRowsRaisesAHelpersPanicInTheCaller(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	const n = 4 * minRowsPerWorker
	var walked atomic.Int32
	got := func() (p any) {
		defer func() { p = recover() }()
		rows(n, func(lo, hi int) {
			if lo == n/2 {
				panic("bad row")
			}
			time.Sleep(10 * time.Millisecond) // the panic comes first
			walked.Add(int32(hi - lo))
		})
		return nil
	}()
	if got != "bad row" {
		t.Fatalf("rows' caller got %v, want the range's panic", got)
	}
	if w := walked.Load(); w != n-n/4 {
		t.Fatalf("%d rows walked when the panic reached the caller, want %d (every other range done)", w, n-n/4)
	}
}

// CompileValues hands each leaf the index of its value; Blocks walks every row
// once, in blocks of the size asked, across cores.
func TestCompileValuesAndBlocks(t *testing.T) {
	nodes := []struct {
		leaf        bool
		value       float64
		left, right int
	}{{false, 0, 1, 2}, {true, -1.5, 0, 0}, {true, 2.5, 0, 0}}
	tree, values, err := CompileValues(len(nodes), 1, func(i int) (Split[float64], float64) {
		n := nodes[i]
		if n.leaf {
			return Split[float64]{Leaf: true, Payload: 99}, n.value
		}
		return Split[float64]{Feature: 0, Threshold: 0, Left: n.left, Right: n.right}, 0
	})
	if err != nil || len(values) != 2 || cap(values) != 2 {
		t.Fatalf("values %v (cap %d), %v", values, cap(values), err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const n = 1000
	X := make([]float64, n)
	for i := range X {
		X[i] = float64(i%3) - 1 // -1, 0, 1: left, left, right
	}
	got := make([]float64, n)
	var mu sync.Mutex
	Blocks(X, n, 1, 64, func(b *Batch[float64], start, end int, leaves []uint32) {
		if end-start > 64 || start%lanes != 0 || len(leaves) != end-start {
			t.Errorf("block [%d, %d) with %d leaves", start, end, len(leaves))
		}
		tree.Leaves(b, start, leaves)
		mu.Lock()
		defer mu.Unlock()
		for i, l := range leaves {
			got[start+i] += values[l] + 10 // +10: each row counted once
		}
	})
	for i, x := range X {
		want := -1.5 + 10
		if x > 0 {
			want = 2.5 + 10
		}
		if got[i] != want {
			t.Fatalf("row %d (x=%v): %v, want %v", i, x, got[i], want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("blocks of 12 rows were accepted")
		}
	}()
	Blocks(X, n, 1, 12, func(*Batch[float64], int, int, []uint32) {})
}
