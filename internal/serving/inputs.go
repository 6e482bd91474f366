package serving

import (
	"bytes"
	"strings"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// matchInputs orders the request's tensors as the model declares its inputs and
// rejects missing or unknown ones by name. A tabular model that takes one
// matrix also takes its columns as inputs of their own, named by feature (as
// MLServer's pandas codec sends a DataFrame): they are stacked into it.
func matchInputs(md *model.Metadata, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	specs := md.Inputs
	if len(specs) == 1 && len(inputs) == 1 && specs[0].Name == inputs[0].Name {
		return inputs, nil // the common case, without allocating
	}
	if len(specs) == 1 && len(md.Features) > 1 && len(inputs) == len(md.Features) && findSpec(specs, inputs[0].Name) < 0 {
		if m, err := stackColumns(specs[0], md.Features, inputs); m != nil || err != nil {
			return []*tensor.Tensor{m}, err
		}
	}
	out := make([]*tensor.Tensor, len(specs))
	for i, sp := range specs {
		t := findTensor(inputs, sp.Name)
		if t == nil {
			return nil, model.InvalidInputf("missing input %q (the model takes: %s)", sp.Name, specNames(specs))
		}
		out[i] = t
	}
	for _, t := range inputs {
		if findSpec(specs, t.Name) < 0 {
			return nil, model.InvalidInputf("unknown input %q (the model takes: %s)", t.Name, specNames(specs))
		}
	}
	return out, nil
}

func findTensor(ts []*tensor.Tensor, name string) *tensor.Tensor {
	for _, t := range ts {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func findSpec(specs []model.TensorSpec, name string) int {
	for i, sp := range specs {
		if sp.Name == name {
			return i
		}
	}
	return -1
}

func specNames(specs []model.TensorSpec) string {
	var b bytes.Buffer
	for i, sp := range specs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sp.Name)
	}
	return b.String()
}

// stackColumns joins one input per feature into the model's n×k FP64 matrix;
// nil without an error when the inputs are not the features.
func stackColumns(spec model.TensorSpec, features []string, inputs []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(spec.Shape) != 2 || spec.Shape[1] != int64(len(features)) {
		return nil, nil
	}
	byName := make(map[string]*tensor.Tensor, len(inputs))
	for _, t := range inputs {
		byName[t.Name] = t
	}
	k := len(features)
	var x []float64
	n := int64(-1)
	for c, name := range features {
		t := byName[name]
		if t == nil {
			if c == 0 {
				return nil, nil // not the column form: the usual message follows
			}
			return nil, model.InvalidInputf("missing column %q (one input per feature: %s)", name, strings.Join(features, ", "))
		}
		rows, err := model.ColumnRows(t, n, features[0])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			n = rows
			x = make([]float64, int(n)*k)
		}
		f, err := model.ColumnNumbers(t)
		if err != nil {
			return nil, err
		}
		for r, v := range f {
			x[r*k+c] = v
		}
	}
	return &tensor.Tensor{Name: spec.Name, Datatype: tensor.FP64, Shape: []int64{n, int64(k)}, Data: x}, nil
}
