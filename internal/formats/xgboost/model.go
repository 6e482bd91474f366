package xgboost

import (
	"context"
	"math"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// The names of the model's one input and of its outputs before any renaming by
// the model's config.
const (
	inputName        = "input"
	predictName      = "predict"
	predictProbaName = "predict_proba"
	marginName       = "margin"
)

// boosterModel serves a booster as a model.Model. It is read-only after
// newModel, so one value serves every request concurrently.
type boosterModel struct {
	b    *booster
	meta model.Metadata
	// nClasses is 2 for binary classifiers, num_class for multi-class ones and
	// 0 for regressors and rankers.
	nClasses int
}

// newModel describes the booster's input and outputs:
//
//	classifiers: predict (INT64 [n], the class index), predict_proba
//	             (FP32 [n, classes]; binary gives [1-p, p]), margin
//	regressors:  predict (FP32 [n], or [n, targets]), margin
//
// margin is the raw score, XGBoost's predict(output_margin=True): [n] for one
// output group, [n, groups] for several.
func newModel(b *booster, cfg formats.Config) (*boosterModel, error) {
	m := &boosterModel{b: b}
	groupShape := []int64{-1}
	if b.numGroups > 1 {
		groupShape = []int64{-1, int64(b.numGroups)}
	}
	var outputs []model.TensorSpec
	if b.obj.classifier {
		m.nClasses = max(b.numGroups, 2)
		outputs = []model.TensorSpec{
			{Name: predictName, Datatype: tensor.Int64, Shape: []int64{-1}},
			{Name: predictProbaName, Datatype: tensor.FP32, Shape: []int64{-1, int64(m.nClasses)}},
		}
	} else {
		outputs = []model.TensorSpec{{Name: predictName, Datatype: tensor.FP32, Shape: groupShape}}
	}
	outputs = append(outputs, model.TensorSpec{Name: marginName, Datatype: tensor.FP32, Shape: append([]int64(nil), groupShape...)})

	if err := formats.NameOutputs(outputs, cfg.Outputs); err != nil {
		return nil, err
	}

	features, err := formats.FeatureNames(b.numFeature, b.featureNames, cfg.Features)
	if err != nil {
		return nil, err
	}
	m.meta = model.Metadata{
		Platform: "xgboost",
		Inputs:   []model.TensorSpec{{Name: inputName, Datatype: tensor.FP32, Shape: []int64{-1, int64(b.numFeature)}}},
		Outputs:  outputs,
		Features: features,
	}
	return m, nil
}

// Metadata describes the model. The slices are shared; callers must not modify them.
func (m *boosterModel) Metadata() model.Metadata { return m.meta }

// Predict runs the booster on the one input, an n×num_feature matrix of any
// numeric datatype; NaN marks a missing value.
func (m *boosterModel) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	X, n, err := m.input(inputs)
	if err != nil {
		return nil, err
	}
	ng := m.b.numGroups
	k := max(m.nClasses, ng) // values per row of predict_proba or predict
	// One buffer for the margins and the probabilities or predictions, and
	// one block for the tensors and their shapes: a one-row request is the
	// common case and should cost a handful of allocations.
	buf := make([]float32, n*ng+n*k)
	margin, values := buf[:n*ng:n*ng], buf[n*ng:]
	m.b.margins(X, n, margin)

	// shapes[0:2] is predict_proba's [n, classes]; shapes[2:4], or [2:3] for
	// one group, the margin's and a regressor's predict; shapes[4:5] the
	// class labels' [n].
	blk := &outputBlock{}
	blk.shapes = [6]int64{int64(n), int64(k), int64(n), int64(ng), int64(n)}
	groupShape := blk.shapes[2:4:4]
	if ng == 1 {
		groupShape = blk.shapes[2:3:3]
	}
	count := 0
	if m.nClasses > 0 {
		label := make([]int64, n)
		m.classify(margin, n, label, values)
		blk.ts[0] = tensor.Tensor{Datatype: tensor.Int64, Shape: blk.shapes[4:5:5], Data: label}
		blk.ts[1] = tensor.Tensor{Datatype: tensor.FP32, Shape: blk.shapes[0:2:2], Data: values}
		count = 2
	} else {
		for r := 0; r < n; r++ {
			m.b.obj.transform(margin[r*ng:(r+1)*ng], values[r*ng:(r+1)*ng])
		}
		blk.ts[0] = tensor.Tensor{Datatype: tensor.FP32, Shape: groupShape, Data: values}
		count = 1
	}
	blk.ts[count] = tensor.Tensor{Datatype: tensor.FP32, Shape: groupShape, Data: margin}
	count++
	for i := 0; i < count; i++ {
		blk.ts[i].Name = m.meta.Outputs[i].Name
		blk.ptrs[i] = &blk.ts[i]
	}
	return blk.ptrs[:count:count], nil
}

// outputBlock holds a response's tensors and their shapes in one allocation.
type outputBlock struct {
	ptrs   [3]*tensor.Tensor
	ts     [3]tensor.Tensor
	shapes [6]int64
}

// classify fills class indices and probabilities from margins. Binary: p is
// sigmoid(margin) (for binary:hinge, 1 if margin > 0 else 0), the class is
// p > 0.5, as XGBClassifier decides. Multi-class: probabilities are the
// softmax, the class is the first largest margin (multi:softmax's answer).
func (m *boosterModel) classify(margin []float32, n int, label []int64, proba []float32) {
	if m.b.numGroups == 1 {
		for r, x := range margin[:n] {
			var p float32
			if m.b.obj.out == outHinge {
				if x > 0 {
					p = 1
				}
			} else {
				p = sigmoid(x)
			}
			proba[2*r], proba[2*r+1] = 1-p, p
			if p > 0.5 {
				label[r] = 1
			}
		}
		return
	}
	k := m.nClasses
	for r := 0; r < n; r++ {
		row := margin[r*k : (r+1)*k]
		softmax(row, proba[r*k:(r+1)*k])
		label[r] = int64(argmax(row))
	}
}

// input checks the request's one tensor and returns it as float32s, the type
// XGBoost converts every input to, with its row count. FP32 data is used in
// place, never modified.
func (m *boosterModel) input(inputs []*tensor.Tensor) ([]float32, int, error) {
	if len(inputs) != 1 || inputs[0] == nil {
		return nil, 0, model.InvalidInputf("want 1 input tensor %q, got %d", m.meta.Inputs[0].Name, len(inputs))
	}
	t := inputs[0]
	nf := m.b.numFeature
	if len(t.Shape) != 2 || t.Shape[1] != int64(nf) {
		return nil, 0, model.InvalidInputf("input %q: want shape [n, %d], got %v", t.Name, nf, t.Shape)
	}
	if err := t.Validate(); err != nil {
		return nil, 0, model.InvalidInputf("%v", err)
	}
	var X []float32
	switch v := t.Data.(type) {
	case []float32:
		X = v
	case []float64:
		X = make([]float32, len(v))
		for i, x := range v {
			X[i] = float32(x)
		}
	default:
		f64, err := t.Float64s()
		if err != nil {
			return nil, 0, model.InvalidInputf("%v", err)
		}
		X = make([]float32, len(f64))
		for i, x := range f64 {
			X[i] = float32(x)
		}
	}
	// XGBoost refuses infinite input unless told to treat it as missing; a
	// float64 too large for float32 becomes infinite here and is refused too.
	for i, x := range X {
		if math.IsInf(float64(x), 0) {
			return nil, 0, model.InvalidInputf("input row %d, column %d is infinite or too large for float32, which XGBoost does not accept (send NaN for a missing value)", i/nf, i%nf)
		}
	}
	return X, int(t.Shape[0]), nil
}
