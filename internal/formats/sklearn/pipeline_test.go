package sklearn

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// pipe builds a Pipeline from name, estimator pairs (nil or "passthrough" for
// skipped steps).
func pipe(steps ...any) *pickle.Object {
	l := &pickle.List{}
	for i := 0; i+1 < len(steps); i += 2 {
		l.Items = append(l.Items, pickle.Tuple{steps[i], steps[i+1]})
	}
	return obj(pipelineClass, "steps", l, "memory", nil, "verbose", false)
}

func binaryLogReg() *pickle.Object {
	return logReg("auto", i8(0, 1), f8([]int{1, 2}, 1, -1), f8([]int{1}, 0.5))
}

func TestPipelineFlattens(t *testing.T) {
	scaler := standardScaler2(true, true)
	tests := []struct {
		name       string
		model      *pickle.Object
		transforms []string
		final      string // "" for a transformer-only pipeline
	}{
		{"scaler then classifier", pipe("s", scaler, "clf", binaryLogReg()), []string{"s"}, "clf"},
		{"passthrough and None dropped", pipe("a", "passthrough", "s", scaler, "b", nil, "clf", binaryLogReg()), []string{"s"}, "clf"},
		{"transformers only", pipe("s", scaler, "m", minMaxScaler2(true)), []string{"s", "m"}, ""},
		{"passthrough last", pipe("s", scaler, "end", "passthrough"), []string{"s"}, ""},
		{"classifier only", pipe("clf", binaryLogReg()), nil, "clf"},
		{"nested transformer pipeline", pipe("pre", pipe("s", scaler, "m", minMaxScaler2(false)), "clf", binaryLogReg()), []string{"s", "m"}, "clf"},
		{"nested pipeline last", pipe("s", scaler, "rest", pipe("m", minMaxScaler2(false), "clf", binaryLogReg())), []string{"s", "m"}, "clf"},
		{"steps as lists", obj(pipelineClass, "steps", &pickle.List{Items: []any{&pickle.List{Items: []any{"s", scaler}}}}), []string{"s"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := buildOK(t, tc.model).(*pipeline)
			var names []string
			for _, tr := range p.transforms {
				names = append(names, tr.name)
			}
			if !reflect.DeepEqual(names, tc.transforms) || p.finalName != tc.final {
				t.Errorf("transforms %v, final %q; want %v, %q", names, p.finalName, tc.transforms, tc.final)
			}
			if (p.final == nil) != (tc.final == "") {
				t.Errorf("final estimator %v", p.final)
			}
			if p.NumFeatures() != 2 {
				t.Errorf("NumFeatures %d, want 2", p.NumFeatures())
			}
		})
	}
}

func TestBuildPipelineRejectsMalformed(t *testing.T) {
	scaler := standardScaler2(true, true)
	threeWide := with(standardScaler2(true, true), "n_features_in_", int64(3),
		"mean_", f8([]int{3}, 0, 0, 0), "scale_", f8([]int{3}, 1, 1, 1))
	tests := []struct {
		name  string
		model *pickle.Object
		want  string
	}{
		{"no steps", obj(pipelineClass), "attribute steps is missing"},
		{"empty steps", pipe(), "steps is empty"},
		{"steps not a list", obj(pipelineClass, "steps", "abc"), "steps: want a list"},
		{"step not a pair", obj(pipelineClass, "steps", &pickle.List{Items: []any{pickle.Tuple{"a"}}}), "steps[0]: want a (name, estimator) pair"},
		{"step name not str", obj(pipelineClass, "steps", &pickle.List{Items: []any{pickle.Tuple{int64(1), scaler}}}), "steps[0]: name: want a string"},
		{"string step", pipe("s", "drop"), `step "s": "drop" is not an estimator`},
		{"number step", pipe("s", 1.5), `step "s": want an estimator, got float`},
		{"all passthrough", pipe("a", "passthrough", "b", nil), "nothing to serve"},
		{"classifier in the middle", pipe("clf", binaryLogReg(), "s", scaler), `step "clf": LogisticRegression is not a transformer`},
		{"predictor pipeline in the middle", pipe("p", pipe("clf", binaryLogReg()), "s", scaler), "can only be the last step"},
		{"width mismatch", pipe("s", scaler, "t", threeWide), `step "t" takes 3 features but step "s" gives 2`},
		{"final width mismatch", pipe("t", threeWide, "clf", binaryLogReg()), `step "clf" takes 2 features but step "t" gives 3`},
		{"bad step estimator", pipe("s", with(scaler, "-mean_", nil)), `step "s": StandardScaler: attribute mean_ is missing`},
		{"unsupported step", pipe("mlp", obj("sklearn.neural_network._multilayer_perceptron.MLPClassifier")), "sklearn.neural_network._multilayer_perceptron.MLPClassifier is not a supported estimator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.model)
			if err == nil {
				t.Fatal("built")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "Pipeline: ") {
				t.Errorf("error %q, want it to start with Pipeline: and contain %q", err, tc.want)
			}
		})
	}
}

func TestFeatureNames(t *testing.T) {
	named := with(standardScaler2(true, true), "feature_names_in_", strs("age", "income"))
	unicode := &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'U', ItemSize: 12}, Shape: []int{2}, Data: []byte{
		'a', 0, 0, 0, 'b', 0, 0, 0, 0, 0, 0, 0,
		'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	}}
	tests := []struct {
		name  string
		value any
		want  []string
	}{
		{"none", binaryLogReg(), nil},
		{"on the estimator", with(binaryLogReg(), "feature_names_in_", strs("x", "y")), []string{"x", "y"}},
		{"unicode array", with(binaryLogReg(), "feature_names_in_", unicode), []string{"ab", "c"}},
		{"pipeline first step", pipe("s", named, "clf", binaryLogReg()), []string{"age", "income"}},
		{"pipeline after passthrough", pipe("skip", "passthrough", "s", named, "clf", binaryLogReg()), []string{"age", "income"}},
		{"nested pipeline", pipe("pre", pipe("s", named), "clf", binaryLogReg()), []string{"age", "income"}},
		{"pipeline without names", pipe("s", standardScaler2(true, true)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := featureNames(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []any{
		with(binaryLogReg(), "feature_names_in_", "x"),
		with(binaryLogReg(), "feature_names_in_", f8([]int{2}, 1, 2)),
		with(binaryLogReg(), "feature_names_in_", &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O'}, Shape: []int{2}, Objects: []any{"x"}}),
	} {
		if _, err := featureNames(bad); err == nil {
			t.Errorf("featureNames accepted %v", bad.(*pickle.Object).State)
		}
	}
}
