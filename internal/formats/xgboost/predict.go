package xgboost

import (
	"github.com/tideserve/tide/internal/formats/treewalk"
)

// blockRows is how many rows go through each tree before the next tree is
// taken (XGBoost's CPU predictor takes 64): a tree's nodes stay in cache while
// it serves a block, which matters once a model outgrows the cache. 300 trees
// of depth 8 on 1,000 rows: 2.88 ms in blocks of 32, 2.82 in blocks of 64,
// 2.68 in blocks of 256 (bench/trees).
const blockRows = 256

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
	if n < treewalk.MinBatch {
		for r := 0; r < n; r++ {
			o := out[r*ng : (r+1)*ng]
			for i := range o {
				o[i] = b.base
			}
			for t := range b.trees {
				b.add(t, r, b.trees[t].leaf(X[r*nf:(r+1)*nf:(r+1)*nf]), out)
			}
		}
		return
	}
	treewalk.Blocks(X, n, nf, blockRows, func(batch *treewalk.Batch[float32], start, end int, leaves []uint32) {
		o := out[start*ng : end*ng]
		for i := range o {
			o[i] = b.base
		}
		for t := range b.trees {
			tr := &b.trees[t]
			if tr.walk == nil {
				for r := start; r < end; r++ {
					b.add(t, r, tr.leaf(X[r*nf:(r+1)*nf:(r+1)*nf]), out)
				}
				continue
			}
			tr.walk.Leaves(batch, start, leaves)
			g, values := int(b.treeGroup[t]), tr.leafValues
			if b.treeWeight != nil {
				for i, l := range leaves {
					b.add(t, start+i, values[l], out)
				}
				continue
			}
			// The common case, written out: this loop runs once per
			// tree and row.
			for i, l := range leaves {
				o[i*ng+g] += values[l]
			}
		}
	})
}

// add adds tree t's leaf value v to row r's margin in out.
func (b *booster) add(t, r int, v float32, out []float32) {
	i := r*b.numGroups + int(b.treeGroup[t])
	if b.treeWeight != nil {
		// Dart scales each tree's output by its weight before adding it.
		out[i] += float32(v * b.treeWeight[t])
		return
	}
	out[i] += v
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
