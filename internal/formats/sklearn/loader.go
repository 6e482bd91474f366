package sklearn

import (
	"context"
	"errors"
	"fmt"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/xgboost"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
)

func init() {
	formats.Register(formats.Runtime{
		Format:     "sklearn",
		Extensions: []string{".pkl", ".pickle", ".joblib"},
		Loader:     loader{},
	})
}

// loader reads scikit-learn models saved with joblib.dump or pickle.dump.
type loader struct{}

// Load decodes the file, building only allow-listed classes, rebuilds the
// estimator and wraps it as a model. Every error is one line that starts with
// "load <path>: ".
func (loader) Load(ctx context.Context, path string, cfg formats.Config) (model.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// pickle.LoadFile's errors already say "load <path>: ...".
	v, release, err := pickle.LoadFile(path, pickle.Options{Allow: allowed, Budget: cfg.Memory, Pacer: cfg.CPU})
	if err != nil {
		var na *pickle.NotAllowedError
		if errors.As(err, &na) {
			if hint, ok := alternatives[na.Module+"."+na.Name]; ok {
				return nil, fmt.Errorf("%w; %s", err, hint)
			}
			if na.Module == "__main__" {
				return nil, fmt.Errorf("%w; it is code from the training script, which Tide never runs (a function as a ColumnTransformer column selector: select the columns by name, index, slice or mask instead)", err)
			}
		}
		return nil, err
	}
	// The decoded arrays share the file's bytes until release: the estimator
	// is built from copies (every pickle accessor copies), so nothing built
	// refers to them. WhileMapped makes a file that shrinks meanwhile this
	// load's error.
	defer release()
	var est *estimatorModel
	err = pickle.WhileMapped(func() error {
		// Building converts the decoded arrays into the estimator's own slices:
		// at most 8 bytes (a float64 or int) per element, charged before it starts.
		if n := pickle.ArrayElements(v); n > 0 {
			if err := cfg.Memory.Charge(8 * n); err != nil {
				return fmt.Errorf("building the estimator from %d array elements: %w", n, err)
			}
		}
		// XGBoost's wrappers carry their booster as bytes, decoded by the
		// XGBoost runtime at its own measured cost.
		if n := boosterBytes(v); n > 0 {
			if err := cfg.Memory.Charge(xgboost.SnapshotCost(n)); err != nil {
				return fmt.Errorf("decoding %d bytes of pickled XGBoost boosters: %w", n, err)
			}
		}
		var err error
		est, err = newModelFromValue(v, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return est, nil
}

// alternatives say, for classes people pickle that this runtime does not
// build, how to serve the model anyway.
var alternatives = func() map[string]string {
	const lgb = "save its booster as text (model.booster_.save_model(\"model.txt\")) and serve that file: Tide reads LightGBM text models"
	const onnx = "export it to ONNX (skl2onnx's to_onnx) and serve the .onnx file"
	m := map[string]string{
		"lightgbm.basic.Booster":                            "save it as text (booster.save_model(\"model.txt\")) and serve that file: Tide reads LightGBM text models",
		"catboost.core.CatBoostClassifier":                  "save it as ONNX (model.save_model(\"model.onnx\", format=\"onnx\")) and serve the .onnx file",
		"catboost.core.CatBoostRegressor":                   "save it as ONNX (model.save_model(\"model.onnx\", format=\"onnx\")) and serve the .onnx file",
		"torch._utils._rebuild_tensor_v2":                   "this is a PyTorch file: export the model with torch.onnx.export and serve the .onnx file",
		"torch._utils._rebuild_parameter":                   "this is a PyTorch file: export the model with torch.onnx.export and serve the .onnx file",
		"sklearn.decomposition._pca.PCA":                    onnx,
		"sklearn.decomposition._truncated_svd.TruncatedSVD": onnx,
	}
	for _, c := range []string{"LGBMClassifier", "LGBMRegressor", "LGBMRanker"} {
		m["lightgbm.sklearn."+c] = lgb
	}
	for _, c := range []string{"MLPClassifier", "MLPRegressor"} {
		m["sklearn.neural_network._multilayer_perceptron."+c] = onnx
	}
	return m
}()

// newModelFromValue builds a decoded pickle value into a served model.
func newModelFromValue(v any, cfg formats.Config) (*estimatorModel, error) {
	est, err := build(v)
	if err != nil {
		return nil, err
	}
	names, err := featureNames(v)
	if err != nil {
		return nil, err
	}
	m, err := newModel(est, names, cfg)
	if err != nil {
		return nil, err
	}
	if err := checkTextReached(v, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Reading pickled attributes. Every value in a file is untrusted: these helpers
// check types, shapes and the array payload against its header, so that a builder
// that uses them can never index out of range later. Their errors name the
// attribute but not the class; build adds the class.

// maxArrayElements bounds the element count a shape may claim, so that multiplying
// out a forged shape cannot overflow. Allocation is bounded by the file itself:
// checkArray requires the payload to hold every element the shape claims.
const maxArrayElements = 1 << 31

// attrValue returns a required attribute.
func attrValue(obj *pickle.Object, name string) (any, error) {
	v, ok := obj.Attr(name)
	if !ok {
		return nil, fmt.Errorf("attribute %s is missing", name)
	}
	return v, nil
}

// checkArray verifies that an array's payload holds what its dtype and shape
// promise.
func checkArray(a *pickle.NDArray, name string) error {
	if a.Dtype == nil {
		return fmt.Errorf("%s: array has no dtype", name)
	}
	n := 1
	for _, d := range a.Shape {
		if d < 0 || (d > 0 && n > maxArrayElements/d) {
			return fmt.Errorf("%s: invalid array shape %v", name, a.Shape)
		}
		n *= d
	}
	if a.Dtype.Kind == 'O' {
		if len(a.Objects) != n {
			return fmt.Errorf("%s: object array of shape %v holds %d elements", name, a.Shape, len(a.Objects))
		}
		return nil
	}
	if a.Dtype.ItemSize <= 0 || len(a.Data)/a.Dtype.ItemSize < n {
		return fmt.Errorf("%s: array of shape %v and dtype %s holds only %d bytes", name, a.Shape, a.Dtype, len(a.Data))
	}
	return nil
}

// arrayAttr returns a required ndarray attribute, checked.
func arrayAttr(obj *pickle.Object, name string) (*pickle.NDArray, error) {
	v, err := attrValue(obj, name)
	if err != nil {
		return nil, err
	}
	a, ok := v.(*pickle.NDArray)
	if !ok {
		return nil, fmt.Errorf("%s: want an array, got %s", name, pickle.TypeName(v))
	}
	if err := checkArray(a, name); err != nil {
		return nil, err
	}
	return a, nil
}

// floatArrayAttr returns a numeric ndarray attribute as float64s with its shape.
func floatArrayAttr(obj *pickle.Object, name string) ([]float64, []int, error) {
	a, err := arrayAttr(obj, name)
	if err != nil {
		return nil, nil, err
	}
	switch a.Dtype.Kind {
	case 'f', 'i', 'u', 'b':
	default:
		return nil, nil, fmt.Errorf("%s: want a numeric array, got %s", name, a.Dtype)
	}
	v, err := a.Float64s()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, a.Shape, nil
}

// featureVector reads a 1-D per-feature array (a scaler's mean_, scale_, ...). If
// *nFeatures is negative it is set from the array's length; otherwise the length
// must equal it.
func featureVector(obj *pickle.Object, name string, nFeatures *int) ([]float64, error) {
	v, shape, err := floatArrayAttr(obj, name)
	if err != nil {
		return nil, err
	}
	if len(shape) != 1 {
		return nil, fmt.Errorf("%s has shape %v, want one value per feature", name, shape)
	}
	switch {
	case *nFeatures < 0:
		*nFeatures = shape[0]
	case shape[0] != *nFeatures:
		return nil, fmt.Errorf("%s has %d values for %d features", name, shape[0], *nFeatures)
	}
	return v, nil
}

// featureCount returns n_features_in_ when the file records it (sklearn ≥ 0.24).
func featureCount(obj *pickle.Object) (n int, ok bool, err error) {
	v, ok := obj.Attr("n_features_in_")
	if !ok {
		return 0, false, nil
	}
	i, isInt := pickle.ToInt(v)
	if !isInt || i <= 0 || i > maxArrayElements {
		return 0, false, fmt.Errorf("n_features_in_: want a positive integer, got %v", v)
	}
	return int(i), true, nil
}

// checkFeatureCount verifies a width derived from an attribute against
// n_features_in_, when recorded.
func checkFeatureCount(obj *pickle.Object, got int, from string) error {
	n, ok, err := featureCount(obj)
	if err != nil || !ok {
		return err
	}
	if n != got {
		return fmt.Errorf("%s has %d features but n_features_in_ is %d", from, got, n)
	}
	return nil
}

// stringAttr returns a required str attribute.
func stringAttr(obj *pickle.Object, name string) (string, error) {
	v, err := attrValue(obj, name)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %s", name, pickle.TypeName(v))
	}
	return s, nil
}

// boolAttr returns a required bool attribute.
func boolAttr(obj *pickle.Object, name string) (bool, error) {
	v, err := attrValue(obj, name)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s: want a bool, got %s", name, pickle.TypeName(v))
	}
	return b, nil
}

// classesAttr reads a classifier's classes_.
func classesAttr(obj *pickle.Object) (Labels, error) {
	a, err := arrayAttr(obj, "classes_")
	if err != nil {
		return Labels{}, err
	}
	if len(a.Shape) != 1 {
		return Labels{}, fmt.Errorf("classes_ has shape %v, want a vector", a.Shape)
	}
	l, err := LabelsFromArray(a)
	if err != nil {
		return Labels{}, fmt.Errorf("classes_: %w", err)
	}
	if l.Len() != a.Len() {
		return Labels{}, fmt.Errorf("classes_: read %d labels from %d elements", l.Len(), a.Len())
	}
	return l, nil
}

// classifierClasses is classesAttr for a classifier, which needs at least two.
func classifierClasses(obj *pickle.Object) (Labels, error) {
	l, err := classesAttr(obj)
	if err == nil && l.Len() < 2 {
		err = fmt.Errorf("classes_ has %d classes, want at least 2", l.Len())
	}
	return l, err
}

// featureNames returns feature_names_in_ (set by sklearn when the estimator was
// fitted on a table with column names), or nil when the file has none. For a
// Pipeline the names are those of its first step that is not 'passthrough'.
func featureNames(v any) ([]string, error) {
	obj, ok := v.(*pickle.Object)
	if !ok {
		return nil, nil
	}
	if obj.Class() == pipelineClass {
		steps, err := pipelineSteps(obj)
		if err != nil {
			return nil, err
		}
		for _, s := range steps {
			if s.est != nil {
				return featureNames(s.est)
			}
		}
		return nil, nil
	}
	raw, ok := obj.Attr("feature_names_in_")
	if !ok || raw == nil {
		return nil, nil
	}
	a, isArray := raw.(*pickle.NDArray)
	if !isArray {
		return nil, fmt.Errorf("%s.feature_names_in_: want an array, got %s", obj.Name, pickle.TypeName(raw))
	}
	if err := checkArray(a, "feature_names_in_"); err != nil {
		return nil, fmt.Errorf("%s.%w", obj.Name, err)
	}
	if len(a.Shape) != 1 {
		return nil, fmt.Errorf("%s.feature_names_in_ has shape %v, want a vector", obj.Name, a.Shape)
	}
	names, err := a.Strings()
	if err != nil {
		return nil, fmt.Errorf("%s.feature_names_in_: %w", obj.Name, err)
	}
	return names, nil
}
