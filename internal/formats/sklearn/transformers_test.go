package sklearn

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/pickle"
	"github.com/tideserve/tide/internal/tensor"
)

// The transformer fixtures (gen_linear.py) are checked in TestFixtures: the
// binarizer, l1/max normalizers, polynomial features, bins and the uniform
// quantile transform bit-exact; l2 normalisation, the normal quantile
// transform and the power transforms within 1.8e-13 (Go's pow, log and
// inverse error function refined by Newton steps, against C's and scipy's).

// Box-Cox takes strictly positive data only: anything else is a 422, as
// sklearn raises; NaN passes through as missing.
func TestBoxCoxRefusesNonPositive(t *testing.T) {
	m := loadFile(t, filepath.Join(fixtureDir, "power_box_cox.joblib"), formats.Config{})
	in := func(v float64) []*tensor.Tensor {
		return []*tensor.Tensor{{Name: "input", Datatype: tensor.FP64, Shape: []int64{1, 4}, Data: []float64{1, v, 2, 3}}}
	}
	if _, err := m.Predict(context.Background(), in(0)); !isInvalid(err) || !strings.Contains(err.Error(), "strictly positive") {
		t.Fatalf("0: %v", err)
	}
	out, err := m.Predict(context.Background(), in(math.NaN()))
	if err != nil || !math.IsNaN(out[0].Data.([]float64)[1]) {
		t.Fatalf("NaN: %v %v", out, err)
	}
}

func TestTransformersRejectMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      any
		want       string
	}{
		{"normalizer_l2.p4.pkl", "norm", "l3", `norm "l3" is not l1, l2 or max`},
		{"poly3.p4.pkl", "n_output_features_", int64(999), "n_output_features_ 999 out of range (35 in the full expansion)"},
		{"poly3.p4.pkl", "_max_degree", int64(40), "degrees 0..40 out of range"},
		{"kbins_ordinal_uniform.p4.pkl", "encode", "binary", `encode "binary" is not`},
		{"power_yeo_johnson.p4.pkl", "method", "cube", `method "cube" is not`},
		{"quantile_normal.p4.pkl", "output_distribution", "poisson", `output_distribution "poisson" is not`},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value) }, tc.want)
		})
	}
}
