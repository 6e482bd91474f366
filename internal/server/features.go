package server

import (
	"sync"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/serving"
	"github.com/tideserve/tide/internal/tensor"
)

// featureTable gathers the rows of the feature-object protocols (/predict,
// KServe v1 instances) into the tensors the model takes: one n×k FP64 matrix
// for a numeric model, or, for a model with string columns, one tensor per
// column (FP64 for numbers, BYTES for strings, a nil element for null).
type featureTable struct {
	sm    *serving.Features // nil: a model without feature names (lists only)
	input string
	width int
	rows  int
	x     []float64  // rows × width, row-major: every number column
	text  [][][]byte // per column: one element per row for a string column, else nil

	// The one-matrix case's tensor, kept with the table so that a pooled
	// table answers tensors without allocating.
	one   tensor.Tensor
	shape [2]int64
	list  [1]*tensor.Tensor
}

// tablePool keeps feature tables between requests: /predict allocated six
// objects per request for them.
var tablePool = sync.Pool{New: func() any { return new(featureTable) }}

// newFeatureTable takes a table from the pool for a model with these
// features; release hands it back.
func newFeatureTable(sm *serving.Features, input string, width, rowsHint int) *featureTable {
	t := tablePool.Get().(*featureTable)
	t.sm, t.input, t.width, t.rows, t.text = sm, input, width, 0, nil
	if cap(t.x) < width*rowsHint {
		t.x = make([]float64, 0, width*rowsHint)
	}
	t.x = t.x[:0]
	if sm != nil {
		t.input = sm.Input
		if sm.Columns {
			t.text = make([][][]byte, width)
			for c, k := range sm.Kinds {
				if k == serving.ColumnText {
					t.text[c] = make([][]byte, 0, rowsHint)
				}
			}
		}
	}
	return t
}

// release hands the table back to the pool. Call it only once the model has
// answered and the answer is written: until then the model, the monitor and
// the encoder may read the tensors. (A request that failed does not release
// its table: a model run that outlived its deadline may still be reading it.)
func (t *featureTable) release() {
	if cap(t.x) > 1<<16 { // don't keep huge tables alive
		return
	}
	t.sm, t.text = nil, nil
	tablePool.Put(t)
}

// addRow starts a row of zeros (and missing strings) and returns its index.
func (t *featureTable) addRow() int {
	t.x = append(t.x, make([]float64, t.width)...)
	for c, col := range t.text {
		if col != nil {
			t.text[c] = append(col, nil)
		}
	}
	t.rows++
	return t.rows - 1
}

// reset empties the table.
func (t *featureTable) reset() {
	t.rows, t.x = 0, t.x[:0]
	for c, col := range t.text {
		if col != nil {
			t.text[c] = col[:0]
		}
	}
}

// read reads column c's value of row r: a number (null, NaN and ±Infinity
// included) for a number column, a string or null for a string column,
// anything for a column the model ignores.
func (t *featureTable) read(sc *jsonwire.Scanner, r, c int) error {
	if t.sm != nil && t.sm.Columns {
		switch t.sm.Kinds[c] {
		case serving.ColumnAny:
			return sc.Skip()
		case serving.ColumnText:
			if sc.Null() {
				return nil // missing: already nil
			}
			b, err := sc.String()
			if err != nil {
				return err
			}
			t.text[c][r] = b
			return nil
		}
	}
	f, err := sc.Float()
	t.x[r*t.width+c] = f
	return err
}

// tensors returns the request's inputs. The string elements alias the
// request body, which outlives the model's run.
func (t *featureTable) tensors() []*tensor.Tensor {
	if t.sm == nil || !t.sm.Columns {
		t.shape = [2]int64{int64(t.rows), int64(t.width)}
		// Boxing x into Data allocates; a pooled table whose last request
		// had the same length (one row, typically) reuses the box.
		if d, ok := t.one.Data.([]float64); !ok || len(d) != len(t.x) || cap(d) != cap(t.x) || len(d) > 0 && &d[0] != &t.x[0] {
			t.one.Data = t.x
		}
		t.one.Name, t.one.Datatype, t.one.Shape = t.input, tensor.FP64, t.shape[:]
		t.list[0] = &t.one
		return t.list[:]
	}
	out := make([]*tensor.Tensor, t.width)
	shape := []int64{int64(t.rows)}
	for c, name := range t.sm.Names {
		if t.text[c] != nil {
			out[c] = &tensor.Tensor{Name: name, Datatype: tensor.Bytes, Shape: shape, Data: t.text[c]}
			continue
		}
		col := make([]float64, t.rows)
		for r := range col {
			col[r] = t.x[r*t.width+c]
		}
		out[c] = &tensor.Tensor{Name: name, Datatype: tensor.FP64, Shape: shape, Data: col}
	}
	return out
}
