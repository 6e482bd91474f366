package sklearn

import (
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/pickle"
)

// IsolationForest (sklearn.ensemble._iforest), as scikit-learn 1.2 scores it.
// For each tree, a row's path length is the number of nodes on its path to a
// leaf, plus the average path length of the leaf's training samples
// (_average_path_length), minus one; score_samples is
// -2^(-sum / (n_trees * c(max_samples_))), decision_function subtracts offset_,
// and predict is -1 where that is negative, else 1. A tree's part of the sum
// depends only on the leaf, so it is computed once per leaf at load with the
// same float64 operations sklearn does per row; the walk is the ExtraTree walk
// of tree.go (X rounded to float32). sklearn refuses NaN and infinities here.

func init() {
	register("sklearn.ensemble._iforest.IsolationForest", buildIsolationForest)
}

// OutlierDetector is an unsupervised model that tells inliers (1) from
// outliers (-1).
type OutlierDetector interface {
	NumFeatures() int
	// Outliers returns sklearn's score_samples (the lower, the more
	// abnormal), decision_function and predict for n rows, each computed as
	// the estimator computes it (score from decision or decision from score).
	Outliers(X []float64, n int) (scores, decision []float64, label []int64)
}

type isolationForest struct {
	nFeatures int
	// trees' leaves hold (nodes on the path) + c(n_node_samples) - 1.
	trees  []*flatTree
	denom  float64 // n_trees * c(max_samples_)
	offset float64
}

func (f *isolationForest) NumFeatures() int { return f.nFeatures }

// Outliers: decision_function = score_samples - offset_; predict is -1 where
// it is negative.
func (f *isolationForest) Outliers(X []float64, n int) (scores, decision []float64, label []int64) {
	scores = f.ScoreSamples(X, n)
	decision = make([]float64, n)
	label = make([]int64, n)
	for i, s := range scores {
		decision[i] = s - f.offset
		label[i] = 1
		if decision[i] < 0 {
			label[i] = -1
		}
	}
	return scores, decision, label
}
func (f *isolationForest) sizeBytes() int64 { return treesSize(f.trees) }

func (f *isolationForest) ScoreSamples(X []float64, n int) []float64 {
	x32 := toFloat32(X[:n*f.nFeatures])
	depths := make([]float64, n)
	for _, t := range f.trees {
		for i := range depths {
			depths[i] += t.outputs(x32[i*f.nFeatures : (i+1)*f.nFeatures])[0]
		}
	}
	for i, d := range depths {
		if f.denom == 0 {
			// One training sample: sklearn sets the ratio to 1.
			depths[i] = -math.Pow(2, -1)
			continue
		}
		depths[i] = -math.Pow(2, -(d / f.denom))
	}
	return depths
}

// averagePathLength is sklearn's _average_path_length for one count: the
// average path length of an unsuccessful search in a binary search tree of n
// nodes.
func averagePathLength(n float64) float64 {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	}
	return 2.0*(math.Log(n-1.0)+eulerGamma) - 2.0*(n-1.0)/n
}

// eulerGamma is numpy's np.euler_gamma.
const eulerGamma = 0.577215664901532860606512090082402431

func buildIsolationForest(obj *pickle.Object) (any, error) {
	nFeatures, err := nFeaturesIn(obj)
	if err != nil {
		return nil, err
	}
	members, err := forestMembers(obj)
	if err != nil {
		return nil, err
	}
	featureSets, err := obj.Items("estimators_features_")
	if err != nil {
		return nil, err
	}
	if len(featureSets) != len(members) {
		return nil, fmt.Errorf("estimators_features_ has %d entries for %d trees", len(featureSets), len(members))
	}
	maxFeatures, err := obj.Int("_max_features")
	if err != nil {
		return nil, err
	}
	if maxFeatures < 1 || maxFeatures > int64(nFeatures) {
		return nil, fmt.Errorf("_max_features %d out of range (%d features)", maxFeatures, nFeatures)
	}
	maxSamples, err := obj.Int("max_samples_")
	if err != nil {
		return nil, err
	}
	if maxSamples < 1 || maxSamples > 1<<40 {
		return nil, fmt.Errorf("invalid max_samples_ %d", maxSamples)
	}
	offset, err := obj.Float("offset_")
	if err != nil {
		return nil, err
	}
	f := &isolationForest{
		nFeatures: nFeatures,
		trees:     make([]*flatTree, len(members)),
		// len(estimators_) * _average_path_length([max_samples_]), in that order.
		denom:  float64(len(members)) * averagePathLength(float64(maxSamples)),
		offset: offset,
	}
	// sklearn hands the trees X[:, features] only when fewer features than
	// the data has were drawn; otherwise X as it is.
	subsample := int(maxFeatures) != nFeatures
	for i, m := range members {
		var features []int64
		if subsample {
			a, ok := featureSets[i].(*pickle.NDArray)
			if !ok {
				return nil, fmt.Errorf("estimators_features_[%d] is a %s, not an array", i, pickle.TypeName(featureSets[i]))
			}
			if features, err = a.Int64s(); err != nil {
				return nil, fmt.Errorf("estimators_features_[%d]: %w", i, err)
			}
			if len(features) != int(maxFeatures) {
				return nil, fmt.Errorf("estimators_features_[%d] has %d features, _max_features is %d", i, len(features), maxFeatures)
			}
			for _, c := range features {
				if c < 0 || c >= int64(nFeatures) {
					return nil, fmt.Errorf("estimators_features_[%d]: feature %d out of range (%d features)", i, c, nFeatures)
				}
			}
		}
		if f.trees[i], err = isolationTree(m, int(maxFeatures), features); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
	}
	return f, nil
}

// isolationTree decodes one ExtraTreeRegressor of an IsolationForest into a flat
// tree whose leaves hold that tree's term of the path-length sum. features, if
// set, maps the tree's columns to the forest's (a feature subsample).
func isolationTree(obj *pickle.Object, nTreeFeatures int, features []int64) (*flatTree, error) {
	v, err := obj.Object("tree_")
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(v, nTreeFeatures)
	if err != nil {
		return nil, err
	}
	nodes, err := v.Array("nodes")
	if err != nil {
		return nil, fmt.Errorf("tree_: %w", err)
	}
	samples, err := intField(nodes, "n_node_samples")
	if err != nil {
		return nil, err
	}
	// Children follow their parents (checked by decodeTree), so one pass in
	// node order sets every depth.
	depth := make([]int64, len(t.left))
	for i := range t.left {
		if t.left[i] != treeLeaf {
			depth[t.left[i]], depth[t.right[i]] = depth[i]+1, depth[i]+1
		}
	}
	if features != nil {
		for i, c := range t.feature {
			if t.left[i] != treeLeaf {
				t.feature[i] = features[c]
			}
		}
		// The tree now reads the forest's columns, which the caller checked.
		for _, c := range features {
			t.nFeatures = max(t.nFeatures, int(c)+1)
		}
	}
	return t.flatten(1, func(node int, out []float64) {
		// node_indicator.sum(axis=1) + _average_path_length(n) - 1.0, as numpy
		// evaluates it: int to float64, plus, then minus.
		out[0] = float64(depth[node]+1) + averagePathLength(float64(samples[node]))
		out[0] -= 1.0
	})
}
