package sklearn

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tideserve/tide/internal/pickle"
)

// CalibratedClassifierCV (sklearn.calibration), as scikit-learn 1.2 predicts:
// each of calibrated_classifiers_ (one per cross-validation fold) maps its
// estimator's decision_function (or, without one, its predict_proba) through
// one calibrator per class, a sigmoid (Platt) or an isotonic step function,
// normalises the classes, and the folds' probabilities are averaged. predict
// is their argmax.

func init() {
	register("sklearn.calibration.CalibratedClassifierCV", buildCalibratedClassifier)
	allowHelper(
		"sklearn.calibration._CalibratedClassifier",
		"sklearn.calibration._SigmoidCalibration",
		"sklearn.isotonic.IsotonicRegression",
	)
}

// decisionFunction returns est's decision_function for n rows (n×width) and
// true, or false when sklearn's estimator has none. A pipeline's is its final
// estimator's on the transformed rows.
func decisionFunction(est any, X []float64, n int) ([]float64, int, bool) {
	switch e := est.(type) {
	case *logisticRegression:
		return e.f.decision(X, n), e.f.nOutputs, true
	case *linearClassifier:
		return e.f.decision(X, n), e.f.nOutputs, true
	case *modifiedHuberClassifier:
		return e.f.decision(X, n), e.f.nOutputs, true
	case *gbClassifier:
		return e.raw(X, n), e.k, true
	case *hgbClassifier:
		return e.raw(X, n), e.k, true
	case *svc:
		d := e.raw(X, n)
		return d, len(d) / n, true
	case svcProba:
		d := e.raw(X, n)
		return d, len(d) / n, true
	case pipelineClassifier:
		return decisionFunction(e.p.final, e.transform(X, n), n)
	case pipelineLabeler:
		return decisionFunction(e.p.final, e.transform(X, n), n)
	}
	return nil, 0, false
}

// decision is the linear function's n×nOutputs values.
func (f *linearFunction) decision(X []float64, n int) []float64 {
	out := make([]float64, n*f.nOutputs)
	f.eval(X, n, out)
	return out
}

// withoutDecision are the classifiers whose sklearn counterparts have no
// decision_function, so that calibration uses their predict_proba. Any other
// estimator without a decision function here is refused, rather than
// calibrated on the wrong scores.
func withoutDecision(est any) bool {
	switch e := est.(type) {
	case *forestClassifier, *treeClassifier, *naiveBayes, *softVoting, *xgbClassifier:
		return true
	case pipelineClassifier:
		return withoutDecision(e.p.final)
	}
	return false
}

// calibrator maps one class's scores to probabilities.
type calibrator interface {
	predict(t float64) float64
}

// sigmoidCalibration is _SigmoidCalibration: expit(-(a*t + b)).
type sigmoidCalibration struct{ a, b float64 }

func (s sigmoidCalibration) predict(t float64) float64 {
	z := float64(s.a*t) + s.b // numpy rounds the product before the sum
	return 1 / (1 + glibcExp(z))
}

// isotonicCalibration is a fitted IsotonicRegression with out_of_bounds
// "clip": t clipped to [X_min_, X_max_], then np.interp through the
// thresholds (what scipy's interp1d delegates to for float64 data).
type isotonicCalibration struct {
	x, y       []float64
	xmin, xmax float64
}

func (c isotonicCalibration) predict(t float64) float64 {
	return npInterp(math.Min(math.Max(t, c.xmin), c.xmax), c.x, c.y)
}

// calibratedFold is one _CalibratedClassifier.
type calibratedFold struct {
	est any
	// classIdx[i] is the calibrated classes' index of the estimator's class i,
	// calibrated by calibrators[i].
	classIdx    []int
	calibrators []calibrator
	useDecision bool
}

type calibratedClassifier struct {
	nFeatures int
	classes   Labels
	folds     []calibratedFold
}

func (c *calibratedClassifier) NumFeatures() int { return c.nFeatures }
func (c *calibratedClassifier) Classes() Labels  { return c.classes }

func (c *calibratedClassifier) PredictProba(X []float64, n int) []float64 {
	k := c.classes.Len()
	mean := make([]float64, n*k)
	for _, f := range c.folds {
		p := f.predictProba(X, n, k)
		for j := range mean {
			mean[j] += p[j]
		}
	}
	for j := range mean {
		mean[j] /= float64(len(c.folds))
	}
	return mean
}

// predictProba is _CalibratedClassifier.predict_proba.
func (f *calibratedFold) predictProba(X []float64, n, k int) []float64 {
	var scores []float64
	width := 0
	if f.useDecision {
		scores, width, _ = decisionFunction(f.est, X, n)
	} else {
		scores = probabilities(f.est.(Classifier), X, n)
		width = len(scores) / n
		if k == 2 { // predict_proba[:, 1:]
			pos := make([]float64, n)
			for r := range pos {
				pos[r] = scores[r*width+1]
			}
			scores, width = pos, 1
		}
	}
	proba := make([]float64, n*k)
	for i, cal := range f.calibrators {
		idx := f.classIdx[i]
		if k == 2 {
			idx++
		}
		for r := 0; r < n; r++ {
			proba[r*k+idx] = cal.predict(scores[r*width+i])
		}
	}
	row := make([]float64, k)
	for r := 0; r < n; r++ {
		p := proba[r*k : (r+1)*k]
		if k == 2 {
			p[0] = 1.0 - p[1]
		} else {
			copy(row, p)
			den := pairwiseSum(row)
			for j := range p {
				if den != 0 {
					p[j] /= den
				} else {
					p[j] = 1 / float64(k)
				}
			}
		}
		for j, v := range p {
			if 1.0 < v && v <= 1.0+1e-5 {
				p[j] = 1.0
			}
		}
	}
	return proba
}

// labelKeys gives each label a comparable key, for matching labels across
// estimators.
func labelKeys(l Labels) []string {
	keys := make([]string, 0, l.Len())
	for _, v := range l.Ints {
		keys = append(keys, "i"+strconv.FormatInt(v, 10))
	}
	for _, v := range l.Floats {
		keys = append(keys, "f"+strconv.FormatFloat(v, 'g', -1, 64))
	}
	for _, v := range l.Strings {
		keys = append(keys, "s"+v)
	}
	for _, v := range l.Bools {
		keys = append(keys, "b"+strconv.FormatBool(v))
	}
	return keys
}

func buildCalibratedClassifier(obj *pickle.Object) (any, error) {
	classes, err := classifierClasses(obj)
	if err != nil {
		return nil, err
	}
	k := classes.Len()
	index := map[string]int{}
	for i, key := range labelKeys(classes) {
		index[key] = i
	}
	items, err := obj.Items("calibrated_classifiers_")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("calibrated_classifiers_ is empty")
	}
	c := &calibratedClassifier{classes: classes, folds: make([]calibratedFold, len(items))}
	for i, v := range items {
		fold, err := readCalibratedFold(v, index, k)
		if err != nil {
			return nil, fmt.Errorf("calibrated_classifiers_[%d]: %w", i, err)
		}
		w := numFeatures(fold.est)
		if i == 0 {
			c.nFeatures = w
		} else if w != c.nFeatures {
			return nil, fmt.Errorf("calibrated_classifiers_[%d] takes %d features, the first %d", i, w, c.nFeatures)
		}
		c.folds[i] = fold
	}
	return c, nil
}

func readCalibratedFold(v any, index map[string]int, k int) (calibratedFold, error) {
	var f calibratedFold
	obj, ok := v.(*pickle.Object)
	if !ok || obj.Class() != "sklearn.calibration._CalibratedClassifier" {
		return f, fmt.Errorf("is a %s, not a _CalibratedClassifier", pickle.TypeName(v))
	}
	ev, ok := obj.Attr("estimator")
	if !ok {
		return f, fmt.Errorf("has no estimator")
	}
	est, err := member(ev, "label predictor")
	if err != nil {
		return f, fmt.Errorf("estimator: %w", err)
	}
	f.est = est
	X1 := make([]float64, numFeatures(est))
	if _, _, ok := decisionFunction(est, X1, 1); ok {
		f.useDecision = true
	} else if !withoutDecision(est) {
		return f, fmt.Errorf("calibrating a %T is not supported", est)
	} else if _, ok := est.(Classifier); !ok {
		return f, fmt.Errorf("the estimator has neither decision_function nor predict_proba")
	}
	estClasses := est.(interface{ Classes() Labels }).Classes()
	for _, key := range labelKeys(estClasses) {
		i, ok := index[key]
		if !ok {
			return f, fmt.Errorf("the estimator's class %s is not among classes_", key[1:])
		}
		f.classIdx = append(f.classIdx, i)
	}
	cals, err := obj.Items("calibrators")
	if err != nil {
		return f, err
	}
	// One calibrator per estimator class, or a single one for two classes.
	want := len(f.classIdx)
	if k == 2 {
		want = 1
	}
	if len(cals) != want {
		return f, fmt.Errorf("%d calibrators for %d classes", len(cals), len(f.classIdx))
	}
	for i, cv := range cals {
		cal, err := readCalibrator(cv)
		if err != nil {
			return f, fmt.Errorf("calibrators[%d]: %w", i, err)
		}
		f.calibrators = append(f.calibrators, cal)
	}
	return f, nil
}

func readCalibrator(v any) (calibrator, error) {
	obj, ok := v.(*pickle.Object)
	if !ok {
		return nil, fmt.Errorf("is a %s, not a calibrator", pickle.TypeName(v))
	}
	switch obj.Class() {
	case "sklearn.calibration._SigmoidCalibration":
		a, err := obj.Float("a_")
		if err != nil {
			return nil, err
		}
		b, err := obj.Float("b_")
		if err != nil {
			return nil, err
		}
		return sigmoidCalibration{a: a, b: b}, nil
	case "sklearn.isotonic.IsotonicRegression":
		if oob, err := obj.String("out_of_bounds"); err != nil || oob != "clip" {
			return nil, fmt.Errorf("out_of_bounds %q: only \"clip\" (CalibratedClassifierCV's) is supported", oob)
		}
		x, xs, err := floatArrayAttr(obj, "X_thresholds_")
		if err != nil {
			return nil, err
		}
		y, ys, err := floatArrayAttr(obj, "y_thresholds_")
		if err != nil {
			return nil, err
		}
		if len(xs) != 1 || !sameShape(xs, ys) || len(x) == 0 {
			return nil, fmt.Errorf("X_thresholds_ %v and y_thresholds_ %v are not one non-empty vector each", xs, ys)
		}
		for i := 1; i < len(x); i++ {
			if !(x[i] > x[i-1]) {
				return nil, fmt.Errorf("X_thresholds_ are not strictly increasing at %d", i)
			}
		}
		xmin, err := obj.Float("X_min_")
		if err != nil {
			return nil, err
		}
		xmax, err := obj.Float("X_max_")
		if err != nil {
			return nil, err
		}
		return isotonicCalibration{x: x, y: y, xmin: xmin, xmax: xmax}, nil
	}
	return nil, fmt.Errorf("%s is not a supported calibrator", obj.Class())
}
