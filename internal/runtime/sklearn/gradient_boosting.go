package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Gradient boosting (sklearn.ensemble._gb, losses in _gb_losses, sklearn 1.2).
//
// The raw prediction of a row is the init estimator's raw prediction plus, for
// every stage in order, learning_rate × the stage's regression tree output —
// exactly predict_stages' "out[i, k] += scale * value[node]" on float32-cast X.
// The trees' sum is therefore bit-exact. The init term and the probabilities go
// through log and exp: sklearn computes those with numpy's vectorised
// (CPU-dependent) routines and scipy's expit, Go with its math package, so they
// agree to within an ulp or two rather than in every bit.

func init() {
	register("sklearn.ensemble._gb.GradientBoostingClassifier", buildGBClassifier)
	register("sklearn.ensemble._gb.GradientBoostingRegressor", buildGBRegressor)
	allowHelper(
		"sklearn.ensemble._gb_losses.LeastSquaresError",
		"sklearn.ensemble._gb_losses.LeastAbsoluteError",
		"sklearn.ensemble._gb_losses.HuberLossFunction",
		"sklearn.ensemble._gb_losses.QuantileLossFunction",
		"sklearn.ensemble._gb_losses.BinomialDeviance",
		"sklearn.ensemble._gb_losses.MultinomialDeviance",
		"sklearn.ensemble._gb_losses.ExponentialLoss",
		// The init estimators GradientBoosting creates itself.
		"sklearn.dummy.DummyClassifier",
		"sklearn.dummy.DummyRegressor",
		// The fitted model keeps its numpy RandomState (_rng); it is recorded,
		// never constructed.
		"numpy.random._pickle.__randomstate_ctor",
		"numpy.random._pickle.__bit_generator_ctor",
	)
}

// gbLoss is how a GradientBoosting loss turns raw predictions into outputs.
type gbLoss int

const (
	gbRegression  gbLoss = iota // least squares, absolute, huber, quantile: raw is the prediction
	gbBinomial                  // log_loss, 2 classes: p1 = expit(raw)
	gbMultinomial               // log_loss, K > 2 classes: softmax of raw
	gbExponential               // exponential, 2 classes: p1 = expit(2·raw), predict raw ≥ 0
)

var gbLosses = map[string]gbLoss{
	"sklearn.ensemble._gb_losses.LeastSquaresError":    gbRegression,
	"sklearn.ensemble._gb_losses.LeastAbsoluteError":   gbRegression,
	"sklearn.ensemble._gb_losses.HuberLossFunction":    gbRegression,
	"sklearn.ensemble._gb_losses.QuantileLossFunction": gbRegression,
	"sklearn.ensemble._gb_losses.BinomialDeviance":     gbBinomial,
	"sklearn.ensemble._gb_losses.MultinomialDeviance":  gbMultinomial,
	"sklearn.ensemble._gb_losses.ExponentialLoss":      gbExponential,
}

// gbEnsemble is the part common to both GradientBoosting estimators: K raw
// outputs per row (1 except for multinomial), from init plus scaled stages.
type gbEnsemble struct {
	nFeatures    int
	k            int
	init         []float64 // the init estimator's raw prediction, the same for every row
	learningRate float64
	// stages[i*k+j] is stage i's tree for raw output j; leaves hold one value.
	stages []*flatTree
}

// raw returns n×k raw predictions (sklearn's decision_function).
func (e *gbEnsemble) raw(X []float64, n int) []float64 {
	out := make([]float64, n*e.k)
	row := make([]float32, e.nFeatures)
	for i := 0; i < n; i++ {
		for j, v := range X[i*e.nFeatures : (i+1)*e.nFeatures] {
			row[j] = float32(v)
		}
		acc := out[i*e.k : (i+1)*e.k]
		copy(acc, e.init)
		for s := 0; s < len(e.stages); s += e.k {
			for j := range acc {
				// The explicit conversion keeps the product rounded on its own,
				// as in sklearn, even where Go could fuse it into the add.
				acc[j] += float64(e.learningRate * e.stages[s+j].outputs(row)[0])
			}
		}
	}
	return out
}

// gbRegressor is a fitted GradientBoostingRegressor.
type gbRegressor struct{ gbEnsemble }

func (r *gbRegressor) NumFeatures() int { return r.nFeatures }
func (r *gbRegressor) NumTargets() int  { return 1 }

func (r *gbRegressor) Predict(X []float64, n int) []float64 { return r.raw(X, n) }

// gbClassifier is a fitted GradientBoostingClassifier.
type gbClassifier struct {
	gbEnsemble
	loss    gbLoss
	classes Labels
}

func (c *gbClassifier) NumFeatures() int { return c.nFeatures }
func (c *gbClassifier) Classes() Labels  { return c.classes }

func (c *gbClassifier) PredictProba(X []float64, n int) []float64 {
	raw := c.raw(X, n)
	if c.loss == gbMultinomial {
		for i := 0; i < n; i++ {
			gbSoftmax(raw[i*c.k : (i+1)*c.k])
		}
		return raw
	}
	out := make([]float64, 2*n)
	for i, r := range raw {
		if c.loss == gbExponential {
			r *= 2
		}
		p1 := scipyExpit(r)
		out[2*i], out[2*i+1] = 1-p1, p1
	}
	return out
}

// PredictIndex is _raw_prediction_to_decision: the argmax of the
// probabilities, except for the exponential loss, which predicts class 1 when
// the raw score is ≥ 0.
func (c *gbClassifier) PredictIndex(X []float64, n int) []int {
	out := make([]int, n)
	if c.loss == gbExponential {
		for i, r := range c.raw(X, n) {
			if r >= 0 {
				out[i] = 1
			}
		}
		return out
	}
	proba, k := c.PredictProba(X, n), c.classes.Len()
	for i := range out {
		out[i] = firstArgmax(proba[i*k : (i+1)*k])
	}
	return out
}

// gbSoftmax is MultinomialDeviance._raw_prediction_to_proba:
// nan_to_num(exp(raw - logsumexp(raw))), with scipy's logsumexp (shift by the
// finite maximum, exponentiate, numpy sum, log, shift back).
func gbSoftmax(raw []float64) {
	m := raw[0]
	for _, v := range raw[1:] {
		if v > m || math.IsNaN(v) {
			m = v
		}
	}
	if math.IsInf(m, 0) || math.IsNaN(m) {
		m = 0
	}
	tmp := make([]float64, len(raw))
	for i, v := range raw {
		tmp[i] = math.Exp(v - m)
	}
	lse := math.Log(numpySum(tmp)) + m
	for i, v := range raw {
		p := math.Exp(v - lse)
		switch {
		case math.IsNaN(p):
			p = 0
		case math.IsInf(p, 1):
			p = math.MaxFloat64
		}
		raw[i] = p
	}
}

// scipyExpit is scipy.special.expit for float64 as scipy 1.10 computes it.
func scipyExpit(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func buildGBRegressor(obj *pickle.Object) (any, error) {
	e, loss, err := readGBEnsemble(obj, 0)
	if err != nil {
		return nil, err
	}
	if loss != gbRegression {
		return nil, fmt.Errorf("_loss is a classification loss")
	}
	return &gbRegressor{*e}, nil
}

func buildGBClassifier(obj *pickle.Object) (any, error) {
	classes, err := classLabels(obj)
	if err != nil {
		return nil, err
	}
	e, loss, err := readGBEnsemble(obj, classes.Len())
	if err != nil {
		return nil, err
	}
	switch {
	case loss == gbRegression:
		return nil, fmt.Errorf("_loss is a regression loss")
	case loss == gbMultinomial && e.k != classes.Len():
		return nil, fmt.Errorf("multinomial loss with %d trees per stage for %d classes", e.k, classes.Len())
	case loss != gbMultinomial && classes.Len() != 2:
		return nil, fmt.Errorf("binary loss for %d classes", classes.Len())
	}
	return &gbClassifier{gbEnsemble: *e, loss: loss, classes: classes}, nil
}

// readGBEnsemble reads the stages, learning rate, loss and init estimator.
// nClasses is 0 for a regressor.
func readGBEnsemble(obj *pickle.Object, nClasses int) (*gbEnsemble, gbLoss, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, 0, err
	}
	lossObj, err := obj.Object("_loss")
	if err != nil {
		return nil, 0, err
	}
	loss, ok := gbLosses[lossObj.Class()]
	if !ok {
		return nil, 0, fmt.Errorf("loss %s is not supported", lossObj.Class())
	}
	lr, err := obj.Float("learning_rate")
	if err != nil {
		return nil, 0, err
	}
	arr, err := obj.Array("estimators_")
	if err != nil {
		return nil, 0, err
	}
	if arr.Dtype.Kind != 'O' || len(arr.Shape) != 2 || arr.Shape[0] < 1 || arr.Shape[1] < 1 || len(arr.Objects) != arr.Len() {
		return nil, 0, fmt.Errorf("estimators_: want a non-empty 2-D object array, got %s of shape %v", arr.Dtype, arr.Shape)
	}
	e := &gbEnsemble{nFeatures: nFeatures, k: arr.Shape[1], learningRate: lr, stages: make([]*flatTree, len(arr.Objects))}
	if k, err := lossObj.Int("K"); err == nil && int(k) != e.k {
		return nil, 0, fmt.Errorf("_loss.K is %d but estimators_ has %d columns", k, e.k)
	}
	for i, v := range arr.Objects {
		t, ok := v.(*pickle.Object)
		if !ok || t.Class() != "sklearn.tree._classes.DecisionTreeRegressor" {
			return nil, 0, fmt.Errorf("estimators_[%d, %d] is a %s, not a DecisionTreeRegressor", i/e.k, i%e.k, pickle.TypeName(v))
		}
		if e.stages[i], err = regressorTree(t, nFeatures); err != nil {
			return nil, 0, fmt.Errorf("estimators_[%d, %d]: %w", i/e.k, i%e.k, err)
		}
		if e.stages[i].width != 1 {
			return nil, 0, fmt.Errorf("estimators_[%d, %d] has %d outputs", i/e.k, i%e.k, e.stages[i].width)
		}
	}
	if e.init, err = gbInit(obj, loss, e.k, nClasses); err != nil {
		return nil, 0, err
	}
	return e, loss, nil
}

// gbInit computes the init estimator's raw prediction, as the loss's
// get_init_raw_predictions does. GradientBoosting only ever creates a
// DummyRegressor or a prior DummyClassifier (or none, for init="zero"); other
// user-supplied init estimators are not supported.
func gbInit(obj *pickle.Object, loss gbLoss, k, nClasses int) ([]float64, error) {
	v, ok := obj.Attr("init_")
	if !ok {
		return nil, fmt.Errorf("attribute init_ is missing")
	}
	if s, ok := v.(string); ok && s == "zero" {
		return make([]float64, k), nil
	}
	init, ok := v.(*pickle.Object)
	if !ok {
		return nil, fmt.Errorf("init_: want an estimator or 'zero', got %s", pickle.TypeName(v))
	}
	switch init.Class() {
	case "sklearn.dummy.DummyRegressor":
		if loss != gbRegression {
			return nil, fmt.Errorf("init_ is a DummyRegressor for a classification loss")
		}
		c, err := init.Array("constant_")
		if err != nil {
			return nil, fmt.Errorf("init_: %w", err)
		}
		vals, err := c.Float64s()
		if err != nil || len(vals) != 1 {
			return nil, fmt.Errorf("init_.constant_: want one number, got %s of shape %v", c.Dtype, c.Shape)
		}
		return vals, nil
	case "sklearn.dummy.DummyClassifier":
		if loss == gbRegression {
			return nil, fmt.Errorf("init_ is a DummyClassifier for a regression loss")
		}
		if s, err := init.String("strategy"); err != nil || s != "prior" {
			return nil, fmt.Errorf("init_: only DummyClassifier(strategy='prior') is supported")
		}
		p, err := init.Array("class_prior_")
		if err != nil {
			return nil, fmt.Errorf("init_: %w", err)
		}
		prior, err := p.Float64s()
		if err != nil || len(prior) != nClasses {
			return nil, fmt.Errorf("init_.class_prior_: want %d probabilities, got %s of shape %v", nClasses, p.Dtype, p.Shape)
		}
		return priorRaw(loss, prior), nil
	}
	return nil, fmt.Errorf("init_ %s is not supported (only the default init or 'zero')", init.Class())
}

// priorRaw turns class priors into raw predictions, clipping them to
// [eps, 1-eps] with float32's eps as _gb_losses does.
func priorRaw(loss gbLoss, prior []float64) []float64 {
	const eps = 0x1p-23 // np.finfo(np.float32).eps
	clip := func(p float64) float64 { return min(max(p, eps), 1-eps) }
	switch loss {
	case gbMultinomial:
		out := make([]float64, len(prior))
		for i, p := range prior {
			out[i] = math.Log(clip(p))
		}
		return out
	case gbExponential:
		p := clip(prior[1])
		return []float64{0.5 * math.Log(p/(1-p))}
	default: // binomial
		p := clip(prior[1])
		return []float64{math.Log(p / (1 - p))}
	}
}
