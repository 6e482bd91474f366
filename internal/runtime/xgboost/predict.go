package xgboost

// margins computes the raw scores (XGBoost's predict(output_margin=True)) of n
// rows of X, row-major with numFeature float32 columns, NaN meaning missing,
// into out (n × numGroups). The arithmetic is XGBoost's, step by step in
// float32 so that results are bit for bit the same: every row starts at the
// base margin, and each tree's leaf value is added in tree order. The explicit
// float32 conversions stop the compiler from fusing a multiply and an add into
// one FMA, which XGBoost's build does not do.
func (b *booster) margins(X []float32, n int, out []float32) {
	nf, ng := b.numFeature, b.numGroups
	for r := 0; r < n; r++ {
		x := X[r*nf : (r+1)*nf : (r+1)*nf]
		o := out[r*ng : (r+1)*ng : (r+1)*ng]
		switch {
		case b.linear != nil:
			b.linearMargins(x, o)
		case b.treeWeight != nil:
			for g := range o {
				o[g] = b.base
			}
			for t := range b.trees {
				// Dart scales each tree's output by its weight before adding it.
				o[b.treeGroup[t]] += float32(b.trees[t].leaf(x) * b.treeWeight[t])
			}
		case ng == 1:
			sum := b.base
			for t := range b.trees {
				sum += b.trees[t].leaf(x)
			}
			o[0] = sum
		default:
			for g := range o {
				o[g] = b.base
			}
			for t := range b.trees {
				o[b.treeGroup[t]] += b.trees[t].leaf(x)
			}
		}
	}
}

// linearMargins is gblinear's prediction for one row: per group, bias plus base
// margin, then weight × value for each present (non-NaN) feature in order.
func (b *booster) linearMargins(x, o []float32) {
	ng := len(o)
	bias := b.linear[b.numFeature*ng:]
	for g := range o {
		sum := bias[g] + b.base
		for f, v := range x {
			if v != v {
				continue
			}
			sum += float32(v * b.linear[f*ng+g])
		}
		o[g] = sum
	}
}
