package tensor

import "fmt"

// Rows is the size of the first (batch) dimension, or -1 for a 0-d tensor.
func (t *Tensor) Rows() int64 {
	if len(t.Shape) == 0 {
		return -1
	}
	return t.Shape[0]
}

// SameLayout reports whether a and b can be joined along the first dimension:
// same name, datatype, rank and trailing dimensions.
func SameLayout(a, b *Tensor) bool {
	if a.Name != b.Name || a.Datatype != b.Datatype || len(a.Shape) != len(b.Shape) || len(a.Shape) == 0 {
		return false
	}
	for i := 1; i < len(a.Shape); i++ {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

// Concat joins tensors of the same layout along the first dimension.
func Concat(ts []*Tensor) (*Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("concat: no tensors")
	}
	first := ts[0]
	rows := int64(0)
	for _, t := range ts {
		if !SameLayout(first, t) {
			return nil, fmt.Errorf("concat: tensor %q %s%v does not match %s%v", t.Name, t.Datatype, t.Shape, first.Datatype, first.Shape)
		}
		rows += t.Shape[0]
	}
	shape := append([]int64{rows}, first.Shape[1:]...)
	out := &Tensor{Name: first.Name, Datatype: first.Datatype, Shape: shape}
	switch first.Data.(type) {
	case []bool:
		out.Data = concatData[bool](ts)
	case []uint8:
		out.Data = concatData[uint8](ts)
	case []uint16:
		out.Data = concatData[uint16](ts)
	case []uint32:
		out.Data = concatData[uint32](ts)
	case []uint64:
		out.Data = concatData[uint64](ts)
	case []int8:
		out.Data = concatData[int8](ts)
	case []int16:
		out.Data = concatData[int16](ts)
	case []int32:
		out.Data = concatData[int32](ts)
	case []int64:
		out.Data = concatData[int64](ts)
	case []float32:
		out.Data = concatData[float32](ts)
	case []float64:
		out.Data = concatData[float64](ts)
	case [][]byte:
		out.Data = concatData[[]byte](ts)
	default:
		return nil, fmt.Errorf("concat: tensor %q holds %T", first.Name, first.Data)
	}
	return out, nil
}

func concatData[T any](ts []*Tensor) []T {
	n := 0
	for _, t := range ts {
		n += len(t.Data.([]T))
	}
	out := make([]T, 0, n)
	for _, t := range ts {
		out = append(out, t.Data.([]T)...)
	}
	return out
}

// SliceRows returns rows [from, to) of t, sharing its data.
func (t *Tensor) SliceRows(from, to int64) (*Tensor, error) {
	if len(t.Shape) == 0 || from < 0 || to > t.Shape[0] || from > to {
		return nil, fmt.Errorf("tensor %q %v: rows %d..%d out of range", t.Name, t.Shape, from, to)
	}
	width := NumElements(t.Shape[1:])
	a, b := int(from*width), int(to*width)
	shape := append([]int64{to - from}, t.Shape[1:]...)
	out := &Tensor{Name: t.Name, Datatype: t.Datatype, Shape: shape}
	switch v := t.Data.(type) {
	case []bool:
		out.Data = v[a:b]
	case []uint8:
		out.Data = v[a:b]
	case []uint16:
		out.Data = v[a:b]
	case []uint32:
		out.Data = v[a:b]
	case []uint64:
		out.Data = v[a:b]
	case []int8:
		out.Data = v[a:b]
	case []int16:
		out.Data = v[a:b]
	case []int32:
		out.Data = v[a:b]
	case []int64:
		out.Data = v[a:b]
	case []float32:
		out.Data = v[a:b]
	case []float64:
		out.Data = v[a:b]
	case [][]byte:
		out.Data = v[a:b]
	default:
		return nil, fmt.Errorf("tensor %q holds %T", t.Name, t.Data)
	}
	return out, nil
}
