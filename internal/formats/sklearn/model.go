package sklearn

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// NonFiniteAcceptor is implemented by estimators whose sklearn counterpart accepts
// NaN or ±Inf input (check_array's force_all_finite): the scalers pass NaN through,
// HistGradientBoosting treats NaN as missing. Estimators that do not implement it
// reject both, as sklearn's do, and the model answers such input with a 422.
type NonFiniteAcceptor interface {
	AcceptsNonFinite() (nan, inf bool)
}

// inputChecker is implemented by an estimator that refuses some finite input
// its runtime cannot take (XGBoost: values beyond float32); the model answers
// them with a 422 before the estimator runs.
type inputChecker interface {
	checkInput(X []float64, n int) error
}

// LabelPredictor is a classifier with predict but no predict_proba (LinearSVC,
// RidgeClassifier). The model serves its "predict" output only.
type LabelPredictor interface {
	NumFeatures() int
	Classes() Labels
	IndexPredictor
}

// columnPredictor is implemented by regressors that know whether sklearn's
// predict returns a column (n×1) rather than a vector for a single target: it
// does when the model was fitted on a 2-D y.
type columnPredictor interface {
	predicts2D() bool
}

// jointPredictor is implemented by classifiers that compute predict's class
// indices and predict_proba in one pass into caller-owned slices.
type jointPredictor interface {
	predictInto(X []float64, n int, idx []int, proba []float64)
}

// The names of the model's one input and of its outputs before any renaming by
// the model's config.
const (
	inputName        = "input"
	predictName      = "predict"
	predictProbaName = "predict_proba"
	transformName    = "transform"
	scoreSamplesName = "score_samples"
	decisionName     = "decision_function"
)

// estimatorModel serves a built estimator (a bare one or a flattened pipeline) as
// a model.Model. It is read-only after newModel, so one value serves every
// request concurrently.
type estimatorModel struct {
	meta      model.Metadata
	nFeatures int
	// stages are the transformers run before the final estimator, in order.
	stages []stage
	// final is the last stage; for a transformer-only pipeline it is the last
	// transformer (and stages holds the ones before it).
	final stage

	clf        Classifier
	labelOnly  LabelPredictor // set instead of clf for classifiers without predict_proba
	nClasses   int
	labels     Labels
	labelBytes [][]byte // labels.Strings as []byte, shared by every response
	reg        Regressor
	reg2D      bool
	tr         Transformer
	outliers   OutlierDetector

	// A model with string columns (text.go) takes one input per column:
	// columns says what each holds, vocab codes their strings, textUsers
	// are the encoders and imputers bound to it.
	columns   []columnKind
	vocab     *vocabulary
	textUsers []textUser
}

// sizer is an estimator that knows what its arrays occupy (the tree models).
type sizer interface{ sizeBytes() int64 }

// SizeBytes is what the final estimator's arrays occupy, or 0 when it does not
// say (linear models and transformers are a few hundred bytes).
func (m *estimatorModel) SizeBytes() int64 {
	for _, est := range []any{m.clf, m.labelOnly, m.reg, m.tr, m.outliers} {
		if s, ok := est.(sizer); ok {
			return s.sizeBytes()
		}
	}
	return 0
}

// stage is one estimator in the chain with what it accepts as input.
type stage struct {
	est           any
	name          string // the pipeline step's name; "" for a bare estimator
	nan, inf      bool   // whether NaN / ±Inf input is accepted
	transformer   Transformer
	inputFeatures int
}

func newStage(name string, est any) stage {
	s := stage{est: est, name: name, inputFeatures: numFeatures(est)}
	if a, ok := est.(NonFiniteAcceptor); ok {
		s.nan, s.inf = a.AcceptsNonFinite()
	}
	if t, ok := est.(Transformer); ok {
		s.transformer = t
	}
	return s
}

// newModel wraps a built estimator. fileFeatures are the feature names the file
// carries (nil if none); without them cfg.Features names the features, and
// without either they are feature1..featureN.
func newModel(est any, fileFeatures []string, cfg formats.Config) (*estimatorModel, error) {
	m := &estimatorModel{}
	var final any
	finalName := ""
	if p, ok := est.(*pipeline); ok {
		for _, t := range p.transforms {
			m.stages = append(m.stages, newStage(t.name, t.Transformer))
		}
		final, finalName = p.final, p.finalName
		if final == nil {
			last := p.transforms[len(p.transforms)-1]
			m.stages = m.stages[:len(m.stages)-1]
			final, finalName = last.Transformer, last.name
		}
	} else {
		final = est
	}
	m.final = newStage(finalName, final)

	var outputs []model.TensorSpec
	switch e := final.(type) {
	case Classifier:
		m.clf = e
		dt, err := m.setLabels(e.Classes())
		if err != nil {
			return nil, err
		}
		outputs = []model.TensorSpec{
			{Name: predictName, Datatype: dt, Shape: []int64{-1}},
			{Name: predictProbaName, Datatype: tensor.FP64, Shape: []int64{-1, int64(m.nClasses)}},
		}
	case LabelPredictor:
		m.labelOnly = e
		dt, err := m.setLabels(e.Classes())
		if err != nil {
			return nil, err
		}
		outputs = []model.TensorSpec{{Name: predictName, Datatype: dt, Shape: []int64{-1}}}
	case Regressor:
		m.reg = e
		shape := []int64{-1}
		if c, ok := e.(columnPredictor); e.NumTargets() > 1 || (ok && c.predicts2D()) {
			m.reg2D = true
			shape = []int64{-1, int64(e.NumTargets())}
		}
		outputs = []model.TensorSpec{{Name: predictName, Datatype: tensor.FP64, Shape: shape}}
	case Transformer:
		m.tr = e
		outputs = []model.TensorSpec{{Name: transformName, Datatype: tensor.FP64, Shape: []int64{-1, int64(e.NumOutputs())}}}
	case OutlierDetector:
		m.outliers = e
		outputs = []model.TensorSpec{
			{Name: predictName, Datatype: tensor.Int64, Shape: []int64{-1}},
			{Name: scoreSamplesName, Datatype: tensor.FP64, Shape: []int64{-1}},
			{Name: decisionName, Datatype: tensor.FP64, Shape: []int64{-1}},
		}
	default:
		return nil, fmt.Errorf("%T is not a classifier, regressor, transformer or outlier detector", final)
	}

	m.nFeatures = m.final.inputFeatures
	if len(m.stages) > 0 {
		m.nFeatures = m.stages[0].inputFeatures
	}
	if m.nFeatures <= 0 {
		return nil, fmt.Errorf("model has %d input features", m.nFeatures)
	}

	if len(cfg.Outputs) > len(outputs) {
		return nil, fmt.Errorf("config names %d outputs but the model has %d (%s)", len(cfg.Outputs), len(outputs), specNames(outputs))
	}
	seen := map[string]bool{}
	for i := range outputs {
		if i < len(cfg.Outputs) {
			if cfg.Outputs[i] == "" {
				return nil, fmt.Errorf("config output %d has an empty name", i+1)
			}
			outputs[i].Name = cfg.Outputs[i]
		}
		if seen[outputs[i].Name] {
			return nil, fmt.Errorf("config names two outputs %q", outputs[i].Name)
		}
		seen[outputs[i].Name] = true
	}

	features, err := chooseFeatures(m.nFeatures, fileFeatures, cfg.Features)
	if err != nil {
		return nil, err
	}
	m.meta = model.Metadata{
		Platform: "sklearn",
		Inputs:   []model.TensorSpec{{Name: inputName, Datatype: tensor.FP64, Shape: []int64{-1, int64(m.nFeatures)}}},
		Outputs:  outputs,
		Features: features,
	}
	if err := m.bindColumns(est); err != nil {
		return nil, err
	}
	return m, nil
}

// setLabels records a classifier's classes and returns the datatype of its
// predict output: INT64, FP64, BYTES or BOOL as the labels are.
func (m *estimatorModel) setLabels(l Labels) (tensor.Datatype, error) {
	m.labels, m.nClasses = l, l.Len()
	if m.nClasses == 0 {
		return tensor.Invalid, fmt.Errorf("classifier has no classes")
	}
	switch {
	case l.Ints != nil:
		return tensor.Int64, nil
	case l.Floats != nil:
		return tensor.FP64, nil
	case l.Strings != nil:
		m.labelBytes = make([][]byte, len(l.Strings))
		for i, s := range l.Strings {
			m.labelBytes[i] = []byte(s)
		}
		return tensor.Bytes, nil
	}
	return tensor.Bool, nil
}

// chooseFeatures picks the feature names: the file's feature_names_in_ (the
// columns the model was fitted on), else the config's, else feature1..featureN
// (the names the tutorial's clients send). Config features of the wrong length
// are an error even when the file's names win, so a broken config never goes
// unnoticed.
func chooseFeatures(n int, fromFile, fromConfig []string) ([]string, error) {
	if len(fromConfig) > 0 && len(fromConfig) != n {
		return nil, fmt.Errorf("config lists %d features but the model takes %d", len(fromConfig), n)
	}
	switch {
	case len(fromFile) > 0:
		if len(fromFile) != n {
			return nil, fmt.Errorf("feature_names_in_ lists %d features but the model takes %d", len(fromFile), n)
		}
		return fromFile, nil
	case len(fromConfig) > 0:
		return append([]string(nil), fromConfig...), nil
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "feature" + strconv.Itoa(i+1)
	}
	return names, nil
}

func specNames(specs []model.TensorSpec) string {
	s := ""
	for i, sp := range specs {
		if i > 0 {
			s += ", "
		}
		s += sp.Name
	}
	return s
}

// Metadata describes the model. The slices are shared; callers must not modify them.
func (m *estimatorModel) Metadata() model.Metadata { return m.meta }

// Predict runs the estimator on the one input, an n×nFeatures matrix of any
// numeric datatype.
func (m *estimatorModel) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var X []float64
	var n int
	var err error
	var unknown unknownStrings
	if m.columns != nil {
		X, n, err = m.columnsInput(inputs, &unknown)
	} else {
		X, n, err = m.input(inputs)
	}
	if err != nil {
		return nil, err
	}
	input, width := X, m.nFeatures
	for i, s := range m.stages {
		if err := checkFinite(X, width, s, m.stages, i, m.meta.Features); err != nil {
			return nil, err
		}
		if c, ok := s.est.(inputChecker); ok {
			if err := c.checkInput(X, n); err != nil {
				return nil, m.explainUnknown(err, input, &unknown)
			}
		}
		X, width = s.transformer.Transform(X, n), s.transformer.NumOutputs()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if err := checkFinite(X, width, m.final, m.stages, len(m.stages), m.meta.Features); err != nil {
		return nil, err
	}
	if c, ok := m.final.est.(inputChecker); ok {
		if err := c.checkInput(X, n); err != nil {
			return nil, m.explainUnknown(err, input, &unknown)
		}
	}
	switch {
	case m.clf != nil:
		return m.classify(model.OutputReuseFrom(ctx), X, n)
	case m.labelOnly != nil:
		b := m.newOutputBlock(1)
		if err := m.setLabelTensor(b, m.labelOnly.PredictIndex(X, n), n); err != nil {
			return nil, err
		}
		return b.ptrs[:1], nil
	case m.outliers != nil:
		return m.detectOutliers(X, n), nil
	case m.reg != nil:
		cols := 0
		if m.reg2D {
			cols = m.reg.NumTargets()
		}
		return m.matrixOutput(m.reg.Predict(X, n), n, cols), nil
	default:
		return m.matrixOutput(m.tr.Transform(X, n), n, m.tr.NumOutputs()), nil
	}
}

// input checks the request's one tensor and returns it as float64s with its row
// count. An FP64 tensor's data is used in place, never modified.
func (m *estimatorModel) input(inputs []*tensor.Tensor) ([]float64, int, error) {
	if len(inputs) != 1 || inputs[0] == nil {
		return nil, 0, model.InvalidInputf("want 1 input tensor %q, got %d", m.meta.Inputs[0].Name, len(inputs))
	}
	t := inputs[0]
	if len(t.Shape) != 2 || t.Shape[1] != int64(m.nFeatures) {
		return nil, 0, model.InvalidInputf("input %q: want shape [n, %d], got %v", t.Name, m.nFeatures, t.Shape)
	}
	if err := t.Validate(); err != nil {
		return nil, 0, model.InvalidInputf("%v", err)
	}
	X, err := t.Float64s()
	if err != nil {
		return nil, 0, model.InvalidInputf("%v", err)
	}
	return X, int(t.Shape[0]), nil
}

// checkFinite rejects NaN and ±Inf where stage s does not accept them. stages[:i]
// are the transformers that already ran, named in the message when they made the
// value; features names the model's input columns, for a value sent as it is.
func checkFinite(X []float64, width int, s stage, stages []stage, i int, features []string) error {
	if s.nan && s.inf {
		return nil
	}
	for j, x := range X {
		bad := ""
		switch {
		case math.IsNaN(x) && !s.nan:
			bad = "NaN"
		case math.IsInf(x, 0) && !s.inf:
			bad = "infinite"
		default:
			continue
		}
		row, col := j/width, j%width
		if i == 0 {
			// As sklearn's check_array refuses it ("Input X contains NaN").
			hint := ""
			if bad == "NaN" {
				hint = " (impute missing values first, e.g. a SimpleImputer in the pipeline)"
			}
			return model.InvalidInputf("input row %d, feature %q (column %d) is %s, which the model does not accept%s",
				row, features[col], col, bad, hint)
		}
		return model.InvalidInputf("input row %d: step %q made column %d %s, which step %q does not accept", row, stages[i-1].name, col, bad, s.name)
	}
	return nil
}

// detectOutliers answers predict (1 inlier, -1 outlier), score_samples and
// decision_function, as the estimator computes them.
func (m *estimatorModel) detectOutliers(X []float64, n int) []*tensor.Tensor {
	scores, decision, label := m.outliers.Outliers(X, n)
	o := m.meta.Outputs
	shape := []int64{int64(n)}
	return []*tensor.Tensor{
		{Name: o[0].Name, Datatype: tensor.Int64, Shape: shape, Data: label},
		{Name: o[1].Name, Datatype: tensor.FP64, Shape: shape, Data: scores},
		{Name: o[2].Name, Datatype: tensor.FP64, Shape: shape, Data: decision},
	}
}

// outputBlock holds a response's tensors, their shapes and, for small batches,
// predict's class indices in one allocation: a one-row request is the common case
// and should cost a handful of small allocations, not a dozen.
type outputBlock struct {
	owner  *estimatorModel // whose outputs it holds: a lent block is reused by its owner only
	ptrs   [2]*tensor.Tensor
	ts     [2]tensor.Tensor
	shapes [4]int64
	idx    [8]int
}

// newOutputBlock names the response's tensors as Metadata says.
func (m *estimatorModel) newOutputBlock(count int) *outputBlock {
	b := &outputBlock{owner: m}
	for i := 0; i < count; i++ {
		b.ts[i].Name = m.meta.Outputs[i].Name
		b.ptrs[i] = &b.ts[i]
	}
	return b
}

// reusedOutputBlock is the block of this model's last outputs that reuse
// lends (its tensors' data then lent too: lentSlice, setData), else a new one;
// either is kept in reuse for the caller's next call.
func (m *estimatorModel) reusedOutputBlock(reuse *model.OutputReuse, count int) *outputBlock {
	if reuse != nil {
		if b, ok := reuse.Take().(*outputBlock); ok && b.owner == m {
			return b
		}
	}
	return m.newOutputBlock(count)
}

// keepOutputBlock keeps b in reuse (when there is one) with the size of its
// tensors' data, which the caller counts as memory it holds.
func keepOutputBlock(reuse *model.OutputReuse, b *outputBlock, count int) {
	if reuse == nil {
		return
	}
	bytes := int(unsafe.Sizeof(*b))
	for i := range count {
		bytes += dataBytes(b.ts[i].Data)
	}
	reuse.Keep(b, bytes)
}

// dataBytes is the memory of the output data a block may hold (a BYTES
// label's values are the model's own, not counted).
func dataBytes(data any) int {
	switch v := data.(type) {
	case []float64:
		return 8 * cap(v)
	case []int64:
		return 8 * cap(v)
	case [][]byte:
		return int(unsafe.Sizeof([]byte(nil))) * cap(v)
	case []bool:
		return cap(v)
	}
	return 0
}

// lentSlice returns n zeroed elements: the room in data (a lent block's
// tensor data) when it has enough, else new ones.
func lentSlice[T any](data any, n int) []T {
	if s, ok := data.([]T); ok && cap(s) >= n {
		s = s[:n]
		clear(s)
		return s
	}
	return make([]T, n)
}

// setData makes v t's data. When t's data already is v (a lent block's slice,
// taken again at the same length), the interface value is left as it is:
// boxing a slice into one allocates.
func setData[T any](t *tensor.Tensor, v []T) {
	if s, ok := t.Data.([]T); ok && len(s) == len(v) && cap(s) == cap(v) && (len(v) == 0 || &s[0] == &v[0]) {
		return
	}
	t.Data = v
}

// classify returns predict and predict_proba, in the memory reuse lends when
// the classifier computes both at once.
func (m *estimatorModel) classify(reuse *model.OutputReuse, X []float64, n int) ([]*tensor.Tensor, error) {
	b := m.reusedOutputBlock(reuse, 2)
	var idx []int
	if n <= len(b.idx) {
		idx = b.idx[:n]
	} else {
		idx = make([]int, n)
	}
	var proba []float64
	if j, ok := m.clf.(jointPredictor); ok {
		proba = lentSlice[float64](b.ts[1].Data, n*m.nClasses)
		j.predictInto(X, n, idx, proba)
	} else {
		proba = m.clf.PredictProba(X, n)
		if len(proba) != n*m.nClasses {
			return nil, fmt.Errorf("classifier returned %d probabilities for %d rows of %d classes", len(proba), n, m.nClasses)
		}
		if ip, ok := m.clf.(IndexPredictor); ok {
			idx = ip.PredictIndex(X, n)
		} else {
			for i := range idx {
				idx[i] = argmax(proba[i*m.nClasses : (i+1)*m.nClasses])
			}
		}
	}
	if err := m.setLabelTensor(b, idx, n); err != nil {
		return nil, err
	}
	b.shapes[1], b.shapes[2] = int64(n), int64(m.nClasses)
	b.ts[1].Datatype, b.ts[1].Shape = tensor.FP64, b.shapes[1:3:3]
	setData(&b.ts[1], proba)
	keepOutputBlock(reuse, b, 2)
	return b.ptrs[:2], nil
}

// setLabelTensor fills b's first tensor with the labels of class indices idx.
func (m *estimatorModel) setLabelTensor(b *outputBlock, idx []int, n int) error {
	if len(idx) != n {
		return fmt.Errorf("classifier returned %d predictions for %d rows", len(idx), n)
	}
	for _, c := range idx {
		if c < 0 || c >= m.nClasses {
			return fmt.Errorf("classifier predicted class index %d of %d", c, m.nClasses)
		}
	}
	// The labels go into the block's last labels when it is a lent one.
	label := &b.ts[0]
	switch {
	case m.labels.Ints != nil:
		v := lentSlice[int64](label.Data, n)
		for i, c := range idx {
			v[i] = m.labels.Ints[c]
		}
		label.Datatype = tensor.Int64
		setData(label, v)
	case m.labels.Floats != nil:
		v := lentSlice[float64](label.Data, n)
		for i, c := range idx {
			v[i] = m.labels.Floats[c]
		}
		label.Datatype = tensor.FP64
		setData(label, v)
	case m.labels.Strings != nil:
		v := lentSlice[[]byte](label.Data, n)
		for i, c := range idx {
			v[i] = m.labelBytes[c]
		}
		label.Datatype = tensor.Bytes
		setData(label, v)
	default:
		v := lentSlice[bool](label.Data, n)
		for i, c := range idx {
			v[i] = m.labels.Bools[c]
		}
		label.Datatype = tensor.Bool
		setData(label, v)
	}
	b.shapes[0] = int64(n)
	label.Shape = b.shapes[0:1:1]
	return nil
}

// matrixOutput returns one FP64 output of n rows, a vector when cols is 0.
func (m *estimatorModel) matrixOutput(y []float64, n, cols int) []*tensor.Tensor {
	b := m.newOutputBlock(1)
	b.shapes[0], b.shapes[1] = int64(n), int64(cols)
	shape := b.shapes[0:2:2]
	if cols == 0 {
		shape = b.shapes[0:1:1]
	}
	b.ts[0].Datatype, b.ts[0].Shape, b.ts[0].Data = tensor.FP64, shape, y
	return b.ptrs[:1]
}
