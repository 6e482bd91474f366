package sklearn

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
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
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for name := range fixtures {
			if !yield(name) {
				return
			}
		}
	}) {
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
		outs, err := s.m.Predict(ctx, []*tensor.Tensor{firstRows(s.x, rows)})
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
			want := copyTensors(call(context.Background(), s, rows))
			if step == 4 { // another model takes the lent memory in between
				theirs := copyTensors(call(context.Background(), other, rows))
				reuse.Next()
				if got := copyTensors(call(lent, other, rows)); !reflect.DeepEqual(got, theirs) {
					t.Fatalf("%s, lent %s's memory: %v, want %v", other.name, s.name, got, theirs)
				}
			}
			reuse.Next()
			got := call(lent, s, rows)
			if !reflect.DeepEqual(copyTensors(got), want) {
				t.Fatalf("%s, %d rows (step %d): with lent memory\n%v\nwant\n%v", s.name, rows, step, got, want)
			}
			if last != nil && got[0] == last[0] {
				reused++
			}
			// A second Predict in the same call (no Next): new memory, and
			// what the call keeps for the next.
			again := call(lent, s, 1)
			if !reflect.DeepEqual(copyTensors(got), want) || again[0] == got[0] {
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
		in := []*tensor.Tensor{firstRows(s.x, 1)}
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

// firstRows is x's first n rows (x's own memory).
func firstRows(x *tensor.Tensor, n int) *tensor.Tensor {
	w := int(x.Shape[1])
	return &tensor.Tensor{Name: x.Name, Datatype: x.Datatype, Shape: []int64{int64(n), int64(w)}, Data: x.Data.([]float64)[:n*w]}
}

// copyTensors copies ts and their data, which lent memory may later change.
func copyTensors(ts []*tensor.Tensor) []tensor.Tensor {
	out := make([]tensor.Tensor, len(ts))
	for i, t := range ts {
		out[i] = tensor.Tensor{Name: t.Name, Datatype: t.Datatype, Shape: slices.Clone(t.Shape)}
		switch v := t.Data.(type) {
		case []float64:
			out[i].Data = slices.Clone(v)
		case []int64:
			out[i].Data = slices.Clone(v)
		case []bool:
			out[i].Data = slices.Clone(v)
		case [][]byte:
			out[i].Data = slices.Clone(v)
		default:
			out[i].Data = v
		}
	}
	return out
}
