package onnx

import (
	"fmt"

	"github.com/tideserve/tide/internal/tensor"
)

// value is what a session consumes and produces: a tensor, a sequence of
// values, or an optional that holds nothing. Models serve tensors only; the
// other kinds exist so the ONNX conformance suite can run every node test.
type value struct {
	kind   valueKind
	tensor *tensor.Tensor
	seq    []value
}

type valueKind uint8

const (
	tensorValue valueKind = iota
	sequenceValue
	noneValue
)

// The C API's ONNXType values (onnxruntime_c_api.h), repeated here so that code
// which needs no cgo can use them.
const (
	onnxValueUnknown      = 0
	onnxValueTensor       = 1
	onnxValueSequence     = 2
	onnxValueMap          = 3
	onnxValueOpaque       = 4
	onnxValueSparseTensor = 5
	onnxValueOptional     = 6
)

func onnxTypeKind(t int) string {
	switch t {
	case onnxValueTensor:
		return "tensor"
	case onnxValueSequence:
		return "sequence"
	case onnxValueMap:
		return "map"
	case onnxValueOpaque:
		return "opaque value"
	case onnxValueSparseTensor:
		return "sparse tensor"
	case onnxValueOptional:
		return "optional"
	}
	return fmt.Sprintf("ONNX value type %d", t)
}
