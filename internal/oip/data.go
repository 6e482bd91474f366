package oip

import (
	"math"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/tensor"
)

// decodeData reads a tensor's "data" member — a flat or nested JSON array, or a
// bare scalar — into the typed slice its datatype calls for. n is the element
// count the shape promises; it only sizes the first allocation (bounded by the
// bytes present, so a lying shape cannot make us allocate much).
func decodeData(s *jsonwire.Scanner, dt tensor.Datatype, shape []int64, n int64) (any, error) {
	hint := int(min(n, int64(s.Remaining()/2+1)))
	d := &dataReader{s: s, shape: shape}
	switch dt {
	case tensor.FP64:
		v := make([]float64, 0, hint)
		err := d.walk(0, func() error {
			f, err := s.Float()
			v = append(v, f)
			return err
		})
		return v, err
	case tensor.FP32:
		v := make([]float32, 0, hint)
		err := d.walk(0, func() error {
			f, err := s.Float()
			if err == nil && !fitsFloat32(f) {
				return unprocessable("value %g is out of range for FP32", f)
			}
			v = append(v, float32(f))
			return err
		})
		return v, err
	case tensor.FP16, tensor.BF16:
		v := make([]uint16, 0, hint)
		err := d.walk(0, func() error {
			f, err := s.Float()
			if dt == tensor.FP16 {
				v = append(v, tensor.Float32ToHalf(float32(f)))
			} else {
				v = append(v, tensor.Float32ToBFloat16(float32(f)))
			}
			return err
		})
		return v, err
	case tensor.Int64, tensor.Int32, tensor.Int16, tensor.Int8:
		return decodeSigned(d, dt, hint)
	case tensor.Uint64, tensor.Uint32, tensor.Uint16, tensor.Uint8:
		return decodeUnsigned(d, dt, hint)
	case tensor.Bool:
		v := make([]bool, 0, hint)
		err := d.walk(0, func() error {
			b, err := s.Bool()
			v = append(v, b)
			return err
		})
		return v, err
	case tensor.Bytes:
		// null is a missing element (nil), as a string column of a DataFrame
		// holds None or NaN; "" is an empty, present one.
		v := make([][]byte, 0, hint)
		err := d.walk(0, func() error {
			if s.Null() {
				v = append(v, nil)
				return nil
			}
			b, err := s.String()
			v = append(v, b)
			return err
		})
		return v, err
	}
	return nil, unprocessable("datatype %s is not supported", dt)
}

func fitsFloat32(f float64) bool {
	return math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) <= math.MaxFloat32
}

func decodeSigned(d *dataReader, dt tensor.Datatype, hint int) (any, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch dt {
	case tensor.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case tensor.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case tensor.Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	}
	v := make([]int64, 0, hint)
	err := d.walk(0, func() error {
		x, err := d.s.Int()
		if err == nil && (x < lo || x > hi) {
			return unprocessable("value %d is out of range for %s", x, dt)
		}
		v = append(v, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch dt {
	case tensor.Int32:
		return narrow[int32](v), nil
	case tensor.Int16:
		return narrow[int16](v), nil
	case tensor.Int8:
		return narrow[int8](v), nil
	}
	return v, nil
}

func decodeUnsigned(d *dataReader, dt tensor.Datatype, hint int) (any, error) {
	hi := uint64(math.MaxUint64)
	switch dt {
	case tensor.Uint32:
		hi = math.MaxUint32
	case tensor.Uint16:
		hi = math.MaxUint16
	case tensor.Uint8:
		hi = math.MaxUint8
	}
	v := make([]uint64, 0, hint)
	err := d.walk(0, func() error {
		x, err := d.s.Uint()
		if err == nil && x > hi {
			return unprocessable("value %d is out of range for %s", x, dt)
		}
		v = append(v, x)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch dt {
	case tensor.Uint32:
		return narrow[uint32](v), nil
	case tensor.Uint16:
		return narrow[uint16](v), nil
	case tensor.Uint8:
		return narrow[uint8](v), nil
	}
	return v, nil
}

func narrow[T int8 | int16 | int32 | uint8 | uint16 | uint32, S int64 | uint64](v []S) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

// dataReader flattens nested arrays, calling leaf for each scalar element.
// dataReader walks "data": flat (any shape), or nested exactly as the shape says.
type dataReader struct {
	s     *jsonwire.Scanner
	shape []int64
	// leafDepth is how many arrays enclose the first element seen (0: none yet).
	// Every element must sit as deep; nested data (deeper than 1) must follow the
	// shape level by level, so that [[[1,2]]] is not read as shape [1,2].
	leafDepth int
}

const maxDataDepth = maxRank

func (d *dataReader) walk(depth int, leaf func() error) error {
	if d.s.Peek() != '[' {
		if depth == 0 { // a bare scalar for a 0-d or single-element tensor
			if err := leaf(); err != nil {
				return err
			}
			return d.s.End()
		}
		if d.leafDepth == 0 {
			d.leafDepth = depth
		} else if depth != d.leafDepth {
			return badRequest("data is nested unevenly: values at depth %d and %d", d.leafDepth, depth)
		}
		return leaf()
	}
	if depth >= maxDataDepth {
		return unprocessable("data is nested more than %d deep", maxDataDepth)
	}
	more, err := d.s.ArrayStart()
	if err != nil {
		return err
	}
	count := int64(0)
	for more {
		if err := d.walk(depth+1, leaf); err != nil {
			return err
		}
		count++
		if more, err = d.s.More(']'); err != nil {
			return err
		}
	}
	if d.leafDepth > 1 { // nested: each level must have the shape's length
		if d.leafDepth != len(d.shape) {
			return badRequest("data is nested %d deep but shape %v has %d dimensions", d.leafDepth, d.shape, len(d.shape))
		}
		if count != d.shape[depth] {
			return badRequest("data has %d values at depth %d where shape %v says %d", count, depth+1, d.shape, d.shape[depth])
		}
	}
	if depth == 0 {
		return d.s.End()
	}
	return nil
}
