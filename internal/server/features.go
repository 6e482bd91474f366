package server

import (
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
}

func newFeatureTable(sm *serving.Features, input string, width, rowsHint int) *featureTable {
	t := &featureTable{sm: sm, input: input, width: width, x: make([]float64, 0, width*rowsHint)}
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
		return []*tensor.Tensor{{Name: t.input, Datatype: tensor.FP64, Shape: []int64{int64(t.rows), int64(t.width)}, Data: t.x}}
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
