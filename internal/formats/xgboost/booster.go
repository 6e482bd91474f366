package xgboost

import (
	"fmt"
	"math"
	"strings"

	"github.com/tideserve/tide/internal/loadpace"
)

// Limits on what a model may claim, so a forged count cannot make the reader
// allocate without bound. Real models are far below them.
const (
	// maxFeatures bounds num_feature: a served row is dense, so a million
	// features is already a 4 MB request.
	maxFeatures = 1 << 20
	maxGroups   = 1 << 16
	maxNodes    = 1 << 28
	// maxCategory is XGBoost's limit on a category's value (OutOfRangeCat): the
	// largest integer a float32 holds exactly.
	maxCategory = 1 << 24
)

// booster is a loaded XGBoost model: the learner's parameters and either trees
// (gbtree, dart) or linear weights (gblinear). It is read-only once built.
type booster struct {
	obj        objective
	numFeature int
	// numGroups is the number of margins per row: the class count for multi:*
	// objectives, the target count for multi-target regression, else 1.
	numGroups int
	// base is the margin every prediction starts from (base_score through the
	// objective's inverse link).
	base         float32
	featureNames []string
	boosterName  string

	trees []tree
	// treeGroup is tree_info: the output group each tree adds to.
	treeGroup []int32
	// treeWeight is dart's weight_drop, one factor per tree; nil for gbtree.
	treeWeight []float32
	// treesPerRound is how many trees one boosting round adds:
	// num_parallel_tree × numGroups.
	treesPerRound int

	// linear holds gblinear's weights: weight[f*numGroups+g] for feature f
	// and group g, then one bias per group.
	linear []float32
}

// newBooster builds a booster from a decoded model document.
func newBooster(doc any, pace *loadpace.Pacer) (*booster, error) {
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("model: want an object, got %s", kindName(doc))
	}
	if _, ok := root["learner"]; !ok {
		return nil, fmt.Errorf("not an XGBoost model: the document has no \"learner\" object (save it with Booster.save_model)")
	}
	learner, err := objectField(root, "learner", "model")
	if err != nil {
		return nil, err
	}
	const lp = "learner"
	b := &booster{}

	params, err := objectField(learner, "learner_model_param", lp)
	if err != nil {
		return nil, err
	}
	const pp = lp + ".learner_model_param"
	nf, err := intParam(params, "num_feature", pp, 1, maxFeatures)
	if err != nil {
		return nil, err
	}
	b.numFeature = int(nf)
	numClass, err := intParam(params, "num_class", pp, 0, maxGroups)
	if err != nil {
		return nil, err
	}
	numTarget := int64(1)
	if _, ok := params["num_target"]; ok {
		if numTarget, err = intParam(params, "num_target", pp, 1, maxGroups); err != nil {
			return nil, err
		}
	}
	baseScore, err := readBaseScore(params, pp)
	if err != nil {
		return nil, err
	}

	objObj, err := objectField(learner, "objective", lp)
	if err != nil {
		return nil, err
	}
	objName, err := stringField(objObj, "name", lp+".objective")
	if err != nil {
		return nil, err
	}
	if b.obj, err = lookupObjective(objName); err != nil {
		return nil, err
	}
	if b.base, err = b.obj.baseMargin(baseScore); err != nil {
		return nil, fmt.Errorf("%s: %w", pp, err)
	}

	// XGBoost's num_output_group: one margin per class or per target.
	b.numGroups = int(max(numClass, numTarget, 1))
	isMulti := b.obj.out == outSoftmax || b.obj.out == outArgmax
	switch {
	case isMulti && numClass < 2:
		return nil, fmt.Errorf("%s.num_class is %d, but %s needs the class count (at least 2)", pp, numClass, objName)
	case !isMulti && numClass > 1:
		return nil, fmt.Errorf("%s.num_class is %d, but %s is not a multi-class objective", pp, numClass, objName)
	case b.obj.classifier && numTarget > 1:
		return nil, fmt.Errorf("%s.num_target is %d, but %s has one target", pp, numTarget, objName)
	}

	if b.featureNames, err = stringList(learner, "feature_names", lp); err != nil {
		return nil, err
	}
	if len(b.featureNames) != 0 && len(b.featureNames) != b.numFeature {
		return nil, fmt.Errorf("%s.feature_names lists %d names for %d features", lp, len(b.featureNames), b.numFeature)
	}

	gb, err := objectField(learner, "gradient_booster", lp)
	if err != nil {
		return nil, err
	}
	const gp = lp + ".gradient_booster"
	if b.boosterName, err = stringField(gb, "name", gp); err != nil {
		return nil, err
	}
	switch b.boosterName {
	case "gbtree":
		model, err := objectField(gb, "model", gp)
		if err != nil {
			return nil, err
		}
		if err := b.readTrees(model, gp+".model", pace); err != nil {
			return nil, err
		}
		return b, b.stopAtBestIteration(learner)
	case "dart":
		inner, err := objectField(gb, "gbtree", gp)
		if err != nil {
			return nil, err
		}
		model, err := objectField(inner, "model", gp+".gbtree")
		if err != nil {
			return nil, err
		}
		if err := b.readTrees(model, gp+".gbtree.model", pace); err != nil {
			return nil, err
		}
		if b.treeWeight, err = float32s(gb, "weight_drop", gp); err != nil {
			return nil, err
		}
		if len(b.treeWeight) != len(b.trees) {
			return nil, fmt.Errorf("%s.weight_drop has %d weights for %d trees", gp, len(b.treeWeight), len(b.trees))
		}
		return b, b.stopAtBestIteration(learner)
	case "gblinear":
		model, err := objectField(gb, "model", gp)
		if err != nil {
			return nil, err
		}
		if b.linear, err = float32s(model, "weights", gp+".model"); err != nil {
			return nil, err
		}
		if want := (b.numFeature + 1) * b.numGroups; len(b.linear) != want {
			return nil, fmt.Errorf("%s.model.weights has %d values, want %d ((%d features + bias) × %d groups)",
				gp, len(b.linear), want, b.numFeature, b.numGroups)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s.name is %q, want gbtree, dart or gblinear", gp, b.boosterName)
}

// readBaseScore reads base_score, a decimal string. XGBoost 3 writes it as a
// bracketed list ("[5E-1]") with one value per target; one value is accepted.
func readBaseScore(params map[string]any, path string) (float32, error) {
	v, err := field(params, "base_score", path)
	if err != nil {
		return 0, err
	}
	if s, ok := v.(string); ok && strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner := strings.TrimSpace(s[1 : len(s)-1])
		if strings.Contains(inner, ",") {
			return 0, fmt.Errorf("%s.base_score %s: one base score per target is not supported", path, s)
		}
		params = map[string]any{"base_score": inner}
	}
	return float32Param(params, "base_score", path)
}

// readTrees reads a gbtree model: its trees and tree_info.
func (b *booster) readTrees(model map[string]any, path string, pace *loadpace.Pacer) error {
	mp, err := objectField(model, "gbtree_model_param", path)
	if err != nil {
		return err
	}
	numTrees, err := intParam(mp, "num_trees", path+".gbtree_model_param", 0, math.MaxInt32)
	if err != nil {
		return err
	}
	if err := checkScalarLeaves(mp, path+".gbtree_model_param"); err != nil {
		return err
	}
	parallel := int64(1)
	if _, ok := mp["num_parallel_tree"]; ok {
		if parallel, err = intParam(mp, "num_parallel_tree", path+".gbtree_model_param", 1, math.MaxInt32); err != nil {
			return err
		}
	}
	b.treesPerRound = int(parallel) * b.numGroups
	rawTrees, err := field(model, "trees", path)
	if err != nil {
		return err
	}
	list, ok := rawTrees.([]any)
	if !ok {
		return fmt.Errorf("%s.trees: want an array, got %s", path, kindName(rawTrees))
	}
	if int64(len(list)) != numTrees {
		return fmt.Errorf("%s.trees has %d trees but num_trees is %d", path, len(list), numTrees)
	}
	info, err := ints(model, "tree_info", path, 0, int64(b.numGroups-1))
	if err != nil {
		return err
	}
	if len(info) != len(list) {
		return fmt.Errorf("%s.tree_info has %d entries for %d trees", path, len(info), len(list))
	}
	b.trees = make([]tree, len(list))
	b.treeGroup = make([]int32, len(list))
	for i, raw := range list {
		pace.Pause()
		tp := fmt.Sprintf("%s.trees[%d]", path, i)
		obj, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %s", tp, kindName(raw))
		}
		if err := b.trees[i].read(obj, tp, b.numFeature); err != nil {
			return err
		}
		b.treeGroup[i] = int32(info[i])
	}
	return nil
}

// checkScalarLeaves refuses vector-leaf trees (multi_strategy), which store a
// vector per leaf instead of one value.
func checkScalarLeaves(params map[string]any, path string) error {
	if _, ok := params["size_leaf_vector"]; !ok {
		return nil
	}
	n, err := intParam(params, "size_leaf_vector", path, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	if n > 1 {
		return fmt.Errorf("%s.size_leaf_vector is %d: vector-leaf trees (multi_strategy) are not supported", path, n)
	}
	return nil
}

// stopAtBestIteration drops the trees of rounds after the best one that early
// stopping recorded (attributes.best_iteration), so the model predicts what
// XGBClassifier.predict and XGBRegressor.predict return: they stop at the best
// round, while Booster.predict would use every tree. Without early stopping
// the best iteration is the last one and nothing changes.
func (b *booster) stopAtBestIteration(learner map[string]any) error {
	attrs, ok := learner["attributes"].(map[string]any)
	if !ok {
		return nil
	}
	if _, ok := attrs["best_iteration"]; !ok {
		return nil
	}
	const path = "learner.attributes"
	best, err := intParam(attrs, "best_iteration", path, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	keep := (best + 1) * int64(b.treesPerRound)
	if keep >= int64(len(b.trees)) {
		return nil
	}
	b.trees, b.treeGroup = b.trees[:keep:keep], b.treeGroup[:keep:keep]
	if b.treeWeight != nil {
		b.treeWeight = b.treeWeight[:keep:keep]
	}
	return nil
}
