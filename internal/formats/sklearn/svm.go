package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// Support vector machines (sklearn.svm, libsvm inside): SVC, NuSVC, SVR, NuSVR
// and OneClassSVM with linear, polynomial, RBF and sigmoid kernels, as
// scikit-learn 1.2's libsvm computes them. A classifier's decision values are
// libsvm's one-versus-one sums over the support vectors of each pair of
// classes; sklearn negates them for two classes, and for more, with
// decision_function_shape="ovr", turns them into votes plus confidences.
// predict is libsvm's vote; predict_proba (probability=True) is Platt's
// sigmoid per pair and, for more than two classes, libsvm's pairwise
// coupling. libsvm's kernel dot products go through BLAS, whose summation
// order is not reproduced: values agree with sklearn's to about 1e-15.

func init() {
	for _, c := range []string{"SVC", "NuSVC"} {
		register("sklearn.svm._classes."+c, buildSVC)
	}
	for _, c := range []string{"SVR", "NuSVR"} {
		register("sklearn.svm._classes."+c, buildSVR)
	}
	register("sklearn.svm._classes.OneClassSVM", buildOneClassSVM)
}

// svmKernel is a fitted libsvm model's support vectors and kernel.
type svmKernel struct {
	p      int
	sv     []float64 // nSV×p
	kind   string
	gamma  float64
	coef0  float64
	degree int
}

func (k *svmKernel) nSV() int { return len(k.sv) / k.p }

// values returns the kernel of x with every support vector.
func (k *svmKernel) values(x []float64, out []float64) {
	for i := range out {
		sv := k.sv[i*k.p : (i+1)*k.p]
		switch k.kind {
		case "linear":
			out[i] = svmDot(x, sv)
		case "poly":
			out[i] = powi(k.gamma*svmDot(x, sv)+k.coef0, k.degree)
		case "rbf":
			sum := 0.0
			for j, v := range x {
				d := v - sv[j]
				sum += d * d
			}
			out[i] = math.Exp(-k.gamma * sum)
		case "sigmoid":
			out[i] = math.Tanh(k.gamma*svmDot(x, sv) + k.coef0)
		}
	}
}

func svmDot(x, y []float64) float64 {
	s := 0.0
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// powi is libsvm's integer power by repeated squaring.
func powi(base float64, times int) float64 {
	tmp, ret := base, 1.0
	for t := times; t > 0; t /= 2 {
		if t%2 == 1 {
			ret *= tmp
		}
		tmp *= tmp
	}
	return ret
}

func readSVMKernel(obj *pickle.Object) (*svmKernel, error) {
	if sparse, _ := obj.Attr("_sparse"); sparse == true {
		return nil, fmt.Errorf("a model fitted on sparse data is not supported")
	}
	sv, shape, err := floatArrayAttr(obj, "support_vectors_")
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || shape[1] < 1 {
		return nil, fmt.Errorf("support_vectors_ has shape %v", shape)
	}
	k := &svmKernel{p: shape[1], sv: sv}
	if err := checkFeatureCount(obj, k.p, "support_vectors_"); err != nil {
		return nil, err
	}
	kind, err := obj.String("kernel")
	if err != nil {
		return nil, fmt.Errorf("kernel: %w (callable and precomputed kernels are not supported)", err)
	}
	switch kind {
	case "linear", "poly", "rbf", "sigmoid":
	default:
		return nil, fmt.Errorf("kernel %q is not supported (linear, poly, rbf and sigmoid are)", kind)
	}
	k.kind = kind
	if k.gamma, err = obj.Float("_gamma"); err != nil {
		return nil, err
	}
	if k.coef0, err = obj.Float("coef0"); err != nil {
		return nil, err
	}
	deg, err := obj.Int("degree")
	if err != nil {
		return nil, err
	}
	if deg < 0 || deg > 64 {
		return nil, fmt.Errorf("degree %d out of range", deg)
	}
	k.degree = int(deg)
	return k, nil
}

// svc is a fitted SVC or NuSVC.
type svc struct {
	*svmKernel
	classes  Labels
	nSupport []int     // support vectors per class, in order
	start    []int     // each class's first support vector
	dualCoef []float64 // (k-1)×nSV, libsvm's sv_coef
	rho      []float64 // _intercept_, one per pair: dec = sum + _intercept_
	probA    []float64
	probB    []float64
	ovr      bool
	breakTie bool
}

func (s *svc) NumFeatures() int { return s.p }
func (s *svc) Classes() Labels  { return s.classes }

// pairDecisions writes libsvm's decision value of each pair of classes
// (i<j) for one row.
func (s *svc) pairDecisions(x, kv, dec []float64) {
	s.values(x, kv)
	k := s.classes.Len()
	nsv := s.nSV()
	p := 0
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			sum := 0.0
			c1 := s.dualCoef[(j-1)*nsv:]
			c2 := s.dualCoef[i*nsv:]
			for q := 0; q < s.nSupport[i]; q++ {
				sum += c1[s.start[i]+q] * kv[s.start[i]+q]
			}
			for q := 0; q < s.nSupport[j]; q++ {
				sum += c2[s.start[j]+q] * kv[s.start[j]+q]
			}
			dec[p] = sum + s.rho[p]
			p++
		}
	}
}

// raw is sklearn's decision_function: -d for two classes; for more, the
// one-versus-one values, or with "ovr" votes plus confidences.
func (s *svc) raw(X []float64, n int) []float64 {
	k := s.classes.Len()
	pairs := k * (k - 1) / 2
	kv := make([]float64, s.nSV())
	dec := make([]float64, pairs)
	width := pairs
	if k > 2 && s.ovr {
		width = k
	}
	out := make([]float64, n*width)
	votes := make([]float64, k)
	conf := make([]float64, k)
	for r := 0; r < n; r++ {
		s.pairDecisions(X[r*s.p:(r+1)*s.p], kv, dec)
		o := out[r*width : (r+1)*width]
		switch {
		case k == 2:
			o[0] = -dec[0]
		case !s.ovr:
			copy(o, dec)
		default:
			// _ovr_decision_function(dec < 0, -dec, k)
			clear(votes)
			clear(conf)
			q := 0
			for i := 0; i < k; i++ {
				for j := i + 1; j < k; j++ {
					conf[i] -= -dec[q]
					conf[j] += -dec[q]
					if dec[q] < 0 {
						votes[j]++
					} else {
						votes[i]++
					}
					q++
				}
			}
			for c := range o {
				o[c] = votes[c] + conf[c]/(3*(math.Abs(conf[c])+1))
			}
		}
	}
	return out
}

// PredictIndex is libsvm's vote (the first class with the most votes), or,
// with break_ties and "ovr", the argmax of the decision function.
func (s *svc) PredictIndex(X []float64, n int) []int {
	k := s.classes.Len()
	out := make([]int, n)
	if s.breakTie && s.ovr && k > 2 {
		d := s.raw(X, n)
		for r := range out {
			out[r] = argmax(d[r*k : (r+1)*k])
		}
		return out
	}
	kv := make([]float64, s.nSV())
	dec := make([]float64, k*(k-1)/2)
	votes := make([]int, k)
	for r := range out {
		s.pairDecisions(X[r*s.p:(r+1)*s.p], kv, dec)
		clear(votes)
		q := 0
		for i := 0; i < k; i++ {
			for j := i + 1; j < k; j++ {
				if dec[q] > 0 {
					votes[i]++
				} else {
					votes[j]++
				}
				q++
			}
		}
		best := 0
		for c := 1; c < k; c++ {
			if votes[c] > votes[best] {
				best = c
			}
		}
		out[r] = best
	}
	return out
}

// svcProba adds predict_proba to an SVC fitted with probability=True.
type svcProba struct{ *svc }

func (s svcProba) PredictProba(X []float64, n int) []float64 {
	k := s.classes.Len()
	kv := make([]float64, s.nSV())
	dec := make([]float64, k*(k-1)/2)
	out := make([]float64, n*k)
	r2 := make([][]float64, k)
	for i := range r2 {
		r2[i] = make([]float64, k)
	}
	const minProb = 1e-7
	for r := 0; r < n; r++ {
		s.pairDecisions(X[r*s.p:(r+1)*s.p], kv, dec)
		q := 0
		for i := 0; i < k; i++ {
			for j := i + 1; j < k; j++ {
				r2[i][j] = math.Min(math.Max(sigmoidPredict(dec[q], s.probA[q], s.probB[q]), minProb), 1-minProb)
				r2[j][i] = 1 - r2[i][j]
				q++
			}
		}
		// scikit-learn's libsvm couples pairs iteratively for two classes
		// too (newer libsvm takes the pair's probability as it is).
		multiclassProbability(k, r2, out[r*k:(r+1)*k])
	}
	return out
}

// sigmoidPredict is libsvm's Platt sigmoid, written to avoid cancellation.
func sigmoidPredict(dec, a, b float64) float64 {
	fApB := float64(dec*a) + b
	if fApB >= 0 {
		return math.Exp(-fApB) / (1.0 + math.Exp(-fApB))
	}
	return 1.0 / (1 + math.Exp(fApB))
}

// multiclassProbability is libsvm's pairwise coupling (Wu, Lin and Weng's
// second method), iterated as libsvm does.
func multiclassProbability(k int, r [][]float64, p []float64) {
	Q := make([][]float64, k)
	for t := range Q {
		Q[t] = make([]float64, k)
	}
	Qp := make([]float64, k)
	maxIter := max(100, k)
	eps := 0.005 / float64(k)
	for t := 0; t < k; t++ {
		p[t] = 1.0 / float64(k)
		Q[t][t] = 0
		for j := 0; j < t; j++ {
			Q[t][t] += r[j][t] * r[j][t]
			Q[t][j] = Q[j][t]
		}
		for j := t + 1; j < k; j++ {
			Q[t][t] += r[j][t] * r[j][t]
			Q[t][j] = -r[j][t] * r[t][j]
		}
	}
	for iter := 0; iter < maxIter; iter++ {
		pQp := 0.0
		for t := 0; t < k; t++ {
			Qp[t] = 0
			for j := 0; j < k; j++ {
				Qp[t] += Q[t][j] * p[j]
			}
			pQp += p[t] * Qp[t]
		}
		maxError := 0.0
		for t := 0; t < k; t++ {
			if e := math.Abs(Qp[t] - pQp); e > maxError {
				maxError = e
			}
		}
		if maxError < eps {
			break
		}
		for t := 0; t < k; t++ {
			diff := (-Qp[t] + pQp) / Q[t][t]
			p[t] += diff
			pQp = (pQp + diff*(diff*Q[t][t]+2*Qp[t])) / (1 + diff) / (1 + diff)
			for j := 0; j < k; j++ {
				Qp[j] = (Qp[j] + diff*Q[t][j]) / (1 + diff)
				p[j] /= (1 + diff)
			}
		}
	}
}

func buildSVC(obj *pickle.Object) (any, error) {
	kern, err := readSVMKernel(obj)
	if err != nil {
		return nil, err
	}
	classes, err := classifierClasses(obj)
	if err != nil {
		return nil, err
	}
	k := classes.Len()
	s := &svc{svmKernel: kern, classes: classes}
	ns, err := intVector(obj, "_n_support", k)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, c := range ns {
		if c < 0 {
			return nil, fmt.Errorf("_n_support has a negative count")
		}
		s.start = append(s.start, total)
		s.nSupport = append(s.nSupport, int(c))
		total += int(c)
	}
	if total != kern.nSV() {
		return nil, fmt.Errorf("_n_support counts %d support vectors, support_vectors_ has %d", total, kern.nSV())
	}
	coef, cshape, err := floatArrayAttr(obj, "_dual_coef_")
	if err != nil {
		return nil, err
	}
	if !sameShape(cshape, []int{k - 1, total}) {
		return nil, fmt.Errorf("_dual_coef_ has shape %v, want [%d %d]", cshape, k-1, total)
	}
	s.dualCoef = coef
	pairs := k * (k - 1) / 2
	if s.rho, err = floatVectorN(obj, "_intercept_", pairs); err != nil {
		return nil, err
	}
	shape, err := obj.String("decision_function_shape")
	if err != nil {
		return nil, err
	}
	s.ovr = shape == "ovr"
	if v, ok := obj.Attr("break_ties"); ok {
		s.breakTie, _ = v.(bool)
	}
	if prob, _ := obj.Attr("probability"); prob == true {
		if s.probA, err = floatVectorN(obj, "_probA", pairs); err != nil {
			return nil, err
		}
		if s.probB, err = floatVectorN(obj, "_probB", pairs); err != nil {
			return nil, err
		}
		return svcProba{s}, nil
	}
	return s, nil
}

// svr is a fitted SVR or NuSVR: sum of dual coefficients times kernels, plus
// the intercept.
type svr struct {
	*svmKernel
	coef      []float64
	intercept float64
}

func (s *svr) NumFeatures() int { return s.p }
func (s *svr) NumTargets() int  { return 1 }

func (s *svr) decision(X []float64, n int) []float64 {
	kv := make([]float64, s.nSV())
	out := make([]float64, n)
	for r := range out {
		s.values(X[r*s.p:(r+1)*s.p], kv)
		sum := 0.0
		for i, c := range s.coef {
			sum += c * kv[i]
		}
		out[r] = sum + s.intercept
	}
	return out
}

func (s *svr) Predict(X []float64, n int) []float64 { return s.decision(X, n) }

func readSingleSVM(obj *pickle.Object) (*svr, error) {
	kern, err := readSVMKernel(obj)
	if err != nil {
		return nil, err
	}
	coef, shape, err := floatArrayAttr(obj, "_dual_coef_")
	if err != nil {
		return nil, err
	}
	if !sameShape(shape, []int{1, kern.nSV()}) {
		return nil, fmt.Errorf("_dual_coef_ has shape %v for %d support vectors", shape, kern.nSV())
	}
	ic, err := floatVectorN(obj, "_intercept_", 1)
	if err != nil {
		return nil, err
	}
	return &svr{svmKernel: kern, coef: coef, intercept: ic[0]}, nil
}

func buildSVR(obj *pickle.Object) (any, error) { return readSingleSVM(obj) }

// oneClassSVM: decision_function is libsvm's value, score_samples adds
// offset_, predict is 1 where the value is positive, else -1.
type oneClassSVM struct {
	m      *svr // not embedded: a one-class SVM is not a regressor
	offset float64
}

func (s *oneClassSVM) NumFeatures() int { return s.m.p }

func (s *oneClassSVM) Outliers(X []float64, n int) (scores, decision []float64, label []int64) {
	decision = s.m.decision(X, n)
	scores = make([]float64, n)
	label = make([]int64, n)
	for i, d := range decision {
		scores[i] = d + s.offset
		label[i] = -1
		if d > 0 {
			label[i] = 1
		}
	}
	return scores, decision, label
}

func buildOneClassSVM(obj *pickle.Object) (any, error) {
	s, err := readSingleSVM(obj)
	if err != nil {
		return nil, err
	}
	off, err := obj.Float("offset_")
	if err != nil {
		return nil, err
	}
	return &oneClassSVM{m: s, offset: off}, nil
}

// intVector reads a vector of exactly n integers.
func intVector(obj *pickle.Object, name string, n int) ([]int64, error) {
	a, err := obj.Array(name)
	if err != nil {
		return nil, err
	}
	v, err := a.Int64s()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(v) != n || len(a.Shape) != 1 {
		return nil, fmt.Errorf("%s has %d values, want %d", name, len(v), n)
	}
	return v, nil
}

// floatVectorN reads a vector of exactly n numbers.
func floatVectorN(obj *pickle.Object, name string, n int) ([]float64, error) {
	v, shape, err := floatArrayAttr(obj, name)
	if err != nil {
		return nil, err
	}
	if !sameShape(shape, []int{n}) {
		return nil, fmt.Errorf("%s has shape %v, want [%d]", name, shape, n)
	}
	return v, nil
}
