package sklearn

import (
	"fmt"

	"github.com/tideserve/tide/internal/formats/treewalk"
	"github.com/tideserve/tide/internal/pickle"
)

// Forests (sklearn.ensemble._forest): RandomForest and ExtraTrees, classifier
// and regressor. Both average their trees' predictions the way sklearn's
// _accumulate_prediction does with the default n_jobs: a float64 zero array,
// each tree's predict_proba (or predict) added in estimators_ order, then one
// division by the number of trees. Doing the same additions in the same order
// makes the result bit-for-bit sklearn's.

func init() {
	register("sklearn.ensemble._forest.RandomForestClassifier", buildForestClassifier)
	register("sklearn.ensemble._forest.ExtraTreesClassifier", buildForestClassifier)
	register("sklearn.ensemble._forest.RandomForestRegressor", buildForestRegressor)
	register("sklearn.ensemble._forest.ExtraTreesRegressor", buildForestRegressor)
}

// forestClassifier is a fitted RandomForestClassifier or ExtraTreesClassifier.
type forestClassifier struct {
	nFeatures int
	classes   Labels
	// trees' leaves hold their class probabilities (predict_proba of one tree).
	trees []*flatTree
}

func (f *forestClassifier) NumFeatures() int { return f.nFeatures }
func (f *forestClassifier) Classes() Labels  { return f.classes }

func (f *forestClassifier) PredictProba(X []float64, n int) []float64 {
	return averageTrees(f.trees, f.nFeatures, f.classes.Len(), X, n)
}

// forestRegressor is a fitted RandomForestRegressor or ExtraTreesRegressor.
type forestRegressor struct {
	nFeatures int
	nTargets  int
	trees     []*flatTree
}

func (f *forestRegressor) NumFeatures() int { return f.nFeatures }
func (f *forestRegressor) NumTargets() int  { return f.nTargets }

func (f *forestRegressor) Predict(X []float64, n int) []float64 {
	return averageTrees(f.trees, f.nFeatures, f.nTargets, X, n)
}

func (f *forestClassifier) sizeBytes() int64 { return treesSize(f.trees) }
func (f *forestRegressor) sizeBytes() int64  { return treesSize(f.trees) }

func treesSize(trees []*flatTree) int64 {
	var n int64
	for _, t := range trees {
		n += t.sizeBytes()
	}
	return n
}

// averageTrees returns, for each of the n rows of X, the mean of the trees'
// width leaf outputs: summed in tree order from zero, then divided once. Rows
// go in blocks of forestBlockRows, each block through every tree in turn, so a
// tree's nodes stay in cache while they serve the block; each row still sees
// the trees in estimators_ order. Large batches are split across cores.
func averageTrees(trees []*flatTree, nFeatures, width int, X []float64, n int) []float64 {
	x32 := toFloat32(X[:n*nFeatures])
	out := make([]float64, n*width)
	if n < treewalk.MinBatch {
		for i := 0; i < n; i++ {
			acc := out[i*width : (i+1)*width]
			for _, t := range trees {
				for k, v := range t.outputs(x32[i*nFeatures : (i+1)*nFeatures]) {
					acc[k] += v
				}
			}
		}
		return divide(out, len(trees))
	}
	treewalk.Blocks(x32, n, nFeatures, forestBlockRows, func(b *treewalk.Batch[float32], start, end int, leaves []uint32) {
		for _, t := range trees {
			t.walk.Leaves(b, start, leaves)
			for i, off := range leaves {
				acc := out[(start+i)*width : (start+i+1)*width]
				for k, v := range t.leafValues[off : int(off)+width] {
					acc[k] += v
				}
			}
		}
	})
	return divide(out, len(trees))
}

// divide divides the sums by the tree count, in place.
func divide(out []float64, trees int) []float64 {
	count := float64(trees)
	for i := range out {
		out[i] /= count
	}
	return out
}

// forestBlockRows is how many rows a batch sends through one tree of a
// forest before taking the next: a forest's trees are deep and do not stay in
// cache, so each one should serve as many rows as it can once brought in,
// while the block's rows and sums stay in cache beside it (1,000 rows through
// 200 trees of depth 16: 6.0 ms in blocks of 256, 4.3 ms in blocks of 1,024,
// bench/trees).
const forestBlockRows = 1024

// treeClasses are the estimator classes a forest may hold in estimators_.
var treeClasses = map[string]bool{
	"sklearn.tree._classes.DecisionTreeClassifier": true,
	"sklearn.tree._classes.ExtraTreeClassifier":    true,
	"sklearn.tree._classes.DecisionTreeRegressor":  true,
	"sklearn.tree._classes.ExtraTreeRegressor":     true,
}

// forestMembers returns estimators_ as tree objects, checking that there is at
// least one and that each is a sklearn tree.
func forestMembers(obj *pickle.Object) ([]*pickle.Object, error) {
	items, err := obj.Items("estimators_")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("estimators_ is empty")
	}
	out := make([]*pickle.Object, len(items))
	for i, v := range items {
		t, ok := v.(*pickle.Object)
		if !ok || !treeClasses[t.Class()] {
			return nil, fmt.Errorf("estimators_[%d] is a %s, not a decision tree", i, pickle.TypeName(v))
		}
		out[i] = t
	}
	return out, nil
}

func buildForestClassifier(obj *pickle.Object) (any, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	classes, err := classLabels(obj)
	if err != nil {
		return nil, err
	}
	members, err := forestMembers(obj)
	if err != nil {
		return nil, err
	}
	f := &forestClassifier{nFeatures: nFeatures, classes: classes, trees: make([]*flatTree, len(members))}
	for i, m := range members {
		// The trees were fitted on the forest's encoded labels 0..K-1, so each
		// one has the forest's class count.
		if f.trees[i], _, err = classifierTree(m, nFeatures, classes.Len()); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
	}
	return f, nil
}

func buildForestRegressor(obj *pickle.Object) (any, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	members, err := forestMembers(obj)
	if err != nil {
		return nil, err
	}
	f := &forestRegressor{nFeatures: nFeatures, trees: make([]*flatTree, len(members))}
	for i, m := range members {
		if f.trees[i], err = regressorTree(m, nFeatures); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
		if i == 0 {
			f.nTargets = f.trees[0].width
		} else if f.trees[i].width != f.nTargets {
			return nil, fmt.Errorf("estimators_[%d] predicts %d targets, estimators_[0] %d", i, f.trees[i].width, f.nTargets)
		}
	}
	return f, nil
}
