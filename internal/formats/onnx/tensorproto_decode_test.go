package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/tensor"
)

// Decoding of onnx.proto's TensorProto, SequenceProto and OptionalProto: the
// files the ONNX backend tests keep their inputs and expected outputs in
// (test_data_set_N/input_K.pb). Only tensors stored in the message are read;
// external data is refused. Only the tests read these files, so this lives in a
// _test.go file and the served binary does not carry it.

// TensorProto field numbers.
const (
	tpDims         = 1
	tpDataType     = 2
	tpSegment      = 3
	tpFloatData    = 4
	tpInt32Data    = 5
	tpStringData   = 6
	tpInt64Data    = 7
	tpName         = 8
	tpRawData      = 9
	tpDoubleData   = 10
	tpUint64Data   = 11
	tpExternalData = 13
	tpDataLocation = 14
)

// SequenceProto and OptionalProto share their layout for what is read here.
const (
	spElemType       = 2
	spTensorValues   = 3
	spSequenceValues = 5
	spOptionalValues = 7
	// SequenceProto.DataType / OptionalProto.DataType
	containerTensor   = 1
	containerSequence = 3
	containerOptional = 5
)

// rawTensor is a TensorProto before conversion to a tensor.Tensor.
type rawTensor struct {
	name      string
	dims      []int64
	dataType  int
	raw       []byte
	hasRaw    bool
	floats    []uint32
	doubles   []uint64
	varints   []uint64 // int32_data, int64_data or uint64_data
	strings   [][]byte
	external  bool
	segmented bool
}

// decodeTensorProto reads a serialized TensorProto into a tensor. String
// elements share memory with msg; numeric data is copied.
func decodeTensorProto(msg []byte) (*tensor.Tensor, error) {
	var r rawTensor
	err := forEachField(msg, func(f field) error {
		var err error
		switch f.number {
		case tpDims:
			var ds []uint64
			if ds, err = f.varints(nil); err == nil {
				for _, d := range ds {
					r.dims = append(r.dims, int64(d))
				}
			}
		case tpDataType:
			if f.wire != wireVarint {
				return errors.New("TensorProto.data_type: not a varint")
			}
			r.dataType = int(int32(f.num))
		case tpSegment:
			r.segmented = true
		case tpFloatData:
			r.floats, err = f.fixed32s(r.floats)
		case tpInt32Data, tpInt64Data, tpUint64Data:
			r.varints, err = f.varints(r.varints)
		case tpDoubleData:
			r.doubles, err = f.fixed64s(r.doubles)
		case tpStringData:
			var b []byte
			if b, err = f.message(); err == nil {
				r.strings = append(r.strings, b)
			}
		case tpName:
			var b []byte
			if b, err = f.message(); err == nil {
				r.name = string(b)
			}
		case tpRawData:
			r.raw, err = f.message()
			r.hasRaw = true
		case tpExternalData:
			r.external = true
		case tpDataLocation:
			r.external = r.external || f.num == 1
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("TensorProto: %w", err)
	}
	t, err := r.tensor()
	if err != nil {
		if r.name != "" {
			return nil, fmt.Errorf("TensorProto %q: %w", r.name, err)
		}
		return nil, fmt.Errorf("TensorProto: %w", err)
	}
	return t, nil
}

func (r *rawTensor) tensor() (*tensor.Tensor, error) {
	if r.external {
		return nil, errors.New("external data is not supported")
	}
	if r.segmented {
		return nil, errors.New("segmented tensors are not supported")
	}
	dt, err := oipDatatype(r.dataType)
	if err != nil {
		return nil, err
	}
	n := tensor.NumElements(r.dims)
	if n < 0 {
		return nil, fmt.Errorf("invalid dims %v", r.dims)
	}
	t := &tensor.Tensor{Name: r.name, Datatype: dt, Shape: r.dims}
	if dt == tensor.Bytes {
		if int64(len(r.strings)) != n {
			return nil, fmt.Errorf("dims %v need %d strings, got %d", r.dims, n, len(r.strings))
		}
		t.Data = r.strings
		return t, nil
	}
	size := int64(dt.ElementSize())
	if r.hasRaw {
		if int64(len(r.raw)) != n*size {
			return nil, fmt.Errorf("dims %v of %s need %d raw bytes, got %d", r.dims, dt, n*size, len(r.raw))
		}
		t.Data = fromRaw(dt, r.raw, int(n))
		return t, nil
	}
	var got int
	switch dt {
	case tensor.FP32:
		got = len(r.floats)
	case tensor.FP64:
		got = len(r.doubles)
	default:
		got = len(r.varints)
	}
	if int64(got) != n {
		return nil, fmt.Errorf("dims %v need %d values, got %d", r.dims, n, got)
	}
	t.Data = fromTyped(dt, r, int(n))
	return t, nil
}

// fromRaw decodes raw_data: fixed-size little-endian elements.
func fromRaw(dt tensor.Datatype, b []byte, n int) any {
	le := binary.LittleEndian
	switch dt {
	case tensor.Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = b[i] != 0
		}
		return out
	case tensor.Uint8:
		return append([]uint8(nil), b[:n]...)
	case tensor.Int8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(b[i])
		}
		return out
	case tensor.Uint16, tensor.FP16, tensor.BF16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(b[2*i:])
		}
		return out
	case tensor.Int16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(b[2*i:]))
		}
		return out
	case tensor.Uint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(b[4*i:])
		}
		return out
	case tensor.Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(b[4*i:]))
		}
		return out
	case tensor.FP32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return out
	case tensor.Uint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(b[8*i:])
		}
		return out
	case tensor.Int64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
		return out
	case tensor.FP64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return out
	}
	return nil
}

// fromTyped decodes the typed repeated fields. Small integer types, bool and
// the 16-bit floats travel in int32_data (the 16-bit floats as their bits).
func fromTyped(dt tensor.Datatype, r *rawTensor, n int) any {
	v := r.varints
	switch dt {
	case tensor.FP32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(r.floats[i])
		}
		return out
	case tensor.FP64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(r.doubles[i])
		}
		return out
	case tensor.Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = v[i] != 0
		}
		return out
	case tensor.Uint8:
		return convertInts[uint8](v, n)
	case tensor.Int8:
		return convertInts[int8](v, n)
	case tensor.Uint16, tensor.FP16, tensor.BF16:
		return convertInts[uint16](v, n)
	case tensor.Int16:
		return convertInts[int16](v, n)
	case tensor.Int32:
		return convertInts[int32](v, n)
	case tensor.Uint32:
		return convertInts[uint32](v, n)
	case tensor.Int64:
		return convertInts[int64](v, n)
	case tensor.Uint64:
		return convertInts[uint64](v, n)
	}
	return nil
}

func convertInts[T ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64](v []uint64, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(v[i])
	}
	return out
}

// decodeValueProto reads a TensorProto, SequenceProto or OptionalProto (kind is
// the C API's ONNXType of the graph input or output the file belongs to, which
// is how the backend test runner knows which message a .pb holds).
func decodeValueProto(msg []byte, kind int) (value, error) {
	return decodeValueDepth(msg, kind, 0)
}

func decodeValueDepth(msg []byte, kind, depth int) (value, error) {
	if depth > 16 {
		return value{}, errors.New("values nested more than 16 deep")
	}
	switch kind {
	case onnxValueTensor:
		t, err := decodeTensorProto(msg)
		if err != nil {
			return value{}, err
		}
		return value{tensor: t}, nil
	case onnxValueSequence, onnxValueOptional:
	default:
		return value{}, fmt.Errorf("ONNX value type %d is not supported", kind)
	}
	elemType := 0
	var elems []value
	err := forEachField(msg, func(f field) error {
		var sub int
		switch f.number {
		case spElemType:
			elemType = int(f.num)
			return nil
		case spTensorValues:
			sub = onnxValueTensor
		case spSequenceValues:
			sub = onnxValueSequence
		case spOptionalValues:
			sub = onnxValueOptional
		case 4, 6:
			return errors.New("sparse tensors and maps are not supported")
		default:
			return nil
		}
		b, err := f.message()
		if err != nil {
			return err
		}
		v, err := decodeValueDepth(b, sub, depth+1)
		if err != nil {
			return err
		}
		elems = append(elems, v)
		return nil
	})
	if err != nil {
		return value{}, err
	}
	if kind == onnxValueOptional {
		switch {
		case len(elems) == 0:
			return value{kind: noneValue}, nil
		case len(elems) > 1:
			return value{}, fmt.Errorf("optional holds %d values", len(elems))
		}
		return elems[0], nil
	}
	_ = elemType // elements say what they are; the declared type is informative only
	return value{kind: sequenceValue, seq: elems}, nil
}
