package sklearn

import (
	"fmt"
	"math"
	"sort"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/pickle"
)

// More preprocessing transformers, each written from scikit-learn 1.2's
// transform with its operations in its order: Binarizer, Normalizer,
// PolynomialFeatures, KBinsDiscretizer (ordinal and one-hot, dense),
// PowerTransformer (Yeo-Johnson, Box-Cox) and QuantileTransformer.

func init() {
	register("sklearn.preprocessing._data.Binarizer", buildBinarizer)
	register("sklearn.preprocessing._data.Normalizer", buildNormalizer)
	register("sklearn.preprocessing._polynomial.PolynomialFeatures", buildPolynomialFeatures)
	register("sklearn.preprocessing._discretization.KBinsDiscretizer", buildKBinsDiscretizer)
	register("sklearn.preprocessing._data.PowerTransformer", buildPowerTransformer)
	register("sklearn.preprocessing._data.QuantileTransformer", buildQuantileTransformer)
	// KBinsDiscretizer keeps the one-hot encoder of its bins, recorded only.
	allowHelper("sklearn.preprocessing._encoders.OneHotEncoder")
}

// binarizer maps x to 1 where x > threshold, else 0.
type binarizer struct {
	nFeatures int
	threshold float64
}

func (b *binarizer) NumFeatures() int { return b.nFeatures }
func (b *binarizer) NumOutputs() int  { return b.nFeatures }
func (b *binarizer) Transform(X []float64, n int) []float64 {
	out := make([]float64, n*b.nFeatures)
	for i, x := range X[:n*b.nFeatures] {
		if x > b.threshold {
			out[i] = 1
		}
	}
	return out
}

func buildBinarizer(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	t, err := obj.Float("threshold")
	if err != nil {
		return nil, err
	}
	return &binarizer{nFeatures: p, threshold: t}, nil
}

// normalizer scales each row to unit l1, l2 or max norm (a zero, or tiny,
// norm leaves the row as it is).
type normalizer struct {
	nFeatures int
	norm      string
}

func (z *normalizer) NumFeatures() int { return z.nFeatures }
func (z *normalizer) NumOutputs() int  { return z.nFeatures }
func (z *normalizer) Transform(X []float64, n int) []float64 {
	p := z.nFeatures
	out := make([]float64, n*p)
	copy(out, X[:n*p])
	tmp := make([]float64, p)
	for r := 0; r < n; r++ {
		row := out[r*p : (r+1)*p]
		var norm float64
		switch z.norm {
		case "l1":
			for j, x := range row {
				tmp[j] = math.Abs(x)
			}
			norm = pairwiseSum(tmp)
		case "l2":
			// row_norms: sqrt(einsum("ij,ij->i")), a plain running sum.
			for _, x := range row {
				norm += x * x
			}
			norm = math.Sqrt(norm)
		case "max":
			for _, x := range row {
				norm = math.Max(norm, math.Abs(x))
			}
		}
		if norm < 10*epsilon64 { // _handle_zeros_in_scale
			norm = 1
		}
		for j := range row {
			row[j] /= norm
		}
	}
	return out
}

func buildNormalizer(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	norm, err := obj.String("norm")
	if err != nil {
		return nil, err
	}
	if norm != "l1" && norm != "l2" && norm != "max" {
		return nil, fmt.Errorf("norm %q is not l1, l2 or max", norm)
	}
	return &normalizer{nFeatures: p, norm: norm}, nil
}

// polynomialFeatures expands rows into their monomials up to a degree, in
// sklearn's column order, each higher-degree column the product of a
// lower-degree one and one input, as sklearn's dense transform builds it.
type polynomialFeatures struct {
	nFeatures       int
	minDeg, maxDeg  int
	interactionOnly bool
	bias            bool
	nOut, nOutFull  int
}

func (f *polynomialFeatures) NumFeatures() int { return f.nFeatures }
func (f *polynomialFeatures) NumOutputs() int  { return f.nOut }

func (f *polynomialFeatures) Transform(X []float64, n int) []float64 {
	p := f.nFeatures
	full := make([]float64, f.nOutFull)
	out := make([]float64, n*f.nOut)
	for r := 0; r < n; r++ {
		x := X[r*p : (r+1)*p]
		f.expand(x, full)
		copy(out[r*f.nOut:(r+1)*f.nOut], f.keep(full))
	}
	return out
}

// expand writes one row's _n_out_full columns.
func (f *polynomialFeatures) expand(x, xp []float64) {
	col := 0
	if f.bias {
		xp[0] = 1
		col = 1
	}
	if f.maxDeg == 0 {
		return
	}
	p := len(x)
	copy(xp[col:col+p], x)
	index := make([]int, 0, p+1)
	for j := 0; j < p; j++ {
		index = append(index, col+j)
	}
	col += p
	index = append(index, col)
	for d := 2; d <= f.maxDeg; d++ {
		next := make([]int, 0, p+1)
		end := index[len(index)-1]
		for j := 0; j < p; j++ {
			start := index[j]
			next = append(next, col)
			if f.interactionOnly {
				start += index[j+1] - index[j]
			}
			nextCol := col + end - start
			if nextCol <= col {
				break
			}
			for k := start; k < end; k++ {
				xp[col+k-start] = xp[k] * x[j]
			}
			col = nextCol
		}
		next = append(next, col)
		index = next
	}
}

// keep drops the columns below the minimum degree (the bias stays), as
// sklearn's transform does after expanding.
func (f *polynomialFeatures) keep(full []float64) []float64 {
	if f.nOut == f.nOutFull {
		return full
	}
	// XP[:, n_XP - n_Xout:], with the bias column first when included.
	if f.bias {
		out := make([]float64, 0, f.nOut)
		out = append(out, full[0])
		return append(out, full[f.nOutFull-(f.nOut-1):]...)
	}
	return full[f.nOutFull-f.nOut:]
}

func buildPolynomialFeatures(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	f := &polynomialFeatures{nFeatures: p}
	minDeg, err := obj.Int("_min_degree")
	if err != nil {
		return nil, err
	}
	maxDeg, err := obj.Int("_max_degree")
	if err != nil {
		return nil, err
	}
	if minDeg < 0 || maxDeg < minDeg || maxDeg > 16 {
		return nil, fmt.Errorf("degrees %d..%d out of range", minDeg, maxDeg)
	}
	f.minDeg, f.maxDeg = int(minDeg), int(maxDeg)
	if f.interactionOnly, err = boolAttr(obj, "interaction_only"); err != nil {
		return nil, err
	}
	if f.bias, err = boolAttr(obj, "include_bias"); err != nil {
		return nil, err
	}
	nOut, err := obj.Int("n_output_features_")
	if err != nil {
		return nil, err
	}
	// The full expansion's width, counted as expand lays it out, so that a
	// forged n_output_features_ cannot make it index out of range.
	full := f.countFull(p)
	if full > 1<<20 {
		return nil, fmt.Errorf("%d output features is more than this reader supports", full)
	}
	if nOut < 1 || int(nOut) > full {
		return nil, fmt.Errorf("n_output_features_ %d out of range (%d in the full expansion)", nOut, full)
	}
	f.nOut, f.nOutFull = int(nOut), full
	if f.minDeg > 1 && f.bias && f.nOut < 1 {
		return nil, fmt.Errorf("n_output_features_ %d leaves no room for the bias", nOut)
	}
	return f, nil
}

// countFull is the number of columns expand writes for p inputs.
func (f *polynomialFeatures) countFull(p int) int {
	n := 0
	if f.bias {
		n = 1
	}
	if f.maxDeg == 0 {
		return n
	}
	// Terms of each degree: combinations with (or, interaction only,
	// without) replacement of p inputs.
	cur := make([]int, p) // terms of the current degree ending in input j
	for j := range cur {
		cur[j] = 1
	}
	n += p
	for d := 2; d <= f.maxDeg; d++ {
		next := make([]int, p)
		total := 0
		for j := 0; j < p; j++ {
			// Terms of degree d whose first factor is input j: products of
			// x_j with degree-(d-1) terms starting at j (or after j).
			sum := 0
			from := j
			if f.interactionOnly {
				from = j + 1
			}
			for i := from; i < p; i++ {
				sum += cur[i]
			}
			next[j] = sum
			total += sum
			if total > 1<<21 {
				return total
			}
		}
		cur = next
		n += total
	}
	return n
}

// kbins maps each value to its bin (np.searchsorted on the inner edges,
// side right), as an ordinal or one-hot.
type kbins struct {
	nFeatures int
	inner     [][]float64 // bin_edges_[j][1:-1]
	onehot    bool
	nOut      int
}

func (k *kbins) NumFeatures() int { return k.nFeatures }
func (k *kbins) NumOutputs() int  { return k.nOut }

func (k *kbins) Transform(X []float64, n int) []float64 {
	p := k.nFeatures
	out := make([]float64, n*k.nOut)
	for r := 0; r < n; r++ {
		col := 0
		for j := 0; j < p; j++ {
			x := X[r*p+j]
			edges := k.inner[j]
			bin := sort.Search(len(edges), func(i int) bool { return edges[i] > x })
			if k.onehot {
				out[r*k.nOut+col+bin] = 1
				col += len(edges) + 1
			} else {
				out[r*p+j] = float64(bin)
			}
		}
	}
	return out
}

func buildKBinsDiscretizer(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	encode, err := obj.String("encode")
	if err != nil {
		return nil, err
	}
	k := &kbins{nFeatures: p}
	switch encode {
	case "ordinal":
	case "onehot", "onehot-dense": // sparse or not, the values are these
		k.onehot = true
	default:
		return nil, fmt.Errorf("encode %q is not ordinal, onehot or onehot-dense", encode)
	}
	if v, ok := obj.Attr("dtype"); ok && v != nil {
		if g, isG := v.(pickle.Global); !isG || g.Name != "float64" {
			return nil, fmt.Errorf("dtype %v: only float64 output is supported", v)
		}
	}
	edges, err := obj.Array("bin_edges_")
	if err != nil {
		return nil, err
	}
	if edges.Len() != p || len(edges.Objects) != p {
		return nil, fmt.Errorf("bin_edges_ has %d entries for %d features", edges.Len(), p)
	}
	for j, e := range edges.Objects {
		a, ok := e.(*pickle.NDArray)
		if !ok {
			return nil, fmt.Errorf("bin_edges_[%d] is a %s, not an array", j, pickle.TypeName(e))
		}
		v, err := a.Float64s()
		if err != nil {
			return nil, fmt.Errorf("bin_edges_[%d]: %w", j, err)
		}
		if len(v) < 2 {
			return nil, fmt.Errorf("bin_edges_[%d] has %d edges", j, len(v))
		}
		for i := 1; i < len(v); i++ {
			if !(v[i] >= v[i-1]) {
				return nil, fmt.Errorf("bin_edges_[%d] is not sorted", j)
			}
		}
		k.inner = append(k.inner, v[1:len(v)-1])
		if k.onehot {
			k.nOut += len(v) - 1
		}
	}
	if !k.onehot {
		k.nOut = p
	}
	return k, nil
}

// powerTransformer applies Yeo-Johnson or Box-Cox with each column's lambda,
// then, with standardize, its StandardScaler. NaN passes through.
type powerTransformer struct {
	nFeatures int
	boxCox    bool
	lambdas   []float64
	scaler    *centerScaler
}

func (t *powerTransformer) NumFeatures() int { return t.nFeatures }
func (t *powerTransformer) NumOutputs() int  { return t.nFeatures }

// AcceptsNonFinite: _check_input validates with force_all_finite="allow-nan".
func (t *powerTransformer) AcceptsNonFinite() (nan, inf bool) { return true, false }

// checkInput refuses what Box-Cox cannot take: sklearn raises for any value
// that is not strictly positive.
func (t *powerTransformer) checkInput(X []float64, n int) error {
	if !t.boxCox {
		return nil
	}
	for i, x := range X[:n*t.nFeatures] {
		if x <= 0 {
			return model.InvalidInputf("input row %d, column %d is %g: the Box-Cox transformation can only be applied to strictly positive data", i/t.nFeatures, i%t.nFeatures, x)
		}
	}
	return nil
}

func (t *powerTransformer) Transform(X []float64, n int) []float64 {
	p := t.nFeatures
	out := make([]float64, n*p)
	for i, x := range X[:n*p] {
		l := t.lambdas[i%p]
		if t.boxCox {
			out[i] = boxCox(x, l)
		} else {
			out[i] = yeoJohnson(x, l)
		}
	}
	if t.scaler != nil {
		return t.scaler.Transform(out, n)
	}
	return out
}

func yeoJohnson(x, l float64) float64 {
	if x >= 0 {
		if math.Abs(l) < epsilon64 {
			return math.Log1p(x)
		}
		return (math.Pow(x+1, l) - 1) / l
	}
	if math.Abs(l-2) > epsilon64 {
		return -(math.Pow(-x+1, 2-l) - 1) / (2 - l)
	}
	return -math.Log1p(-x) // also NaN, which is not >= 0
}

// boxCox is scipy.special.boxcox.
func boxCox(x, l float64) float64 {
	if math.Abs(l) < 1e-19 || (math.Abs(l) < 1e-12 && math.Abs(math.Log(x)) < 1e6) {
		return math.Log(x)
	}
	return math.Expm1(l*math.Log(x)) / l
}

func buildPowerTransformer(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	method, err := obj.String("method")
	if err != nil {
		return nil, err
	}
	if method != "yeo-johnson" && method != "box-cox" {
		return nil, fmt.Errorf("method %q is not yeo-johnson or box-cox", method)
	}
	t := &powerTransformer{nFeatures: p, boxCox: method == "box-cox"}
	if t.lambdas, err = floatVectorN(obj, "lambdas_", p); err != nil {
		return nil, err
	}
	standardize, err := boolAttr(obj, "standardize")
	if err != nil {
		return nil, err
	}
	if standardize {
		s, err := obj.Object("_scaler")
		if err != nil {
			return nil, err
		}
		built, err := build(s)
		if err != nil {
			return nil, fmt.Errorf("_scaler: %w", err)
		}
		cs, ok := built.(*centerScaler)
		if !ok || cs.nFeatures != p {
			return nil, fmt.Errorf("_scaler is not a StandardScaler of %d features", p)
		}
		t.scaler = cs
	}
	return t, nil
}

// quantileTransformer maps each column through its quantiles_ to uniform or
// normal scores, as _transform_col does; NaN passes through.
type quantileTransformer struct {
	nFeatures  int
	quantiles  [][]float64 // per feature
	references []float64
	normal     bool
}

func (q *quantileTransformer) NumFeatures() int { return q.nFeatures }
func (q *quantileTransformer) NumOutputs() int  { return q.nFeatures }

// AcceptsNonFinite: _check_inputs validates with force_all_finite="allow-nan".
func (q *quantileTransformer) AcceptsNonFinite() (nan, inf bool) { return true, false }

// boundsThreshold is sklearn's BOUNDS_THRESHOLD.
const boundsThreshold = 1e-7

func (q *quantileTransformer) Transform(X []float64, n int) []float64 {
	p := q.nFeatures
	out := make([]float64, n*p)
	refs := q.references
	m := len(refs)
	negQ := make([][]float64, p)
	negRefs := make([]float64, m)
	for i := range refs {
		negRefs[i] = -refs[m-1-i]
	}
	for j := range negQ {
		qs := q.quantiles[j]
		negQ[j] = make([]float64, m)
		for i := range qs {
			negQ[j][i] = -qs[m-1-i]
		}
	}
	clipMin, clipMax := normPPF(boundsThreshold-epsilon64), normPPF(1-(boundsThreshold-epsilon64))
	for i, x := range X[:n*p] {
		j := i % p
		qs := q.quantiles[j]
		lo, hi := qs[0], qs[m-1]
		var lower, upper bool
		if q.normal {
			lower, upper = x-boundsThreshold < lo, x+boundsThreshold > hi
		} else {
			lower, upper = x == lo, x == hi
		}
		v := x
		if !math.IsNaN(x) {
			v = 0.5 * (npInterp(x, qs, refs) - npInterp(-x, negQ[j], negRefs))
		}
		if upper {
			v = 1
		}
		if lower {
			v = 0
		}
		if q.normal {
			v = normPPF(v)
			v = math.Min(math.Max(v, clipMin), clipMax) // np.clip; NaN stays NaN
			if math.IsNaN(x) {
				v = math.NaN()
			}
		}
		out[i] = v
	}
	return out
}

// npInterp is np.interp for one value (xp increasing, repeats allowed).
func npInterp(x float64, xp, fp []float64) float64 {
	n := len(xp)
	switch {
	case math.IsNaN(x):
		return x
	case x < xp[0]:
		return fp[0]
	case x > xp[n-1]:
		return fp[n-1]
	}
	j := sort.Search(n, func(i int) bool { return xp[i] > x }) - 1
	if j >= n-1 {
		return fp[n-1]
	}
	if xp[j] == x {
		return fp[j]
	}
	slope := (fp[j+1] - fp[j]) / (xp[j+1] - xp[j])
	v := float64(slope*(x-xp[j])) + fp[j]
	if math.IsNaN(v) {
		v = float64(slope*(x-xp[j+1])) + fp[j+1]
		if math.IsNaN(v) && fp[j] == fp[j+1] {
			v = fp[j]
		}
	}
	return v
}

// normPPF is the standard normal quantile function (scipy's ndtri): Go's
// inverse error function, which loses digits in the tails, refined by Newton
// steps on the normal CDF (through Erfc, accurate to the last bits), so that
// it agrees with ndtri to about 1e-15.
func normPPF(p float64) float64 {
	switch {
	case p == 0:
		return math.Inf(-1)
	case p == 1:
		return math.Inf(1)
	case p < 0 || p > 1 || math.IsNaN(p):
		return math.NaN()
	}
	x := -math.Sqrt2 * math.Erfcinv(2*p)
	for i := 0; i < 3; i++ {
		var diff float64
		if p < 0.5 {
			diff = 0.5*math.Erfc(-x/math.Sqrt2) - p
		} else {
			diff = (1 - p) - 0.5*math.Erfc(x/math.Sqrt2) // the upper tail, without cancellation
		}
		pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
		if pdf == 0 || diff == 0 {
			break
		}
		x -= diff / pdf
	}
	return x
}

func buildQuantileTransformer(obj *pickle.Object) (any, error) {
	p, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	dist, err := obj.String("output_distribution")
	if err != nil {
		return nil, err
	}
	if dist != "uniform" && dist != "normal" {
		return nil, fmt.Errorf("output_distribution %q is not uniform or normal", dist)
	}
	qv, shape, err := floatArrayAttr(obj, "quantiles_")
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || shape[1] != p || shape[0] < 2 {
		return nil, fmt.Errorf("quantiles_ has shape %v, want (n_quantiles, %d)", shape, p)
	}
	m := shape[0]
	refs, rshape, err := floatArrayAttr(obj, "references_")
	if err != nil {
		return nil, err
	}
	if !sameShape(rshape, []int{m}) {
		return nil, fmt.Errorf("references_ has shape %v for %d quantiles", rshape, m)
	}
	q := &quantileTransformer{nFeatures: p, references: refs, normal: dist == "normal"}
	for j := 0; j < p; j++ {
		col := make([]float64, m)
		for i := range col {
			col[i] = qv[i*p+j]
			if i > 0 && !(col[i] >= col[i-1]) {
				return nil, fmt.Errorf("quantiles_ of feature %d are not sorted", j)
			}
		}
		q.quantiles = append(q.quantiles, col)
	}
	return q, nil
}
