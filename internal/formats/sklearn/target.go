package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// TransformedTargetRegressor (sklearn.compose._target): the regressor predicts
// in the transformed target's space and transformer_.inverse_transform brings
// the prediction back. The invertible transformers supported are the scalers
// (StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler),
// PowerTransformer, QuantileTransformer and the identity FunctionTransformer;
// a func/inverse_func pair is code in the pickle and is refused.

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

// inverse: the scaler's inverse when standardizing, then each feature's
// inverse power transform, as PowerTransformer.inverse_transform.
func (t *powerTransformer) inverse(y []float64) []float64 {
	out := y
	if t.scaler != nil {
		out = t.scaler.inverse(y)
	} else {
		out = append([]float64(nil), y...)
	}
	p := t.nFeatures
	for i, x := range out {
		l := t.lambdas[i%p]
		if t.boxCox {
			out[i] = boxCoxInverse(x, l)
		} else {
			out[i] = yeoJohnsonInverse(x, l)
		}
	}
	return out
}

// boxCoxInverse is PowerTransformer._box_cox_inverse_tranform.
func boxCoxInverse(x, l float64) float64 {
	if l == 0 {
		return math.Exp(x)
	}
	return math.Pow(x*l+1, 1/l)
}

// yeoJohnsonInverse is PowerTransformer._yeo_johnson_inverse_transform (NaN
// is not >= 0, so it takes the second branch and stays NaN).
func yeoJohnsonInverse(x, l float64) float64 {
	if x >= 0 {
		if math.Abs(l) < epsilon64 {
			return math.Exp(x) - 1
		}
		return math.Pow(x*l+1, 1/l) - 1
	}
	if math.Abs(l-2) > epsilon64 {
		return 1 - math.Pow(-(2-l)*x+1, 1/(2-l))
	}
	return 1 - math.Exp(-x)
}

// inverse is QuantileTransformer.inverse_transform: back to the uniform (the
// normal CDF first, for a normal output), the bounds to the extreme
// quantiles, the rest interpolated from the references to the quantiles.
func (q *quantileTransformer) inverse(y []float64) []float64 {
	p := q.nFeatures
	out := make([]float64, len(y))
	for i, x := range y {
		qs := q.quantiles[i%p]
		if q.normal {
			x = normCDF(x)
		}
		var lower, upper bool
		if q.normal {
			lower, upper = x-boundsThreshold < 0, x+boundsThreshold > 1
		} else {
			lower, upper = x == 0, x == 1
		}
		v := npInterp(x, q.references, qs) // NaN stays NaN
		if upper {
			v = qs[len(qs)-1]
		}
		if lower {
			v = qs[0]
		}
		out[i] = v
	}
	return out
}

// normCDF is scipy's ndtr: erf near the centre, erfc in the tails.
func normCDF(a float64) float64 {
	x := a * (1 / math.Sqrt2)
	z := math.Abs(x)
	if z < 1/math.Sqrt2 {
		return 0.5 + 0.5*math.Erf(x)
	}
	y := 0.5 * math.Erfc(z)
	if x > 0 {
		y = 1 - y
	}
	return y
}

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
		return nil, fmt.Errorf("transformer_ %s has no supported inverse_transform (the scalers, PowerTransformer, QuantileTransformer and the identity are supported)", to.Name)
	}
	targets := reg.(Regressor).NumTargets()
	if w := numFeatures(tr); w != targets {
		return nil, fmt.Errorf("transformer_ takes %d targets, the regressor predicts %d", w, targets)
	}
	return &transformedTarget{reg: reg.(Regressor), inv: inv}, nil
}
