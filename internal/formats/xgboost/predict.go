package xgboost

// blockRows is how many rows go through each tree before the next tree is
// taken, as XGBoost's CPU predictor does: a tree's nodes stay in cache while
// it serves a block, which matters once a model outgrows the cache.
const blockRows = 64

// margins computes the raw scores (XGBoost's predict(output_margin=True)) of n
// rows of X, row-major with numFeature float32 columns, NaN meaning missing,
// into out (n × numGroups). The arithmetic is XGBoost's, step by step in
// float32 so that results are bit for bit the same: every row starts at the
// base margin, and each tree's leaf value is added in tree order. The explicit
// float32 conversions stop the compiler from fusing a multiply and an add into
// one FMA, which XGBoost's build does not do.
func (b *booster) margins(X []float32, n int, out []float32) {
	nf, ng := b.numFeature, b.numGroups
	if b.linear != nil {
		for r := 0; r < n; r++ {
			b.linearMargins(X[r*nf:(r+1)*nf:(r+1)*nf], out[r*ng:(r+1)*ng:(r+1)*ng])
		}
		return
	}
	for start := 0; start < n; start += blockRows {
		end := min(n, start+blockRows)
		o := out[start*ng : end*ng]
		for i := range o {
			o[i] = b.base
		}
		for t := range b.trees {
			tr, g := &b.trees[t], int(b.treeGroup[t])
			if b.treeWeight != nil {
				// Dart scales each tree's output by its weight before adding it.
				w := b.treeWeight[t]
				for r := start; r < end; r++ {
					out[r*ng+g] += float32(tr.leaf(X[r*nf:(r+1)*nf:(r+1)*nf]) * w)
				}
				continue
			}
			for r := start; r < end; r++ {
				out[r*ng+g] += tr.leaf(X[r*nf : (r+1)*nf : (r+1)*nf])
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
