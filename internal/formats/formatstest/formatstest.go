// Package formatstest registers a tiny, exact runtime for tests of the layers above
// runtimes (repository, server, CLI): a linear classifier read from a JSON file with
// the extension ".tlin". Its answers are easy to compute by hand, and it can be told
// to be slow (to test draining) or to fail to load.
package formatstest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// Format and Extension name the test runtime.
const (
	Format    = "testlinear"
	Extension = ".tlin"
)

// Spec is the file format: label = 1 if w·x + b > 0 else 0; proba = [1-p, p] with
// p = 1 if positive else 0 (exact, so tests can compare bytes).
type Spec struct {
	Weights  []float64 `json:"weights"`
	Bias     float64   `json:"bias"`
	Features []string  `json:"features,omitempty"`
	// DelayMS makes every Predict sleep, for drain and timeout tests.
	DelayMS int `json:"delay_ms,omitempty"`
	// FailLoad makes loading fail with this message.
	FailLoad string `json:"fail_load,omitempty"`
	// PanicOn makes Predict panic when any input value equals it: a runtime's bug
	// that one input triggers, for tests of panic containment.
	PanicOn *float64 `json:"panic_on,omitempty"`
}

// Write saves spec as dir/name.tlin and returns the path.
func Write(dir, name string, spec Spec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+Extension)
	return p, os.WriteFile(p, b, 0o644)
}

func init() {
	formats.Register(formats.Runtime{Format: Format, Extensions: []string{Extension}, Loader: loader{}})
}

type loader struct{}

func (loader) Load(ctx context.Context, path string, cfg formats.Config) (model.Model, error) {
	if st, err := os.Stat(path); err == nil {
		// Like a real runtime, charge the budget before reading.
		if err := cfg.Memory.Charge(st.Size()); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Base(path), err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Base(path), err)
	}
	if s.FailLoad != "" {
		return nil, fmt.Errorf("load %s: %s", filepath.Base(path), s.FailLoad)
	}
	if len(s.Weights) == 0 {
		return nil, fmt.Errorf("load %s: no weights", filepath.Base(path))
	}
	feats := s.Features
	if len(cfg.Features) > 0 {
		feats = cfg.Features
	}
	if len(feats) == 0 {
		for i := range s.Weights {
			feats = append(feats, fmt.Sprintf("feature%d", i+1))
		}
	}
	if len(feats) != len(s.Weights) {
		return nil, fmt.Errorf("load %s: %d feature names for %d weights", filepath.Base(path), len(feats), len(s.Weights))
	}
	outs := []string{"predict", "predict_proba"}
	copy(outs, cfg.Outputs)
	return &linear{spec: s, md: model.Metadata{
		Platform: Format,
		Inputs:   []model.TensorSpec{{Name: "input", Datatype: tensor.FP64, Shape: []int64{-1, int64(len(s.Weights))}}},
		Outputs: []model.TensorSpec{
			{Name: outs[0], Datatype: tensor.Int64, Shape: []int64{-1}},
			{Name: outs[1], Datatype: tensor.FP64, Shape: []int64{-1, 2}},
		},
		Features: feats,
	}}, nil
}

type linear struct {
	spec Spec
	md   model.Metadata
}

func (m *linear) Metadata() model.Metadata { return m.md }

func (m *linear) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) != 1 {
		return nil, model.InvalidInputf("want 1 input, got %d", len(in))
	}
	t := in[0]
	w := len(m.spec.Weights)
	if len(t.Shape) != 2 || t.Shape[1] != int64(w) {
		return nil, model.InvalidInputf("input %q: want shape [-1, %d], got %v", t.Name, w, t.Shape)
	}
	x, err := t.Float64s()
	if err != nil {
		return nil, model.InvalidInputf("input %q: %v", t.Name, err)
	}
	if p := m.spec.PanicOn; p != nil && slices.Contains(x, *p) {
		panic(fmt.Sprintf("testlinear: input value %v", *p))
	}
	if m.spec.DelayMS > 0 {
		select {
		case <-time.After(time.Duration(m.spec.DelayMS) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n := int(t.Shape[0])
	labels := make([]int64, n)
	proba := make([]float64, 2*n)
	for r := 0; r < n; r++ {
		z := m.spec.Bias
		for j, wj := range m.spec.Weights {
			z += wj * x[r*w+j]
		}
		if z > 0 {
			labels[r] = 1
			proba[2*r+1] = 1
		} else {
			proba[2*r] = 1
		}
	}
	return []*tensor.Tensor{
		{Name: m.md.Outputs[0].Name, Datatype: tensor.Int64, Shape: []int64{int64(n)}, Data: labels},
		{Name: m.md.Outputs[1].Name, Datatype: tensor.FP64, Shape: []int64{int64(n), 2}, Data: proba},
	}, nil
}
