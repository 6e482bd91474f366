package sklearn

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// The column-wise fixtures (gen_linear.py) are checked in TestFixtures, all
// bit-exact: a ColumnTransformer by index (scaler, one-hot with unknown
// merchants ignored, remainder passed through) and by name (imputed and
// scaled amounts, an ordinal encoder, a dropped column, HistGradientBoosting
// on top), the encoders alone and a weighted FeatureUnion.

// The named column transformer's model takes the table's column names, so
// /predict objects address them by name.
func TestColumnTransformerKeepsTheTableNames(t *testing.T) {
	m := loadFile(t, filepath.Join(fixtureDir, "ct_names_ordinal_hgb.joblib"), formats.Config{})
	if got := m.Metadata().Features; !reflect.DeepEqual(got, []string{"amount", "hour", "merchant", "age"}) {
		t.Fatalf("features %v", got)
	}
}

// An encoder with handle_unknown="error" answers an unseen category with a 422
// naming it, as sklearn raises.
func TestUnknownCategoryIsA422(t *testing.T) {
	m := loadFile(t, filepath.Join(fixtureDir, "onehot_drop_first.joblib"), formats.Config{})
	in := &tensor.Tensor{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{3, 42}}
	_, err := m.Predict(context.Background(), []*tensor.Tensor{in})
	if !isInvalid(err) || !strings.Contains(err.Error(), "42 is not a known category of the encoder's column 1") {
		t.Fatalf("unknown category: %v", err)
	}
}

func TestColumnsRejectMalformed(t *testing.T) {
	ctParts := func(o *pickle.Object) []any { items, _ := o.Items("transformers_"); return items }
	for _, tc := range []struct {
		file string
		edit func(o *pickle.Object)
		want string
	}{
		{"onehot_drop_first.p4.pkl", func(o *pickle.Object) { o.Attrs().Set("handle_unknown", "warn") }, `handle_unknown "warn" is not error, ignore or infrequent_if_exist`},
		{"onehot_infrequent_min_frequency.p4.pkl", func(o *pickle.Object) {
			m, _ := o.Items("_default_to_infrequent_mappings")
			m[0] = m[1]
			o.Attrs().Set("_default_to_infrequent_mappings", &pickle.List{Items: m})
		}, "category 6 of feature 0 maps to column 6 of 6"},
		{"onehot_drop_first.p4.pkl", func(o *pickle.Object) {
			cats, _ := o.Items("categories_")
			o.Attrs().Set("categories_", &pickle.List{Items: []any{cats[0], objects("visa", int64(3))}})
		}, "categories_[1]: mixes strings and int values"},
		{"onehot_drop_first.p4.pkl", func(o *pickle.Object) {
			cats, _ := o.Items("categories_")
			o.Attrs().Set("categories_", &pickle.List{Items: []any{cats[0], objects("visa", nil, math.NaN())}})
		}, "has both None and NaN as categories"},
		{"onehot_drop_first.p4.pkl", func(o *pickle.Object) {
			cats, _ := o.Items("categories_")
			o.Attrs().Set("categories_", &pickle.List{Items: []any{cats[0], objects("visa", "amex", "visa")}})
		}, `lists "visa" twice`},
		{"ordinal_nan_unknown.p4.pkl", func(o *pickle.Object) { o.Attrs().Set("handle_unknown", "guess") }, `handle_unknown "guess" is not`},
		{"feature_union.p4.pkl", func(o *pickle.Object) { o.Attrs().Set("transformer_weights", "heavy") }, "transformer_weights is a str"},
		{"ct_index_onehot_lr.p4.pkl", func(o *pickle.Object) {
			ct, _ := o.Items("steps")
			tr := ct[0].(pickle.Tuple)[1].(*pickle.Object)
			parts := ctParts(tr)
			first := parts[0].(pickle.Tuple)
			parts[0] = pickle.Tuple{first[0], first[1], &pickle.List{Items: []any{int64(0), int64(9)}}}
			tr.Attrs().Set("transformers_", &pickle.List{Items: parts})
		}, "column 9 out of range (4 features)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), tc.edit, tc.want)
		})
	}
}
