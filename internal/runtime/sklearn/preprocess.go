package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Scalers from sklearn.preprocessing. Both are element-wise affine maps; the
// operations are done one at a time in sklearn's order so that results are
// bit-for-bit numpy's.

func init() {
	register("sklearn.preprocessing._data.StandardScaler", buildStandardScaler)
	register("sklearn.preprocessing._data.MinMaxScaler", buildMinMaxScaler)
}

// standardScaler computes (x - mean_) / scale_, each part only when with_mean /
// with_std is set.
type standardScaler struct {
	nFeatures int
	mean      []float64 // nil when with_mean is false
	scale     []float64 // nil when with_std is false
}

func buildStandardScaler(obj *pickle.Object) (any, error) {
	withMean, err := boolAttr(obj, "with_mean")
	if err != nil {
		return nil, err
	}
	withStd, err := boolAttr(obj, "with_std")
	if err != nil {
		return nil, err
	}
	s := &standardScaler{nFeatures: -1}
	if n, ok, err := featureCount(obj); err != nil {
		return nil, err
	} else if ok {
		s.nFeatures = n
	}
	if withMean {
		if s.mean, err = featureVector(obj, "mean_", &s.nFeatures); err != nil {
			return nil, err
		}
	}
	if withStd {
		if s.scale, err = featureVector(obj, "scale_", &s.nFeatures); err != nil {
			return nil, err
		}
	}
	if s.nFeatures <= 0 {
		return nil, fmt.Errorf("the number of features is unknown: n_features_in_ is missing and neither mean_ nor scale_ is used")
	}
	return s, nil
}

func (s *standardScaler) NumFeatures() int { return s.nFeatures }
func (s *standardScaler) NumOutputs() int  { return s.nFeatures }

// AcceptsNonFinite: StandardScaler.transform validates with
// force_all_finite="allow-nan": NaN passes through, ±Inf is an error.
func (s *standardScaler) AcceptsNonFinite() (nan, inf bool) { return true, false }

func (s *standardScaler) Transform(X []float64, n int) []float64 {
	out := make([]float64, n*s.nFeatures)
	copy(out, X[:n*s.nFeatures])
	p := s.nFeatures
	if s.mean != nil {
		for i := range out {
			out[i] -= s.mean[i%p]
		}
	}
	if s.scale != nil {
		for i := range out {
			out[i] /= s.scale[i%p]
		}
	}
	return out
}

// minMaxScaler computes x*scale_ + min_, then clips to feature_range if clip is
// set.
type minMaxScaler struct {
	nFeatures int
	scale     []float64
	min       []float64
	clip      bool
	lo, hi    float64 // feature_range, used when clip is set
}

func buildMinMaxScaler(obj *pickle.Object) (any, error) {
	s := &minMaxScaler{nFeatures: -1}
	if n, ok, err := featureCount(obj); err != nil {
		return nil, err
	} else if ok {
		s.nFeatures = n
	}
	var err error
	if s.scale, err = featureVector(obj, "scale_", &s.nFeatures); err != nil {
		return nil, err
	}
	if s.min, err = featureVector(obj, "min_", &s.nFeatures); err != nil {
		return nil, err
	}
	// clip arrived in sklearn 0.24; older files never clip.
	if _, ok := obj.Attr("clip"); ok {
		if s.clip, err = boolAttr(obj, "clip"); err != nil {
			return nil, err
		}
	}
	if s.clip {
		v, err := attrValue(obj, "feature_range")
		if err != nil {
			return nil, err
		}
		r, _ := sequenceItems(v)
		lo, okLo := pickle.ToFloat(itemOrNil(r, 0))
		hi, okHi := pickle.ToFloat(itemOrNil(r, 1))
		if len(r) != 2 || !okLo || !okHi {
			return nil, fmt.Errorf("feature_range: want two numbers, got %s", pickle.TypeName(v))
		}
		if !(lo < hi) {
			return nil, fmt.Errorf("feature_range (%v, %v): minimum must be below maximum", lo, hi)
		}
		s.lo, s.hi = lo, hi
	}
	return s, nil
}

func itemOrNil(items []any, i int) any {
	if i < len(items) {
		return items[i]
	}
	return nil
}

func (s *minMaxScaler) NumFeatures() int { return s.nFeatures }
func (s *minMaxScaler) NumOutputs() int  { return s.nFeatures }

// AcceptsNonFinite: MinMaxScaler.transform validates with
// force_all_finite="allow-nan": NaN passes through, ±Inf is an error.
func (s *minMaxScaler) AcceptsNonFinite() (nan, inf bool) { return true, false }

func (s *minMaxScaler) Transform(X []float64, n int) []float64 {
	p := s.nFeatures
	out := make([]float64, n*p)
	for i, x := range X[:n*p] {
		// Rounded product, then sum: numpy does X *= scale_; X += min_ as two
		// operations, never one fused multiply-add.
		out[i] = float64(x*s.scale[i%p]) + s.min[i%p]
	}
	if s.clip {
		for i, v := range out {
			// Like np.clip, math.Max and math.Min keep NaN.
			out[i] = math.Min(math.Max(v, s.lo), s.hi)
		}
	}
	return out
}
