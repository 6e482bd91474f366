package model

import "github.com/tideserve/tide/internal/tensor"

// A tabular request may send each column as an input of its own (as
// MLServer's pandas codec sends a DataFrame): serving stacks such columns into
// a numeric model's matrix, and a model with string columns takes them as
// they are. These are the rules both apply to one column.

// ColumnRows checks one input of a one-input-per-column request: a valid
// tensor of shape [n] or [n, 1] whose n agrees with rows, the rows of the
// columns before it (-1 for the first; first names that first column). It
// returns the column's rows.
func ColumnRows(t *tensor.Tensor, rows int64, first string) (int64, error) {
	if err := t.Validate(); err != nil {
		return 0, InvalidInputf("%v", err)
	}
	if len(t.Shape) == 0 || len(t.Shape) > 2 || (len(t.Shape) == 2 && t.Shape[1] != 1) {
		return 0, InvalidInputf("input %q: want shape [n] or [n, 1] (one column), got %v", t.Name, t.Shape)
	}
	if rows >= 0 && t.Shape[0] != rows {
		return 0, InvalidInputf("input %q has %d rows but %q has %d", t.Name, t.Shape[0], first, rows)
	}
	return t.Shape[0], nil
}

// ColumnNumbers is a numeric column's values as float64s; strings are refused.
func ColumnNumbers(t *tensor.Tensor) ([]float64, error) {
	if t.Datatype == tensor.Bytes {
		return nil, InvalidInputf("input %q takes numbers, got BYTES", t.Name)
	}
	f, err := t.Float64s()
	if err != nil {
		return nil, InvalidInputf("input %q: %v", t.Name, err)
	}
	return f, nil
}
