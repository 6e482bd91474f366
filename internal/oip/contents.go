package oip

import (
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/tensor"
)

// TensorContents puts a tensor's data in the gRPC contents field its datatype uses,
// sharing the slice where the Go types agree and widening INT8/16 and UINT8/16 to
// the 32-bit fields the protocol carries them in. FP16 and BF16 have no contents
// field: they travel as raw contents (AppendRaw). The server's outputs and the
// load generator's inputs both go through here.
func TensorContents(t *tensor.Tensor) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	switch v := t.Data.(type) {
	case []bool:
		c.BoolContents = v
	case []int8:
		c.IntContents = widen[int32](v)
	case []int16:
		c.IntContents = widen[int32](v)
	case []int32:
		c.IntContents = v
	case []int64:
		c.Int64Contents = v
	case []uint8:
		c.UintContents = widen[uint32](v)
	case []uint16: // UINT16 (FP16/BF16 never get here: they go raw)
		c.UintContents = widen[uint32](v)
	case []uint32:
		c.UintContents = v
	case []uint64:
		c.Uint64Contents = v
	case []float32:
		c.Fp32Contents = v
	case []float64:
		c.Fp64Contents = v
	case [][]byte:
		c.BytesContents = v
	}
	return c
}

func widen[T int32 | uint32, S int8 | int16 | uint8 | uint16](v []S) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}
