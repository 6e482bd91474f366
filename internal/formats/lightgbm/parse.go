package lightgbm

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tideserve/tide/internal/loadpace"
)

// ensemble is a LightGBM model: its trees, how they group into classes and the
// objective that turns their summed scores into predictions.
type ensemble struct {
	numFeature int
	// numClass is 1 for every objective but multiclass and multiclassova.
	numClass int
	// treesPerIteration is how many trees one boosting round adds (numClass for
	// multi-class models); tree i adds to score i % treesPerIteration.
	treesPerIteration int
	featureNames      []string
	obj               objective
	// averageOutput is set for random forests (boosting=rf): the scores are
	// the mean of the rounds, not their sum.
	averageOutput bool
	trees         []tree
	// batchWalks is set when some tree has a compiled walk; without one (every
	// tree splits on a category, say) a batch is walked row by row.
	batchWalks bool
}

// Bounds on what a header may claim, so that a forged number cannot make the
// reader allocate more than the file's size warrants.
const (
	maxFeatures = 1 << 24
	maxClasses  = 1 << 16
	maxLeaves   = 1 << 24
)

// parse reads a model in LightGBM's text format (what Booster.save_model and
// the CLI write, versions v2 to v4), up to "end of trees"; the feature
// importances and parameters after it are not needed to predict. It pauses at
// pace per tree. Errors name the line.
func parse(data []byte, pace *loadpace.Pacer) (*ensemble, error) {
	r := &lineReader{data: data}
	first, ok := r.next()
	if !ok || first != "tree" {
		return nil, fmt.Errorf("not a LightGBM text model: the first line is not \"tree\"")
	}
	header := map[string]string{}
	flags := map[string]bool{}
	var line string
	for {
		if line, ok = r.next(); !ok {
			return nil, fmt.Errorf("line %d: the file ends before its trees", r.n)
		}
		if strings.HasPrefix(line, "Tree=") || line == "end of trees" {
			break
		}
		if line == "" {
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !found {
			flags[line] = true // average_output
			continue
		}
		header[k] = v
	}
	e := &ensemble{averageOutput: flags["average_output"]}
	if v, ok := header["version"]; ok && v != "v2" && v != "v3" && v != "v4" {
		return nil, fmt.Errorf("model format version %q is not supported (v2, v3 and v4 are)", v)
	}
	var err error
	if e.numClass, err = headerInt(header, "num_class", 1, maxClasses); err != nil {
		return nil, err
	}
	if e.treesPerIteration, err = headerInt(header, "num_tree_per_iteration", 1, maxClasses); err != nil {
		return nil, err
	}
	maxIdx, err := headerInt(header, "max_feature_idx", 0, maxFeatures-1)
	if err != nil {
		return nil, err
	}
	e.numFeature = maxIdx + 1
	if names, ok := header["feature_names"]; ok {
		e.featureNames = strings.Fields(names)
		if len(e.featureNames) != e.numFeature {
			return nil, fmt.Errorf("feature_names lists %d names for %d features (max_feature_idx=%d)", len(e.featureNames), e.numFeature, maxIdx)
		}
	}
	if e.obj, err = parseObjective(header["objective"]); err != nil {
		return nil, err
	}
	if e.obj.multiclass && e.obj.numClass != e.numClass {
		return nil, fmt.Errorf("objective says num_class:%d but the header num_class=%d", e.obj.numClass, e.numClass)
	}
	if e.treesPerIteration != e.numClass {
		return nil, fmt.Errorf("num_tree_per_iteration=%d with num_class=%d is not a model LightGBM writes", e.treesPerIteration, e.numClass)
	}

	for line != "end of trees" {
		if !strings.HasPrefix(line, "Tree=") {
			return nil, fmt.Errorf("line %d: want Tree=%d or \"end of trees\", got %q", r.n, len(e.trees), truncate(line))
		}
		if idx, err := strconv.Atoi(line[len("Tree="):]); err != nil || idx != len(e.trees) {
			return nil, fmt.Errorf("line %d: %q out of order, want Tree=%d", r.n, truncate(line), len(e.trees))
		}
		pace.Pause()
		fields := map[string]string{}
		start := r.n
		for {
			if line, ok = r.next(); !ok {
				return nil, fmt.Errorf("line %d: the file ends inside Tree=%d (no \"end of trees\")", r.n, len(e.trees))
			}
			if strings.HasPrefix(line, "Tree=") || line == "end of trees" {
				break
			}
			if k, v, found := strings.Cut(line, "="); found {
				fields[k] = v
			}
		}
		t, err := parseTree(fields, e.numFeature)
		if err != nil {
			return nil, fmt.Errorf("Tree=%d (line %d): %w", len(e.trees), start, err)
		}
		e.trees = append(e.trees, t)
		e.batchWalks = e.batchWalks || t.walk != nil
	}
	if len(e.trees) == 0 {
		return nil, fmt.Errorf("the model has no trees")
	}
	if len(e.trees)%e.treesPerIteration != 0 {
		return nil, fmt.Errorf("%d trees are not whole rounds of num_tree_per_iteration=%d", len(e.trees), e.treesPerIteration)
	}
	return e, nil
}

// parseTree reads one tree's fields and checks that every index in it is in
// range and that the nodes form one tree, so that prediction never needs to.
func parseTree(f map[string]string, numFeature int) (tree, error) {
	var t tree
	if f["is_linear"] != "" && f["is_linear"] != "0" {
		return t, fmt.Errorf("linear trees (linear_tree=true) are not supported; retrain without linear_tree")
	}
	leaves, err := headerInt(f, "num_leaves", 1, maxLeaves)
	if err != nil {
		return t, err
	}
	if t.leafValue, err = floats(f, "leaf_value", leaves); err != nil {
		return t, err
	}
	if leaves == 1 {
		return t, t.compileWalk(numFeature) // a stump: one leaf, no splits
	}
	n := leaves - 1
	if t.splitFeature, err = int32s(f, "split_feature", n, 0, int64(numFeature-1)); err != nil {
		return t, err
	}
	if t.threshold, err = floats(f, "threshold", n); err != nil {
		return t, err
	}
	dts, err := int32s(f, "decision_type", n, 0, 15)
	if err != nil {
		return t, err
	}
	t.decisionType = make([]uint8, n)
	for i, d := range dts {
		if (d>>2)&3 == 3 {
			return t, fmt.Errorf("decision_type %d of node %d has an unknown missing-value type", d, i)
		}
		t.decisionType[i] = uint8(d)
	}
	if t.left, err = int32s(f, "left_child", n, -int64(leaves), int64(n-1)); err != nil {
		return t, err
	}
	if t.right, err = int32s(f, "right_child", n, -int64(leaves), int64(n-1)); err != nil {
		return t, err
	}
	numCat, err := headerInt(f, "num_cat", 0, n)
	if err != nil {
		if _, ok := f["num_cat"]; ok {
			return t, err
		}
		numCat = 0 // older files leave it out when there are none
	}
	if numCat > 0 {
		if t.catBoundaries, err = int32s(f, "cat_boundaries", numCat+1, 0, math.MaxInt32); err != nil {
			return t, err
		}
		words, ok := f["cat_threshold"]
		if !ok {
			return t, fmt.Errorf("cat_threshold is missing")
		}
		for _, s := range strings.Fields(words) {
			w, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return t, fmt.Errorf("cat_threshold: %q is not a 32-bit word", truncate(s))
			}
			t.catThreshold = append(t.catThreshold, uint32(w))
		}
		if t.catBoundaries[0] != 0 || int(t.catBoundaries[numCat]) != len(t.catThreshold) {
			return t, fmt.Errorf("cat_boundaries do not span cat_threshold's %d words", len(t.catThreshold))
		}
		for i := 0; i < numCat; i++ {
			if t.catBoundaries[i] > t.catBoundaries[i+1] {
				return t, fmt.Errorf("cat_boundaries decrease at %d", i)
			}
		}
	}
	for i, d := range t.decisionType {
		if d&categoricalMask == 0 {
			continue
		}
		c := t.threshold[i]
		if !(c >= 0 && c < float64(numCat)) || c != math.Trunc(c) {
			return t, fmt.Errorf("categorical node %d names split set %v of %d", i, t.threshold[i], numCat)
		}
	}
	if err := t.checkShape(); err != nil {
		return t, err
	}
	return t, t.compileWalk(numFeature)
}

// checkShape verifies that the nodes reachable from the root form a tree
// holding every node and leaf once: no cycles, nothing shared.
func (t *tree) checkShape() error {
	n := len(t.left)
	seenNode := make([]bool, n)
	seenLeaf := make([]bool, len(t.leafValue))
	stack := []int32{0}
	seenNode[0] = true
	for len(stack) > 0 {
		node := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range [2]int32{t.left[node], t.right[node]} {
			if c < 0 {
				if seenLeaf[^c] {
					return fmt.Errorf("leaf %d is reached twice", ^c)
				}
				seenLeaf[^c] = true
				continue
			}
			if seenNode[c] {
				return fmt.Errorf("node %d is reached twice (a cycle or a shared subtree)", c)
			}
			seenNode[c] = true
			stack = append(stack, c)
		}
	}
	for i, s := range seenLeaf {
		if !s {
			return fmt.Errorf("leaf %d is not reachable from the root", i)
		}
	}
	return nil
}

// lineReader yields a file's lines without their line ends, counting them.
type lineReader struct {
	data []byte
	pos  int
	n    int // the number of the line last returned, from 1
}

func (r *lineReader) next() (string, bool) {
	if r.pos >= len(r.data) {
		return "", false
	}
	rest := r.data[r.pos:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		i = len(rest)
		r.pos = len(r.data)
	} else {
		r.pos += i + 1
	}
	r.n++
	return string(bytes.TrimRight(rest[:i], "\r")), true
}

func headerInt(h map[string]string, key string, lo, hi int) (int, error) {
	v, ok := h[key]
	if !ok {
		return 0, fmt.Errorf("the header has no %s", key)
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", key, truncate(v), lo, hi)
	}
	return n, nil
}

// floats reads a field of exactly n numbers.
func floats(f map[string]string, key string, n int) ([]float64, error) {
	v, ok := f[key]
	if !ok {
		return nil, fmt.Errorf("%s is missing", key)
	}
	parts := strings.Fields(v)
	if len(parts) != n {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(parts), n)
	}
	out := make([]float64, n)
	for i, s := range parts {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", key, truncate(s))
		}
		out[i] = x
	}
	return out, nil
}

// int32s reads a field of exactly n integers in [lo, hi].
func int32s(f map[string]string, key string, n int, lo, hi int64) ([]int32, error) {
	v, ok := f[key]
	if !ok {
		return nil, fmt.Errorf("%s is missing", key)
	}
	parts := strings.Fields(v)
	if len(parts) != n {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(parts), n)
	}
	out := make([]int32, n)
	for i, s := range parts {
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil || x < lo || x > hi {
			return nil, fmt.Errorf("%s: %q is not an integer from %d to %d", key, truncate(s), lo, hi)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// truncate shortens file text quoted in an error.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
