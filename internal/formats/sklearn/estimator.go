// Package sklearn serves scikit-learn models saved with joblib or pickle, in plain Go.
// Each supported estimator is rebuilt from its pickled attributes (never by running
// Python) by a builder registered under its class name; the same registry is the
// pickle allow-list, so a file can only ever name classes this package understands.
package sklearn

import (
	"fmt"
	"strings"

	"github.com/tideserve/tide/internal/pickle"
)

// Every estimator takes X as a row-major n×NumFeatures() matrix of float64, the way
// sklearn's check_array hands it float64 input. Implementations must be safe for
// concurrent use (they are read-only after building).

// Transformer is a fitted preprocessing step (StandardScaler, MinMaxScaler, ...).
type Transformer interface {
	NumFeatures() int
	NumOutputs() int
	// Transform returns n×NumOutputs() values.
	Transform(X []float64, n int) []float64
}

// Regressor predicts NumTargets() values per row.
type Regressor interface {
	NumFeatures() int
	NumTargets() int
	// Predict returns n×NumTargets() values.
	Predict(X []float64, n int) []float64
}

// Classifier predicts class probabilities.
type Classifier interface {
	NumFeatures() int
	Classes() Labels
	// PredictProba returns n×Classes().Len() probabilities.
	PredictProba(X []float64, n int) []float64
}

// IndexPredictor is implemented by classifiers whose predict is not simply the
// first argmax of PredictProba (e.g. a linear model's sign of the decision
// function). It returns the index into Classes() for each row.
type IndexPredictor interface {
	PredictIndex(X []float64, n int) []int
}

// Labels are a classifier's classes_: exactly one of Ints, Floats, Strings is set,
// following the dtype sklearn stored (int64 labels stay ints in JSON, as
// pred.tolist() gives).
type Labels struct {
	Ints    []int64
	Floats  []float64
	Strings []string
	Bools   []bool
}

// Len is the number of classes.
func (l Labels) Len() int {
	return len(l.Ints) + len(l.Floats) + len(l.Strings) + len(l.Bools)
}

// LabelsFromArray reads a classes_ array.
func LabelsFromArray(a *pickle.NDArray) (Labels, error) {
	switch a.Dtype.Kind {
	case 'i', 'u':
		v, err := a.Int64s()
		return Labels{Ints: v}, err
	case 'f':
		v, err := a.Float64s()
		return Labels{Floats: v}, err
	case 'b':
		v, err := a.Int64s()
		if err != nil {
			return Labels{}, err
		}
		bs := make([]bool, len(v))
		for i, x := range v {
			bs[i] = x != 0
		}
		return Labels{Bools: bs}, nil
	case 'U', 'S':
		v, err := a.Strings()
		return Labels{Strings: v}, err
	case 'O':
		// An object array (y given as a list of Python objects) keeps the type
		// of its elements, which sklearn's predict returns as they are.
		if len(a.Objects) > 0 {
			switch a.Objects[0].(type) {
			case string, []byte:
				v, err := a.Strings()
				return Labels{Strings: v}, err
			case bool:
				bs := make([]bool, len(a.Objects))
				for i, x := range a.Objects {
					b, ok := x.(bool)
					if !ok {
						return Labels{}, fmt.Errorf("classes_ mixes bool and %s", pickle.TypeName(x))
					}
					bs[i] = b
				}
				return Labels{Bools: bs}, nil
			case float64:
				v, err := a.Float64s()
				return Labels{Floats: v}, err
			}
		}
		v, err := a.Int64s()
		return Labels{Ints: v}, err
	}
	return Labels{}, fmt.Errorf("classes_ of dtype %s are not supported", a.Dtype)
}

// builder rebuilds one estimator class from its pickled object. It returns a
// Transformer, Regressor or Classifier, and must check every attribute it uses
// (shapes, lengths, index ranges) so that a malformed file is an error, never a
// panic at predict time.
type builder func(obj *pickle.Object) (any, error)

var builders = map[string]builder{}

// helperClasses are classes that may appear inside a supported estimator's pickle
// (tree structures, loss objects, ...) without being estimators themselves.
var helperClasses = map[string]bool{}

// register adds the builder for a fully qualified class name, e.g.
// "sklearn.linear_model._logistic.LogisticRegression".
func register(class string, b builder) {
	if _, dup := builders[class]; dup {
		panic("sklearn: class registered twice: " + class)
	}
	builders[class] = b
}

// allowHelper puts a non-estimator class on the allow-list.
func allowHelper(classes ...string) {
	for _, c := range classes {
		helperClasses[c] = true
	}
}

// allowed is the pickle allow-list: registered estimators and helper classes.
func allowed(module, name string) bool {
	c := module + "." + name
	_, ok := builders[c]
	return ok || helperClasses[c]
}

// build rebuilds a decoded value as an estimator.
func build(v any) (any, error) {
	obj, ok := v.(*pickle.Object)
	if !ok {
		return nil, fmt.Errorf("file holds a %s, not a scikit-learn estimator", pickle.TypeName(v))
	}
	b, ok := builders[obj.Class()]
	if !ok {
		return nil, fmt.Errorf("%s is not a supported estimator", obj.Class())
	}
	est, err := b(obj)
	if err != nil {
		// pickle.Object's accessors already name the class ("LogisticRegression.coef_: ...").
		if msg := err.Error(); strings.HasPrefix(msg, obj.Name+".") || strings.HasPrefix(msg, obj.Name+":") {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", obj.Name, err)
	}
	return est, nil
}
