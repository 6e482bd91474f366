package serving

import (
	"bytes"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// matchInputs orders the request's tensors as the model declares its inputs and
// rejects missing or unknown ones by name.
func matchInputs(specs []model.TensorSpec, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(specs) == 1 && len(inputs) == 1 && specs[0].Name == inputs[0].Name {
		return inputs, nil // the common case, without allocating
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
