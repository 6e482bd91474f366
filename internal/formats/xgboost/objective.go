package xgboost

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// baseLink is how an objective maps the stored base_score into margin space
// (XGBoost's ObjFunction::ProbToMargin): logistic objectives store a
// probability, log-link objectives a mean.
type baseLink uint8

const (
	baseIdentity baseLink = iota
	baseLogit             // -log(1/p - 1)
	baseLog               // log(mu)
)

// outputLink is how an objective maps a margin to what XGBoost's predict()
// returns (ObjFunction::PredTransform).
type outputLink uint8

const (
	outIdentity outputLink = iota
	outSigmoid
	outExp
	outSoftmax // multi:softprob: probabilities per class
	outArgmax  // multi:softmax: the index of the largest margin
	outHinge   // binary:hinge: 1 if margin > 0 else 0
)

// objective is what serving needs to know about a training objective.
type objective struct {
	name string
	base baseLink
	out  outputLink
	// classifier objectives serve class indices and probabilities.
	classifier bool
}

// objectives lists the objectives this reader serves.
var objectives = map[string]objective{
	"reg:squarederror":     {base: baseIdentity, out: outIdentity},
	"reg:squaredlogerror":  {base: baseIdentity, out: outIdentity},
	"reg:pseudohubererror": {base: baseIdentity, out: outIdentity},
	"reg:absoluteerror":    {base: baseIdentity, out: outIdentity},
	"reg:logistic":         {base: baseLogit, out: outSigmoid},
	"count:poisson":        {base: baseLog, out: outExp},
	"reg:gamma":            {base: baseLog, out: outExp},
	"reg:tweedie":          {base: baseLog, out: outExp},
	"binary:logistic":      {base: baseLogit, out: outSigmoid, classifier: true},
	// binary:logitraw predicts the margin, but the model is still a binary
	// classifier: the served probabilities are sigmoid(margin).
	// Its base_score is a margin: XGBoost 1.7's LogisticRaw keeps the identity.
	"binary:logitraw": {base: baseIdentity, out: outIdentity, classifier: true},
	"binary:hinge":    {base: baseIdentity, out: outHinge, classifier: true},
	"multi:softprob":  {base: baseIdentity, out: outSoftmax, classifier: true},
	"multi:softmax":   {base: baseIdentity, out: outArgmax, classifier: true},
	// Survival models serve exp(margin): the hazard ratio for Cox, the
	// predicted survival time for AFT.
	"survival:cox": {base: baseLog, out: outExp},
	"survival:aft": {base: baseLog, out: outExp},
	// Ranking models serve their margin (the ranking score).
	"rank:pairwise": {base: baseIdentity, out: outIdentity},
	"rank:ndcg":     {base: baseIdentity, out: outIdentity},
	"rank:map":      {base: baseIdentity, out: outIdentity},
}

func lookupObjective(name string) (objective, error) {
	o, ok := objectives[name]
	if !ok {
		known := make([]string, 0, len(objectives))
		for k := range objectives {
			known = append(known, k)
		}
		sort.Strings(known)
		return objective{}, fmt.Errorf("objective %q is not supported (supported: %s)", name, strings.Join(known, ", "))
	}
	o.name = name
	return o, nil
}

// baseMargin converts the stored base_score into the margin every prediction
// starts from, in float32 arithmetic as XGBoost does it.
func (o objective) baseMargin(baseScore float32) (float32, error) {
	switch o.base {
	case baseLogit:
		if !(baseScore > 0 && baseScore < 1) {
			return 0, fmt.Errorf("base_score %v must lie in (0, 1) for %s", baseScore, o.name)
		}
		return -logf(1/baseScore - 1), nil
	case baseLog:
		if !(baseScore > 0) {
			return 0, fmt.Errorf("base_score %v must be positive for %s", baseScore, o.name)
		}
		return logf(baseScore), nil
	}
	if math.IsNaN(float64(baseScore)) || math.IsInf(float64(baseScore), 0) {
		return 0, fmt.Errorf("base_score %v is not finite", baseScore)
	}
	return baseScore, nil
}

// transform turns one row's margins into what XGBoost's predict() returns for
// the objective, writing len(margin) values into out (multi:softmax writes one:
// the class index as a float, as XGBoost does).
func (o objective) transform(margin, out []float32) {
	switch o.out {
	case outSigmoid:
		for i, m := range margin {
			out[i] = sigmoid(m)
		}
	case outExp:
		for i, m := range margin {
			out[i] = expf(m)
		}
	case outHinge:
		for i, m := range margin {
			out[i] = 0
			if m > 0 {
				out[i] = 1
			}
		}
	case outSoftmax:
		softmax(margin, out)
	case outArgmax:
		out[0] = float32(argmax(margin))
	default:
		copy(out, margin)
	}
}

// The float32 functions XGBoost calls (expf, logf from the C library). Go has
// only float64 versions; rounding their result to float32 gives the correctly
// rounded value, which glibc's expf and logf return for all but a handful of
// inputs.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }
func logf(x float32) float32 { return float32(math.Log(float64(x))) }

// sigmoid is XGBoost's common::Sigmoid: 1 / (1 + expf(-x)) in float32.
func sigmoid(x float32) float32 { return 1 / (1 + expf(-x)) }

// softmax is XGBoost's common::Softmax: subtract the maximum, exponentiate in
// float32, accumulate the sum in float64 and divide by it rounded to float32.
func softmax(margin, out []float32) {
	wmax := margin[0]
	for _, m := range margin[1:] {
		wmax = max(wmax, m)
	}
	var sum float64
	for i, m := range margin {
		out[i] = expf(m - wmax)
		sum += float64(out[i])
	}
	div := float32(sum)
	for i := range out[:len(margin)] {
		out[i] /= div
	}
}

// argmax returns the index of the first largest value, as XGBoost's
// FindMaxIndex does.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
