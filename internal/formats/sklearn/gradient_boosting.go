package sklearn

import (
	"fmt"
	"math"
	"math/big"
	"sync"

	"github.com/tideserve/tide/internal/pickle"
)

// Gradient boosting (sklearn.ensemble._gb, losses in _gb_losses, sklearn 1.2).
//
// The raw prediction of a row is the init estimator's raw prediction plus, for
// every stage in order, learning_rate × the stage's regression tree output —
// exactly predict_stages' "out[i, k] += scale * value[node]" on float32-cast X.
// The trees' sum is therefore bit-exact. The init term and the probabilities go
// through log and exp. scipy's expit calls the C library's exp, which
// glibcExp reproduces bit for bit, so binary probabilities are exact; numpy's
// np.log and np.exp use CPU-specific vector code on some machines (AVX-512),
// where the init term and softmax may differ from Go's in the last bits.

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

// raw returns n×k raw predictions (sklearn's decision_function), stage by
// stage over all rows so that a batch walks each tree while it is in cache.
func (e *gbEnsemble) raw(X []float64, n int) []float64 {
	x32 := toFloat32(X[:n*e.nFeatures])
	out := make([]float64, n*e.k)
	for i := 0; i < n; i++ {
		copy(out[i*e.k:(i+1)*e.k], e.init)
	}
	for s, tree := range e.stages {
		j := s % e.k
		for i := 0; i < n; i++ {
			v := tree.outputs(x32[i*e.nFeatures : (i+1)*e.nFeatures])[0]
			// The explicit conversion keeps the product rounded on its own,
			// as in sklearn, even where Go could fuse it into the add.
			out[i*e.k+j] += float64(e.learningRate * v)
		}
	}
	return out
}

// gbRegressor is a fitted GradientBoostingRegressor.
func (e *gbEnsemble) sizeBytes() int64 { return treesSize(e.stages) }

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
		scratch := make([]float64, c.k)
		for i := 0; i < n; i++ {
			gbSoftmax(raw[i*c.k:(i+1)*c.k], scratch)
		}
		return raw
	}
	out := make([]float64, 2*n)
	for i, r := range raw {
		if c.loss == gbExponential {
			r *= 2
		}
		p1 := expit(r)
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
		out[i] = argmax(proba[i*k : (i+1)*k])
	}
	return out
}

// gbSoftmax is MultinomialDeviance._raw_prediction_to_proba, in place:
// nan_to_num(exp(raw - logsumexp(raw))), with scipy's logsumexp (shift by the
// finite maximum, exponentiate, numpy sum, log, shift back). tmp is scratch
// space of len(raw). The log is math.Log, which rounds differently from the C
// library's in about one case in sixteen: these probabilities can differ from
// sklearn's by a few ulps, unlike the rest of this file's outputs.
func gbSoftmax(raw, tmp []float64) {
	m := raw[0]
	for _, v := range raw[1:] {
		if v > m || math.IsNaN(v) {
			m = v
		}
	}
	if math.IsInf(m, 0) || math.IsNaN(m) {
		m = 0
	}
	for i, v := range raw {
		tmp[i] = glibcExp(v - m)
	}
	lse := math.Log(numpySum(tmp)) + m
	for i, v := range raw {
		p := glibcExp(v - lse)
		switch {
		case math.IsNaN(p):
			p = 0
		case math.IsInf(p, 1):
			p = math.MaxFloat64
		}
		raw[i] = p
	}
}

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
	if loss != gbMultinomial && e.k != 1 {
		return nil, 0, fmt.Errorf("estimators_ has %d columns; %s fits one tree per stage", e.k, lossObj.Name)
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
// [eps, 1-eps] with float32's eps as _gb_losses does. The logs are correctly
// rounded: numpy's np.log (the C library's log, 0.52 ulp) is correctly
// rounded for all but rare inputs, where math.Log differs for about one input
// in sixteen, and a one-ulp error here would shift every raw score.
func priorRaw(loss gbLoss, prior []float64) []float64 {
	const eps = 0x1p-23 // np.finfo(np.float32).eps
	clip := func(p float64) float64 { return min(max(p, eps), 1-eps) }
	switch loss {
	case gbMultinomial:
		out := make([]float64, len(prior))
		for i, p := range prior {
			out[i] = roundedLog(clip(p))
		}
		return out
	case gbExponential:
		p := clip(prior[1])
		return []float64{0.5 * roundedLog(p/(1-p))}
	default: // binomial
		p := clip(prior[1])
		return []float64{roundedLog(p / (1 - p))}
	}
}

// roundedLog is log(x) correctly rounded to float64: math.Log's estimate
// (within an ulp) refined by one Newton step, y + x·e^-y - 1, in 256-bit
// arithmetic. It is slow (about 0.1 ms) and meant for constants
// computed at load time.
func roundedLog(x float64) float64 {
	y := math.Log(x)
	if x <= 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return y
	}
	const prec = 256
	e := bigExp(new(big.Float).SetPrec(prec).SetFloat64(-y))
	e.Mul(e, new(big.Float).SetPrec(prec).SetFloat64(x))
	e.Sub(e, new(big.Float).SetPrec(prec).SetInt64(1))
	e.Add(e, new(big.Float).SetPrec(prec).SetFloat64(y))
	r, _ := e.Float64()
	return r
}

// bigExp is e^y at y's precision for |y| < 1100: the Taylor series of
// e^(y/2^12), squared twelve times (the squarings lose about twelve bits,
// which the 256-bit working precision absorbs).
func bigExp(y *big.Float) *big.Float {
	const halvings = 12
	prec := y.Prec()
	z := new(big.Float).SetPrec(prec).SetMantExp(y, -halvings)
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for n := int64(1); n < 80; n++ {
		term.Mul(term, z)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(n))
		sum.Add(sum, term)
		if term.Sign() == 0 || term.MantExp(nil)-sum.MantExp(nil) < -int(prec) {
			break
		}
	}
	for i := 0; i < halvings; i++ {
		sum.Mul(sum, sum)
	}
	return sum
}

// glibcExp is exp(x) computed exactly as glibc (2.28 and later) does on CPUs
// with fused multiply-add, which is what scipy's expit and, on machines
// without AVX-512, numpy's np.exp call: the result is 2^(k/N)·exp(r) with
// N = 128, a table of 2^(k/N) split into a double and its relative tail, and a
// degree-5 polynomial for exp(r), with the multiply-adds fused where the C
// compiler fuses them. Go's math.Exp is as accurate but rounds differently
// for about one input in eight, which would make probabilities differ from
// sklearn's in the last bit.
func glibcExp(x float64) float64 {
	const (
		invLn2N   = 0x1.71547652b82fep0 * expN
		negLn2hiN = -0x1.62e42fefa0000p-8
		negLn2loN = -0x1.cf79abc9e3b3ap-47
		shift     = 0x1.8p52
		c2        = 0x1.ffffffffffdbdp-2
		c3        = 0x1.555555555543cp-3
		c4        = 0x1.55555cf172b91p-5
		c5        = 0x1.1111167a4d017p-7
	)
	abstop := top12(x) & 0x7ff
	// Outside 2^-54 <= |x| < 512, handle tiny, huge and non-finite x first.
	if abstop-top12(0x1p-54) >= top12(512)-top12(0x1p-54) {
		if abstop-top12(0x1p-54) >= 0x80000000 { // |x| < 2^-54 (unsigned wrap)
			return 1 + x
		}
		if abstop >= top12(1024) {
			switch {
			case math.IsInf(x, -1):
				return 0
			case abstop >= top12(math.Inf(1)): // +Inf or NaN
				return 1 + x
			case x < 0:
				return 0
			default:
				return math.Inf(1)
			}
		}
		abstop = 0 // 512 <= |x| < 1024: the scale may leave the normal range
	}
	tab := expTable()
	// x = k·ln2/N + r with |r| <= ln2/2N; kd is k as a double, ki its bits.
	kd := math.FMA(invLn2N, x, shift)
	ki := math.Float64bits(kd)
	kd -= shift
	r := math.FMA(kd, negLn2loN, math.FMA(kd, negLn2hiN, x))
	idx := 2 * (ki % expN)
	tail := math.Float64frombits(tab[idx])
	sbits := tab[idx+1] + ki<<(52-expTableBits)
	r2 := r * r
	// exp(x) ≈ scale·(1 + tmp) with tmp = tail + exp(r) - 1.
	tmp := math.FMA(float64(r2*r2), math.FMA(r, c5, c4), math.FMA(r2, math.FMA(r, c3, c2), tail+r))
	if abstop == 0 {
		return glibcExpScaled(tmp, sbits, ki)
	}
	scale := math.Float64frombits(sbits)
	return math.FMA(scale, tmp, scale)
}

// glibcExpScaled finishes glibcExp for 512 <= |x| < 1024, where scale's
// exponent may have over- or underflowed: it rescales by 2^±1009/1022 and
// rounds once in the subnormal range, as glibc's specialcase does (without
// fusing on the negative side, as glibc's compiled code does not).
func glibcExpScaled(tmp float64, sbits, ki uint64) float64 {
	if ki&0x80000000 == 0 { // k > 0
		scale := math.Float64frombits(sbits - 1009<<52)
		return 0x1p1009 * math.FMA(scale, tmp, scale)
	}
	scale := math.Float64frombits(sbits + 1022<<52)
	st := float64(scale * tmp)
	y := scale + st
	if y < 1 {
		lo := scale - y + st
		hi := 1 + y
		lo = 1 - hi + y + lo
		y = float64(hi+lo) - 1
		if y == 0 {
			y = 0 // never -0
		}
	}
	return 0x1p-1022 * y
}

const (
	expTableBits = 7
	expN         = 1 << expTableBits
)

func top12(x float64) uint32 { return uint32(math.Float64bits(x) >> 52) }

// expTable is glibc's __exp_data.tab, derived from its definition rather than
// copied: for k in [0, N), 2^(k/N) = H·(1+T) with H the nearest double and T
// the nearest double to the relative remainder; entry 2k is T's bits and
// entry 2k+1 is H's bits less k<<52/N (the exponent part added back from k).
// Built once, on first use (about a millisecond).
var expTable = sync.OnceValue(func() *[2 * expN]uint64 {
	const prec = 200
	var tab [2 * expN]uint64
	one := new(big.Float).SetPrec(prec).SetInt64(1)
	for k := 0; k < expN; k++ {
		// y = 2^(k/N) by Newton's method on y^N = 2^k, from math.Exp2's
		// double-precision guess: three steps take 53 bits past 200.
		target := new(big.Float).SetPrec(prec).SetMantExp(one, k)
		y := new(big.Float).SetPrec(prec).SetFloat64(math.Exp2(float64(k) / expN))
		for step := 0; step < 3; step++ {
			yN := new(big.Float).SetPrec(prec).Set(y)
			for i := 0; i < expTableBits; i++ {
				yN.Mul(yN, yN)
			}
			// y -= (y^N - 2^k) / (N·y^(N-1)) = (y^N - 2^k)·y / (N·y^N)
			num := new(big.Float).SetPrec(prec).Sub(yN, target)
			num.Mul(num, y)
			den := new(big.Float).SetPrec(prec).Mul(yN, new(big.Float).SetInt64(expN))
			y.Sub(y, num.Quo(num, den))
		}
		h, _ := y.Float64()
		rel := new(big.Float).SetPrec(prec).Quo(y, new(big.Float).SetPrec(prec).SetFloat64(h))
		t, _ := rel.Sub(rel, one).Float64()
		tab[2*k] = math.Float64bits(t)
		tab[2*k+1] = math.Float64bits(h) - uint64(k)<<52/expN
	}
	return &tab
})
