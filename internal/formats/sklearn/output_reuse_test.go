package sklearn

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tensor/tensortest"
)

// Outputs written into lent memory (model.OutputReuse) are the outputs the
// model gives without it: every classifier fixture (each label type, the
// classifiers that compute both outputs at once and the others), called with
// batches of changing sizes one after another on one lent memory, with other
// models taking it in between, answers what it answers alone. Within one call
// a second Predict does not write over the first's outputs, and the memory is
// in fact reused (the same block comes back, with fewer allocations).
func TestOutputReuseGivesTheSameOutputs(t *testing.T) {
	type subject struct {
		name string
		m    model.Model
		x    *tensor.Tensor
	}
	var subjects []subject
	fixtures := readFixtures(t)
	for _, name := range slices.Sorted(maps.Keys(fixtures)) {
		f := fixtures[name]
		if f.PredictProba == nil {
			continue
		}
		m := loadFile(t, filepath.Join(fixtureDir, f.Files[0]), formats.Config{})
		x := matrixTensor(f.X)
		if _, err := m.Predict(context.Background(), []*tensor.Tensor{x}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		subjects = append(subjects, subject{name, m, x})
	}
	if len(subjects) < 40 {
		t.Fatalf("%d classifier fixtures, want the 50 or so gen_linear.py writes", len(subjects))
	}
	var reuse model.OutputReuse
	lent := context.WithValue(context.Background(), model.OutputReuseKey{}, &reuse)
	call := func(ctx context.Context, s subject, rows int) []*tensor.Tensor {
		t.Helper()
		in, err := s.x.SliceRows(0, int64(rows))
		if err != nil {
			t.Fatal(err)
		}
		outs, err := s.m.Predict(ctx, []*tensor.Tensor{in})
		if err != nil {
			t.Fatalf("%s, %d rows: %v", s.name, rows, err)
		}
		return outs
	}
	reused := 0
	for i, s := range subjects {
		other := subjects[(i+1)%len(subjects)]
		var last []*tensor.Tensor
		for step, rows := range []int{1, 1, 9, 3, 3, 64, 2, 2, 1} {
			// Dumps, not the tensors: lent memory changes under them later.
			want := tensortest.Dump(call(context.Background(), s, rows))
			if step == 4 { // another model takes the lent memory in between
				theirs := tensortest.Dump(call(context.Background(), other, rows))
				reuse.Next()
				if got := tensortest.Dump(call(lent, other, rows)); got != theirs {
					t.Fatalf("%s, lent %s's memory: %v, want %v", other.name, s.name, got, theirs)
				}
			}
			reuse.Next()
			got := call(lent, s, rows)
			if tensortest.Dump(got) != want {
				t.Fatalf("%s, %d rows (step %d): with lent memory\n%v\nwant\n%v", s.name, rows, step, tensortest.Dump(got), want)
			}
			if last != nil && got[0] == last[0] {
				reused++
			}
			// A second Predict in the same call (no Next): new memory, and
			// what the call keeps for the next.
			again := call(lent, s, 1)
			if tensortest.Dump(got) != want || again[0] == got[0] {
				t.Fatalf("%s: a second Predict in one call wrote over the first's outputs", s.name)
			}
			last = again
		}
	}
	if reused < 5*len(subjects) {
		t.Fatalf("lent memory reused %d times in %d models' calls, want most of them", reused, len(subjects))
	}

	// What it saves: a one-row call of a logistic regression.
	for _, s := range subjects {
		if !strings.HasPrefix(s.name, "logreg") {
			continue
		}
		one, _ := s.x.SliceRows(0, 1)
		in := []*tensor.Tensor{one}
		fresh := testing.AllocsPerRun(200, func() { s.m.Predict(context.Background(), in) })
		withLent := testing.AllocsPerRun(200, func() {
			reuse.Next()
			s.m.Predict(lent, in)
		})
		if withLent > fresh-4 {
			t.Errorf("%s: %.0f allocations a call with lent memory, %.0f without; want at least 4 fewer", s.name, withLent, fresh)
		}
		if reuse.Bytes() == 0 {
			t.Errorf("%s: the memory kept for the next call counts 0 bytes", s.name)
		}
	}
}
