package sklearn

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/pickle"
)

// The SVM fixtures (gen_linear.py) are checked in TestFixtures: labels exact
// (libsvm's votes, break_ties, ovr and ovo), probabilities within 5.2e-14 (tiny
// ones within 1e-15 absolute)
// and regressions within 7.3e-14 (libsvm's BLAS dot products are summed in
// another order). Here: libsvm's pieces by hand, and forged models.
func TestLibsvmPiecesByHand(t *testing.T) {
	if got := powi(1.5, 5); got != 1.5*1.5*1.5*1.5*1.5 {
		t.Errorf("powi(1.5, 5) = %v", got)
	}
	if powi(2, 0) != 1 {
		t.Error("powi(2, 0) != 1")
	}
	// Platt's sigmoid from either side of zero.
	if got, want := sigmoidPredict(1, -2, 0.5), 1/(1+math.Exp(-1.5)); math.Abs(got-want) > 1e-16 {
		t.Errorf("sigmoidPredict(1, -2, .5) = %v, want %v", got, want)
	}
	if got, want := sigmoidPredict(-1, -2, 0.5), math.Exp(-2.5)/(1+math.Exp(-2.5)); math.Abs(got-want) > 1e-16 {
		t.Errorf("sigmoidPredict(-1, -2, .5) = %v, want %v", got, want)
	}
	// Coupling consistent pairwise probabilities gives probabilities that sum to 1.
	r := [][]float64{{0, 0.8, 0.9}, {0.2, 0, 0.6}, {0.1, 0.4, 0}}
	p := make([]float64, 3)
	multiclassProbability(3, r, p)
	if s := p[0] + p[1] + p[2]; math.Abs(s-1) > 1e-12 || !(p[0] > p[1] && p[1] > p[2]) {
		t.Errorf("coupled %v (sum %v)", p, s)
	}
}

// A one-class SVM serves predict, score_samples and decision_function.
func TestOneClassSVM(t *testing.T) {
	m := loadFile(t, filepath.Join(fixtureDir, "svr_rbf.joblib"), formats.Config{})
	if m.Metadata().Outputs[0].Name != "predict" {
		t.Fatalf("svr outputs %v", m.Metadata().Outputs)
	}
	v, err := pickle.Load(filepath.Join(fixtureDir, "svr_rbf.p4.pkl"), pickle.Options{Allow: allowed})
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(*pickle.Object)
	obj.Name = "OneClassSVM"
	obj.Attrs().Set("offset_", 0.25)
	est, err := build(obj)
	if err != nil {
		t.Fatal(err)
	}
	od, ok := est.(OutlierDetector)
	if !ok {
		t.Fatalf("%T is not an outlier detector", est)
	}
	if _, ok := est.(Regressor); ok {
		t.Fatal("a one-class SVM must not pass as a regressor")
	}
	X := []float64{0, 0, 0, 0, 50, 50, 50, 50}
	scores, decision, label := od.Outliers(X, 2)
	for i := range decision {
		if scores[i] != decision[i]+0.25 || (label[i] == 1) != (decision[i] > 0) {
			t.Errorf("row %d: score %v decision %v label %d", i, scores[i], decision[i], label[i])
		}
	}
}

func TestSVMRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		file, attr string
		value      any
		want       string
	}{
		{"svc_rbf_binary.p4.pkl", "kernel", "precomputed", `kernel "precomputed" is not supported`},
		{"svc_rbf_binary.p4.pkl", "_sparse", true, "fitted on sparse data"},
		{"svc_poly_multiclass.p4.pkl", "degree", int64(400), "degree 400 out of range"},
		{"svc_poly_multiclass.p4.pkl", "_intercept_", 1.0, "_intercept_"},
		{"svr_rbf.p4.pkl", "_dual_coef_", nil, "_dual_coef_"},
	} {
		t.Run(tc.file+"/"+tc.attr, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), func(o *pickle.Object) { o.Attrs().Set(tc.attr, tc.value) }, tc.want)
		})
	}
	// _n_support that does not add up to the support vectors.
	v, _ := pickle.Load(filepath.Join(fixtureDir, "svc_poly_multiclass.p4.pkl"), pickle.Options{Allow: allowed})
	obj := v.(*pickle.Object)
	ns, _ := obj.Array("_n_support")
	bad := *ns
	bad.Data = append([]byte(nil), ns.Data...)
	bad.Data[0]++
	obj.Attrs().Set("_n_support", &bad)
	if _, err := build(obj); err == nil || !strings.Contains(err.Error(), "support vectors") {
		t.Fatalf("_n_support: %v", err)
	}
}
