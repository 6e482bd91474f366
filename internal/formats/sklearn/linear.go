package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Linear models share one decision function, X·coef_ᵀ + intercept_, and differ
// only in what they make of it: the regressors return it; LogisticRegression
// (and SGDClassifier with log or modified Huber loss) turn it into probabilities;
// LinearSVC, RidgeClassifier and SGDClassifier's other losses only predict its
// sign or argmax.

func init() {
	register("sklearn.linear_model._logistic.LogisticRegression", buildLogisticRegression)
	register("sklearn.linear_model._logistic.LogisticRegressionCV", buildLogisticRegression)
	register("sklearn.svm._classes.LinearSVC", buildLinearClassifier)
	register("sklearn.linear_model._ridge.RidgeClassifier", buildLinearClassifier)
	allowHelper("sklearn.preprocessing._label.LabelBinarizer") // RidgeClassifier's classes_
	register("sklearn.linear_model._stochastic_gradient.SGDClassifier", buildSGDClassifier)
	// SGDClassifier pickles its loss object (a Cython class reduced with its
	// parameters); it is recorded, never used: predict needs only coef_.
	for _, loss := range []string{"Hinge", "SquaredHinge", "Log", "ModifiedHuber", "SquaredLoss", "Huber", "EpsilonInsensitive", "SquaredEpsilonInsensitive"} {
		allowHelper("sklearn.linear_model._sgd_fast." + loss)
	}
	for _, c := range []string{
		"sklearn.linear_model._stochastic_gradient.SGDRegressor",
		"sklearn.linear_model._base.LinearRegression",
		"sklearn.linear_model._ridge.Ridge",
		"sklearn.linear_model._ridge.RidgeCV",
		"sklearn.linear_model._coordinate_descent.Lasso",
		"sklearn.linear_model._coordinate_descent.ElasticNet",
	} {
		register(c, buildLinearRegressor)
	}
}

// linearFunction is X·coefᵀ + intercept for a row-major n×nFeatures X.
type linearFunction struct {
	nFeatures int
	nOutputs  int
	coef      []float64 // nOutputs×nFeatures, row-major, as sklearn's coef_
	intercept []float64 // nOutputs
	// coef1D is true when coef_ was stored as a vector (a single-target regressor
	// fitted on a 1-D y): sklearn's predict then returns a vector, not a column.
	coef1D bool
}

// eval writes the n×nOutputs decision values to out: each dot product, then the
// intercept added, as numpy's X @ coef_.T + intercept_ does.
//
// numpy hands the product to BLAS, and the order in which BLAS sums decides the
// last bits. The two kernels below follow OpenBLAS 0.3 on x86-64 (Haswell and Zen
// kernels, the ones Debian's numpy uses): gemm when there are several outputs,
// gemv when there is one. Against sklearn 1.2.1 on such a machine they agree to the
// bit on every fixture whose input reaches the model C-ordered. Elsewhere the
// difference is a few ulps: another BLAS; sklearn predicting a batch whose size
// is not a multiple of 4 (OpenBLAS finishes it with another kernel); or a
// Fortran-ordered intermediate array, as SimpleImputer produces, which numpy
// hands to a different gemv kernel.
func (f *linearFunction) eval(X []float64, n int, out []float64) {
	p, k := f.nFeatures, f.nOutputs
	for i := 0; i < n; i++ {
		row := X[i*p : (i+1)*p]
		if k == 1 {
			out[i] = dotGEMV(row, f.coef) + f.intercept[0]
			continue
		}
		for j := 0; j < k; j++ {
			out[i*k+j] = dotGEMM(row, f.coef[j*p:(j+1)*p]) + f.intercept[j]
		}
	}
}

// dotGEMM sums x·w as OpenBLAS's dgemm kernel does for one output element: one
// fused multiply-add per term, in index order.
func dotGEMM(x, w []float64) float64 {
	w = w[:len(x)]
	s := 0.0
	for i, v := range x {
		s = math.FMA(v, w[i], s)
	}
	return s
}

// dotGEMV sums x·w as OpenBLAS's transposed dgemv kernel does: four lanes
// accumulate terms i mod 4 with fused multiply-adds over the leading multiple of
// four, the lanes are combined as (l0+l2)+(l1+l3), and the one to three remaining
// terms are added the way the kernel's C tail code, compiled with FMA contraction,
// adds them. (Above a few thousand features OpenBLAS also splits the sum into
// blocks; models that wide are not matched to the bit.)
func dotGEMV(x, w []float64) float64 {
	p := len(x)
	w = w[:p]
	m := p &^ 3
	var l0, l1, l2, l3 float64
	for i := 0; i < m; i += 4 {
		l0 = math.FMA(x[i], w[i], l0)
		l1 = math.FMA(x[i+1], w[i+1], l1)
		l2 = math.FMA(x[i+2], w[i+2], l2)
		l3 = math.FMA(x[i+3], w[i+3], l3)
	}
	y := (l0 + l2) + (l1 + l3)
	switch p - m {
	case 1:
		y = math.FMA(x[m], w[m], y)
	case 2:
		y += math.FMA(x[m], w[m], x[m+1]*w[m+1])
	case 3:
		y += math.FMA(x[m+2], w[m+2], math.FMA(x[m], w[m], x[m+1]*w[m+1]))
	}
	return y
}

// readLinearFunction reads coef_ and intercept_ and checks them against
// n_features_in_ (when the file records it) and against each other.
func readLinearFunction(obj *pickle.Object) (*linearFunction, error) {
	coef, shape, err := floatArrayAttr(obj, "coef_")
	if err != nil {
		return nil, err
	}
	f := &linearFunction{coef: coef}
	switch len(shape) {
	case 1:
		f.nOutputs, f.nFeatures, f.coef1D = 1, shape[0], true
	case 2:
		f.nOutputs, f.nFeatures = shape[0], shape[1]
	default:
		return nil, fmt.Errorf("coef_ has shape %v, want 1 or 2 dimensions", shape)
	}
	if f.nFeatures == 0 || f.nOutputs == 0 {
		return nil, fmt.Errorf("coef_ has shape %v: no features or no outputs", shape)
	}
	if err := checkFeatureCount(obj, f.nFeatures, "coef_"); err != nil {
		return nil, err
	}

	icpt, ok := obj.Attr("intercept_")
	if !ok {
		return nil, fmt.Errorf("attribute intercept_ is missing")
	}
	if a, isArray := icpt.(*pickle.NDArray); isArray && len(a.Shape) > 0 {
		v, ishape, err := floatArrayAttr(obj, "intercept_")
		if err != nil {
			return nil, err
		}
		if len(ishape) != 1 || ishape[0] != f.nOutputs {
			return nil, fmt.Errorf("intercept_ has shape %v, want [%d] to match coef_ %v", ishape, f.nOutputs, shape)
		}
		f.intercept = v
	} else {
		// A scalar intercept (Ridge and LinearRegression store 0.0 when
		// fit_intercept=False, a float for a single target) applies to every output.
		x, ok := pickle.ToFloat(icpt)
		if !ok {
			return nil, fmt.Errorf("intercept_: want a number or an array, got %s", pickle.TypeName(icpt))
		}
		f.intercept = make([]float64, f.nOutputs)
		for i := range f.intercept {
			f.intercept[i] = x
		}
	}
	return f, nil
}

// linearRegressor is LinearRegression or Ridge: predict is the decision function.
type linearRegressor struct{ f *linearFunction }

func buildLinearRegressor(obj *pickle.Object) (any, error) {
	f, err := readLinearFunction(obj)
	if err != nil {
		return nil, err
	}
	return &linearRegressor{f: f}, nil
}

func (r *linearRegressor) NumFeatures() int { return r.f.nFeatures }
func (r *linearRegressor) NumTargets() int  { return r.f.nOutputs }
func (r *linearRegressor) predicts2D() bool { return !r.f.coef1D }

func (r *linearRegressor) Predict(X []float64, n int) []float64 {
	out := make([]float64, n*r.f.nOutputs)
	r.f.eval(X, n, out)
	return out
}

// logisticRegression is sklearn's LogisticRegression. Its predict is the argmax of
// the decision function (decision > 0 for two classes), which implements
// IndexPredictor; predict_proba depends on the multi_class mode the model was
// fitted with.
type logisticRegression struct {
	f       *linearFunction
	classes Labels
	// multinomial selects softmax probabilities; otherwise one-vs-rest: a sigmoid
	// per class, normalised to sum to one when there are more than two classes.
	multinomial bool
}

func buildLogisticRegression(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	f, err := readClassifierFunction(obj, classes)
	if err != nil {
		return nil, err
	}
	multinomial, err := logisticIsMultinomial(obj, classes.Len())
	if err != nil {
		return nil, err
	}
	return &logisticRegression{f: f, classes: classes, multinomial: multinomial}, nil
}

// readClassifierFunction reads a linear classifier's decision function and checks
// it against its classes: one row of coef_ for two classes, one per class above.
func readClassifierFunction(obj *pickle.Object, classes Labels) (*linearFunction, error) {
	f, err := readLinearFunction(obj)
	if err != nil {
		return nil, err
	}
	k := classes.Len()
	if k < 2 {
		return nil, fmt.Errorf("classes_ has %d classes, want at least 2", k)
	}
	if f.coef1D {
		return nil, fmt.Errorf("coef_ is a vector, want a matrix with one row per class")
	}
	wantRows := k
	if k == 2 {
		wantRows = 1
	}
	if f.nOutputs != wantRows {
		return nil, fmt.Errorf("coef_ has %d rows for %d classes, want %d", f.nOutputs, k, wantRows)
	}
	return f, nil
}

// logisticIsMultinomial decides between softmax and one-vs-rest probabilities the
// way sklearn 1.2's LogisticRegression.predict_proba does.
func logisticIsMultinomial(obj *pickle.Object, nClasses int) (bool, error) {
	mode, err := stringAttr(obj, "multi_class")
	if err != nil {
		return false, err
	}
	switch mode {
	case "ovr", "warn":
		return false, nil
	case "multinomial":
		return true, nil
	case "auto", "deprecated":
		if nClasses <= 2 {
			return false, nil
		}
		solver, err := stringAttr(obj, "solver")
		if err != nil {
			return false, err
		}
		if mode == "deprecated" {
			// The default from sklearn 1.5 on, where only liblinear is still
			// one-vs-rest.
			return solver != "liblinear", nil
		}
		return solver != "liblinear" && solver != "newton-cholesky", nil
	}
	return false, fmt.Errorf("multi_class %q is not one of ovr, multinomial, auto, deprecated", mode)
}

func (m *logisticRegression) NumFeatures() int { return m.f.nFeatures }
func (m *logisticRegression) Classes() Labels  { return m.classes }

func (m *logisticRegression) PredictIndex(X []float64, n int) []int {
	return m.f.predictIndex(X, n)
}

func (m *logisticRegression) PredictProba(X []float64, n int) []float64 {
	proba := make([]float64, n*m.classes.Len())
	m.predictInto(X, n, nil, proba)
	return proba
}

// predictInto writes predict's class indices to idx (unless idx is nil) and the
// n×nClasses probabilities to proba, computing each decision value once.
func (m *logisticRegression) predictInto(X []float64, n int, idx []int, proba []float64) {
	k, p := m.classes.Len(), m.f.nFeatures
	for i := 0; i < n; i++ {
		row, out := X[i*p:(i+1)*p], proba[i*k:(i+1)*k]
		c := m.f.classIndex(row, out)
		if idx != nil {
			idx[i] = c
		}
		m.probabilities(out)
	}
}

// classIndex computes one row's decision values and returns predict's class
// index, as LinearClassifierMixin.predict does: decision > 0 for two classes,
// else the first argmax. dec receives the decision values where
// logisticRegression.probabilities expects them: all of them when there are more
// than two classes; with two, the single value in dec[1] (dec may then be nil).
func (f *linearFunction) classIndex(row, dec []float64) int {
	if f.nOutputs == 1 {
		var d [1]float64
		f.eval(row, 1, d[:])
		if dec != nil {
			dec[1] = d[0]
		}
		if d[0] > 0 {
			return 1
		}
		return 0
	}
	f.eval(row, 1, dec)
	return argmax(dec)
}

// predictIndex is classIndex for every row of X.
func (f *linearFunction) predictIndex(X []float64, n int) []int {
	idx := make([]int, n)
	var scratch []float64
	if f.nOutputs > 1 {
		scratch = make([]float64, f.nOutputs)
	}
	p := f.nFeatures
	for i := range idx {
		idx[i] = f.classIndex(X[i*p:(i+1)*p], scratch)
	}
	return idx
}

// probabilities turns one row's decision values, as classIndex left them, into
// predict_proba's probabilities in place.
func (m *logisticRegression) probabilities(out []float64) {
	if m.f.nOutputs == 1 {
		d := out[1]
		if m.multinomial {
			// sklearn's workaround for a binary multinomial model: the softmax of
			// (-d, d).
			out[0] = -d
			softmax(out)
			return
		}
		e := expit(d)
		out[0], out[1] = 1-e, e
		return
	}
	if m.multinomial {
		softmax(out)
		return
	}
	for j, d := range out {
		out[j] = expit(d)
	}
	s := pairwiseSum(out)
	for j := range out {
		out[j] /= s
	}
}

// linearClassifier is a linear classifier without predict_proba (LinearSVC,
// RidgeClassifier): it serves predict only, the sign or argmax of its decision
// function.
type linearClassifier struct {
	f       *linearFunction
	classes Labels
}

func buildLinearClassifier(obj *pickle.Object) (any, error) {
	var classes Labels
	var err error
	if obj.Name == "RidgeClassifier" {
		classes, err = ridgeClassifierClasses(obj)
	} else {
		classes, err = classesAttr(obj)
	}
	if err != nil {
		return nil, err
	}
	f, err := readClassifierFunction(obj, classes)
	if err != nil {
		return nil, err
	}
	return &linearClassifier{f: f, classes: classes}, nil
}

// ridgeClassifierClasses reads RidgeClassifier's classes, which it keeps on its
// LabelBinarizer, refusing multilabel models (their predict is not one label).
func ridgeClassifierClasses(obj *pickle.Object) (Labels, error) {
	v, err := attrValue(obj, "_label_binarizer")
	if err != nil {
		return Labels{}, err
	}
	lb, ok := v.(*pickle.Object)
	if !ok || lb.Name != "LabelBinarizer" {
		return Labels{}, fmt.Errorf("_label_binarizer: want a LabelBinarizer, got %s", pickle.TypeName(v))
	}
	yType, err := stringAttr(lb, "y_type_")
	if err != nil {
		return Labels{}, fmt.Errorf("_label_binarizer: %w", err)
	}
	if yType != "binary" && yType != "multiclass" {
		return Labels{}, fmt.Errorf("%s targets are not supported", yType)
	}
	classes, err := classesAttr(lb)
	if err != nil {
		return Labels{}, fmt.Errorf("_label_binarizer: %w", err)
	}
	return classes, nil
}

func (c *linearClassifier) NumFeatures() int { return c.f.nFeatures }
func (c *linearClassifier) Classes() Labels  { return c.classes }
func (c *linearClassifier) PredictIndex(X []float64, n int) []int {
	return c.f.predictIndex(X, n)
}

// buildSGDClassifier rebuilds an SGDClassifier as what its loss makes it: with
// log loss its predict_proba is LogisticRegression's one-vs-rest, with
// modified_huber it has its own, and with any other loss it has none.
func buildSGDClassifier(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	f, err := readClassifierFunction(obj, classes)
	if err != nil {
		return nil, err
	}
	loss, err := stringAttr(obj, "loss")
	if err != nil {
		return nil, err
	}
	switch loss {
	case "log_loss", "log":
		return &logisticRegression{f: f, classes: classes}, nil
	case "modified_huber":
		return &modifiedHuberClassifier{f: f, classes: classes}, nil
	case "hinge", "squared_hinge", "perceptron", "squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive":
		return &linearClassifier{f: f, classes: classes}, nil
	}
	return nil, fmt.Errorf("loss %q is not an SGDClassifier loss", loss)
}

// modifiedHuberClassifier is an SGDClassifier fitted with loss="modified_huber":
// the probability of a class is (clip(decision, -1, 1) + 1) / 2, normalised over
// the classes when there are more than two.
type modifiedHuberClassifier struct {
	f       *linearFunction
	classes Labels
}

func (c *modifiedHuberClassifier) NumFeatures() int { return c.f.nFeatures }
func (c *modifiedHuberClassifier) Classes() Labels  { return c.classes }
func (c *modifiedHuberClassifier) PredictIndex(X []float64, n int) []int {
	return c.f.predictIndex(X, n)
}

func (c *modifiedHuberClassifier) PredictProba(X []float64, n int) []float64 {
	k, p := c.classes.Len(), c.f.nFeatures
	proba := make([]float64, n*k)
	for i := 0; i < n; i++ {
		out := proba[i*k : (i+1)*k]
		c.f.classIndex(X[i*p:(i+1)*p], out)
		if k == 2 {
			q := (math.Min(math.Max(out[1], -1), 1) + 1) / 2
			out[0], out[1] = 1-q, q
			continue
		}
		for j, d := range out {
			out[j] = (math.Min(math.Max(d, -1), 1) + 1) / 2
		}
		s := pairwiseSum(out)
		if s == 0 {
			// Every decision was at most -1: sklearn answers uniform
			// probabilities rather than dividing by zero.
			for j := range out {
				out[j] = 1
			}
			s = float64(k)
		}
		for j := range out {
			out[j] /= s
		}
	}
	return proba
}
