package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Naive Bayes (sklearn.naive_bayes): GaussianNB, MultinomialNB, ComplementNB and
// BernoulliNB. Each computes a joint log-likelihood per class, as sklearn's
// _joint_log_likelihood does with the same float64 operations in the same
// order (numpy's pairwise sums, the OpenBLAS dot products of linear.go for the
// discrete ones); predict is its argmax and predict_proba its exponential
// normalised by scipy's logsumexp. sklearn refuses NaN and infinities here.

func init() {
	register("sklearn.naive_bayes.GaussianNB", buildGaussianNB)
	register("sklearn.naive_bayes.MultinomialNB", buildDiscreteNB)
	register("sklearn.naive_bayes.ComplementNB", buildDiscreteNB)
	register("sklearn.naive_bayes.BernoulliNB", buildDiscreteNB)
}

type naiveBayes struct {
	classes   Labels
	nFeatures int
	// jll writes n×classes joint log-likelihoods.
	jll func(X []float64, n int, out []float64)
}

func (m *naiveBayes) NumFeatures() int { return m.nFeatures }
func (m *naiveBayes) Classes() Labels  { return m.classes }

func (m *naiveBayes) jointLogLikelihood(X []float64, n int) []float64 {
	out := make([]float64, n*m.classes.Len())
	m.jll(X, n, out)
	return out
}

// PredictIndex is the argmax of the joint log-likelihood, as predict takes it
// (not of the probabilities, which round some near-ties together).
func (m *naiveBayes) PredictIndex(X []float64, n int) []int {
	k := m.classes.Len()
	jll := m.jointLogLikelihood(X, n)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = argmax(jll[i*k : (i+1)*k])
	}
	return idx
}

// PredictProba is exp(jll - logsumexp(jll)) per row, as _BaseNB.predict_proba.
func (m *naiveBayes) PredictProba(X []float64, n int) []float64 {
	k := m.classes.Len()
	p := m.jointLogLikelihood(X, n)
	tmp := make([]float64, k)
	for i := 0; i < n; i++ {
		row := p[i*k : (i+1)*k]
		lse := logSumExp(row, tmp)
		for c := range row {
			row[c] = glibcExp(row[c] - lse)
		}
	}
	return p
}

// logSumExp is scipy.special.logsumexp of one row: the maximum (0 if it is
// not finite) taken out, exp, numpy's sum, log, the maximum added back. tmp
// has the row's length.
func logSumExp(row, tmp []float64) float64 {
	amax := row[0]
	for _, v := range row[1:] {
		if v > amax || math.IsNaN(v) {
			amax = v
		}
	}
	if math.IsInf(amax, 0) || math.IsNaN(amax) {
		amax = 0
	}
	for c, v := range row {
		tmp[c] = glibcExp(v - amax)
	}
	return math.Log(pairwiseSum(tmp)) + amax
}

func buildGaussianNB(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	k := classes.Len()
	theta, shape, err := floatArrayAttr(obj, "theta_")
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || shape[0] != k || shape[1] < 1 {
		return nil, fmt.Errorf("theta_ has shape %v, want (%d classes, features)", shape, k)
	}
	p := shape[1]
	variance, vshape, err := floatArrayAttr(obj, "var_")
	if err != nil {
		return nil, err
	}
	if !sameShape(vshape, shape) {
		return nil, fmt.Errorf("var_ has shape %v, theta_ %v", vshape, shape)
	}
	prior, pshape, err := floatArrayAttr(obj, "class_prior_")
	if err != nil {
		return nil, err
	}
	if !sameShape(pshape, []int{k}) {
		return nil, fmt.Errorf("class_prior_ has shape %v for %d classes", pshape, k)
	}
	if err := checkFeatureCount(obj, p, "theta_"); err != nil {
		return nil, err
	}
	// Per class, what does not depend on the row: log(class_prior_[i]) and
	// -0.5 * np.sum(np.log(2.0 * np.pi * var_[i, :])).
	logPrior := make([]float64, k)
	norm := make([]float64, k)
	terms := make([]float64, p)
	for c := 0; c < k; c++ {
		logPrior[c] = math.Log(prior[c])
		for j := range terms {
			terms[j] = math.Log(2.0 * math.Pi * variance[c*p+j])
		}
		norm[c] = -0.5 * numpySum(terms)
	}
	m := &naiveBayes{classes: classes, nFeatures: p}
	m.jll = func(X []float64, n int, out []float64) {
		sq := make([]float64, p)
		for i := 0; i < n; i++ {
			x := X[i*p : (i+1)*p]
			for c := 0; c < k; c++ {
				th, v := theta[c*p:(c+1)*p], variance[c*p:(c+1)*p]
				for j := range sq {
					d := x[j] - th[j]
					sq[j] = d * d / v[j]
				}
				nij := norm[c] - 0.5*numpySum(sq)
				out[i*k+c] = logPrior[c] + nij
			}
		}
	}
	return m, nil
}

// buildDiscreteNB reads MultinomialNB, ComplementNB and BernoulliNB: each
// joint log-likelihood is linear in X (after BernoulliNB's binarising), so it
// is a linear function with sklearn's own dot products.
func buildDiscreteNB(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	k := classes.Len()
	flp, shape, err := floatArrayAttr(obj, "feature_log_prob_")
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || shape[0] != k || shape[1] < 1 {
		return nil, fmt.Errorf("feature_log_prob_ has shape %v, want (%d classes, features)", shape, k)
	}
	p := shape[1]
	clp, cshape, err := floatArrayAttr(obj, "class_log_prior_")
	if err != nil {
		return nil, err
	}
	if !sameShape(cshape, []int{k}) {
		return nil, fmt.Errorf("class_log_prior_ has shape %v for %d classes", cshape, k)
	}
	if err := checkFeatureCount(obj, p, "feature_log_prob_"); err != nil {
		return nil, err
	}
	f := &linearFunction{nFeatures: p, nOutputs: k, coef: flp, intercept: make([]float64, k)}
	var threshold *float64
	switch obj.Name {
	case "MultinomialNB":
		copy(f.intercept, clp) // X @ feature_log_prob_.T + class_log_prior_
	case "ComplementNB":
		if k == 1 { // a single class keeps its prior
			copy(f.intercept, clp)
		}
	case "BernoulliNB":
		// neg_prob = log(1 - exp(flp)); jll = X @ (flp - neg_prob).T +
		// (class_log_prior_ + neg_prob.sum(axis=1)).
		coef := make([]float64, len(flp))
		neg := make([]float64, p)
		for c := 0; c < k; c++ {
			for j := 0; j < p; j++ {
				neg[j] = math.Log(1 - math.Exp(flp[c*p+j]))
				coef[c*p+j] = flp[c*p+j] - neg[j]
			}
			f.intercept[c] = clp[c] + pairwiseSum(neg)
		}
		f.coef = coef
		if v, ok := obj.Attr("binarize"); ok && v != nil {
			t, ok := pickle.ToFloat(v)
			if !ok {
				return nil, fmt.Errorf("binarize is a %s, not a number", pickle.TypeName(v))
			}
			threshold = &t
		}
	}
	m := &naiveBayes{classes: classes, nFeatures: p}
	m.jll = func(X []float64, n int, out []float64) {
		if threshold != nil {
			// sklearn.preprocessing.binarize: 1 above the threshold, else 0.
			b := make([]float64, n*p)
			for i, x := range X[:n*p] {
				if x > *threshold {
					b[i] = 1
				}
			}
			X = b
		}
		f.eval(X, n, out)
	}
	return m, nil
}
