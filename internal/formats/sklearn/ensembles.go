package sklearn

import (
	"fmt"

	"github.com/tideserve/tide/internal/pickle"
)

// Meta-estimators over other estimators (sklearn.ensemble._voting and
// _bagging): VotingClassifier (soft and hard, with weights), VotingRegressor,
// BaggingClassifier and BaggingRegressor. Their members are any estimator this
// package builds, pipelines included. Each combines its members' outputs with
// numpy's operations in numpy's order: sums over the members run in member
// order (numpy reduces an outer axis element by element), a regressor's mean
// over the members of one row is numpy's pairwise sum along that row.

func init() {
	register("sklearn.ensemble._voting.VotingClassifier", buildVotingClassifier)
	register("sklearn.ensemble._voting.VotingRegressor", buildVotingRegressor)
	register("sklearn.ensemble._bagging.BaggingClassifier", buildBaggingClassifier)
	register("sklearn.ensemble._bagging.BaggingRegressor", buildBaggingRegressor)
	allowHelper("sklearn.preprocessing._label.LabelEncoder") // VotingClassifier.le_
	allowHelper("sklearn.utils._bunch.Bunch")                // named_estimators_, recorded, unused
}

// pipelineEstimator runs a pipeline that is an ensemble's member: its
// transformers, then its final estimator.
type pipelineEstimator struct{ p *pipeline }

func (e pipelineEstimator) NumFeatures() int { return e.p.NumFeatures() }

func (e pipelineEstimator) transform(X []float64, n int) []float64 {
	for _, t := range e.p.transforms {
		X = t.Transform(X, n)
	}
	return X
}

type (
	// pipelineLabeler ends in a classifier without predict_proba.
	pipelineLabeler    struct{ pipelineEstimator }
	pipelineClassifier struct{ pipelineLabeler }
	pipelineRegressor  struct{ pipelineEstimator }
)

func (e pipelineLabeler) Classes() Labels {
	return e.p.final.(interface{ Classes() Labels }).Classes()
}
func (e pipelineLabeler) PredictIndex(X []float64, n int) []int {
	return classIndices(e.p.final, e.transform(X, n), n)
}
func (e pipelineClassifier) PredictProba(X []float64, n int) []float64 {
	return probabilities(e.p.final.(Classifier), e.transform(X, n), n)
}
func (e pipelineRegressor) NumTargets() int { return e.p.final.(Regressor).NumTargets() }
func (e pipelineRegressor) Predict(X []float64, n int) []float64 {
	return e.p.final.(Regressor).Predict(e.transform(X, n), n)
}

// member builds an ensemble member and returns it as what want asks: a
// "classifier" (with predict_proba), a "label predictor" (predict only) or a
// "regressor".
func member(v any, want string) (any, error) {
	obj, ok := v.(*pickle.Object)
	if !ok {
		return nil, fmt.Errorf("is a %s, not an estimator", pickle.TypeName(v))
	}
	est, err := build(obj)
	if err != nil {
		return nil, err
	}
	if p, ok := est.(*pipeline); ok {
		switch p.final.(type) {
		case Classifier:
			est = pipelineClassifier{pipelineLabeler{pipelineEstimator{p}}}
		case LabelPredictor:
			est = pipelineLabeler{pipelineEstimator{p}}
		case Regressor:
			est = pipelineRegressor{pipelineEstimator{p}}
		default:
			return nil, fmt.Errorf("is a pipeline without a final estimator")
		}
	}
	switch want {
	case "classifier":
		if _, ok := est.(Classifier); !ok {
			return nil, fmt.Errorf("%s has no predict_proba", obj.Name)
		}
	case "label predictor":
		_, clf := est.(Classifier)
		_, lp := est.(LabelPredictor)
		if !clf && !lp {
			return nil, fmt.Errorf("%s is not a classifier", obj.Name)
		}
	case "regressor":
		if _, ok := est.(Regressor); !ok {
			return nil, fmt.Errorf("%s is not a regressor", obj.Name)
		}
	}
	return est, nil
}

// probabilities is a classifier's predict_proba, through its one-pass form
// when it has one.
func probabilities(c Classifier, X []float64, n int) []float64 {
	if j, ok := c.(jointPredictor); ok {
		proba := make([]float64, n*c.Classes().Len())
		j.predictInto(X, n, make([]int, n), proba)
		return proba
	}
	return c.PredictProba(X, n)
}

// classIndices is a classifier's predict, as indices into its classes_.
func classIndices(est any, X []float64, n int) []int {
	switch c := est.(type) {
	case IndexPredictor:
		return c.PredictIndex(X, n)
	case jointPredictor:
		idx := make([]int, n)
		c.predictInto(X, n, idx, make([]float64, n*est.(Classifier).Classes().Len()))
		return idx
	case Classifier:
		k := c.Classes().Len()
		proba := c.PredictProba(X, n)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = argmax(proba[i*k : (i+1)*k])
		}
		return idx
	}
	panic(fmt.Sprintf("sklearn: %T is not a classifier", est))
}

// encodedMember checks that a member was fitted on the ensemble's encoded
// labels 0..k-1 (or, with all, exactly those) and returns its classes as
// indices into the ensemble's.
func encodedMember(est any, k int, all bool) ([]int, error) {
	l := est.(interface{ Classes() Labels }).Classes()
	if len(l.Ints) != l.Len() {
		return nil, fmt.Errorf("classes_ are not the ensemble's encoded labels")
	}
	idx := make([]int, len(l.Ints))
	for i, c := range l.Ints {
		if c < 0 || c >= int64(k) || (i > 0 && c <= l.Ints[i-1]) {
			return nil, fmt.Errorf("classes_ %v are not the ensemble's encoded labels 0..%d", l.Ints, k-1)
		}
		idx[i] = int(c)
	}
	if all && len(idx) != k {
		return nil, fmt.Errorf("was fitted on %d of the %d classes", len(idx), k)
	}
	return idx, nil
}

// weightsAttr reads an ensemble's weights (None: nil) for m members.
func weightsAttr(obj *pickle.Object, m int) ([]float64, error) {
	v, ok := obj.Attr("weights")
	if !ok || v == nil {
		return nil, nil
	}
	items, ok := sequenceItems(v)
	if !ok {
		if a, isArr := v.(*pickle.NDArray); isArr {
			w, err := a.Float64s()
			if err != nil {
				return nil, fmt.Errorf("weights: %w", err)
			}
			items = make([]any, len(w))
			for i, x := range w {
				items[i] = x
			}
		} else {
			return nil, fmt.Errorf("weights is a %s, not a list", pickle.TypeName(v))
		}
	}
	if len(items) != m {
		return nil, fmt.Errorf("weights has %d entries for %d estimators", len(items), m)
	}
	w := make([]float64, m)
	for i, x := range items {
		f, ok := pickle.ToFloat(x)
		if !ok {
			return nil, fmt.Errorf("weights[%d] is a %s, not a number", i, pickle.TypeName(x))
		}
		w[i] = f
	}
	return w, nil
}

// fittedMembers reads estimators_, building each as want.
func fittedMembers(obj *pickle.Object, want string) ([]any, error) {
	items, err := obj.Items("estimators_")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("estimators_ is empty")
	}
	out := make([]any, len(items))
	for i, v := range items {
		if out[i], err = member(v, want); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
	}
	return out, nil
}

// sameWidth checks that every member takes n features.
func sameWidth(members []any, n int) error {
	for i, m := range members {
		if w := numFeatures(m); w != n {
			return fmt.Errorf("estimators_[%d] takes %d features, the ensemble %d", i, w, n)
		}
	}
	return nil
}

// votingClassifier is a fitted VotingClassifier. Its members were fitted on
// le_'s encoded labels, so their classes are 0..k-1.
type votingClassifier struct {
	nFeatures int
	classes   Labels
	members   []any
	weights   []float64 // nil: unweighted
}

type (
	// softVoting averages the members' probabilities (np.average) and
	// predicts their argmax.
	softVoting struct{ votingClassifier }
	// hardVoting predicts by the members' (weighted) votes only.
	hardVoting struct{ votingClassifier }
)

func (v *votingClassifier) NumFeatures() int { return v.nFeatures }
func (v *votingClassifier) Classes() Labels  { return v.classes }

func (v *softVoting) PredictProba(X []float64, n int) []float64 {
	var sum []float64
	scale := 0.0
	for i, m := range v.members {
		p := probabilities(m.(Classifier), X, n)
		w := 1.0
		if v.weights != nil {
			w = v.weights[i]
			for j := range p {
				p[j] *= w
			}
		}
		if i == 0 {
			sum, scale = p, w
			continue
		}
		for j := range sum {
			sum[j] += p[j]
		}
		scale += w
	}
	if v.weights == nil {
		scale = float64(len(v.members)) // np.mean divides by the count
	}
	for j := range sum {
		sum[j] /= scale
	}
	return sum
}

// PredictIndex of hard voting: per row, the class with the most (weighted)
// votes, the first on a tie (np.argmax of np.bincount).
func (v *hardVoting) PredictIndex(X []float64, n int) []int {
	k := v.classes.Len()
	votes := make([]float64, n*k)
	for i, m := range v.members {
		w := 1.0
		if v.weights != nil {
			w = v.weights[i]
		}
		classes := m.(interface{ Classes() Labels }).Classes().Ints
		for r, c := range classIndices(m, X, n) {
			votes[r*k+int(classes[c])] += w
		}
	}
	out := make([]int, n)
	for r := range out {
		out[r] = argmax(votes[r*k : (r+1)*k])
	}
	return out
}

func buildVotingClassifier(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	voting, err := obj.String("voting")
	if err != nil {
		return nil, err
	}
	want := "label predictor"
	switch voting {
	case "soft":
		want = "classifier"
	case "hard":
	default:
		return nil, fmt.Errorf("voting %q is not soft or hard", voting)
	}
	members, err := fittedMembers(obj, want)
	if err != nil {
		return nil, err
	}
	for i, m := range members {
		if _, err := encodedMember(m, classes.Len(), true); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
	}
	// n_features_in_ is a property of the first member, not stored.
	nFeatures := numFeatures(members[0])
	if err := sameWidth(members, nFeatures); err != nil {
		return nil, err
	}
	// weights covers the estimators that were not 'drop'ped, which are
	// exactly estimators_.
	weights, err := weightsAttr(obj, len(members))
	if err != nil {
		return nil, err
	}
	v := votingClassifier{nFeatures: nFeatures, classes: classes, members: members, weights: weights}
	if voting == "soft" {
		return &softVoting{v}, nil
	}
	return &hardVoting{v}, nil
}

// votingRegressor is a fitted VotingRegressor: per row, np.average of its
// members' predictions along the row.
type votingRegressor struct {
	nFeatures int
	members   []any
	weights   []float64
}

func (v *votingRegressor) NumFeatures() int { return v.nFeatures }
func (v *votingRegressor) NumTargets() int  { return 1 }

func (v *votingRegressor) Predict(X []float64, n int) []float64 {
	m := len(v.members)
	preds := make([][]float64, m)
	for i, e := range v.members {
		preds[i] = e.(Regressor).Predict(X, n)
	}
	scale := float64(m)
	if v.weights != nil {
		scale = pairwiseSum(v.weights)
	}
	out := make([]float64, n)
	row := make([]float64, m)
	for r := range out {
		for i := range row {
			row[i] = preds[i][r]
			if v.weights != nil {
				row[i] *= v.weights[i]
			}
		}
		out[r] = pairwiseSum(row) / scale
	}
	return out
}

func buildVotingRegressor(obj *pickle.Object) (any, error) {
	members, err := fittedMembers(obj, "regressor")
	if err != nil {
		return nil, err
	}
	// n_features_in_ is a property of the first member, not stored.
	nFeatures := numFeatures(members[0])
	if err := sameWidth(members, nFeatures); err != nil {
		return nil, err
	}
	for i, m := range members {
		if t := m.(Regressor).NumTargets(); t != 1 {
			return nil, fmt.Errorf("estimators_[%d] predicts %d targets, VotingRegressor averages one", i, t)
		}
	}
	weights, err := weightsAttr(obj, len(members))
	if err != nil {
		return nil, err
	}
	return &votingRegressor{nFeatures: nFeatures, members: members, weights: weights}, nil
}

// bagged is what BaggingClassifier and BaggingRegressor share: members that
// each see the columns estimators_features_ names.
type bagged struct {
	nFeatures int
	members   []any
	features  [][]int
	count     float64 // n_estimators, what sklearn divides by
}

func (b *bagged) NumFeatures() int { return b.nFeatures }

// columns is X[:, features] for member i.
func (b *bagged) columns(X []float64, n, i int) []float64 {
	f := b.features[i]
	out := make([]float64, n*len(f))
	for r := 0; r < n; r++ {
		row := X[r*b.nFeatures : (r+1)*b.nFeatures]
		for j, c := range f {
			out[r*len(f)+j] = row[c]
		}
	}
	return out
}

func readBagged(obj *pickle.Object, want string) (*bagged, error) {
	members, err := fittedMembers(obj, want)
	if err != nil {
		return nil, err
	}
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	sets, err := obj.Items("estimators_features_")
	if err != nil {
		return nil, err
	}
	if len(sets) != len(members) {
		return nil, fmt.Errorf("estimators_features_ has %d entries for %d estimators", len(sets), len(members))
	}
	b := &bagged{nFeatures: nFeatures, members: members, features: make([][]int, len(members))}
	for i, s := range sets {
		a, ok := s.(*pickle.NDArray)
		if !ok {
			return nil, fmt.Errorf("estimators_features_[%d] is a %s, not an array", i, pickle.TypeName(s))
		}
		cols, err := a.Int64s()
		if err != nil {
			return nil, fmt.Errorf("estimators_features_[%d]: %w", i, err)
		}
		if w := numFeatures(members[i]); w != len(cols) {
			return nil, fmt.Errorf("estimators_[%d] takes %d features, estimators_features_[%d] names %d", i, w, i, len(cols))
		}
		b.features[i] = make([]int, len(cols))
		for j, c := range cols {
			if c < 0 || c >= int64(nFeatures) {
				return nil, fmt.Errorf("estimators_features_[%d]: feature %d out of range (%d features)", i, c, nFeatures)
			}
			b.features[i][j] = int(c)
		}
	}
	count, err := obj.Int("n_estimators")
	if err != nil {
		return nil, err
	}
	if count != int64(len(members)) {
		return nil, fmt.Errorf("n_estimators is %d but estimators_ has %d", count, len(members))
	}
	b.count = float64(count)
	return b, nil
}

// baggingClassifier is a fitted BaggingClassifier: the members' probabilities
// (or, for members without predict_proba, their votes) summed into the
// classes each member saw, divided by n_estimators.
type baggingClassifier struct {
	*bagged
	classes Labels
	// memberClasses[i] maps member i's class indices to the ensemble's (a
	// bootstrap sample may miss classes).
	memberClasses [][]int
}

func (b *baggingClassifier) Classes() Labels { return b.classes }

func (b *baggingClassifier) PredictProba(X []float64, n int) []float64 {
	k := b.classes.Len()
	proba := make([]float64, n*k)
	for i, m := range b.members {
		Xi := b.columns(X, n, i)
		mc := b.memberClasses[i]
		if c, ok := m.(Classifier); ok {
			p := probabilities(c, Xi, n)
			for r := 0; r < n; r++ {
				for j, cls := range mc {
					proba[r*k+cls] += p[r*len(mc)+j]
				}
			}
			continue
		}
		for r, c := range classIndices(m, Xi, n) {
			proba[r*k+mc[c]]++
		}
	}
	for j := range proba {
		proba[j] /= b.count
	}
	return proba
}

func buildBaggingClassifier(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	b, err := readBagged(obj, "label predictor")
	if err != nil {
		return nil, err
	}
	c := &baggingClassifier{bagged: b, classes: classes, memberClasses: make([][]int, len(b.members))}
	for i, m := range b.members {
		if c.memberClasses[i], err = encodedMember(m, classes.Len(), false); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
	}
	return c, nil
}

// baggingRegressor is a fitted BaggingRegressor: the members' predictions
// summed in order from zero, divided by n_estimators.
type baggingRegressor struct{ *bagged }

func (b *baggingRegressor) NumTargets() int { return 1 }

func (b *baggingRegressor) Predict(X []float64, n int) []float64 {
	out := make([]float64, n)
	for i, m := range b.members {
		for r, y := range m.(Regressor).Predict(b.columns(X, n, i), n) {
			out[r] += y
		}
	}
	for r := range out {
		out[r] /= b.count
	}
	return out
}

func buildBaggingRegressor(obj *pickle.Object) (any, error) {
	b, err := readBagged(obj, "regressor")
	if err != nil {
		return nil, err
	}
	for i, m := range b.members {
		if t := m.(Regressor).NumTargets(); t != 1 {
			return nil, fmt.Errorf("estimators_[%d] predicts %d targets, BaggingRegressor averages one", i, t)
		}
	}
	return &baggingRegressor{b}, nil
}
