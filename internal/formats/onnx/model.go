//go:build cgo

package onnx

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// onnxModel serves one ONNX session. Its fields are read-only after load.
type onnxModel struct {
	s    *session
	meta model.Metadata
	// served lists, for each output in meta.Outputs, the graph output index.
	served []int
	// anyRank marks, per input, a tensor declared without a shape: any rank
	// is accepted.
	anyRank []bool
	// labelFixes rewrite classifier label outputs from their probabilities
	// (see labelfix.go), keyed by the position in served.
	labelFixes map[int]labelFix
}

func loadModel(path string, cfg formats.Config) (model.Model, error) {
	m, err := openModel(path, cfg)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

func openModel(path string, cfg formats.Config) (*onnxModel, error) {
	s, err := newSession(modelSource{path: path}, currentOptions())
	if err != nil {
		return nil, err
	}
	// ONNX Runtime accepted the file; if Tide's own view of the graph cannot
	// be read, the model still serves, without what only that view tells
	// (unknown ranks, label fix-ups).
	g, err := scanModelFile(path)
	if err != nil {
		g = &graphView{}
	}
	m, err := newModel(s, cfg, g)
	if err != nil {
		s.close()
		return nil, err
	}
	return m, nil
}

// newModel builds the metadata from the graph. Every input must be a tensor;
// outputs that are not tensors (sequences of maps, as skl2onnx's ZipMap makes)
// are left out, since the protocols carry tensors only.
func newModel(s *session, cfg formats.Config, g *graphView) (*onnxModel, error) {
	m := &onnxModel{s: s, meta: model.Metadata{Platform: "onnx"}}
	unknownRank := map[string]bool{}
	for _, vi := range append(append([]valueInfo(nil), g.inputs...), g.outputs...) {
		unknownRank[vi.name] = vi.unknownRank
	}
	for _, in := range s.inputs {
		if in.onnxType != onnxValueTensor {
			return nil, fmt.Errorf("input %q is a %s; only tensor inputs can be served", in.name, onnxTypeKind(in.onnxType))
		}
		dt, err := onnxproto.Datatype(in.elem)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.name, err)
		}
		m.meta.Inputs = append(m.meta.Inputs, model.TensorSpec{Name: in.name, Datatype: dt, Shape: specShape(in.dims, unknownRank[in.name])})
		m.anyRank = append(m.anyRank, unknownRank[in.name])
	}
	var skipped []string
	for i, out := range s.outputs {
		if out.onnxType != onnxValueTensor {
			skipped = append(skipped, fmt.Sprintf("%q (%s)", out.name, onnxTypeKind(out.onnxType)))
			continue
		}
		dt, err := onnxproto.Datatype(out.elem)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", out.name, err)
		}
		m.served = append(m.served, i)
		m.meta.Outputs = append(m.meta.Outputs, model.TensorSpec{Name: out.name, Datatype: dt, Shape: specShape(out.dims, unknownRank[out.name])})
	}
	if len(m.meta.Outputs) == 0 {
		return nil, fmt.Errorf("no tensor outputs: %v cannot be served (for skl2onnx classifiers, convert with options={'zipmap': False})", skipped)
	}

	if len(cfg.Outputs) > len(m.meta.Outputs) {
		return nil, fmt.Errorf("config names %d outputs but the model has %d tensor outputs", len(cfg.Outputs), len(m.meta.Outputs))
	}
	seen := map[string]bool{}
	for i := range m.meta.Outputs {
		if i < len(cfg.Outputs) {
			if cfg.Outputs[i] == "" {
				return nil, fmt.Errorf("config output %d has an empty name", i+1)
			}
			m.meta.Outputs[i].Name = cfg.Outputs[i]
		}
		if seen[m.meta.Outputs[i].Name] {
			return nil, fmt.Errorf("two outputs are named %q", m.meta.Outputs[i].Name)
		}
		seen[m.meta.Outputs[i].Name] = true
	}

	features, err := tabularFeatures(m.meta.Inputs, cfg.Features)
	if err != nil {
		return nil, err
	}
	m.meta.Features = features

	served := make([]string, len(m.served))
	for i, gi := range m.served {
		served[i] = s.outputs[gi].name
	}
	if fixes := planLabelFixes(g, served); len(fixes) > 0 {
		m.labelFixes = fixes
	}
	return m, nil
}

// specShape turns ONNX Runtime's dimensions (-1 for symbolic ones such as
// "batch") into OIP's, -1 for dynamic. A tensor of unknown rank is shown as
// [-1] and accepts any shape.
func specShape(dims []int64, unknownRank bool) []int64 {
	if unknownRank {
		return []int64{-1}
	}
	out := make([]int64, len(dims))
	for i, d := range dims {
		if d < 0 {
			d = -1
		}
		out[i] = d
	}
	return out
}

// tabularFeatures names the columns of a model whose only input is a numeric
// n×k matrix with a fixed k, so that the tutorial's /predict (a JSON object of
// features) reaches it: the config's names, else feature1..featurek. Other
// models are not tabular and get none.
func tabularFeatures(inputs []model.TensorSpec, fromConfig []string) ([]string, error) {
	tabular := len(inputs) == 1 && len(inputs[0].Shape) == 2 && inputs[0].Shape[1] > 0 && inputs[0].Datatype != tensor.Bytes
	if !tabular {
		if len(fromConfig) > 0 {
			return nil, errors.New("config lists features, but the model's input is not a single n×k matrix")
		}
		return nil, nil
	}
	k := int(inputs[0].Shape[1])
	if len(fromConfig) > 0 {
		if len(fromConfig) != k {
			return nil, fmt.Errorf("config lists %d features but the model takes %d", len(fromConfig), k)
		}
		return append([]string(nil), fromConfig...), nil
	}
	names := make([]string, k)
	for i := range names {
		names[i] = "feature" + strconv.Itoa(i+1)
	}
	return names, nil
}

// Metadata describes the model. The slices are shared; callers must not modify them.
func (m *onnxModel) Metadata() model.Metadata { return m.meta }

// Close releases the session once no request is running on it.
func (m *onnxModel) Close() error {
	m.s.close()
	return nil
}

// Predict checks the inputs against the graph, runs the session and returns
// the tensor outputs in Metadata order.
func (m *onnxModel) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	ordered := make([]value, len(m.meta.Inputs))
	found := make([]bool, len(m.meta.Inputs))
	for _, t := range inputs {
		i := m.inputIndex(t.Name)
		if i < 0 {
			return nil, model.InvalidInputf("unknown input %q (the model takes %s)", t.Name, specList(m.meta.Inputs))
		}
		if found[i] {
			return nil, model.InvalidInputf("input %q given twice", t.Name)
		}
		found[i] = true
		conv, err := conformInput(t, m.meta.Inputs[i], m.anyRank[i])
		if err != nil {
			return nil, err
		}
		ordered[i] = value{tensor: conv}
	}
	for i, ok := range found {
		if !ok {
			return nil, model.InvalidInputf("missing input %q", m.meta.Inputs[i].Name)
		}
	}

	vals, err := m.s.run(ctx, ordered, m.served)
	if err != nil {
		var oe *ortError
		if errors.As(err, &oe) && oe.code == ortInvalidArgument {
			return nil, model.InvalidInputf("%s", oe.msg)
		}
		return nil, err
	}
	out := make([]*tensor.Tensor, len(vals))
	for i, v := range vals {
		if v.kind != tensorValue {
			return nil, fmt.Errorf("output %q is not a tensor", m.meta.Outputs[i].Name)
		}
		v.tensor.Name = m.meta.Outputs[i].Name
		out[i] = v.tensor
	}
	for i, fix := range m.labelFixes {
		if err := fix.apply(out, i); err != nil {
			return nil, fmt.Errorf("output %q: %w", m.meta.Outputs[i].Name, err)
		}
	}
	return out, nil
}

func (m *onnxModel) inputIndex(name string) int {
	for i, in := range m.meta.Inputs {
		if in.Name == name {
			return i
		}
	}
	return -1
}

func specList(specs []model.TensorSpec) string {
	s := ""
	for i, sp := range specs {
		if i > 0 {
			s += ", "
		}
		s += strconv.Quote(sp.Name)
	}
	return s
}

// conformInput checks a request tensor against the graph input. The datatype
// must match, except that any numeric tensor is accepted for a floating-point
// input and converted (JSON clients and the tutorial's /predict send FP64).
// The rank and every fixed dimension must match, unless the graph leaves the
// rank open (anyRank).
func conformInput(t *tensor.Tensor, spec model.TensorSpec, anyRank bool) (*tensor.Tensor, error) {
	if err := t.Validate(); err != nil {
		return nil, model.InvalidInputf("%v", err)
	}
	if !anyRank {
		if len(t.Shape) != len(spec.Shape) {
			return nil, model.InvalidInputf("input %q: shape %v has rank %d, the model wants %v", t.Name, t.Shape, len(t.Shape), spec.Shape)
		}
		for d, want := range spec.Shape {
			if want >= 0 && t.Shape[d] != want {
				return nil, model.InvalidInputf("input %q: shape %v, the model wants %v", t.Name, t.Shape, spec.Shape)
			}
		}
	}
	if t.Datatype == spec.Datatype {
		return t, nil
	}
	if (spec.Datatype == tensor.FP32 || spec.Datatype == tensor.FP64) && t.Datatype != tensor.Bytes && t.Datatype != tensor.Bool {
		f, err := t.Float64s()
		if err != nil {
			return nil, model.InvalidInputf("input %q: %v", t.Name, err)
		}
		out := &tensor.Tensor{Name: t.Name, Datatype: spec.Datatype, Shape: t.Shape}
		if spec.Datatype == tensor.FP64 {
			out.Data = f
		} else {
			f32 := make([]float32, len(f))
			for i, x := range f {
				f32[i] = float32(x)
			}
			out.Data = f32
		}
		return out, nil
	}
	return nil, model.InvalidInputf("input %q: datatype %s, the model wants %s", t.Name, t.Datatype, spec.Datatype)
}
