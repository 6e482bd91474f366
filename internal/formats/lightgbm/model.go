package lightgbm

import (
	"context"
	"strconv"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/treewalk"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// The names of the model's one input and of its outputs before any renaming by
// the model's config.
const (
	inputName        = "input"
	predictName      = "predict"
	predictProbaName = "predict_proba"
	rawScoreName     = "raw_score"
)

// lgbModel serves an ensemble as a model.Model; read-only after newModel, so
// one value serves every request concurrently.
type lgbModel struct {
	e    *ensemble
	meta model.Metadata
}

// newModel describes the ensemble's input and outputs:
//
//	classifiers: predict (INT64 [n], the class index), predict_proba
//	             (FP64 [n, classes]; binary gives [1-p, p]), raw_score
//	the rest:    predict (FP64 [n], the objective's transform), raw_score
//
// raw_score is LightGBM's predict(raw_score=True): [n], or [n, classes].
// Outputs are FP64 because LightGBM sums and transforms in double precision.
func newModel(e *ensemble, cfg formats.Config) (*lgbModel, error) {
	k := int64(e.treesPerIteration)
	scoreShape := []int64{-1}
	if k > 1 {
		scoreShape = []int64{-1, k}
	}
	var outputs []model.TensorSpec
	if e.obj.classifier {
		outputs = []model.TensorSpec{
			{Name: predictName, Datatype: tensor.Int64, Shape: []int64{-1}},
			{Name: predictProbaName, Datatype: tensor.FP64, Shape: []int64{-1, max(k, 2)}},
		}
	} else {
		outputs = []model.TensorSpec{{Name: predictName, Datatype: tensor.FP64, Shape: []int64{-1}}}
	}
	outputs = append(outputs, model.TensorSpec{Name: rawScoreName, Datatype: tensor.FP64, Shape: scoreShape})
	if err := formats.NameOutputs(outputs, cfg.Outputs); err != nil {
		return nil, err
	}
	// LightGBM makes up Column_0..Column_N for data without names: those are
	// no names, so the config's or feature1..featureN win over them.
	fromFile := e.featureNames
	if madeUpNames(fromFile) {
		fromFile = nil
	}
	features, err := formats.FeatureNames(e.numFeature, fromFile, cfg.Features)
	if err != nil {
		return nil, err
	}
	return &lgbModel{e: e, meta: model.Metadata{
		Platform: "lightgbm",
		Inputs:   []model.TensorSpec{{Name: inputName, Datatype: tensor.FP64, Shape: []int64{-1, int64(e.numFeature)}}},
		Outputs:  outputs,
		Features: features,
	}}, nil
}

// madeUpNames reports LightGBM's names for unnamed columns.
func madeUpNames(names []string) bool {
	for i, s := range names {
		if s != "Column_"+strconv.Itoa(i) {
			return false
		}
	}
	return true
}

// Metadata describes the model. The slices are shared; callers must not modify them.
func (m *lgbModel) Metadata() model.Metadata { return m.meta }

// SizeBytes is the memory the trees hold.
func (m *lgbModel) SizeBytes() int64 {
	var n int64
	for _, t := range m.e.trees {
		n += int64(len(t.leafValue))*8 + int64(len(t.left))*(4+8+1+4+4) + int64(len(t.catBoundaries)+len(t.catThreshold))*4
		if t.walk != nil {
			n += t.walk.SizeBytes()
		}
	}
	return n
}

// Predict runs the ensemble on the one input, an n×features matrix of any
// numeric datatype; NaN marks a missing value.
func (m *lgbModel) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(inputs) != 1 || inputs[0] == nil {
		return nil, model.InvalidInputf("want 1 input tensor %q, got %d", m.meta.Inputs[0].Name, len(inputs))
	}
	t := inputs[0]
	nf := m.e.numFeature
	if len(t.Shape) != 2 || t.Shape[1] != int64(nf) {
		return nil, model.InvalidInputf("input %q: want shape [n, %d], got %v", t.Name, nf, t.Shape)
	}
	if err := t.Validate(); err != nil {
		return nil, model.InvalidInputf("%v", err)
	}
	X, ok := t.Data.([]float64)
	if !ok {
		var err error
		if X, err = t.Float64s(); err != nil {
			return nil, model.InvalidInputf("%v", err)
		}
	}
	n, k := int(t.Shape[0]), m.e.treesPerIteration
	raw := make([]float64, n*k)
	m.e.rawScores(X, n, raw)
	o := m.meta.Outputs
	rawShape := []int64{int64(n)}
	if k > 1 {
		rawShape = []int64{int64(n), int64(k)}
	}
	rawT := &tensor.Tensor{Name: o[len(o)-1].Name, Datatype: tensor.FP64, Shape: rawShape, Data: raw}
	if !m.e.obj.classifier {
		pred := make([]float64, n)
		for r := range pred {
			pred[r] = m.e.obj.transform(raw[r])
		}
		return []*tensor.Tensor{{Name: o[0].Name, Datatype: tensor.FP64, Shape: []int64{int64(n)}, Data: pred}, rawT}, nil
	}
	classes := max(k, 2)
	proba := make([]float64, n*classes)
	label := make([]int64, n)
	for r := 0; r < n; r++ {
		p := proba[r*classes : (r+1)*classes]
		m.e.probabilities(raw[r*k:(r+1)*k], p)
		for c := range p {
			if p[c] > p[label[r]] {
				label[r] = int64(c)
			}
		}
	}
	return []*tensor.Tensor{
		{Name: o[0].Name, Datatype: tensor.Int64, Shape: []int64{int64(n)}, Data: label},
		{Name: o[1].Name, Datatype: tensor.FP64, Shape: []int64{int64(n), int64(classes)}, Data: proba},
		rawT,
	}, nil
}

// blockRows is how many rows go through each tree before the next tree is
// taken, as in the XGBoost runtime: LightGBM's trees (31 leaves by default)
// are small, so a block of this size keeps one in cache while it serves it.
const blockRows = 256

// rawScores writes the raw scores of the n rows of X (row-major) to raw, k
// per row, exactly as scores does row by row. A batch of treewalk.MinBatch
// rows or more goes through each tree a block of rows at a time, with the
// compiled walk where the tree has one; each row still adds its trees in
// order, so the sums are the same bit for bit.
func (e *ensemble) rawScores(X []float64, n int, raw []float64) {
	nf, k := e.numFeature, e.treesPerIteration
	if n < treewalk.MinBatch || !e.batchWalks {
		for r := 0; r < n; r++ {
			e.scores(X[r*nf:(r+1)*nf], raw[r*k:(r+1)*k])
		}
		return
	}
	treewalk.Blocks(X, n, nf, blockRows, func(batch *treewalk.Batch[float64], start, end int, leaves []uint32) {
		out := raw[start*k : end*k]
		clear(out)
		for i := range e.trees {
			t, c := &e.trees[i], i%k
			if t.walk == nil {
				for r := start; r < end; r++ {
					raw[r*k+c] += t.leafValue[t.leaf(X[r*nf:(r+1)*nf])]
				}
				continue
			}
			t.walk.Leaves(batch, start, leaves)
			for j, l := range leaves {
				out[j*k+c] += t.leafValue[l]
			}
		}
		if e.averageOutput {
			rounds := float64(len(e.trees) / k)
			for j := range out {
				out[j] /= rounds
			}
		}
	})
}

// scores writes one row's raw scores, LightGBM's predict(raw_score=True):
// each tree's leaf value added to its class's score in tree order, in double
// precision; a random forest's are averaged over its rounds.
func (e *ensemble) scores(x []float64, out []float64) {
	k := e.treesPerIteration
	clear(out)
	for i := range e.trees {
		t := &e.trees[i]
		out[i%k] += t.leafValue[t.leaf(x)]
	}
	if e.averageOutput {
		rounds := float64(len(e.trees) / k)
		for c := range out {
			out[c] /= rounds
		}
	}
}

// probabilities turns a classifier's raw scores into class probabilities:
// binary [1-p, p], softmax for multiclass, one sigmoid per class for
// multiclassova (which, as in LightGBM, need not sum to 1).
func (e *ensemble) probabilities(raw, p []float64) {
	switch {
	case !e.obj.multiclass:
		p1 := e.obj.transform(raw[0])
		p[0], p[1] = 1-p1, p1
	case e.obj.transform == nil:
		softmax(raw, p)
	default:
		for c, s := range raw {
			p[c] = e.obj.transform(s)
		}
	}
}
