package sklearn

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// String columns.
//
// A pipeline fitted on a DataFrame often takes strings: a merchant category,
// a country, a device, one-hot or ordinal encoded, their gaps imputed with the
// most frequent string or a constant. Every estimator here computes on one
// float64 matrix, so a string travels through the model as its code: its
// index in the model's vocabulary, the sorted set of every string the model's
// encoders and imputers know. A missing value (JSON null) is NaN, as pandas
// reads a missing string; a string the vocabulary lacks gets a negative code
// of its own, which no encoder knows, so it is an unknown category wherever
// it arrives.
//
// Which input columns hold strings is the encoders' and imputers' to say. The
// model asks its pipeline what kind of column each step takes and gives
// (columnKinds), which also refuses a pipeline that would hand strings to a
// step that computes on numbers. Such a model takes one input per column:
// BYTES for strings, FP64 for numbers, as MLServer's pandas codec sends a
// DataFrame.

// columnKind is what a column holds.
type columnKind uint8

const (
	kindNumber columnKind = iota // the zero value: what every estimator takes
	kindText
	kindUnused // a column the model drops: any value is accepted and ignored
)

// textUser is an encoder or imputer fitted on strings.
type textUser interface {
	// textValues are the strings it knows (categories, statistics, marker).
	textValues() []string
	// bindText turns them into codes of the model's vocabulary.
	bindText(v *vocabulary)
	// source is the pickled object it was built from, so that the loader can
	// tell that every string-fitted object in the file was reached.
	source() *pickle.Object
}

// kindedTransformer is a transformer that knows what kinds of columns it
// takes and gives, appending the text users it holds to users. A transformer
// without it takes and gives numbers.
type kindedTransformer interface {
	columnKinds(users *[]textUser) (in, out []columnKind, err error)
}

func kindsOf(t Transformer, users *[]textUser) (in, out []columnKind, err error) {
	if k, ok := t.(kindedTransformer); ok {
		return k.columnKinds(users)
	}
	return make([]columnKind, t.NumFeatures()), make([]columnKind, t.NumOutputs()), nil
}

// chainKinds checks that each step takes the kinds of columns the step
// before it gives, and returns what the chain takes and gives.
func chainKinds(steps []namedTransformer, users *[]textUser) (in, out []columnKind, err error) {
	from := ""
	for i, s := range steps {
		sin, sout, err := kindsOf(s.Transformer, users)
		if err != nil {
			return nil, nil, err
		}
		if i == 0 {
			in = sin
		} else if err := fits(out, sin, from, s.name); err != nil {
			return nil, nil, err
		}
		out, from = sout, s.name
	}
	return in, out, nil
}

// fits checks what step to takes against what step from gives.
func fits(given, taken []columnKind, from, to string) error {
	for c, k := range taken {
		if c >= len(given) || k == kindUnused || given[c] == k || given[c] == kindUnused {
			continue
		}
		if k == kindText {
			return fmt.Errorf("step %q takes strings in column %d but step %q gives numbers there", to, c, from)
		}
		return fmt.Errorf("step %q computes on numbers but step %q gives it strings in column %d; encode them first (OneHotEncoder, OrdinalEncoder)", to, from, c)
	}
	return nil
}

// modelKinds is what kind of column each of a built model's inputs is.
func modelKinds(est any, users *[]textUser) ([]columnKind, error) {
	switch e := est.(type) {
	case *pipeline:
		if len(e.transforms) == 0 {
			return make([]columnKind, numFeatures(e.final)), nil
		}
		in, out, err := chainKinds(e.transforms, users)
		if err != nil {
			return nil, err
		}
		last := e.transforms[len(e.transforms)-1].name
		if e.final == nil {
			return in, numericOutput(out, last)
		}
		return in, fits(out, make([]columnKind, len(out)), last, e.finalName)
	case Transformer:
		in, out, err := kindsOf(e, users)
		if err != nil {
			return nil, err
		}
		return in, numericOutput(out, "")
	}
	return make([]columnKind, numFeatures(est)), nil
}

// numericOutput refuses a transformer-only model that would answer with the
// codes of strings.
func numericOutput(out []columnKind, step string) error {
	for c, k := range out {
		if k == kindText {
			if step != "" {
				step = fmt.Sprintf("step %q ", step)
			}
			return fmt.Errorf("%sgives strings in column %d as the model's output; a served pipeline ends in numbers (an encoder or an estimator)", step, c)
		}
	}
	return nil
}

func (t pipelineTransformer) columnKinds(users *[]textUser) (in, out []columnKind, err error) {
	return chainKinds(t.p.transforms, users)
}

// columnKinds: each part decides for its columns; a column two parts take
// as different kinds is an error, one no part takes is unused, and a
// passthrough column gives what it is.
func (c *columnTransformer) columnKinds(users *[]textUser) (in, out []columnKind, err error) {
	in = make([]columnKind, c.nFeatures)
	for j := range in {
		in[j] = kindUnused
	}
	takenBy := make([]string, c.nFeatures)
	parts := make([][]columnKind, len(c.parts))
	for i, part := range c.parts {
		if part.t == nil {
			continue
		}
		pin, pout, err := kindsOf(part.t, users)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", part.name, err)
		}
		parts[i] = pout
		for j, col := range part.columns {
			k := pin[j]
			if k == kindUnused {
				continue
			}
			if in[col] != kindUnused && in[col] != k {
				return nil, nil, fmt.Errorf("column %s is taken as %s by %q and as %s by %q", c.columnName(col), k, takenBy[col], in[col], part.name)
			}
			in[col], takenBy[col] = k, part.name
		}
	}
	for _, part := range c.parts {
		if part.t != nil {
			continue
		}
		for _, col := range part.columns {
			if in[col] == kindUnused {
				in[col] = kindNumber
			}
		}
	}
	for i, part := range c.parts {
		if part.t != nil {
			out = append(out, parts[i]...)
			continue
		}
		for _, col := range part.columns {
			out = append(out, in[col])
		}
	}
	return in, out, nil
}

func (c *columnTransformer) columnName(col int) string {
	if col < len(c.features) {
		return strconv.Quote(c.features[col])
	}
	return strconv.Itoa(col)
}

func (k columnKind) String() string {
	switch k {
	case kindText:
		return "strings"
	case kindUnused:
		return "unused"
	}
	return "numbers"
}

// columnKinds: every part takes all the columns, so they must agree.
func (f *featureUnion) columnKinds(users *[]textUser) (in, out []columnKind, err error) {
	in = make([]columnKind, f.nFeatures)
	for j := range in {
		in[j] = kindUnused
	}
	var outs [][]columnKind
	for _, t := range f.parts {
		if t == nil {
			outs = append(outs, nil)
			continue
		}
		pin, pout, err := kindsOf(t, users)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, pout)
		for j, k := range pin {
			if k == kindUnused {
				continue
			}
			if in[j] != kindUnused && in[j] != k {
				return nil, nil, fmt.Errorf("the union's transformers take column %d as both %s and %s", j, in[j], k)
			}
			in[j] = k
		}
	}
	for j := range in {
		if in[j] == kindUnused {
			in[j] = kindNumber
		}
	}
	for _, o := range outs {
		if o == nil { // passthrough
			o = in
		}
		out = append(out, o...)
	}
	return in, out, nil
}

// vocabulary is every string a model's encoders and imputers know, sorted; a
// string's code is its index.
type vocabulary struct {
	strings []string
	codes   map[string]float64
}

func newVocabulary(users []textUser) *vocabulary {
	set := map[string]bool{}
	for _, u := range users {
		for _, s := range u.textValues() {
			set[s] = true
		}
	}
	v := &vocabulary{strings: make([]string, 0, len(set)), codes: make(map[string]float64, len(set))}
	for s := range set {
		v.strings = append(v.strings, s)
	}
	sort.Strings(v.strings)
	for i, s := range v.strings {
		v.codes[s] = float64(i)
	}
	return v
}

func (v *vocabulary) code(s string) (float64, bool) {
	c, ok := v.codes[s]
	return c, ok
}

// unknownStrings gives each string a request sends that the vocabulary lacks
// a code of its own, -1, -2, …, so that an error can name it.
type unknownStrings struct {
	codes   map[string]float64
	strings []string
}

func (u *unknownStrings) code(b []byte) float64 {
	if c, ok := u.codes[string(b)]; ok {
		return c
	}
	if u.codes == nil {
		u.codes = map[string]float64{}
	}
	u.strings = append(u.strings, string(b))
	c := -float64(len(u.strings))
	u.codes[string(b)] = c
	return c
}

// columnsInput assembles a one-input-per-column request into the model's
// matrix: numbers as they are, strings as codes, null (a nil element) as NaN.
// The inputs are in Metadata order (the server matches them by name).
func (m *estimatorModel) columnsInput(inputs []*tensor.Tensor, unknown *unknownStrings) ([]float64, int, error) {
	specs := m.meta.Inputs
	if len(inputs) != len(specs) {
		return nil, 0, model.InvalidInputf("want one input per column (%s), got %d inputs", specNames(specs), len(inputs))
	}
	p := len(specs)
	var X []float64
	n := -1
	for c, t := range inputs {
		if t == nil || t.Name != specs[c].Name {
			return nil, 0, model.InvalidInputf("input %d: want column %q", c, specs[c].Name)
		}
		rows, err := model.ColumnRows(t, int64(n), specs[0].Name)
		if err != nil {
			return nil, 0, err
		}
		if n < 0 {
			n, X = int(rows), make([]float64, int(rows)*p)
		}
		switch m.columns[c] {
		case kindUnused: // dropped by the model: any datatype, never read
		case kindText:
			b, ok := t.Data.([][]byte)
			if !ok {
				return nil, 0, model.InvalidInputf("input %q takes strings (BYTES), got %s", t.Name, t.Datatype)
			}
			for r, s := range b {
				x := math.NaN()
				if s != nil {
					var known bool
					if x, known = m.vocab.codes[string(s)]; !known {
						x = unknown.code(s)
					}
				}
				X[r*p+c] = x
			}
		default:
			f, err := model.ColumnNumbers(t)
			if err != nil {
				return nil, 0, err
			}
			for r, x := range f {
				X[r*p+c] = x
			}
		}
	}
	return X, n, nil
}

// explainUnknown rewrites an encoder's unknown-category error about a string
// column with the column's name and the string sent.
func (m *estimatorModel) explainUnknown(err error, X []float64, unknown *unknownStrings) error {
	var uc *unknownCategoryError
	if m.columns == nil || !errors.As(err, &uc) {
		return err
	}
	p := len(m.columns)
	if uc.row < 0 || (uc.row+1)*p > len(X) {
		return err
	}
	for c, k := range m.columns {
		x := X[uc.row*p+c]
		if k != kindText || !(x == uc.value || (math.IsNaN(x) && math.IsNaN(uc.value))) {
			continue
		}
		what := "null (a missing value)"
		switch {
		case x < 0 && int(-x) <= len(unknown.strings):
			what = strconv.Quote(model.ShortName(unknown.strings[int(-x)-1]))
		case x >= 0 && int(x) < len(m.vocab.strings):
			what = strconv.Quote(model.ShortName(m.vocab.strings[int(x)]))
		}
		return model.InvalidInputf("input row %d, column %q: %s is not a known category (handle_unknown='error')", uc.row, m.meta.Features[c], what)
	}
	return err
}

// bindColumns decides the model's inputs: one per column when any of its
// columns holds strings, else today's single numeric matrix.
func (m *estimatorModel) bindColumns(est any) error {
	var users []textUser
	kinds, err := modelKinds(est, &users)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return nil
	}
	if len(kinds) != m.nFeatures {
		return fmt.Errorf("the model's columns (%d) and features (%d) disagree", len(kinds), m.nFeatures)
	}
	m.vocab = newVocabulary(users)
	for _, u := range users {
		u.bindText(m.vocab)
	}
	m.columns, m.textUsers = kinds, users
	m.meta.Inputs = make([]model.TensorSpec, len(kinds))
	for c, k := range kinds {
		dt := tensor.FP64
		if k == kindText {
			dt = tensor.Bytes
		}
		m.meta.Inputs[c] = model.TensorSpec{Name: m.meta.Features[c], Datatype: dt, Shape: []int64{-1}, Unused: k == kindUnused}
	}
	return nil
}

// checkTextReached refuses a file with a string-fitted encoder or imputer the
// model's columns do not lead to (inside a VotingClassifier's pipeline, say):
// its strings would never be sent to it as codes.
func checkTextReached(v any, m *estimatorModel) error {
	reached := map[*pickle.Object]bool{}
	for _, u := range m.textUsers {
		reached[u.source()] = true
	}
	var missed *pickle.Object
	pickle.Walk(v, func(x any) {
		if o, ok := x.(*pickle.Object); ok && missed == nil && !reached[o] && fittedOnText(o) {
			missed = o
		}
	})
	if missed != nil {
		return fmt.Errorf("a %s fitted on strings sits where the model's input columns do not reach it; string columns are served through a Pipeline or ColumnTransformer in front of the estimator", missed.Name)
	}
	return nil
}

// fittedOnText reports whether o is an encoder or imputer fitted on strings.
func fittedOnText(o *pickle.Object) bool {
	switch o.Class() {
	case "sklearn.preprocessing._encoders.OneHotEncoder", "sklearn.preprocessing._encoders.OrdinalEncoder":
		items, err := o.Items("categories_")
		if err != nil {
			return false
		}
		for _, it := range items {
			if a, ok := it.(*pickle.NDArray); ok {
				if _, text, _ := textCategories(a); text {
					return true
				}
			}
		}
	case "sklearn.impute._base.SimpleImputer":
		mv, _ := o.Attr("missing_values")
		text, _ := imputedText(o, mv)
		return text
	}
	return false
}

// imputedText reports whether a SimpleImputer fitted on an object column
// imputes strings: its statistics or its missing marker are strings.
func imputedText(obj *pickle.Object, missingValues any) (bool, error) {
	if _, ok := missingValues.(string); ok {
		return true, nil
	}
	v, ok := obj.Attr("statistics_")
	if !ok {
		return false, nil
	}
	a, ok := v.(*pickle.NDArray)
	if !ok || a.Dtype.Kind != 'O' {
		return false, nil
	}
	return holdsString(a.Objects), nil
}

// buildTextImputer finishes a SimpleImputer fitted on strings: most_frequent
// or constant, its statistics and marker bound to codes later.
func buildTextImputer(obj *pickle.Object, s *simpleImputer) (any, error) {
	strategy, err := stringAttr(obj, "strategy")
	if err != nil {
		return nil, err
	}
	if strategy != "most_frequent" && strategy != "constant" {
		return nil, fmt.Errorf("strategy %q on strings: only most_frequent and constant impute strings", strategy)
	}
	a, err := arrayAttr(obj, "statistics_")
	if err != nil {
		return nil, err
	}
	if a.Dtype.Kind != 'O' || len(a.Shape) != 1 || len(a.Objects) != a.Len() {
		return nil, fmt.Errorf("statistics_ is not one object per feature")
	}
	switch {
	case s.nFeatures < 0:
		s.nFeatures = a.Len()
	case a.Len() != s.nFeatures:
		return nil, fmt.Errorf("statistics_ has %d values for %d features", a.Len(), s.nFeatures)
	}
	keepEmpty := false
	if _, ok := obj.Attr("keep_empty_features"); ok {
		if keepEmpty, err = boolAttr(obj, "keep_empty_features"); err != nil {
			return nil, err
		}
	}
	t := &imputerText{src: obj}
	for c, o := range a.Objects {
		stat, err := textScalar(o)
		if err != nil {
			return nil, fmt.Errorf("statistics_[%d] %w", c, err)
		}
		if strategy == "constant" || keepEmpty || !stat.missing {
			s.keep = append(s.keep, c)
			t.stats = append(t.stats, stat)
		}
	}
	mv, _ := obj.Attr("missing_values")
	if t.marker, err = textScalar(mv); err != nil {
		return nil, fmt.Errorf("missing_values %w", err)
	}
	s.missingNaN = t.marker.missing
	s.fill = make([]float64, len(s.keep))
	s.text = t
	if s.indicator, err = imputerIndicator(obj, s.nFeatures); err != nil {
		return nil, err
	}
	if len(s.keep)+len(s.indicator) == 0 {
		return nil, fmt.Errorf("every feature was empty at fit time: the imputer outputs nothing")
	}
	return s, nil
}

// textScalar reads a string, or None/NaN as the missing value.
func textScalar(v any) (textCategory, error) {
	switch x := v.(type) {
	case string:
		return textCategory{s: x}, nil
	case nil:
		return textCategory{missing: true}, nil
	}
	if f, ok := pickle.ToFloat(v); ok && math.IsNaN(f) {
		return textCategory{missing: true}, nil
	}
	return textCategory{}, fmt.Errorf("is a %s among strings; impute numbers and strings in separate columns", pickle.TypeName(v))
}

func (s *simpleImputer) textValues() []string {
	var out []string
	for _, t := range append(s.text.stats, s.text.marker) {
		if !t.missing {
			out = append(out, t.s)
		}
	}
	return out
}

func (s *simpleImputer) bindText(v *vocabulary) {
	for j, t := range s.text.stats {
		s.fill[j] = math.NaN()
		if !t.missing {
			s.fill[j], _ = v.code(t.s)
		}
	}
	if !s.text.marker.missing {
		s.missing, _ = v.code(s.text.marker.s)
	}
}

func (s *simpleImputer) source() *pickle.Object { return s.text.src }

// columnKinds: a string imputer takes and gives strings (its indicator
// columns are numbers); a numeric one, numbers.
func (s *simpleImputer) columnKinds(users *[]textUser) (in, out []columnKind, err error) {
	in, out = make([]columnKind, s.nFeatures), make([]columnKind, s.NumOutputs())
	if s.text == nil {
		return in, out, nil
	}
	*users = append(*users, s)
	for j := range in {
		in[j] = kindText
	}
	for j := range s.keep {
		out[j] = kindText
	}
	return in, out, nil
}
