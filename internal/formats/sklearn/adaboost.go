package sklearn

import (
	"fmt"
	"math"
	"sort"

	"github.com/tideserve/tide/internal/pickle"
)

// AdaBoost (sklearn.ensemble._weight_boosting), as scikit-learn 1.2 predicts.
// AdaBoostClassifier's decision function sums its members' SAMME.R terms
// ((K-1)·(log p - mean log p), probabilities clipped to float64's epsilon) or,
// with algorithm="SAMME", their weighted votes, divides by the sum of
// estimator_weights_, and for two classes folds the columns into one;
// predict_proba is the softmax of decision/(K-1) (for two classes of
// [-d/2, d/2]). AdaBoostRegressor predicts the weighted median of its members.
// The sums run from zero in member order, as Python's sum() does.

func init() {
	register("sklearn.ensemble._weight_boosting.AdaBoostClassifier", buildAdaBoostClassifier)
	register("sklearn.ensemble._weight_boosting.AdaBoostRegressor", buildAdaBoostRegressor)
}

type adaBoostClassifier struct {
	nFeatures int
	classes   Labels
	members   []any
	// memberClass[i][c] is the ensemble's index of member i's class c.
	memberClass [][]int
	weights     []float64 // estimator_weights_, as long as estimators_
	weightSum   float64   // estimator_weights_.sum(), over the whole array
	sammeR      bool
}

func (a *adaBoostClassifier) NumFeatures() int { return a.nFeatures }
func (a *adaBoostClassifier) Classes() Labels  { return a.classes }

// decision returns decision_function's n×width values (width 1 for two
// classes).
func (a *adaBoostClassifier) decision(X []float64, n int) ([]float64, int) {
	k := a.classes.Len()
	pred := make([]float64, n*k)
	logp := make([]float64, k)
	for i, m := range a.members {
		if a.sammeR {
			p := probabilities(m.(Classifier), X, n)
			for r := 0; r < n; r++ {
				for c := range logp {
					logp[c] = math.Log(math.Max(p[r*k+c], epsilon64))
				}
				mean := (1.0 / float64(k)) * pairwiseSum(logp)
				for c, lp := range logp {
					pred[r*k+c] += float64(k-1) * (lp - mean)
				}
			}
			continue
		}
		w := a.weights[i]
		for r, c := range classIndices(m, X, n) {
			// (predict == classes).T * w: w for the predicted class, 0.0 for
			// the others (adding 0.0 changes nothing).
			pred[r*k+a.memberClass[i][c]] += w
		}
	}
	for j := range pred {
		pred[j] /= a.weightSum
	}
	if k != 2 {
		return pred, k
	}
	d := make([]float64, n)
	for r := range d {
		d[r] = -pred[r*2] + pred[r*2+1]
	}
	return d, 1
}

// epsilon64 is np.finfo(np.float64).eps, which is also np.spacing(1.0).
const epsilon64 = 2.220446049250313e-16

func (a *adaBoostClassifier) PredictIndex(X []float64, n int) []int {
	d, w := a.decision(X, n)
	out := make([]int, n)
	for r := range out {
		if w == 1 {
			if d[r] > 0 {
				out[r] = 1
			}
			continue
		}
		out[r] = argmax(d[r*w : (r+1)*w])
	}
	return out
}

func (a *adaBoostClassifier) PredictProba(X []float64, n int) []float64 {
	k := a.classes.Len()
	d, w := a.decision(X, n)
	out := make([]float64, n*k)
	for r := 0; r < n; r++ {
		p := out[r*k : (r+1)*k]
		if w == 1 {
			p[0], p[1] = -d[r]/2, d[r]/2
		} else {
			for c := range p {
				p[c] = d[r*k+c] / float64(k-1)
			}
		}
		softmax(p)
	}
	return out
}

func buildAdaBoostClassifier(obj *pickle.Object) (any, error) {
	classes, err := classifierClasses(obj)
	if err != nil {
		return nil, err
	}
	k := classes.Len()
	algorithm, err := obj.String("algorithm")
	if err != nil {
		return nil, err
	}
	if algorithm != "SAMME" && algorithm != "SAMME.R" {
		return nil, fmt.Errorf("algorithm %q is not SAMME or SAMME.R", algorithm)
	}
	want := "label predictor"
	if algorithm == "SAMME.R" {
		want = "classifier"
	}
	members, err := fittedMembers(obj, want)
	if err != nil {
		return nil, err
	}
	weights, err := boostWeights(obj, len(members))
	if err != nil {
		return nil, err
	}
	a := &adaBoostClassifier{nFeatures: numFeatures(members[0]), classes: classes, members: members,
		weights: weights[:len(members)], weightSum: pairwiseSum(weights), sammeR: algorithm == "SAMME.R"}
	if err := sameWidth(members, a.nFeatures); err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, key := range labelKeys(classes) {
		index[key] = i
	}
	for i, m := range members {
		keys := labelKeys(m.(interface{ Classes() Labels }).Classes())
		if a.sammeR && len(keys) != k {
			return nil, fmt.Errorf("estimators_[%d] has %d classes, the ensemble %d", i, len(keys), k)
		}
		mc := make([]int, len(keys))
		for c, key := range keys {
			j, ok := index[key]
			if !ok || (a.sammeR && j != c) {
				return nil, fmt.Errorf("estimators_[%d]: its classes are not the ensemble's", i)
			}
			mc[c] = j
		}
		a.memberClass = append(a.memberClass, mc)
	}
	return a, nil
}

// boostWeights reads estimator_weights_: one per planned estimator, of which
// estimators_ holds at least the first m (boosting can stop early).
func boostWeights(obj *pickle.Object, m int) ([]float64, error) {
	w, shape, err := floatArrayAttr(obj, "estimator_weights_")
	if err != nil {
		return nil, err
	}
	if len(shape) != 1 || len(w) < m {
		return nil, fmt.Errorf("estimator_weights_ has shape %v for %d estimators", shape, m)
	}
	return w, nil
}

// adaBoostRegressor predicts, per row, its members' weighted median: the
// first prediction, in increasing order, at which the cumulative weight
// reaches half the total. Which of several equal predictions sorts first does
// not change the value chosen.
type adaBoostRegressor struct {
	nFeatures int
	members   []any
	weights   []float64
}

func (a *adaBoostRegressor) NumFeatures() int { return a.nFeatures }
func (a *adaBoostRegressor) NumTargets() int  { return 1 }

func (a *adaBoostRegressor) Predict(X []float64, n int) []float64 {
	m := len(a.members)
	preds := make([][]float64, m)
	for i, e := range a.members {
		preds[i] = e.(Regressor).Predict(X, n)
	}
	out := make([]float64, n)
	order := make([]int, m)
	cdf := make([]float64, m)
	for r := range out {
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool { return preds[order[x]][r] < preds[order[y]][r] })
		acc := 0.0
		for i, e := range order {
			acc += a.weights[e]
			cdf[i] = acc
		}
		half := 0.5 * cdf[m-1]
		pick := order[0]
		for i, c := range cdf {
			if c >= half {
				pick = order[i]
				break
			}
		}
		out[r] = preds[pick][r]
	}
	return out
}

func buildAdaBoostRegressor(obj *pickle.Object) (any, error) {
	members, err := fittedMembers(obj, "regressor")
	if err != nil {
		return nil, err
	}
	weights, err := boostWeights(obj, len(members))
	if err != nil {
		return nil, err
	}
	a := &adaBoostRegressor{nFeatures: numFeatures(members[0]), members: members, weights: weights[:len(members)]}
	if err := sameWidth(members, a.nFeatures); err != nil {
		return nil, err
	}
	for i, m := range members {
		if t := m.(Regressor).NumTargets(); t != 1 {
			return nil, fmt.Errorf("estimators_[%d] predicts %d targets", i, t)
		}
	}
	return a, nil
}
