package xgboost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
)

// at walks nested objects of a test document.
func at(doc map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		doc = doc[k].(map[string]any)
	}
	return doc
}

func learner(doc map[string]any) map[string]any { return at(doc, "learner") }
func params(doc map[string]any) map[string]any  { return at(doc, "learner", "learner_model_param") }
func gbModel(doc map[string]any) map[string]any {
	return at(doc, "learner", "gradient_booster", "model")
}
func tree0(doc map[string]any) map[string]any {
	return gbModel(doc)["trees"].([]any)[0].(map[string]any)
}

func TestMalformedModels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(doc map[string]any)
		want   string
	}{
		{"no learner", func(d map[string]any) { delete(d, "learner") }, `not an XGBoost model: the document has no "learner" object`},
		{"learner is an array", func(d map[string]any) { d["learner"] = []int{1} }, "learner: want an object, got an array"},
		{"num_feature not a number", func(d map[string]any) { params(d)["num_feature"] = "three" }, `num_feature: want an integer, got "three"`},
		{"num_feature zero", func(d map[string]any) { params(d)["num_feature"] = "0" }, "num_feature is 0"},
		{"base_score a word", func(d map[string]any) { params(d)["base_score"] = "half" }, "base_score: want a number"},
		{"base_score outside (0,1) for logistic", func(d map[string]any) {
			params(d)["base_score"] = "1.5E0"
			at(d, "learner", "objective")["name"] = "binary:logistic"
		}, "must lie in (0, 1)"},
		{"several base scores", func(d map[string]any) { params(d)["base_score"] = "[1,2]" }, "one base score per target is not supported"},
		{"unknown objective", func(d map[string]any) { at(d, "learner", "objective")["name"] = "reg:quantileerror" }, `objective "reg:quantileerror" is not supported`},
		{"multi-class without num_class", func(d map[string]any) { at(d, "learner", "objective")["name"] = "multi:softprob" }, "needs the class count"},
		{"multi-class with one class", func(d map[string]any) {
			at(d, "learner", "objective")["name"] = "multi:softmax"
			params(d)["num_class"] = "1"
		}, "num_class is 1, but multi:softmax needs the class count (at least 2)"},
		{"num_class on a regressor", func(d map[string]any) { params(d)["num_class"] = "3" }, "is not a multi-class objective"},
		{"unknown booster", func(d map[string]any) { at(d, "learner", "gradient_booster")["name"] = "gbforest" }, `"gbforest", want gbtree, dart or gblinear`},
		{"trees not an array", func(d map[string]any) { gbModel(d)["trees"] = "many" }, "trees: want an array, got a string"},
		{"tree count differs from num_trees", func(d map[string]any) {
			at(d, "learner", "gradient_booster", "model", "gbtree_model_param")["num_trees"] = "2"
		}, "has 1 trees but num_trees is 2"},
		{"tree_info out of range", func(d map[string]any) { gbModel(d)["tree_info"] = []int{1} }, "tree_info[0] is 1, want 0 to 0"},
		{"tree_info too short", func(d map[string]any) { gbModel(d)["tree_info"] = []int{} }, "tree_info has 0 entries for 1 trees"},
		{"vector leaves", func(d map[string]any) {
			at(d, "learner", "gradient_booster", "model", "gbtree_model_param")["size_leaf_vector"] = "3"
		}, "vector-leaf trees (multi_strategy) are not supported"},
		{"child index out of range", func(d map[string]any) { tree0(d)["left_children"] = []int{7, -1, -1} }, "left_children[0] is 7, want -1 to 2"},
		{"child index negative", func(d map[string]any) { tree0(d)["right_children"] = []int{-5, -1, -1} }, "right_children[0] is -5"},
		{"child is the root: a cycle", func(d map[string]any) {
			tree0(d)["left_children"] = []int{1, 0, -1}
			tree0(d)["right_children"] = []int{2, 2, -1}
		}, "is reached twice"},
		{"node is its own child", func(d map[string]any) {
			tree0(d)["left_children"] = []int{1, 1, -1}
			tree0(d)["right_children"] = []int{2, 2, -1}
		}, "is reached twice"},
		{"half a leaf", func(d map[string]any) { tree0(d)["right_children"] = []int{2, 2, -1} }, "node 1 has no left child but right child 2"},
		{"split on a feature the model lacks", func(d map[string]any) { tree0(d)["split_indices"] = []int{3, 0, 0} }, "splits on feature 3, but the model has 3 features"},
		{"array shorter than num_nodes", func(d map[string]any) { tree0(d)["split_conditions"] = []float64{1.5, 1} }, "split_conditions has 2 entries for 3 nodes"},
		{"num_nodes not a number", func(d map[string]any) { at(tree0(d), "tree_param")["num_nodes"] = true }, "num_nodes: want an integer, got a bool"},
		{"thresholds are strings", func(d map[string]any) { tree0(d)["split_conditions"] = []string{"a", "b", "c"} }, `split_conditions[0]: want a number, got "a"`},
		{"children are floats", func(d map[string]any) { tree0(d)["left_children"] = []float64{1.5, -1, -1} }, "left_children[0]: want an integer, got 1.5"},
		{"default_left not 0 or 1", func(d map[string]any) { tree0(d)["default_left"] = []int{2, 0, 0} }, "default_left[0] is 2"},
		{"NaN threshold on a numeric split", func(d map[string]any) { tree0(d)["split_conditions"] = []float64{nanF64(), 1, 2} }, "node 0 has a NaN threshold"},
		{"categorical split without categories", func(d map[string]any) {
			tree0(d)["split_type"] = []int{1, 0, 0}
		}, "categorical split node 0 has no category set"},
		{"category set outside the stored categories", func(d map[string]any) {
			tree0(d)["split_type"] = []int{1, 0, 0}
			tree0(d)["categories_nodes"] = []int{0}
			tree0(d)["categories_segments"] = []int{2}
			tree0(d)["categories_sizes"] = []int{5}
			tree0(d)["categories"] = []int{1, 2, 3}
		}, "categories [2, +5) lie outside the 3 stored"},
		{"category too large", func(d map[string]any) {
			tree0(d)["split_type"] = []int{1, 0, 0}
			tree0(d)["categories_nodes"] = []int{0}
			tree0(d)["categories_segments"] = []int{0}
			tree0(d)["categories_sizes"] = []int{1}
			tree0(d)["categories"] = []int{1 << 30}
		}, "categories[0] is 1073741824"},
		{"best_iteration not a number", func(d map[string]any) {
			learner(d)["attributes"] = map[string]any{"best_iteration": "last"}
		}, `learner.attributes.best_iteration: want an integer, got "last"`},
		{"feature names of the wrong count", func(d map[string]any) { learner(d)["feature_names"] = []string{"a"} }, "feature_names lists 1 names for 3 features"},
		{"gblinear weights of the wrong count", func(d map[string]any) {
			at(d, "learner", "gradient_booster")["name"] = "gblinear"
			gbModel(d)["weights"] = []float64{1, 2, 3}
		}, "weights has 3 values, want 4"},
		{"dart without weights for every tree", func(d map[string]any) {
			gb := at(d, "learner", "gradient_booster")
			gb["name"] = "dart"
			gb["gbtree"] = map[string]any{"name": "gbtree", "model": gb["model"]}
			gb["weight_drop"] = []float64{}
		}, "weight_drop has 0 weights for 1 trees"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := testDoc("reg:squarederror", "5E-1", stumpTree)
			tc.mutate(doc)
			_, err := load(mustMarshal(t, doc), formats.Config{})
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func nanF64() float64 { var z float64; return z / z }

func TestFileEncodings(t *testing.T) {
	valid := mustMarshal(t, testDoc("reg:squarederror", "5E-1", stumpTree))
	legacy := `load it in XGBoost and re-save it as JSON with model.save_model("model.json")`
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" = loads
	}{
		{"JSON", valid, ""},
		{"JSON with leading space", append([]byte("\n  "), valid...), ""},
		{"old binary format", append([]byte("binf\x00\x00\x00?"), make([]byte, 100)...), legacy},
		{"old binary format before 1.0", []byte("\x00\x00\x00?\x03\x00\x00\x00\x00\x00"), legacy},
		{"empty file", nil, "not an XGBoost model"},
		{"text", []byte("tree\n{"), "not an XGBoost model"},
		{"truncated JSON", valid[:len(valid)/2], "invalid JSON at byte"},
		{"JSON with trailing data", append(append([]byte{}, valid...), "{}"...), "after the document"},
		{"JSON array", []byte("[1, 2]"), "not an XGBoost model"},
		{"unterminated string", []byte(`{"learner`), "unexpected end of file in a string"},
		{"bad escape", []byte(`{"a\q": 1}`), `unknown escape \q`},
		{"malformed number", []byte(`{"a": -}`), "malformed number"},
		{"deep nesting", []byte(`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}"), "nested more than 64 levels"},
		{"UBJSON count beyond the file", []byte("{#L\x7f\xff\xff\xff\xff\xff\xff\xff"), "does not fit"},
		{"UBJSON typed array beyond the file", []byte("{i\x01a[$d#i\x08}"), "do not fit in the file"},
		{"UBJSON array of nulls", []byte("{i\x01a[$Z#i\x05}"), `container of type 'Z' is not supported`},
		{"UBJSON unknown marker", []byte("{i\x01aQ}"), "unknown type marker 'Q'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.data, formats.Config{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded; want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestTruncatedFiles cuts real models at many points: every prefix must be
// refused with an error, never a panic.
func TestTruncatedFiles(t *testing.T) {
	for _, name := range []string{"categorical_partition.json", "categorical_partition.ubj", "dart_binary.ubj", "linear_regression.ubj"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := load(data, formats.Config{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		step := max(1, len(data)/400)
		for n := 0; n < len(data); n += step {
			if _, err := load(data[:n], formats.Config{}); err == nil {
				t.Fatalf("%s cut to %d of %d bytes loaded", name, n, len(data))
			}
		}
	}
}
