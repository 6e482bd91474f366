package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Preprocessing steps: the scalers from sklearn.preprocessing (element-wise affine
// maps, done one operation at a time in sklearn's order so that results are
// bit-for-bit numpy's) and SimpleImputer from sklearn.impute.

func init() {
	register("sklearn.preprocessing._data.StandardScaler", buildStandardScaler)
	register("sklearn.preprocessing._data.MinMaxScaler", buildMinMaxScaler)
	register("sklearn.preprocessing._data.RobustScaler", buildRobustScaler)
	register("sklearn.preprocessing._data.MaxAbsScaler", buildMaxAbsScaler)
	register("sklearn.impute._base.SimpleImputer", buildSimpleImputer)
	allowHelper("sklearn.impute._base.MissingIndicator") // SimpleImputer(add_indicator=True)
}

// centerScaler computes (x - center) / scale, each part only when the scaler
// uses it: StandardScaler (mean_, scale_), RobustScaler (center_, scale_) and
// MaxAbsScaler (scale_ only).
type centerScaler struct {
	nFeatures int
	center    []float64 // nil when not centering
	scale     []float64 // nil when not scaling
}

func buildStandardScaler(obj *pickle.Object) (any, error) {
	return buildCenterScaler(obj, "with_mean", "mean_", "with_std")
}

func buildRobustScaler(obj *pickle.Object) (any, error) {
	return buildCenterScaler(obj, "with_centering", "center_", "with_scaling")
}

func buildMaxAbsScaler(obj *pickle.Object) (any, error) {
	return buildCenterScaler(obj, "", "", "")
}

// buildCenterScaler reads a centerScaler. withCenter and withScale name the
// scaler's flags; an empty name means the step is always done (centering is
// never done when centerAttr is empty).
func buildCenterScaler(obj *pickle.Object, withCenter, centerAttr, withScale string) (any, error) {
	s := &centerScaler{nFeatures: -1}
	if n, ok, err := featureCount(obj); err != nil {
		return nil, err
	} else if ok {
		s.nFeatures = n
	}
	centering, scaling := centerAttr != "", true
	var err error
	if withCenter != "" {
		if centering, err = boolAttr(obj, withCenter); err != nil {
			return nil, err
		}
	}
	if withScale != "" {
		if scaling, err = boolAttr(obj, withScale); err != nil {
			return nil, err
		}
	}
	if centering {
		if s.center, err = featureVector(obj, centerAttr, &s.nFeatures); err != nil {
			return nil, err
		}
	}
	if scaling {
		if s.scale, err = featureVector(obj, "scale_", &s.nFeatures); err != nil {
			return nil, err
		}
	}
	if s.nFeatures <= 0 {
		return nil, fmt.Errorf("the number of features is unknown: n_features_in_ is missing and the scaler neither centers nor scales")
	}
	return s, nil
}

func (s *centerScaler) NumFeatures() int { return s.nFeatures }
func (s *centerScaler) NumOutputs() int  { return s.nFeatures }

// AcceptsNonFinite: the scalers' transform validates with
// force_all_finite="allow-nan": NaN passes through, ±Inf is an error.
func (s *centerScaler) AcceptsNonFinite() (nan, inf bool) { return true, false }

func (s *centerScaler) Transform(X []float64, n int) []float64 {
	out := make([]float64, n*s.nFeatures)
	copy(out, X[:n*s.nFeatures])
	p := s.nFeatures
	if s.center != nil {
		for i := range out {
			out[i] -= s.center[i%p]
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

// simpleImputer replaces missing values by the statistic fitted for their column.
// Like sklearn it drops the columns whose statistic is NaN (all missing at fit
// time) unless the strategy is "constant" or keep_empty_features is set, and
// with add_indicator it appends a 0/1 column per feature of its MissingIndicator.
type simpleImputer struct {
	nFeatures  int
	keep       []int     // the input columns in the output, in order
	fill       []float64 // the replacement for each kept column
	missingNaN bool      // missing_values is NaN (else it is missing)
	missing    float64
	indicator  []int // input columns whose missingness is appended
	// text is set for an imputer fitted on strings (object columns): its
	// statistics and marker become codes when the model binds its vocabulary.
	text *imputerText
}

// imputerText is what a string imputer knows before its codes are bound.
type imputerText struct {
	stats  []textCategory // per kept column, in keep order
	marker textCategory   // missing_values; missing for NaN or None
	src    *pickle.Object
}

func buildSimpleImputer(obj *pickle.Object) (any, error) {
	s := &simpleImputer{nFeatures: -1}
	if n, ok, err := featureCount(obj); err != nil {
		return nil, err
	} else if ok {
		s.nFeatures = n
	}
	mv, err := attrValue(obj, "missing_values")
	if err != nil {
		return nil, err
	}
	if dt, ok := obj.Attr("_fit_dtype"); ok {
		if d, isDtype := dt.(*pickle.Dtype); isDtype && d.Kind != 'f' && d.Kind != 'i' && d.Kind != 'u' && d.Kind != 'b' {
			if d.Kind != 'O' {
				return nil, fmt.Errorf("imputing %s data is not supported, only numbers and strings", d)
			}
			if text, err := imputedText(obj, mv); err != nil || text {
				if err != nil {
					return nil, err
				}
				return buildTextImputer(obj, s)
			}
		}
	}
	if s.missingNaN, s.missing, err = missingValue(mv); err != nil {
		return nil, err
	}
	stats, err := featureVector(obj, "statistics_", &s.nFeatures)
	if err != nil {
		return nil, err
	}
	strategy, err := stringAttr(obj, "strategy")
	if err != nil {
		return nil, err
	}
	keepEmpty := false
	if _, ok := obj.Attr("keep_empty_features"); ok { // added in sklearn 1.2
		if keepEmpty, err = boolAttr(obj, "keep_empty_features"); err != nil {
			return nil, err
		}
	}
	for c, v := range stats {
		if strategy == "constant" || keepEmpty || !math.IsNaN(v) {
			s.keep = append(s.keep, c)
			s.fill = append(s.fill, v)
		}
	}
	if s.indicator, err = imputerIndicator(obj, s.nFeatures); err != nil {
		return nil, err
	}
	if len(s.keep)+len(s.indicator) == 0 {
		return nil, fmt.Errorf("every feature was empty at fit time: the imputer outputs nothing")
	}
	return s, nil
}

// missingValue reads missing_values: NaN or a number. (None and strings mark
// missing values in object data, which is not served.)
func missingValue(v any) (isNaN bool, value float64, err error) {
	f, ok := pickle.ToFloat(v)
	if !ok {
		return false, 0, fmt.Errorf("missing_values %s is not supported, only NaN or a number", pickle.TypeName(v))
	}
	return math.IsNaN(f), f, nil
}

// imputerIndicator reads the features of SimpleImputer's MissingIndicator, or nil
// without add_indicator.
func imputerIndicator(obj *pickle.Object, nFeatures int) ([]int, error) {
	add, err := boolAttr(obj, "add_indicator")
	if err != nil || !add {
		return nil, err
	}
	v, err := attrValue(obj, "indicator_")
	if err != nil {
		return nil, err
	}
	ind, ok := v.(*pickle.Object)
	if !ok || ind.Name != "MissingIndicator" {
		return nil, fmt.Errorf("indicator_: want a MissingIndicator, got %s", pickle.TypeName(v))
	}
	a, err := arrayAttr(ind, "features_")
	if err != nil {
		return nil, fmt.Errorf("indicator_: %w", err)
	}
	idx, err := a.Int64s()
	if err != nil || len(a.Shape) != 1 {
		return nil, fmt.Errorf("indicator_.features_: want a vector of column indices, got %s of shape %v", a.Dtype, a.Shape)
	}
	cols := make([]int, len(idx))
	for i, c := range idx {
		if c < 0 || c >= int64(nFeatures) {
			return nil, fmt.Errorf("indicator_.features_[%d] = %d, outside the %d features", i, c, nFeatures)
		}
		cols[i] = int(c)
	}
	return cols, nil
}

func (s *simpleImputer) NumFeatures() int { return s.nFeatures }
func (s *simpleImputer) NumOutputs() int  { return len(s.keep) + len(s.indicator) }

// AcceptsNonFinite: with missing_values=NaN sklearn validates with
// force_all_finite="allow-nan"; with a number as the marker, NaN is an error too.
func (s *simpleImputer) AcceptsNonFinite() (nan, inf bool) {
	return s.missingNaN || s.text != nil, false
}

func (s *simpleImputer) isMissing(x float64) bool {
	if s.missingNaN {
		return math.IsNaN(x)
	}
	return x == s.missing
}

func (s *simpleImputer) Transform(X []float64, n int) []float64 {
	p, w := s.nFeatures, s.NumOutputs()
	out := make([]float64, n*w)
	for i := 0; i < n; i++ {
		row, o := X[i*p:(i+1)*p], out[i*w:(i+1)*w]
		for j, c := range s.keep {
			if x := row[c]; s.isMissing(x) {
				o[j] = s.fill[j]
			} else {
				o[j] = x
			}
		}
		for j, c := range s.indicator {
			if s.isMissing(row[c]) {
				o[len(s.keep)+j] = 1
			}
		}
	}
	return out
}
