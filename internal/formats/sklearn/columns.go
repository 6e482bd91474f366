package sklearn

import (
	"fmt"
	"math"
	"slices"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
)

// Column-wise preprocessing (scikit-learn 1.2): ColumnTransformer, FeatureUnion,
// and OneHotEncoder and OrdinalEncoder over numeric categories. A
// ColumnTransformer runs each fitted transformer on its columns (by index, or
// by name through feature_names_in_), passes through or drops the rest as
// fitted, and joins the outputs side by side in transformers_ order; a
// FeatureUnion joins its transformers' outputs over all columns, weighted.
// Categories that are strings need a column-per-input request form that the
// server does not offer yet; such encoders are refused with that reason.

func init() {
	register("sklearn.compose._column_transformer.ColumnTransformer", buildColumnTransformer)
	register("sklearn.pipeline.FeatureUnion", buildFeatureUnion)
	register("sklearn.preprocessing._encoders.OrdinalEncoder", buildOrdinalEncoder)
	// OneHotEncoder is also KBinsDiscretizer's helper, on the allow-list
	// already; registering it makes it an estimator too.
	register("sklearn.preprocessing._encoders.OneHotEncoder", buildOneHotEncoder)
	register("sklearn.preprocessing._function_transformer.FunctionTransformer", buildFunctionTransformer)
	// ColumnTransformer records output_indices_ as slices, and a column
	// selection may be one. A make_column_selector (with the dtypes it
	// selects) stays in the unfitted transformers, recorded, unused: the
	// fitted transformers_ hold the columns it chose.
	allowHelper("builtins.slice", "sklearn.compose._column_transformer.make_column_selector",
		"numpy.number", "numpy.floating", "numpy.integer", "numpy.bool_", "numpy.object_",
		"builtins.object", "builtins.str", "builtins.float", "builtins.int", "builtins.bool")
}

// identityTransformer is a FunctionTransformer without a function: what a
// ColumnTransformer's remainder="passthrough" is fitted as.
type identityTransformer struct{ nFeatures int }

func (t identityTransformer) NumFeatures() int                       { return t.nFeatures }
func (t identityTransformer) NumOutputs() int                        { return t.nFeatures }
func (t identityTransformer) AcceptsNonFinite() (nan, inf bool)      { return true, true }
func (t identityTransformer) Transform(X []float64, n int) []float64 { return X[:n*t.nFeatures] }

func buildFunctionTransformer(obj *pickle.Object) (any, error) {
	for _, attr := range []string{"func", "inverse_func"} {
		if v, ok := obj.Attr(attr); ok && v != nil {
			return nil, fmt.Errorf("%s is set: only the identity FunctionTransformer (no func) is supported, since a function is code the pickle would have to run", attr)
		}
	}
	n, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	return identityTransformer{nFeatures: n}, nil
}

// asTransformer returns est as a Transformer: itself, or a pipeline of
// transformers run in order.
func asTransformer(est any) (Transformer, error) {
	switch t := est.(type) {
	case Transformer:
		return t, nil
	case *pipeline:
		if t.final == nil && len(t.transforms) > 0 {
			return pipelineTransformer{t}, nil
		}
	}
	return nil, fmt.Errorf("%T is not a transformer", est)
}

// pipelineTransformer is a pipeline that only transforms.
type pipelineTransformer struct{ p *pipeline }

func (t pipelineTransformer) NumFeatures() int { return t.p.NumFeatures() }
func (t pipelineTransformer) NumOutputs() int {
	return t.p.transforms[len(t.p.transforms)-1].NumOutputs()
}
func (t pipelineTransformer) Transform(X []float64, n int) []float64 {
	for _, s := range t.p.transforms {
		X = s.Transform(X, n)
	}
	return X
}

// acceptance is what a transformer lets through unrefused (NaN, ±Inf); a
// pipeline's is its first step's.
func acceptance(t Transformer) (nan, inf bool) {
	if p, ok := t.(pipelineTransformer); ok {
		return acceptance(p.p.transforms[0].Transformer)
	}
	if a, ok := t.(NonFiniteAcceptor); ok {
		return a.AcceptsNonFinite()
	}
	return false, false
}

// columnPart is one fitted transformer of a ColumnTransformer and its columns.
type columnPart struct {
	name    string
	columns []int
	t       Transformer // nil: passthrough
}

func (c columnPart) width() int {
	if c.t == nil {
		return len(c.columns)
	}
	return c.t.NumOutputs()
}

type columnTransformer struct {
	nFeatures int
	parts     []columnPart
	nOut      int
	features  []string // feature_names_in_, for messages
}

func (c *columnTransformer) NumFeatures() int { return c.nFeatures }
func (c *columnTransformer) NumOutputs() int  { return c.nOut }

// AcceptsNonFinite lets everything through to checkInput, which applies each
// part's own rule to its own columns.
func (c *columnTransformer) AcceptsNonFinite() (nan, inf bool) { return true, true }

func (c *columnTransformer) checkInput(X []float64, n int) error {
	for _, part := range c.parts {
		nan, inf := true, true
		if part.t != nil {
			nan, inf = acceptance(part.t)
		}
		for r := 0; r < n; r++ {
			for _, col := range part.columns {
				x := X[r*c.nFeatures+col]
				bad := ""
				switch {
				case math.IsNaN(x) && !nan:
					bad = "NaN"
				case math.IsInf(x, 0) && !inf:
					bad = "infinite"
				default:
					continue
				}
				return model.InvalidInputf("input row %d, column %d is %s, which the column transformer's %q does not accept", r, col, bad, part.name)
			}
		}
		if ic, ok := part.t.(inputChecker); ok {
			if err := ic.checkInput(c.gather(X, n, part.columns), n); err != nil {
				return err
			}
		}
	}
	return nil
}

// gather is X[:, columns].
func (c *columnTransformer) gather(X []float64, n int, columns []int) []float64 {
	out := make([]float64, n*len(columns))
	for r := 0; r < n; r++ {
		for j, col := range columns {
			out[r*len(columns)+j] = X[r*c.nFeatures+col]
		}
	}
	return out
}

func (c *columnTransformer) Transform(X []float64, n int) []float64 {
	out := make([]float64, n*c.nOut)
	at := 0
	for _, part := range c.parts {
		sub := c.gather(X, n, part.columns)
		if part.t != nil {
			sub = part.t.Transform(sub, n)
		}
		w := part.width()
		for r := 0; r < n; r++ {
			copy(out[r*c.nOut+at:r*c.nOut+at+w], sub[r*w:(r+1)*w])
		}
		at += w
	}
	return out
}

func buildColumnTransformer(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	c := &columnTransformer{nFeatures: p}
	if names, err := featureNames(obj); err == nil && len(names) == p {
		c.features = names
	}
	items, err := obj.Items("transformers_")
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		tup, ok := sequenceItems(it)
		if !ok || len(tup) != 3 {
			return nil, fmt.Errorf("transformers_[%d] is not (name, transformer, columns)", i)
		}
		name, _ := tup[0].(string)
		columns, err := columnIndices(tup[2], p, c.features)
		if err != nil {
			return nil, fmt.Errorf("transformers_[%d] (%s): %w", i, name, err)
		}
		part := columnPart{name: name, columns: columns}
		switch t := tup[1].(type) {
		case string:
			switch t {
			case "drop":
				continue
			case "passthrough":
			default:
				return nil, fmt.Errorf("transformers_[%d] (%s) is %q, not a transformer, drop or passthrough", i, name, t)
			}
		default:
			o, ok := t.(*pickle.Object)
			if !ok {
				return nil, fmt.Errorf("transformers_[%d] (%s) is a %s", i, name, pickle.TypeName(t))
			}
			est, err := build(o)
			if err != nil {
				return nil, fmt.Errorf("transformers_[%d] (%s): %w", i, name, err)
			}
			if part.t, err = asTransformer(est); err != nil {
				return nil, fmt.Errorf("transformers_[%d] (%s): %w", i, name, err)
			}
			if w := part.t.NumFeatures(); w != len(columns) {
				return nil, fmt.Errorf("transformers_[%d] (%s) takes %d features but selects %d columns", i, name, w, len(columns))
			}
		}
		if len(columns) == 0 {
			continue // sklearn skips empty selections
		}
		c.parts = append(c.parts, part)
		c.nOut += part.width()
	}
	if c.nOut == 0 {
		return nil, fmt.Errorf("the column transformer outputs no columns")
	}
	return c, nil
}

// columnIndices resolves a ColumnTransformer column selection: an int, a
// list or array of ints, of column names (through feature_names_in_), a
// boolean mask, or a slice of positions or of names.
func columnIndices(v any, p int, names []string) ([]int, error) {
	if o, ok := v.(*pickle.Object); ok && o.Class() == "builtins.slice" {
		return sliceIndices(o, p, names)
	}
	if a, ok := v.(*pickle.NDArray); ok {
		switch a.Dtype.Kind {
		case 'b':
			mask, err := a.Int64s()
			if err != nil {
				return nil, err
			}
			if len(mask) != p {
				return nil, fmt.Errorf("a boolean column mask of %d for %d features", len(mask), p)
			}
			var out []int
			for i, m := range mask {
				if m != 0 {
					out = append(out, i)
				}
			}
			return out, nil
		case 'i', 'u':
			ints, err := a.Int64s()
			if err != nil {
				return nil, err
			}
			items := make([]any, len(ints))
			for i, x := range ints {
				items[i] = x
			}
			v = &pickle.List{Items: items}
		case 'U', 'S', 'O':
			strs, err := a.Strings()
			if err != nil {
				return nil, err
			}
			items := make([]any, len(strs))
			for i, x := range strs {
				items[i] = x
			}
			v = &pickle.List{Items: items}
		default:
			return nil, fmt.Errorf("a column selection of %s", a.Dtype)
		}
	}
	if i, ok := pickle.ToInt(v); ok {
		v = &pickle.List{Items: []any{i}}
	}
	if s, ok := v.(string); ok {
		v = &pickle.List{Items: []any{s}}
	}
	items, ok := sequenceItems(v)
	if !ok {
		return nil, fmt.Errorf("the column selection is a %s, not columns", pickle.TypeName(v))
	}
	out := make([]int, 0, len(items))
	for _, it := range items {
		switch x := it.(type) {
		case string:
			j := slices.Index(names, x)
			if j < 0 {
				return nil, fmt.Errorf("column %q is not among feature_names_in_", x)
			}
			out = append(out, j)
		default:
			i, ok := pickle.ToInt(it)
			if !ok {
				return nil, fmt.Errorf("a column is a %s", pickle.TypeName(it))
			}
			if i < 0 {
				i += int64(p)
			}
			if i < 0 || i >= int64(p) {
				return nil, fmt.Errorf("column %d out of range (%d features)", i, p)
			}
			out = append(out, int(i))
		}
	}
	return out, nil
}

// sliceIndices resolves slice(start, stop, step) over the p columns as
// Python slices a list, or, for a slice of names, from the start name to the
// stop name inclusive, as pandas' .loc (and so sklearn) slices columns.
func sliceIndices(o *pickle.Object, p int, names []string) ([]int, error) {
	if len(o.Args) != 3 {
		return nil, fmt.Errorf("a slice with %d arguments", len(o.Args))
	}
	start, stop, step := o.Args[0], o.Args[1], o.Args[2]
	if s, ok := start.(string); ok || isString(stop) {
		e, _ := stop.(string)
		if !ok && start != nil || !isString(stop) && stop != nil || step != nil {
			return nil, fmt.Errorf("a slice of names takes a start and stop name and no step")
		}
		from, to := 0, p-1
		if ok {
			if from = slices.Index(names, s); from < 0 {
				return nil, fmt.Errorf("column %q is not among feature_names_in_", s)
			}
		}
		if stop != nil {
			if to = slices.Index(names, e); to < 0 {
				return nil, fmt.Errorf("column %q is not among feature_names_in_", e)
			}
		}
		var out []int
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out, nil
	}
	bound := func(v any, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		i, ok := pickle.ToInt(v)
		if !ok || i < -1<<31 || i > 1<<31 {
			return 0, fmt.Errorf("a slice bound is a %s", pickle.TypeName(v))
		}
		return int(i), nil
	}
	st, err := bound(step, 1)
	if err != nil {
		return nil, err
	}
	if st == 0 {
		return nil, fmt.Errorf("a slice step of 0")
	}
	lo, hi := 0, p
	if st < 0 {
		lo, hi = p-1, -1
	}
	a, err := bound(start, lo)
	if err != nil {
		return nil, err
	}
	b, err := bound(stop, hi)
	if err != nil {
		return nil, err
	}
	// Python's slice.indices: negative bounds count from the end, then clamp.
	clamp := func(i int, given bool) int {
		if given && i < 0 {
			i += p
		}
		if st > 0 {
			return min(max(i, 0), p)
		}
		return min(max(i, -1), p-1)
	}
	a, b = clamp(a, start != nil), clamp(b, stop != nil)
	var out []int
	for i := a; (st > 0 && i < b) || (st < 0 && i > b); i += st {
		out = append(out, i)
	}
	return out, nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

// featureUnion joins its transformers' outputs over all columns, each
// multiplied by its weight when transformer_weights names one.
type featureUnion struct {
	nFeatures int
	parts     []Transformer // nil: passthrough
	weights   []float64     // NaN: none
	nOut      int
}

func (f *featureUnion) NumFeatures() int { return f.nFeatures }
func (f *featureUnion) NumOutputs() int  { return f.nOut }

func (f *featureUnion) Transform(X []float64, n int) []float64 {
	out := make([]float64, n*f.nOut)
	at := 0
	for i, t := range f.parts {
		sub, w := X[:n*f.nFeatures], f.nFeatures
		if t != nil {
			sub, w = t.Transform(X, n), t.NumOutputs()
		}
		for r := 0; r < n; r++ {
			dst := out[r*f.nOut+at : r*f.nOut+at+w]
			copy(dst, sub[r*w:(r+1)*w])
			if !math.IsNaN(f.weights[i]) {
				for j := range dst {
					dst[j] *= f.weights[i]
				}
			}
		}
		at += w
	}
	return out
}

func buildFeatureUnion(obj *pickle.Object) (any, error) {
	items, err := obj.Items("transformer_list")
	if err != nil {
		return nil, err
	}
	weights := map[string]float64{}
	if v, ok := obj.Attr("transformer_weights"); ok && v != nil {
		d, ok := v.(*pickle.Dict)
		if !ok {
			return nil, fmt.Errorf("transformer_weights is a %s, not a dict", pickle.TypeName(v))
		}
		for i, k := range d.Keys {
			name, _ := k.(string)
			w, ok := pickle.ToFloat(d.Values[i])
			if !ok {
				return nil, fmt.Errorf("transformer_weights[%q] is not a number", name)
			}
			weights[name] = w
		}
	}
	f := &featureUnion{nFeatures: -1}
	for i, it := range items {
		tup, ok := sequenceItems(it)
		if !ok || len(tup) != 2 {
			return nil, fmt.Errorf("transformer_list[%d] is not (name, transformer)", i)
		}
		name, _ := tup[0].(string)
		var t Transformer
		switch x := tup[1].(type) {
		case string:
			if x == "drop" {
				continue
			}
			if x != "passthrough" {
				return nil, fmt.Errorf("transformer_list[%d] (%s) is %q", i, name, x)
			}
		case *pickle.Object:
			est, err := build(x)
			if err != nil {
				return nil, fmt.Errorf("transformer_list[%d] (%s): %w", i, name, err)
			}
			if t, err = asTransformer(est); err != nil {
				return nil, fmt.Errorf("transformer_list[%d] (%s): %w", i, name, err)
			}
			if f.nFeatures >= 0 && t.NumFeatures() != f.nFeatures {
				return nil, fmt.Errorf("transformer_list[%d] (%s) takes %d features, the others %d", i, name, t.NumFeatures(), f.nFeatures)
			}
			f.nFeatures = t.NumFeatures()
		default:
			return nil, fmt.Errorf("transformer_list[%d] (%s) is a %s", i, name, pickle.TypeName(tup[1]))
		}
		w, ok := weights[name]
		if !ok {
			w = math.NaN()
		}
		f.parts = append(f.parts, t)
		f.weights = append(f.weights, w)
	}
	if f.nFeatures < 0 {
		n, err := nFeaturesIn(obj)
		if err != nil {
			return nil, err
		}
		f.nFeatures = n
	}
	for _, t := range f.parts {
		if t == nil {
			f.nOut += f.nFeatures
		} else {
			f.nOut += t.NumOutputs()
		}
	}
	if f.nOut == 0 {
		return nil, fmt.Errorf("the union outputs no columns")
	}
	return f, nil
}
