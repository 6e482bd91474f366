package sklearn

import (
	"fmt"

	"github.com/tideserve/tide/internal/pickle"
)

const pipelineClass = "sklearn.pipeline.Pipeline"

func init() { register(pipelineClass, buildPipeline) }

// pipeline is a fitted sklearn Pipeline, flattened for serving: the transformers
// that run in order ('passthrough' and None steps dropped, nested pipelines
// spliced in), then the final estimator.
type pipeline struct {
	transforms []namedTransformer
	// final is a Classifier, LabelPredictor or Regressor; nil when the pipeline
	// only transforms.
	final     any
	finalName string
}

type namedTransformer struct {
	name string
	Transformer
}

// NumFeatures is the width of the pipeline's input.
func (p *pipeline) NumFeatures() int {
	if len(p.transforms) > 0 {
		return p.transforms[0].NumFeatures()
	}
	return numFeatures(p.final)
}

// pipelineStep is one (name, estimator) pair of Pipeline.steps; est is nil for a
// 'passthrough' or None step.
type pipelineStep struct {
	name string
	est  *pickle.Object
}

// pipelineSteps reads and checks Pipeline.steps.
func pipelineSteps(obj *pickle.Object) ([]pipelineStep, error) {
	v, err := attrValue(obj, "steps")
	if err != nil {
		return nil, err
	}
	items, ok := sequenceItems(v)
	if !ok {
		return nil, fmt.Errorf("steps: want a list, got %s", pickle.TypeName(v))
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("steps is empty")
	}
	steps := make([]pipelineStep, len(items))
	for i, item := range items {
		pair, ok := sequenceItems(item)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("steps[%d]: want a (name, estimator) pair, got %s", i, pickle.TypeName(item))
		}
		name, ok := pair[0].(string)
		if !ok {
			return nil, fmt.Errorf("steps[%d]: name: want a string, got %s", i, pickle.TypeName(pair[0]))
		}
		steps[i].name = name
		switch est := pair[1].(type) {
		case nil:
		case string:
			if est != "passthrough" {
				return nil, fmt.Errorf("step %q: %q is not an estimator", name, est)
			}
		case *pickle.Object:
			steps[i].est = est
		default:
			return nil, fmt.Errorf("step %q: want an estimator, got %s", name, pickle.TypeName(pair[1]))
		}
	}
	return steps, nil
}

// sequenceItems returns the elements of a Python list or tuple.
func sequenceItems(v any) ([]any, bool) {
	switch s := v.(type) {
	case *pickle.List:
		return s.Items, true
	case pickle.Tuple:
		return s, true
	}
	return nil, false
}

func buildPipeline(obj *pickle.Object) (any, error) {
	steps, err := pipelineSteps(obj)
	if err != nil {
		return nil, err
	}
	p := &pipeline{}
	for i, s := range steps {
		if s.est == nil {
			continue
		}
		est, err := build(s.est)
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", s.name, err)
		}
		last := i == len(steps)-1
		switch e := est.(type) {
		case *pipeline:
			if e.final != nil && !last {
				return nil, fmt.Errorf("step %q: a pipeline with a final estimator can only be the last step", s.name)
			}
			p.transforms = append(p.transforms, e.transforms...)
			p.final, p.finalName = e.final, e.finalName
		case Classifier, LabelPredictor, Regressor:
			if !last {
				return nil, fmt.Errorf("step %q: %s is not a transformer, so it can only be the last step", s.name, s.est.Name)
			}
			p.final, p.finalName = est, s.name
		case Transformer:
			p.transforms = append(p.transforms, namedTransformer{name: s.name, Transformer: e})
		default:
			return nil, fmt.Errorf("step %q: %s is neither a transformer nor a predictor", s.name, s.est.Name)
		}
	}
	if len(p.transforms) == 0 && p.final == nil {
		return nil, fmt.Errorf("every step is 'passthrough': nothing to serve")
	}
	// Each step must take as many columns as the step before it gives.
	width, from := -1, ""
	for _, t := range p.transforms {
		if width >= 0 && t.NumFeatures() != width {
			return nil, fmt.Errorf("step %q takes %d features but step %q gives %d", t.name, t.NumFeatures(), from, width)
		}
		width, from = t.NumOutputs(), t.name
	}
	if p.final != nil && width >= 0 && numFeatures(p.final) != width {
		return nil, fmt.Errorf("step %q takes %d features but step %q gives %d", p.finalName, numFeatures(p.final), from, width)
	}
	return p, nil
}

// numFeatures is a built estimator's input width.
func numFeatures(est any) int {
	if e, ok := est.(interface{ NumFeatures() int }); ok {
		return e.NumFeatures()
	}
	return -1
}
