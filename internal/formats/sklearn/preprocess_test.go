package sklearn

import (
	"math"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

const (
	standardScalerClass = "sklearn.preprocessing._data.StandardScaler"
	minMaxScalerClass   = "sklearn.preprocessing._data.MinMaxScaler"
)

func standardScaler2(withMean, withStd bool) *pickle.Object {
	o := obj(standardScalerClass, "with_mean", withMean, "with_std", withStd, "n_features_in_", int64(2),
		"mean_", f8([]int{2}, 1, -2), "var_", f8([]int{2}, 4, 0.25))
	if withStd {
		return with(o, "scale_", f8([]int{2}, 2, 0.5))
	}
	return with(o, "scale_", nil) // sklearn stores scale_ = None without with_std
}

func minMaxScaler2(clip bool) *pickle.Object {
	return obj(minMaxScalerClass, "feature_range", pickle.Tuple{int64(-1), int64(1)}, "clip", clip,
		"n_features_in_", int64(2), "scale_", f8([]int{2}, 0.5, 2), "min_", f8([]int{2}, -1, 0))
}

func TestScalersTransform(t *testing.T) {
	nan := math.NaN()
	X := []float64{3, 1, -1, -2, 5, nan}
	tests := []struct {
		name  string
		model *pickle.Object
		want  []float64
	}{
		{"standard", standardScaler2(true, true), []float64{1, 6, -1, 0, 2, nan}},
		{"mean only", standardScaler2(true, false), []float64{2, 3, -2, 0, 4, nan}},
		{"std only", standardScaler2(false, true), []float64{1.5, 2, -0.5, -4, 2.5, nan}},
		{"neither", standardScaler2(false, false), []float64{3, 1, -1, -2, 5, nan}},
		{"robust", obj("sklearn.preprocessing._data.RobustScaler", "with_centering", true, "with_scaling", true,
			"center_", f8([]int{2}, 1, -2), "scale_", f8([]int{2}, 2, 0.5)), []float64{1, 6, -1, 0, 2, nan}},
		{"robust scaling only", obj("sklearn.preprocessing._data.RobustScaler", "with_centering", false, "with_scaling", true,
			"center_", nil, "scale_", f8([]int{2}, 2, 0.5)), []float64{1.5, 2, -0.5, -4, 2.5, nan}},
		{"maxabs", obj("sklearn.preprocessing._data.MaxAbsScaler", "n_features_in_", int64(2), "scale_", f8([]int{2}, 2, 0.5), "max_abs_", f8([]int{2}, 2, 0.5)), []float64{1.5, 2, -0.5, -4, 2.5, nan}},
		{"minmax", minMaxScaler2(false), []float64{0.5, 2, -1.5, -4, 1.5, nan}},
		{"minmax clipped", minMaxScaler2(true), []float64{0.5, 1, -1, -1, 1, nan}},
		{"minmax before clip existed", with(minMaxScaler2(true), "-clip", nil), []float64{0.5, 2, -1.5, -4, 1.5, nan}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := buildOK(t, tc.model).(Transformer)
			if tr.NumFeatures() != 2 || tr.NumOutputs() != 2 {
				t.Fatalf("widths %d→%d, want 2→2", tr.NumFeatures(), tr.NumOutputs())
			}
			in := append([]float64(nil), X...)
			got := tr.Transform(in, 3)
			for i := range tc.want {
				if got[i] != tc.want[i] && !(math.IsNaN(got[i]) && math.IsNaN(tc.want[i])) {
					t.Fatalf("transform = %v, want %v", got, tc.want)
				}
			}
			for i := range in {
				if in[i] != X[i] && !math.IsNaN(X[i]) {
					t.Fatal("Transform modified its input")
				}
			}
			if nan, inf := tr.(NonFiniteAcceptor).AcceptsNonFinite(); !nan || inf {
				t.Errorf("AcceptsNonFinite = %v, %v; sklearn's scalers accept NaN but not Inf", nan, inf)
			}
		})
	}
}

func TestBuildScalersRejectMalformed(t *testing.T) {
	tests := []struct {
		name  string
		model *pickle.Object
		want  string
	}{
		{"mean_ missing", with(standardScaler2(true, true), "-mean_", nil), "attribute mean_ is missing"},
		{"scale_ None with with_std", with(standardScaler2(true, true), "scale_", nil), "scale_: want an array, got None"},
		{"mean_ width", with(standardScaler2(true, true), "mean_", f8([]int{3}, 1, 2, 3)), "mean_ has 3 values for 2 features"},
		{"scale_ vs mean_", with(standardScaler2(true, true), "-n_features_in_", nil, "scale_", f8([]int{1}, 1)), "scale_ has 1 values for 2 features"},
		{"mean_ 2-D", with(standardScaler2(true, true), "mean_", f8([]int{1, 2}, 1, 2)), "one value per feature"},
		{"with_mean not bool", with(standardScaler2(true, true), "with_mean", "yes"), "with_mean: want a bool"},
		{"width unknown", with(standardScaler2(false, false), "-n_features_in_", nil), "number of features is unknown"},
		{"robust center_ None", obj("sklearn.preprocessing._data.RobustScaler", "with_centering", true, "with_scaling", false, "center_", nil), "center_: want an array, got None"},
		{"maxabs scale_ missing", obj("sklearn.preprocessing._data.MaxAbsScaler", "n_features_in_", int64(2)), "attribute scale_ is missing"},
		{"minmax min_ missing", with(minMaxScaler2(false), "-min_", nil), "attribute min_ is missing"},
		{"minmax min_ width", with(minMaxScaler2(false), "min_", f8([]int{1}, 0)), "min_ has 1 values for 2 features"},
		{"minmax range reversed", with(minMaxScaler2(true), "feature_range", pickle.Tuple{1.0, -1.0}), "minimum must be below maximum"},
		{"minmax range short", with(minMaxScaler2(true), "feature_range", pickle.Tuple{1.0}), "want two numbers"},
		{"minmax range strings", with(minMaxScaler2(true), "feature_range", pickle.Tuple{"a", "b"}), "want two numbers"},
		{"minmax clip not bool", with(minMaxScaler2(true), "clip", int64(1)), "clip: want a bool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.model)
			if err == nil {
				t.Fatal("built")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

const simpleImputerClass = "sklearn.impute._base.SimpleImputer"

func missingIndicator(features ...int64) *pickle.Object {
	return obj("sklearn.impute._base.MissingIndicator", "missing_values", math.NaN(), "features", "missing-only",
		"error_on_new", false, "_n_features", int64(3), "features_", i8(features...))
}

// imputer3 is SimpleImputer fitted on three columns, the second empty at fit time.
func imputer3(attrs ...any) *pickle.Object {
	o := obj(simpleImputerClass, "missing_values", math.NaN(), "strategy", "mean", "add_indicator", false,
		"keep_empty_features", false, "n_features_in_", int64(3), "_fit_dtype", &pickle.Dtype{Kind: 'f', ItemSize: 8},
		"indicator_", nil, "statistics_", f8([]int{3}, 10, math.NaN(), 30))
	return with(o, attrs...)
}

func TestSimpleImputer(t *testing.T) {
	nan := math.NaN()
	X := []float64{nan, 5, 3, 1, nan, nan, -1, -1, 0}
	tests := []struct {
		name  string
		model *pickle.Object
		want  []float64
		nan   bool
	}{
		{"drops the empty column", imputer3(), []float64{10, 3, 1, 30, -1, 0}, true},
		{"keep_empty_features", imputer3("keep_empty_features", true), []float64{10, 5, 3, 1, nan, 30, -1, -1, 0}, true},
		{"constant keeps every column", imputer3("strategy", "constant", "statistics_", f8([]int{3}, 0.5, 0.5, 0.5)), []float64{0.5, 5, 3, 1, 0.5, 0.5, -1, -1, 0}, true},
		{"indicator", imputer3("add_indicator", true, "indicator_", missingIndicator(0, 2)), []float64{10, 3, 1, 0, 1, 30, 0, 1, -1, 0, 0, 0}, true},
		{"marker value", imputer3("missing_values", int64(-1), "statistics_", f8([]int{3}, 7, 8, 9)), []float64{nan, 5, 3, 1, nan, nan, 7, 8, 0}, false},
		{"before keep_empty_features existed", with(imputer3(), "-keep_empty_features", nil), []float64{10, 3, 1, 30, -1, 0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := buildOK(t, tc.model).(Transformer)
			got := tr.Transform(X, 3)
			if len(got) != 3*tr.NumOutputs() || len(got) != len(tc.want) {
				t.Fatalf("transform gave %d values for %d outputs, want %v", len(got), tr.NumOutputs(), tc.want)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] && !(math.IsNaN(got[i]) && math.IsNaN(tc.want[i])) {
					t.Fatalf("transform = %v, want %v", got, tc.want)
				}
			}
			if nan, inf := tr.(NonFiniteAcceptor).AcceptsNonFinite(); nan != tc.nan || inf {
				t.Errorf("AcceptsNonFinite = %v, %v; want %v, false", nan, inf, tc.nan)
			}
		})
	}
}

func TestBuildSimpleImputerRejectsMalformed(t *testing.T) {
	tests := []struct {
		name  string
		model *pickle.Object
		want  string
	}{
		{"unicode data", imputer3("_fit_dtype", &pickle.Dtype{Kind: 'U', ItemSize: 20}), "data is not supported, only numbers and strings"},
		{"mean of strings", imputer3("_fit_dtype", &pickle.Dtype{Kind: 'O', ItemSize: 8}, "statistics_", objects("a", "b", "c")), `strategy "mean" on strings`},
		{"number among strings", imputer3("_fit_dtype", &pickle.Dtype{Kind: 'O', ItemSize: 8}, "strategy", "most_frequent", "statistics_", objects("a", 2.0, "c")), "statistics_[1] is a float among strings"},
		{"None marker", imputer3("missing_values", nil), "missing_values None is not supported"},
		{"statistics_ width", imputer3("statistics_", f8([]int{2}, 1, 2)), "statistics_ has 2 values for 3 features"},
		{"no strategy", imputer3("-strategy", nil), "attribute strategy is missing"},
		{"indicator missing", imputer3("add_indicator", true), "indicator_: want a MissingIndicator, got None"},
		{"indicator column out of range", imputer3("add_indicator", true, "indicator_", missingIndicator(0, 3)), "indicator_.features_[1] = 3, outside the 3 features"},
		{"indicator features_ floats", imputer3("add_indicator", true, "indicator_", with(missingIndicator(), "features_", f8([]int{1}, 0))), "want a vector of column indices"},
		{"everything empty", imputer3("statistics_", f8([]int{3}, math.NaN(), math.NaN(), math.NaN())), "the imputer outputs nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.model)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// objects is a 1-D numpy object array.
func objects(items ...any) *pickle.NDArray {
	return &pickle.NDArray{Dtype: &pickle.Dtype{Kind: 'O', ItemSize: 8}, Shape: []int{len(items)}, Objects: items}
}
