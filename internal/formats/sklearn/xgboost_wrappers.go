package sklearn

import (
	"context"
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/xgboost"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// XGBoost's scikit-learn wrappers (xgboost.sklearn): XGBClassifier,
// XGBRegressor and their random-forest siblings saved with joblib or pickle,
// alone or as a pipeline's last step. The pickle carries the fitted booster as
// the bytes of XGBoost's memory snapshot (xgboost.core.Booster's state); the
// XGBoost runtime reads them, so predictions are that runtime's, bit-exact
// against XGBoost, and the wrapper adds what sklearn's predict does on top:
// class labels from the probabilities (p > 0.5 for binary, argmax otherwise).
// NaN is a missing value, as in XGBoost; infinities are refused.

func init() {
	for _, c := range []string{"XGBClassifier", "XGBRFClassifier"} {
		register("xgboost.sklearn."+c, buildXGBClassifier)
	}
	for _, c := range []string{"XGBRegressor", "XGBRFRegressor"} {
		register("xgboost.sklearn."+c, buildXGBRegressor)
	}
	allowHelper("xgboost.core.Booster")
}

// xgbEstimator runs a wrapped booster through the XGBoost runtime.
type xgbEstimator struct {
	m         model.Model
	nFeatures int
	classes   Labels // classifiers only
	// output is the runtime output read: predict_proba or predict.
	output string
	width  int
}

// xgbClassifier and xgbRegressor are the two faces: distinct types, because
// newModel tells classifiers from regressors by their methods.
type (
	xgbClassifier struct{ xgbEstimator }
	xgbRegressor  struct{ xgbEstimator }
)

func (e *xgbEstimator) NumFeatures() int { return e.nFeatures }

func (e *xgbClassifier) Classes() Labels                           { return e.classes }
func (e *xgbClassifier) PredictProba(X []float64, n int) []float64 { return e.run(X, n) }
func (e *xgbRegressor) NumTargets() int                            { return e.width }
func (e *xgbRegressor) Predict(X []float64, n int) []float64       { return e.run(X, n) }

// AcceptsNonFinite: XGBoost takes NaN as missing and refuses infinities.
func (e *xgbEstimator) AcceptsNonFinite() (nan, inf bool) { return true, false }

// checkInput refuses finite values beyond float32's range, which XGBoost's
// float32 matrix would hold as infinities and refuse.
func (e *xgbEstimator) checkInput(X []float64, n int) error {
	for i, x := range X[:n*e.nFeatures] {
		if math.Abs(x) > math.MaxFloat32 && !math.IsInf(x, 0) {
			return model.InvalidInputf("input row %d, column %d (%g) is too large for float32, which XGBoost does not accept", i/e.nFeatures, i%e.nFeatures, x)
		}
	}
	return nil
}

// run predicts n rows and returns the chosen output widened to float64.
// Inputs were checked (shape, finiteness) before, so the runtime cannot
// refuse them.
func (e *xgbEstimator) run(X []float64, n int) []float64 {
	in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{int64(n), int64(e.nFeatures)}, Data: X[:n*e.nFeatures]}
	outs, err := e.m.Predict(context.Background(), []*tensor.Tensor{in})
	if err != nil {
		panic(fmt.Sprintf("xgboost wrapper: checked input refused: %v", err))
	}
	for _, o := range outs {
		if o.Name != e.output {
			continue
		}
		v := o.Data.([]float32)
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	panic("xgboost wrapper: no " + e.output + " output")
}

// boosterBytes is the size of the XGBoost boosters reachable from v (the
// handles of pickled xgboost.core.Booster objects), for the load's budget.
func boosterBytes(v any) int64 {
	var n int64
	pickle.Walk(v, func(x any) {
		if o, ok := x.(*pickle.Object); ok && o.Class() == "xgboost.core.Booster" {
			if st := o.Attrs(); st != nil {
				if h, ok := st.Get("handle"); ok {
					if b, ok := h.([]byte); ok {
						n += int64(len(b))
					}
				}
			}
		}
	})
	return n
}

// wrappedBooster reads the wrapper's _Booster and builds it with the XGBoost
// runtime, checking it against the wrapper's feature count.
func wrappedBooster(obj *pickle.Object) (model.Model, int, error) {
	if v, ok := obj.Attr("missing"); ok {
		if f, isNum := pickle.ToFloat(v); v != nil && (!isNum || !math.IsNaN(f)) {
			return nil, 0, fmt.Errorf("missing=%v: only NaN as the missing-value marker is supported (refit with the default)", v)
		}
	}
	b, err := obj.Object("_Booster")
	if err != nil {
		return nil, 0, err
	}
	if b.Class() != "xgboost.core.Booster" {
		return nil, 0, fmt.Errorf("_Booster is a %s, not an xgboost.core.Booster", b.Class())
	}
	state := b.Attrs()
	if state == nil {
		return nil, 0, fmt.Errorf("_Booster has no state")
	}
	h, _ := state.Get("handle")
	raw, ok := h.([]byte)
	if !ok || len(raw) == 0 {
		return nil, 0, fmt.Errorf("_Booster's handle is a %s, not the booster's bytes", pickle.TypeName(h))
	}
	m, err := xgboost.FromSnapshot(raw, formats.Config{})
	if err != nil {
		return nil, 0, err
	}
	p := int(m.Metadata().Inputs[0].Shape[1])
	if err := checkFeatureCount(obj, p, "the booster"); err != nil {
		return nil, 0, err
	}
	return m, p, nil
}

func buildXGBClassifier(obj *pickle.Object) (any, error) {
	m, p, err := wrappedBooster(obj)
	if err != nil {
		return nil, err
	}
	classes, err := classesAttr(obj)
	if err != nil {
		return nil, err
	}
	var proba *model.TensorSpec
	for i, o := range m.Metadata().Outputs {
		if o.Name == "predict_proba" {
			proba = &m.Metadata().Outputs[i]
		}
	}
	if proba == nil || len(proba.Shape) != 2 {
		return nil, fmt.Errorf("the booster's objective is not a classifier's")
	}
	if k := int(proba.Shape[1]); k != classes.Len() {
		return nil, fmt.Errorf("the booster has %d classes, classes_ %d", k, classes.Len())
	}
	return &xgbClassifier{xgbEstimator{m: m, nFeatures: p, classes: classes, output: "predict_proba", width: classes.Len()}}, nil
}

func buildXGBRegressor(obj *pickle.Object) (any, error) {
	m, p, err := wrappedBooster(obj)
	if err != nil {
		return nil, err
	}
	md := m.Metadata()
	pred := md.Outputs[0]
	if pred.Name != "predict" || pred.Datatype != tensor.FP32 {
		return nil, fmt.Errorf("the booster's objective is a classifier's: use XGBClassifier")
	}
	width := 1
	if len(pred.Shape) == 2 {
		width = int(pred.Shape[1])
	}
	return &xgbRegressor{xgbEstimator{m: m, nFeatures: p, output: "predict", width: width}}, nil
}
