package sklearn

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// The string-column fixtures (gen_mixed.py): models fitted on DataFrames that
// mix numbers and strings, with gaps, evaluated on rows that hold strings fit
// never saw. Each model takes one input per column.
const mixedDir = "testdata/mixed"

type mixedFixture struct {
	Columns []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"columns"`
	Rows         [][]any      `json:"rows"`
	Predict      []any        `json:"predict"`
	PredictProba [][]*float64 `json:"predict_proba"`
	Transform    [][]*float64 `json:"transform"`
	File         string       `json:"file"`
}

func readMixed(t testing.TB, name string) *mixedFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mixedDir, name+".expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	fx := &mixedFixture{}
	if err := json.Unmarshal(b, fx); err != nil {
		t.Fatal(err)
	}
	return fx
}

// columnTensors turns fixture rows into one tensor per column, as a client
// sends a DataFrame: strings as BYTES (null: a nil element), numbers as FP64
// (null: NaN). A dropped column is sent as strings, as the client has it.
func (fx *mixedFixture) columnTensors() []*tensor.Tensor {
	n := len(fx.Rows)
	out := make([]*tensor.Tensor, len(fx.Columns))
	for c, col := range fx.Columns {
		t := &tensor.Tensor{Name: col.Name, Shape: []int64{int64(n)}}
		if col.Kind == "number" {
			v := make([]float64, n)
			for r, row := range fx.Rows {
				v[r] = math.NaN()
				if x, ok := row[c].(float64); ok {
					v[r] = x
				}
			}
			t.Datatype, t.Data = tensor.FP64, v
		} else {
			v := make([][]byte, n)
			for r, row := range fx.Rows {
				if s, ok := row[c].(string); ok {
					v[r] = []byte(s)
				}
			}
			t.Datatype, t.Data = tensor.Bytes, v
		}
		out[c] = t
	}
	return out
}

func flatNaN(rows [][]*float64) []float64 {
	var out []float64
	for _, r := range rows {
		for _, x := range r {
			if x == nil {
				out = append(out, math.NaN())
			} else {
				out = append(out, *x)
			}
		}
	}
	return out
}

func TestMixedFixtures(t *testing.T) {
	for _, name := range []string{"fraud_hgb", "ct_ordinal_lr", "ct_slices_lr", "ct_selector_hgb", "ordinal_given_order", "impute_frequent_onehot_drop", "impute_marker_infrequent"} {
		t.Run(name, func(t *testing.T) {
			fx := readMixed(t, name)
			m := loadFile(t, filepath.Join(mixedDir, fx.File), formats.Config{})
			meta := m.Metadata()
			if len(meta.Inputs) != len(fx.Columns) {
				t.Fatalf("%d inputs, want one per column (%d)", len(meta.Inputs), len(fx.Columns))
			}
			for c, col := range fx.Columns {
				want := tensor.FP64
				if col.Kind == "text" {
					want = tensor.Bytes
				}
				if in := meta.Inputs[c]; in.Name != col.Name || in.Datatype != want || meta.Features[c] != col.Name {
					t.Errorf("input %d is %s %s (feature %s), want %s %s", c, in.Name, in.Datatype, meta.Features[c], col.Name, want)
				}
			}
			outs, err := m.Predict(context.Background(), fx.columnTensors())
			if err != nil {
				t.Fatal(err)
			}
			n := len(fx.Rows)
			if n < 500 {
				t.Errorf("%d evaluation rows, want at least 500", n)
			}
			switch {
			case fx.PredictProba != nil:
				labels := outs[0].Data.([]int64)
				for i, want := range fx.Predict {
					if float64(labels[i]) != want.(float64) {
						t.Fatalf("predict[%d] = %d, sklearn %v", i, labels[i], want)
					}
				}
				exact, rel := compareFloats(t, "predict_proba", outs[1].Data.([]float64), flatNaN(fx.PredictProba))
				t.Logf("%s: predict_proba bit-exact %d/%d, max relative error %.2g", name, exact, 2*n, rel)
			default:
				exact, rel := compareFloats(t, "transform", outs[0].Data.([]float64), flatNaN(fx.Transform))
				t.Logf("%s: transform bit-exact %d/%d, max relative error %.2g", name, exact, len(fx.Transform)*len(fx.Transform[0]), rel)
			}
		})
	}
}

// The tree pipeline is bit for bit sklearn's, as every tree model is.
func TestFraudPipelineIsBitExact(t *testing.T) {
	fx := readMixed(t, "fraud_hgb")
	m := loadFile(t, filepath.Join(mixedDir, fx.File), formats.Config{})
	outs, err := m.Predict(context.Background(), fx.columnTensors())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range flatNaN(fx.PredictProba) {
		if got := outs[1].Data.([]float64)[i]; got != want {
			t.Fatalf("predict_proba[%d] = %v, sklearn %v", i, got, want)
		}
	}
}

func mixedRequest(t *testing.T, fx *mixedFixture, edit func(ts []*tensor.Tensor)) error {
	t.Helper()
	m := loadFile(t, filepath.Join(mixedDir, fx.File), formats.Config{})
	ts := fx.columnTensors()
	if edit != nil {
		edit(ts)
	}
	_, err := m.Predict(context.Background(), ts)
	return err
}

// An encoder with handle_unknown='error' answers an unseen string with a 422
// naming the column and the string, and a gap it has no category for too.
func TestUnknownStringIsA422NamingTheColumn(t *testing.T) {
	fx := readMixed(t, "impute_frequent_onehot_drop")
	for _, tc := range []struct {
		value []byte
		want  string
	}{
		{[]byte("crypto"), `input row 3, column "merchant_category": "crypto" is not a known category (handle_unknown='error')`},
		{[]byte(strings.Repeat("x", 200)), `"` + strings.Repeat("x", 64) + `…" is not a known category`},
	} {
		err := mixedRequest(t, fx, func(ts []*tensor.Tensor) { ts[0].Data.([][]byte)[3] = tc.value })
		if !isInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want a 422 with %q", err, tc.want)
		}
	}
	// Without the imputer in front, a gap reaches the encoder, which has no
	// missing category: the same 422, saying what was missing.
	lr := readMixed(t, "ordinal_given_order")
	if err := mixedRequest(t, lr, nil); err != nil {
		t.Fatalf("use_encoded_value takes unknown strings: %v", err)
	}
}

func TestColumnInputsAreChecked(t *testing.T) {
	fx := readMixed(t, "fraud_hgb")
	for _, tc := range []struct {
		name string
		edit func(ts []*tensor.Tensor)
		want string
	}{
		{"numbers for a string column", func(ts []*tensor.Tensor) {
			ts[4] = &tensor.Tensor{Name: "merchant_category", Datatype: tensor.FP64, Shape: ts[4].Shape, Data: make([]float64, ts[4].Shape[0])}
		}, `input "merchant_category" takes strings (BYTES), got FP64`},
		{"strings for a number column", func(ts []*tensor.Tensor) { ts[1] = withName(ts[4], "amount") }, `input "amount" takes numbers, got BYTES`},
		{"rows disagree", func(ts []*tensor.Tensor) {
			ts[2] = &tensor.Tensor{Name: "hour", Datatype: tensor.FP64, Shape: []int64{2}, Data: []float64{1, 2}}
		}, `input "hour" has 2 rows but "transaction_id" has 1000`},
		{"a matrix for a column", func(ts []*tensor.Tensor) {
			ts[1] = &tensor.Tensor{Name: "amount", Datatype: tensor.FP64, Shape: []int64{500, 2}, Data: make([]float64, 1000)}
		}, `input "amount": want shape [n] or [n, 1] (one column), got [500 2]`},
		{"too few inputs", func(ts []*tensor.Tensor) { ts[6] = nil }, `input 6: want column "device"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mixedRequest(t, fx, tc.edit)
			if !isInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a 422 with %q", err, tc.want)
			}
		})
	}
	// [n, 1] columns (MLServer's pandas codec) are taken as [n].
	err := mixedRequest(t, fx, func(ts []*tensor.Tensor) {
		for _, x := range ts {
			x.Shape = []int64{x.Shape[0], 1}
		}
	})
	if err != nil {
		t.Errorf("[n, 1] columns: %v", err)
	}
}

func withName(t *tensor.Tensor, name string) *tensor.Tensor {
	c := *t
	c.Name = name
	return &c
}

// Pipelines that would hand strings to a step computing on numbers, or leave
// a string encoder where the columns do not reach it, are refused at load.
func TestStringColumnsRefusedWhereTheyCannotFlow(t *testing.T) {
	path := filepath.Join(mixedDir, "impute_frequent_onehot_drop.joblib")
	steps := func(o *pickle.Object) []any { s, _ := o.Items("steps"); return s }
	for _, tc := range []struct {
		name string
		edit func(o *pickle.Object)
		want string
	}{
		{"imputed strings straight to the output", func(o *pickle.Object) {
			s := steps(o)
			o.Attrs().Set("steps", &pickle.List{Items: s[:1]})
		}, `step "impute" gives strings in column 0 as the model's output`},
		{"a number column for an encoder of strings", func(o *pickle.Object) {
			s := steps(o)
			o.Attrs().Set("steps", &pickle.List{Items: []any{pickle.Tuple{"scale", standardScaler(6)}, s[1]}})
		}, `takes strings in column 0 but step "scale" gives numbers there`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := pickle.Load(path, pickle.Options{Allow: allowed})
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(v.(*pickle.Object))
			_, err = newModelFromValue(v, formats.Config{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tc.want)
			}
		})
	}
}

// standardScaler is a fitted StandardScaler of p features.
func standardScaler(p int) *pickle.Object {
	ones := make([]float64, p)
	for i := range ones {
		ones[i] = 1
	}
	return obj(standardScalerClass, "with_mean", true, "with_std", true, "mean_", f8([]int{p}, ones...),
		"scale_", f8([]int{p}, ones...), "var_", f8([]int{p}, ones...), "n_features_in_", int64(p))
}

// A string encoder inside an ensemble's member is out of the columns' reach:
// refused at load, naming it, rather than served with strings it never sees.
func TestStringEncoderInsideAnEnsembleIsRefused(t *testing.T) {
	rt, _ := formats.Lookup("sklearn")
	_, err := rt.Loader.Load(context.Background(), filepath.Join(mixedDir, "voting_members_with_strings.joblib"), formats.Config{})
	want := "a OneHotEncoder fitted on strings sits where the model's input columns do not reach it"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// Slices of column positions resolve as Python slices a list (the cases are
// Python's own answers, from gen_mixed.py).
func TestSliceIndicesArePythons(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(mixedDir, "slices.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases [][4]any
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	arg := func(v any) any {
		if f, ok := v.(float64); ok {
			return int64(f)
		}
		return nil
	}
	for _, c := range cases {
		o := &pickle.Object{Module: "builtins", Name: "slice", Args: []any{arg(c[0]), arg(c[1]), arg(c[2])}}
		got, err := columnIndices(o, 5, nil)
		var want []int
		for _, x := range c[3].([]any) {
			want = append(want, int(x.(float64)))
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("slice(%v, %v, %v) = %v, %v; Python %v", c[0], c[1], c[2], got, err, want)
		}
	}
	if _, err := columnIndices(&pickle.Object{Module: "builtins", Name: "slice", Args: []any{nil, nil, int64(0)}}, 5, nil); err == nil {
		t.Error("a step of 0 is accepted")
	}
	names := []string{"a", "b", "c", "d"}
	got, err := columnIndices(&pickle.Object{Module: "builtins", Name: "slice", Args: []any{"b", "c", nil}}, 4, names)
	if err != nil || fmt.Sprint(got) != "[1 2]" {
		t.Errorf("slice(b, c) = %v, %v; want [1 2], stop included", got, err)
	}
	if _, err := columnIndices(&pickle.Object{Module: "builtins", Name: "slice", Args: []any{"b", "z", nil}}, 4, names); err == nil || !strings.Contains(err.Error(), `column "z" is not among feature_names_in_`) {
		t.Errorf("unknown stop name: %v", err)
	}
}

// A function as a column selector is code: refused by its name.
func TestCallableColumnSelectorIsRefusedByName(t *testing.T) {
	rt, _ := formats.Lookup("sklearn")
	_, err := rt.Loader.Load(context.Background(), filepath.Join(mixedDir, "ct_callable_refused.joblib"), formats.Config{})
	if err == nil || !strings.Contains(err.Error(), `"__main__.pick_numbers": not an allowed class; it is code from the training script`) {
		t.Fatalf("got %v, want a refusal naming __main__.pick_numbers", err)
	}
}
