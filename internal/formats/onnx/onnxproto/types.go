package onnxproto

import (
	"fmt"

	"github.com/tideserve/tide/internal/tensor"
)

// ONNX TensorProto element types (onnx.proto's TensorProto.DataType), which the
// C API's ONNXTensorElementDataType mirrors value for value.
const (
	Undefined  = 0
	Float      = 1
	Uint8      = 2
	Int8       = 3
	Uint16     = 4
	Int16      = 5
	Int32      = 6
	Int64      = 7
	String     = 8
	Bool       = 9
	Float16    = 10
	Double     = 11
	Uint32     = 12
	Uint64     = 13
	Complex64  = 14
	Complex128 = 15
	BFloat16   = 16
)

var toOIP = map[int]tensor.Datatype{
	Float: tensor.FP32, Uint8: tensor.Uint8, Int8: tensor.Int8,
	Uint16: tensor.Uint16, Int16: tensor.Int16, Int32: tensor.Int32,
	Int64: tensor.Int64, String: tensor.Bytes, Bool: tensor.Bool,
	Float16: tensor.FP16, Double: tensor.FP64, Uint32: tensor.Uint32,
	Uint64: tensor.Uint64, BFloat16: tensor.BF16,
}

var typeNames = map[int]string{
	Undefined: "UNDEFINED", Float: "FLOAT", Uint8: "UINT8", Int8: "INT8",
	Uint16: "UINT16", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	String: "STRING", Bool: "BOOL", Float16: "FLOAT16", Double: "DOUBLE",
	Uint32: "UINT32", Uint64: "UINT64", Complex64: "COMPLEX64",
	Complex128: "COMPLEX128", BFloat16: "BFLOAT16",
}

// TypeName is an element type's name as onnx.proto spells it.
func TypeName(t int) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("element type %d", t)
}

// Datatype maps an ONNX element type to its OIP datatype.
func Datatype(elem int) (tensor.Datatype, error) {
	if dt, ok := toOIP[elem]; ok {
		return dt, nil
	}
	return tensor.Invalid, fmt.Errorf("ONNX %s has no Open Inference Protocol datatype", TypeName(elem))
}

// ElemType maps an OIP datatype to the ONNX element type.
func ElemType(dt tensor.Datatype) (int, bool) {
	for e, d := range toOIP {
		if d == dt {
			return e, true
		}
	}
	return Undefined, false
}
