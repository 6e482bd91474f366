package sklearn

import (
	"fmt"

	"github.com/tideserve/tide/internal/pickle"
)

// StackingClassifier and StackingRegressor (sklearn.ensemble._stacking): the
// members' outputs, each by the method stack_method_ names (predict_proba,
// decision_function or predict; for two classes predict_proba's first column is
// dropped), side by side and followed by X itself with passthrough, are the
// final estimator's input. The members and the final estimator of a
// StackingClassifier were fitted on the encoded labels 0..k-1.

func init() {
	register("sklearn.ensemble._stacking.StackingClassifier", buildStackingClassifier)
	register("sklearn.ensemble._stacking.StackingRegressor", buildStackingRegressor)
}

// stackMember is one member and how its output feeds the final estimator.
type stackMember struct {
	est    any
	method string // predict_proba, decision_function or predict
	width  int    // its columns in the final estimator's input
}

type stacked struct {
	nFeatures   int
	members     []stackMember
	passthrough bool
	metaWidth   int
}

func (s *stacked) NumFeatures() int { return s.nFeatures }

// meta builds the final estimator's n×metaWidth input.
func (s *stacked) meta(X []float64, n int, twoClasses bool) []float64 {
	out := make([]float64, n*s.metaWidth)
	col := 0
	for _, m := range s.members {
		var vals []float64
		width := m.width
		switch m.method {
		case "predict_proba":
			p := probabilities(m.est.(Classifier), X, n)
			k := len(p) / n
			vals = p
			if twoClasses { // preds[:, 1:]
				vals = make([]float64, n)
				for r := range vals {
					vals[r] = p[r*k+1]
				}
			}
		case "decision_function":
			vals, _, _ = decisionFunction(m.est, X, n)
		case "predict":
			if r, ok := m.est.(Regressor); ok {
				vals = r.Predict(X, n)
				break
			}
			classes := m.est.(interface{ Classes() Labels }).Classes().Ints
			vals = make([]float64, n)
			for r, c := range classIndices(m.est, X, n) {
				vals[r] = float64(classes[c])
			}
		}
		for r := 0; r < n; r++ {
			copy(out[r*s.metaWidth+col:r*s.metaWidth+col+width], vals[r*width:(r+1)*width])
		}
		col += width
	}
	if s.passthrough {
		for r := 0; r < n; r++ {
			copy(out[r*s.metaWidth+col:(r+1)*s.metaWidth], X[r*s.nFeatures:(r+1)*s.nFeatures])
		}
	}
	return out
}

// readStacked reads the members, their methods and the layout of the final
// estimator's input. k is the number of classes (0 for a regressor).
func readStacked(obj *pickle.Object, k int) (*stacked, error) {
	items, err := obj.Items("estimators_")
	if err != nil {
		return nil, err
	}
	methodItems, err := obj.Items("stack_method_")
	if err != nil {
		return nil, err
	}
	if len(methodItems) != len(items) {
		return nil, fmt.Errorf("stack_method_ has %d entries for %d estimators", len(methodItems), len(items))
	}
	s := &stacked{nFeatures: -1}
	if v, ok := obj.Attr("passthrough"); ok {
		s.passthrough, _ = v.(bool)
	}
	for i, v := range items {
		if str, ok := v.(string); ok && str == "drop" {
			continue
		}
		method, _ := methodItems[i].(string)
		want := "regressor"
		if k > 0 {
			want = "label predictor"
			if method == "predict_proba" {
				want = "classifier"
			}
		}
		est, err := member(v, want)
		if err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
		w := numFeatures(est)
		if s.nFeatures < 0 {
			s.nFeatures = w
		} else if w != s.nFeatures {
			return nil, fmt.Errorf("estimators_[%d] takes %d features, the first %d", i, w, s.nFeatures)
		}
		m := stackMember{est: est, method: method}
		switch method {
		case "predict_proba":
			m.width = est.(Classifier).Classes().Len()
			if k == 2 {
				m.width = 1
			}
		case "decision_function":
			_, width, ok := decisionFunction(est, make([]float64, w), 1)
			if !ok {
				return nil, fmt.Errorf("estimators_[%d]: its decision_function is not supported", i)
			}
			m.width = width
		case "predict":
			m.width = 1
		default:
			return nil, fmt.Errorf("stack_method_[%d] %q is not predict_proba, decision_function or predict", i, method)
		}
		if k > 0 && method != "decision_function" {
			if _, err := encodedMember(est, k, false); err != nil {
				return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
			}
		}
		s.members = append(s.members, m)
		s.metaWidth += m.width
	}
	if len(s.members) == 0 {
		return nil, fmt.Errorf("estimators_ has no estimator")
	}
	if s.passthrough {
		s.metaWidth += s.nFeatures
	}
	return s, nil
}

// finalEstimator builds final_estimator_ and checks its input width.
func (s *stacked) finalEstimator(obj *pickle.Object, want string) (any, error) {
	v, ok := obj.Attr("final_estimator_")
	if !ok {
		return nil, fmt.Errorf("final_estimator_ is missing")
	}
	final, err := member(v, want)
	if err != nil {
		return nil, fmt.Errorf("final_estimator_: %w", err)
	}
	if w := numFeatures(final); w != s.metaWidth {
		return nil, fmt.Errorf("final_estimator_ takes %d features, the members give %d", w, s.metaWidth)
	}
	return final, nil
}

type stackingClassifier struct {
	*stacked
	classes Labels
	final   any
}

func (c *stackingClassifier) Classes() Labels { return c.classes }

func (c *stackingClassifier) PredictIndex(X []float64, n int) []int {
	idx := classIndices(c.final, c.meta(X, n, c.classes.Len() == 2), n)
	encoded := c.final.(interface{ Classes() Labels }).Classes().Ints
	for r, i := range idx {
		idx[r] = int(encoded[i])
	}
	return idx
}

// stackingProba adds predict_proba when the final estimator has it.
type stackingProba struct{ stackingClassifier }

func (c *stackingProba) PredictProba(X []float64, n int) []float64 {
	return probabilities(c.final.(Classifier), c.meta(X, n, c.classes.Len() == 2), n)
}

func buildStackingClassifier(obj *pickle.Object) (any, error) {
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	s, err := readStacked(obj, classes.Len())
	if err != nil {
		return nil, err
	}
	final, err := s.finalEstimator(obj, "label predictor")
	if err != nil {
		return nil, err
	}
	if _, err := encodedMember(final, classes.Len(), true); err != nil {
		return nil, fmt.Errorf("final_estimator_: %w", err)
	}
	c := stackingClassifier{stacked: s, classes: classes, final: final}
	if _, ok := final.(Classifier); ok {
		return &stackingProba{c}, nil
	}
	return &c, nil
}

type stackingRegressor struct {
	*stacked
	final Regressor
}

func (r *stackingRegressor) NumTargets() int { return 1 }
func (r *stackingRegressor) Predict(X []float64, n int) []float64 {
	return r.final.Predict(r.meta(X, n, false), n)
}

func buildStackingRegressor(obj *pickle.Object) (any, error) {
	s, err := readStacked(obj, 0)
	if err != nil {
		return nil, err
	}
	final, err := s.finalEstimator(obj, "regressor")
	if err != nil {
		return nil, err
	}
	if t := final.(Regressor).NumTargets(); t != 1 {
		return nil, fmt.Errorf("final_estimator_ predicts %d targets", t)
	}
	return &stackingRegressor{stacked: s, final: final.(Regressor)}, nil
}
