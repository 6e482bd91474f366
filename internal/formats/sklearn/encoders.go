package sklearn

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
)

// OneHotEncoder and OrdinalEncoder (scikit-learn 1.2) over number or string
// categories. A string category is looked up by its code in the model's
// vocabulary (text.go), so both encoders compute on the one float64 matrix:
// a feature's categories are kept as sorted values (numbers, or the codes of
// strings once bound) for a binary search, with the permutation back to
// categories_ order when the categories were given out of order (which sklearn
// allows for strings: OrdinalEncoder(categories=[["low", "mid", "high"]])).

// encoderCategories is an encoder's fitted categories, one entry per feature.
type encoderCategories struct {
	// sorted are each feature's categories ascending, NaN (the missing
	// category) last; for a string feature, the codes of its strings.
	sorted [][]float64
	// order[j][i] is sorted[j][i]'s index in categories_[j]; nil when the two
	// orders agree (always for numbers).
	order [][]int
	// text are the string features' categories as fitted, in categories_
	// order (nil for a number feature); bindText turns them into sorted.
	text [][]textCategory
	src  *pickle.Object
}

// textCategory is one string category; missing is sklearn's None or NaN
// category, which a JSON null (NaN) matches.
type textCategory struct {
	s       string
	missing bool
}

func (c *encoderCategories) numFeatures() int { return len(c.sorted) }

// count is how many categories feature j has.
func (c *encoderCategories) count(j int) int { return len(c.sorted[j]) }

// index is x's index in categories_[j], or -1 when it is not a category: an
// unknown string's code (negative) never is.
func (c *encoderCategories) index(j int, x float64) int {
	i := categoryIndex(c.sorted[j], x)
	if i >= 0 && c.order != nil && c.order[j] != nil {
		return c.order[j][i]
	}
	return i
}

// isMissing reports whether categories_[j][idx] is the missing category.
func (c *encoderCategories) isMissing(j, idx int) bool {
	if c.text != nil && c.text[j] != nil {
		return c.text[j][idx].missing
	}
	return math.IsNaN(c.sorted[j][idx])
}

// checkKnown refuses a value that is not a fitted category, as sklearn does
// with handle_unknown="error".
func (c *encoderCategories) checkKnown(X []float64, n int) error {
	p := len(c.sorted)
	for i, x := range X[:n*p] {
		if categoryIndex(c.sorted[i%p], x) < 0 {
			return &unknownCategoryError{row: i / p, column: i % p, value: x}
		}
	}
	return nil
}

// unknownCategoryError is a value an encoder with handle_unknown="error" does
// not know. The model rewrites it, for a string column, with the string and
// the column's name (text.go); for numbers it says enough as it is.
type unknownCategoryError struct {
	row, column int
	value       float64
}

func (e *unknownCategoryError) Error() string {
	return fmt.Sprintf("input row %d: %s is not a known category of the encoder's column %d (handle_unknown='error')",
		e.row, strconv.FormatFloat(e.value, 'g', -1, 64), e.column)
}

func (e *unknownCategoryError) Is(target error) bool { return target == model.ErrInvalidInput }

// textValues lists the string categories, for the model's vocabulary.
func (c *encoderCategories) textValues() []string {
	var out []string
	for _, feature := range c.text {
		for _, t := range feature {
			if !t.missing {
				out = append(out, t.s)
			}
		}
	}
	return out
}

func (c *encoderCategories) source() *pickle.Object { return c.src }

// bindText sets each string feature's sorted codes and their order.
func (c *encoderCategories) bindText(v *vocabulary) {
	if c.order == nil {
		c.order = make([][]int, len(c.sorted))
	}
	for j, feature := range c.text {
		if feature == nil {
			continue
		}
		codes := make([]float64, len(feature))
		for i, t := range feature {
			codes[i] = math.NaN()
			if !t.missing {
				codes[i], _ = v.code(t.s) // every textValue is in v
			}
		}
		perm := make([]int, len(codes))
		for i := range perm {
			perm[i] = i
		}
		sort.SliceStable(perm, func(a, b int) bool { return lessNaNLast(codes[perm[a]], codes[perm[b]]) })
		c.sorted[j] = make([]float64, len(codes))
		inOrder := true
		for i, p := range perm {
			c.sorted[j][i] = codes[p]
			inOrder = inOrder && p == i
		}
		if !inOrder {
			c.order[j] = perm
		}
	}
}

// lessNaNLast orders numbers ascending with NaN after them, as numpy sorts.
func lessNaNLast(a, b float64) bool {
	if math.IsNaN(a) {
		return false
	}
	return math.IsNaN(b) || a < b
}

// columnKinds: a string feature takes strings; every output is a number.
func (c *encoderCategories) inputKinds() []columnKind {
	kinds := make([]columnKind, len(c.sorted))
	for j := range kinds {
		if c.text != nil && c.text[j] != nil {
			kinds[j] = kindText
		}
	}
	return kinds
}

// readCategories reads an encoder's categories_: per feature, sorted numbers
// (NaN, a category of its own, last), or strings in any order with at most
// one missing (None or NaN) category.
func readCategories(obj *pickle.Object) (*encoderCategories, error) {
	items, err := obj.Items("categories_")
	if err != nil {
		return nil, err
	}
	c := &encoderCategories{sorted: make([][]float64, len(items)), src: obj}
	for i, it := range items {
		a, ok := it.(*pickle.NDArray)
		if !ok {
			return nil, fmt.Errorf("categories_[%d] is a %s, not an array", i, pickle.TypeName(it))
		}
		if a.Len() == 0 {
			return nil, fmt.Errorf("categories_[%d] is empty", i)
		}
		if strs, ok, err := textCategories(a); err != nil {
			return nil, fmt.Errorf("categories_[%d]: %w", i, err)
		} else if ok {
			if c.text == nil {
				c.text = make([][]textCategory, len(items))
			}
			c.text[i] = strs
			c.sorted[i] = make([]float64, len(strs)) // codes once bound
			continue
		}
		switch a.Dtype.Kind {
		case 'f', 'i', 'u', 'b', 'O':
		default:
			return nil, fmt.Errorf("categories_[%d] are %s values, not numbers or strings", i, a.Dtype)
		}
		v, err := a.Float64s()
		if err != nil {
			return nil, fmt.Errorf("categories_[%d]: %w", i, err)
		}
		for j := 1; j < len(v); j++ {
			if !(v[j] > v[j-1]) && !(math.IsNaN(v[j]) && j == len(v)-1) {
				return nil, fmt.Errorf("categories_[%d] are not sorted and unique", i)
			}
		}
		c.sorted[i] = v
	}
	return c, nil
}

// textCategories reads a feature's categories when they are strings (numpy
// 'U' or an object array holding a string); ok is false for numbers.
func textCategories(a *pickle.NDArray) ([]textCategory, bool, error) {
	switch a.Dtype.Kind {
	case 'U':
		strs, err := a.Strings()
		if err != nil {
			return nil, false, err
		}
		out := make([]textCategory, len(strs))
		for i, s := range strs {
			out[i].s = s
		}
		return out, true, checkUniqueText(out)
	case 'O':
	default:
		return nil, false, nil
	}
	if len(a.Objects) != a.Len() || !holdsString(a.Objects) {
		return nil, false, nil
	}
	out := make([]textCategory, len(a.Objects))
	for i, o := range a.Objects {
		switch v := o.(type) {
		case string:
			out[i].s = v
		case nil:
			out[i].missing = true
		default:
			if f, ok := pickle.ToFloat(o); ok && math.IsNaN(f) {
				out[i].missing = true
				continue
			}
			return nil, false, fmt.Errorf("mixes strings and %s values; sklearn's encoders need one or the other", pickle.TypeName(o))
		}
	}
	return out, true, checkUniqueText(out)
}

func holdsString(objs []any) bool {
	for _, o := range objs {
		if _, ok := o.(string); ok {
			return true
		}
	}
	return false
}

func checkUniqueText(cats []textCategory) error {
	seen := make(map[textCategory]bool, len(cats))
	for _, t := range cats {
		if t.missing {
			t.s = ""
		}
		if seen[t] {
			if t.missing {
				return fmt.Errorf("has both None and NaN as categories; a JSON null could not choose between them")
			}
			return fmt.Errorf("lists %q twice", model.ShortName(t.s))
		}
		seen[t] = true
	}
	return nil
}

// categoryIndex is a value's index in sorted values (as np.searchsorted over
// uniques with NaN last), or -1 when it is not among them.
func categoryIndex(cats []float64, x float64) int {
	if math.IsNaN(x) {
		if last := cats[len(cats)-1]; math.IsNaN(last) {
			return len(cats) - 1
		}
		return -1
	}
	i := sort.Search(len(cats), func(i int) bool { return !(cats[i] < x) })
	if i < len(cats) && cats[i] == x {
		return i
	}
	return -1
}

// oneHotEncoder is a fitted OneHotEncoder.
type oneHotEncoder struct {
	encoderCategories
	drop   []int // per feature: the dropped category, or -1
	ignore bool  // handle_unknown="ignore" or "infrequent_if_exist"
	widths []int
	nOut   int
	// Infrequent categories (min_frequency, max_categories): per feature, the
	// infrequent categories' indices (nil: none) and the mapping of category
	// indices to output columns that groups them.
	infrequent          [][]int64
	mapping             [][]int64
	unknownToInfrequent bool // handle_unknown="infrequent_if_exist"
}

func (e *oneHotEncoder) NumFeatures() int { return e.numFeatures() }
func (e *oneHotEncoder) NumOutputs() int  { return e.nOut }

// AcceptsNonFinite: the encoders validate with force_all_finite="allow-nan";
// NaN is a category when it was seen in fit, and otherwise unknown.
func (e *oneHotEncoder) AcceptsNonFinite() (nan, inf bool) { return true, false }

func (e *oneHotEncoder) checkInput(X []float64, n int) error {
	if e.ignore {
		return nil
	}
	return e.checkKnown(X, n)
}

func (e *oneHotEncoder) columnKinds(users *[]textUser) (in, out []columnKind, err error) {
	if e.text != nil {
		*users = append(*users, e)
	}
	return e.inputKinds(), make([]columnKind, e.nOut), nil
}

// group maps a category index (-1: unknown) to its output index as
// _map_infrequent_categories does: an unknown value of a feature with
// infrequent categories becomes the first of them (and, with
// infrequent_if_exist, counts as known), then the grouping mapping applies.
func (e *oneHotEncoder) group(j, idx int) (int, bool) {
	known := idx >= 0
	if e.infrequent != nil && e.infrequent[j] != nil {
		if !known {
			idx = int(e.infrequent[j][0])
			if e.unknownToInfrequent {
				known = true
			}
		}
	}
	if e.mapping != nil && e.mapping[j] != nil && idx >= 0 {
		idx = int(e.mapping[j][idx])
	}
	return idx, known
}

func (e *oneHotEncoder) Transform(X []float64, n int) []float64 {
	p := e.numFeatures()
	out := make([]float64, n*e.nOut)
	for r := 0; r < n; r++ {
		at := 0
		for j := 0; j < p; j++ {
			idx, known := e.group(j, e.index(j, X[r*p+j]))
			if known && idx != e.drop[j] {
				if e.drop[j] >= 0 && idx > e.drop[j] {
					idx--
				}
				out[r*e.nOut+at+idx] = 1
			}
			at += e.widths[j]
		}
	}
	return out
}

func buildOneHotEncoder(obj *pickle.Object) (any, error) {
	cats, err := readCategories(obj)
	if err != nil {
		return nil, err
	}
	p := cats.numFeatures()
	if err := checkFeatureCount(obj, p, "categories_"); err != nil {
		return nil, err
	}
	e := &oneHotEncoder{encoderCategories: *cats, drop: make([]int, p)}
	handle, err := obj.String("handle_unknown")
	if err != nil {
		return nil, err
	}
	switch handle {
	case "error":
	case "ignore":
		e.ignore = true
	case "infrequent_if_exist":
		e.ignore, e.unknownToInfrequent = true, true
	default:
		return nil, fmt.Errorf("handle_unknown %q is not error, ignore or infrequent_if_exist", handle)
	}
	if on, _ := obj.Attr("_infrequent_enabled"); on == true {
		if e.infrequent, err = indexLists(obj, "_infrequent_indices", &e.encoderCategories, false); err != nil {
			return nil, err
		}
		if e.mapping, err = indexLists(obj, "_default_to_infrequent_mappings", &e.encoderCategories, true); err != nil {
			return nil, err
		}
	}
	for j := range e.drop {
		e.drop[j] = -1
	}
	if v, ok := obj.Attr("drop_idx_"); ok && v != nil {
		a, ok := v.(*pickle.NDArray)
		if !ok || a.Len() != p {
			return nil, fmt.Errorf("drop_idx_ is not one entry per feature")
		}
		for j := 0; j < p; j++ {
			var d any
			if a.Dtype.Kind == 'O' {
				d = a.Objects[j]
			} else {
				ints, err := a.Int64s()
				if err != nil {
					return nil, fmt.Errorf("drop_idx_: %w", err)
				}
				d = ints[j]
			}
			if d == nil {
				continue // drop='if_binary' on a feature that is not binary
			}
			i, ok := pickle.ToInt(d)
			if !ok || i < 0 || i >= int64(e.count(j)) {
				return nil, fmt.Errorf("drop_idx_[%d] out of range", j)
			}
			e.drop[j] = int(i)
		}
	}
	outs, haveOuts := obj.Attr("_n_features_outs")
	outItems, _ := sequenceItems(outs)
	if haveOuts && len(outItems) != p {
		return nil, fmt.Errorf("_n_features_outs has %d entries for %d features", len(outItems), p)
	}
	for j := 0; j < p; j++ {
		w := e.count(j)
		if e.drop[j] >= 0 {
			w--
		}
		if haveOuts { // the fitted widths, infrequent groups counted
			n, ok := pickle.ToInt(outItems[j])
			if !ok || n < 0 || n > int64(e.count(j)) {
				return nil, fmt.Errorf("_n_features_outs[%d] is not a width of %d categories", j, e.count(j))
			}
			w = int(n)
		}
		e.widths = append(e.widths, w)
		e.nOut += w
	}
	// Every output index the grouping and drop can make must fall in its
	// feature's columns.
	for j := 0; j < p; j++ {
		for idx := -1; idx < e.count(j); idx++ {
			g, known := e.group(j, idx)
			if !known || g == e.drop[j] {
				continue
			}
			if e.drop[j] >= 0 && g > e.drop[j] {
				g--
			}
			if g < 0 || g >= e.widths[j] {
				return nil, fmt.Errorf("category %d of feature %d maps to column %d of %d", idx, j, g, e.widths[j])
			}
		}
	}
	return e, nil
}

// indexLists reads a per-feature list of index arrays (None: nil), each
// index below the feature's category count (mapping: one per category).
func indexLists(obj *pickle.Object, name string, cats *encoderCategories, mapping bool) ([][]int64, error) {
	items, err := obj.Items(name)
	if err != nil {
		return nil, err
	}
	if len(items) != cats.numFeatures() {
		return nil, fmt.Errorf("%s has %d entries for %d features", name, len(items), cats.numFeatures())
	}
	out := make([][]int64, len(items))
	for j, it := range items {
		if it == nil {
			continue
		}
		a, ok := it.(*pickle.NDArray)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is a %s", name, j, pickle.TypeName(it))
		}
		v, err := a.Int64s()
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, j, err)
		}
		if (mapping && len(v) != cats.count(j)) || (!mapping && len(v) == 0) {
			return nil, fmt.Errorf("%s[%d] has %d entries for %d categories", name, j, len(v), cats.count(j))
		}
		for _, x := range v {
			if x < 0 || x >= int64(cats.count(j)) {
				return nil, fmt.Errorf("%s[%d]: index %d out of range", name, j, x)
			}
		}
		out[j] = v
	}
	return out, nil
}

// ordinalEncoder is a fitted OrdinalEncoder.
type ordinalEncoder struct {
	encoderCategories
	useUnknown     bool
	unknownValue   float64
	encodedMissing float64
}

func (e *ordinalEncoder) NumFeatures() int { return e.numFeatures() }
func (e *ordinalEncoder) NumOutputs() int  { return e.numFeatures() }

// AcceptsNonFinite: validated with force_all_finite="allow-nan".
func (e *ordinalEncoder) AcceptsNonFinite() (nan, inf bool) { return true, false }

func (e *ordinalEncoder) checkInput(X []float64, n int) error {
	if e.useUnknown {
		return nil
	}
	return e.checkKnown(X, n)
}

func (e *ordinalEncoder) columnKinds(users *[]textUser) (in, out []columnKind, err error) {
	if e.text != nil {
		*users = append(*users, e)
	}
	return e.inputKinds(), make([]columnKind, e.numFeatures()), nil
}

func (e *ordinalEncoder) Transform(X []float64, n int) []float64 {
	p := e.numFeatures()
	out := make([]float64, n*p)
	for i, x := range X[:n*p] {
		j := i % p
		idx := e.index(j, x)
		switch {
		case idx < 0:
			out[i] = e.unknownValue
		case e.isMissing(j, idx):
			// sklearn 1.2 encodes the missing category as encoded_missing_value
			// (NaN unless set), never as its index.
			out[i] = e.encodedMissing
		default:
			out[i] = float64(idx)
		}
	}
	return out
}

func buildOrdinalEncoder(obj *pickle.Object) (any, error) {
	cats, err := readCategories(obj)
	if err != nil {
		return nil, err
	}
	if err := checkFeatureCount(obj, cats.numFeatures(), "categories_"); err != nil {
		return nil, err
	}
	e := &ordinalEncoder{encoderCategories: *cats, encodedMissing: math.NaN()}
	handle, err := obj.String("handle_unknown")
	if err != nil {
		return nil, err
	}
	switch handle {
	case "error":
	case "use_encoded_value":
		e.useUnknown = true
		v, _ := obj.Attr("unknown_value")
		f, ok := pickle.ToFloat(v)
		if !ok {
			return nil, fmt.Errorf("unknown_value is a %s, not a number", pickle.TypeName(v))
		}
		e.unknownValue = f
	default:
		return nil, fmt.Errorf("handle_unknown %q is not error or use_encoded_value", handle)
	}
	if v, ok := obj.Attr("encoded_missing_value"); ok && v != nil {
		f, ok := pickle.ToFloat(v)
		if !ok {
			return nil, fmt.Errorf("encoded_missing_value is a %s, not a number", pickle.TypeName(v))
		}
		e.encodedMissing = f
	}
	return e, nil
}
