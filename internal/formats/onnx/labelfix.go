package onnx

import (
	"fmt"

	"github.com/tideserve/tide/internal/tensor"
)

// ONNX Runtime's ai.onnx.ml TreeEnsembleClassifier returns the wrong label for
// binary models that carry weights for both classes (skl2onnx writes forests
// that way): label 1 for every row, whatever the probabilities say. Tide
// recomputes such a label output as the class with the highest probability,
// which is what the label means for every post_transform (ties go to the
// first class, as numpy's argmax does).

// labelFix rewrites one label output from a probability output of the same node.
type labelFix struct {
	// prob is the position of the probability output among the served outputs.
	prob int
	// The node's class labels; exactly one is set.
	ints    []int64
	strings [][]byte
}

// planLabelFixes finds TreeEnsembleClassifier nodes whose label and
// probability outputs are both served directly. served[i] is the graph output
// name of served output i. The result maps a label output's position to its fix.
func planLabelFixes(g *graphView, served []string) map[int]labelFix {
	pos := map[string]int{}
	for i, name := range served {
		pos[name] = i
	}
	fixes := map[int]labelFix{}
	for _, n := range g.nodes {
		if n.opType != "TreeEnsembleClassifier" || n.domain != "ai.onnx.ml" || len(n.outputs) < 2 {
			continue
		}
		label, okL := pos[n.outputs[0]]
		prob, okP := pos[n.outputs[1]]
		if !okL || !okP {
			continue
		}
		fix := labelFix{prob: prob}
		if a, ok := n.attrs["classlabels_int64s"]; ok && len(a.ints) > 0 {
			fix.ints = a.ints
		} else if a, ok := n.attrs["classlabels_strings"]; ok && len(a.strings) > 0 {
			fix.strings = a.strings
		} else {
			continue
		}
		fixes[label] = fix
	}
	return fixes
}

func (f labelFix) classes() int {
	if f.ints != nil {
		return len(f.ints)
	}
	return len(f.strings)
}

// apply replaces out[label] with the argmax of out[f.prob].
func (f labelFix) apply(out []*tensor.Tensor, label int) error {
	p := out[f.prob]
	k := f.classes()
	if len(p.Shape) != 2 || p.Shape[1] != int64(k) {
		return fmt.Errorf("probabilities have shape %v, want [n %d]", p.Shape, k)
	}
	probs, err := p.Float64s()
	if err != nil {
		return err
	}
	n := int(p.Shape[0])
	l := out[label]
	if len(l.Shape) != 1 || l.Shape[0] != int64(n) {
		return fmt.Errorf("labels have shape %v for %d rows", l.Shape, n)
	}
	best := make([]int, n)
	for r := 0; r < n; r++ {
		row := probs[r*k : (r+1)*k]
		for c := 1; c < k; c++ {
			if row[c] > row[best[r]] {
				best[r] = c
			}
		}
	}
	switch l.Datatype {
	case tensor.Int64:
		if f.ints == nil {
			return fmt.Errorf("INT64 labels but string class labels")
		}
		data := make([]int64, n)
		for r, c := range best {
			data[r] = f.ints[c]
		}
		l.Data = data
	case tensor.Bytes:
		if f.strings == nil {
			return fmt.Errorf("BYTES labels but integer class labels")
		}
		data := make([][]byte, n)
		for r, c := range best {
			data[r] = f.strings[c]
		}
		l.Data = data
	default:
		return fmt.Errorf("labels of datatype %s", l.Datatype)
	}
	return nil
}
