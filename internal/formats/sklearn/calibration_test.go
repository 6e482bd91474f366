package sklearn

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/pickle"
)

// The calibration fixtures (gen_linear.py) are checked in TestFixtures:
// labels exact, probabilities bit-exact (the sigmoid's exp is glibc's, as
// numpy's). Here: the calibrators' edges, and forged folds.
func TestCalibratorsByHand(t *testing.T) {
	iso := isotonicCalibration{x: []float64{0, 1, 3}, y: []float64{0.1, 0.5, 0.9}, xmin: 0, xmax: 3}
	for in, want := range map[float64]float64{-5: 0.1, 0: 0.1, 0.5: 0.30000000000000004, 1: 0.5, 2: 0.7, 3: 0.9, 99: 0.9} {
		if got := iso.predict(in); got != want {
			t.Errorf("isotonic(%v) = %v, want %v", in, got, want)
		}
	}
	one := isotonicCalibration{x: []float64{2}, y: []float64{0.25}, xmin: 2, xmax: 2}
	if got := one.predict(7); got != 0.25 {
		t.Errorf("one threshold: %v", got)
	}
	sig := sigmoidCalibration{a: -2, b: 0.5}
	if got, want := sig.predict(1), 1/(1+math.Exp(-1.5)); math.Abs(got-want) > 1e-16 {
		t.Errorf("sigmoid(1) = %v, want %v", got, want)
	}
}

func TestCalibratedRejectsMalformed(t *testing.T) {
	fold := func(o *pickle.Object) *pickle.Object {
		items, _ := o.Items("calibrated_classifiers_")
		return items[0].(*pickle.Object)
	}
	for _, tc := range []struct {
		file string
		edit func(o *pickle.Object)
		want string
	}{
		{"calibrated_svc_sigmoid.p4.pkl", func(o *pickle.Object) {
			f := fold(o)
			cals, _ := f.Items("calibrators")
			f.Attrs().Set("calibrators", &pickle.List{Items: append(cals, cals[0])})
		}, "2 calibrators for 2 classes"},
		{"calibrated_lr_isotonic.p4.pkl", func(o *pickle.Object) {
			cals, _ := fold(o).Items("calibrators")
			iso := cals[0].(*pickle.Object)
			x, _ := iso.Array("X_thresholds_")
			rev := *x
			rev.Data = append([]byte(nil), x.Data...)
			copy(rev.Data[0:8], x.Data[8:16]) // thresholds no longer increasing
			iso.Attrs().Set("X_thresholds_", &rev)
		}, "X_thresholds_ are not strictly increasing"},
		{"calibrated_svc_sigmoid.p4.pkl", func(o *pickle.Object) {
			cals, _ := fold(o).Items("calibrators")
			cals[0].(*pickle.Object).Name = "_Bogus"
		}, "is not a supported calibrator"},
		{"calibrated_svc_sigmoid.p4.pkl", func(o *pickle.Object) {
			o.Attrs().Set("calibrated_classifiers_", &pickle.List{})
		}, "calibrated_classifiers_ is empty"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			refusedAfter(t, filepath.Join(fixtureDir, tc.file), tc.edit, tc.want)
		})
	}
}
