package sklearn

import (
	"fmt"

	"github.com/tideserve/tide/internal/pickle"
)

// TransformedTargetRegressor (sklearn.compose._target): the regressor predicts
// in the transformed target's space and transformer_.inverse_transform brings
// the prediction back. The invertible transformers supported are the scalers
// (StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler) and the identity
// FunctionTransformer; a func/inverse_func pair is code in the pickle and is
// refused.

func init() {
	register("sklearn.compose._target.TransformedTargetRegressor", buildTransformedTargetRegressor)
}

// inverter undoes a fitted transformer's transform of a target column.
type inverter interface {
	inverse(y []float64) []float64
}

// inverse: X *= scale_ (when scaling), then X += center (when centering), as
// StandardScaler's, RobustScaler's and MaxAbsScaler's inverse_transform.
func (s *centerScaler) inverse(y []float64) []float64 {
	out := append([]float64(nil), y...)
	p := s.nFeatures
	if s.scale != nil {
		for i := range out {
			out[i] *= s.scale[i%p]
		}
	}
	if s.center != nil {
		for i := range out {
			out[i] += s.center[i%p]
		}
	}
	return out
}

// inverse: X -= min_, then X /= scale_, as MinMaxScaler's.
func (s *minMaxScaler) inverse(y []float64) []float64 {
	out := append([]float64(nil), y...)
	p := s.nFeatures
	for i := range out {
		out[i] -= s.min[i%p]
		out[i] /= s.scale[i%p]
	}
	return out
}

func (t identityTransformer) inverse(y []float64) []float64 { return y }

type transformedTarget struct {
	reg Regressor
	inv inverter
}

func (t *transformedTarget) NumFeatures() int { return t.reg.NumFeatures() }
func (t *transformedTarget) NumTargets() int  { return t.reg.NumTargets() }
func (t *transformedTarget) Predict(X []float64, n int) []float64 {
	return t.inv.inverse(t.reg.Predict(X, n))
}

// AcceptsNonFinite is the inner regressor's rule.
func (t *transformedTarget) AcceptsNonFinite() (nan, inf bool) {
	if a, ok := t.reg.(NonFiniteAcceptor); ok {
		return a.AcceptsNonFinite()
	}
	return false, false
}

func buildTransformedTargetRegressor(obj *pickle.Object) (any, error) {
	rv, ok := obj.Attr("regressor_")
	if !ok {
		return nil, fmt.Errorf("regressor_ is missing")
	}
	reg, err := member(rv, "regressor")
	if err != nil {
		return nil, fmt.Errorf("regressor_: %w", err)
	}
	to, err := obj.Object("transformer_")
	if err != nil {
		return nil, err
	}
	tr, err := build(to)
	if err != nil {
		return nil, fmt.Errorf("transformer_: %w", err)
	}
	inv, ok := tr.(inverter)
	if !ok {
		return nil, fmt.Errorf("transformer_ %s has no supported inverse_transform (the scalers and the identity are supported)", to.Name)
	}
	targets := reg.(Regressor).NumTargets()
	if w := numFeatures(tr); w != targets {
		return nil, fmt.Errorf("transformer_ takes %d targets, the regressor predicts %d", w, targets)
	}
	return &transformedTarget{reg: reg.(Regressor), inv: inv}, nil
}
