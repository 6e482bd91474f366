// Package onnxtest decodes the files the ONNX backend tests keep their inputs and
// expected outputs in, for the onnx format's conformance tests. It is for tests
// only: the server never reads TensorProto files, so none of this belongs in the
// production onnx package.
package onnxtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
	"github.com/tideserve/tide/internal/tensor"
)

// Decoding of onnx.proto's TensorProto, SequenceProto and OptionalProto: the
// files the ONNX backend tests keep their inputs and expected outputs in
// (test_data_set_N/input_K.pb). Only tensors stored in the message are read;
// external data is refused.

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

// DecodeTensorProto reads a serialized TensorProto into a tensor. String
// elements share memory with msg; numeric data is copied.
func DecodeTensorProto(msg []byte) (*tensor.Tensor, error) {
	var r rawTensor
	err := onnxproto.ForEachField(msg, func(f onnxproto.Field) error {
		var err error
		switch f.Number {
		case tpDims:
			var ds []uint64
			if ds, err = f.Varints(nil); err == nil {
				for _, d := range ds {
					r.dims = append(r.dims, int64(d))
				}
			}
		case tpDataType:
			if f.Wire != onnxproto.WireVarint {
				return errors.New("TensorProto.data_type: not a varint")
			}
			r.dataType = int(int32(f.Num))
		case tpSegment:
			r.segmented = true
		case tpFloatData:
			r.floats, err = f.Fixed32s(r.floats)
		case tpInt32Data, tpInt64Data, tpUint64Data:
			r.varints, err = f.Varints(r.varints)
		case tpDoubleData:
			r.doubles, err = f.Fixed64s(r.doubles)
		case tpStringData:
			var b []byte
			if b, err = f.Message(); err == nil {
				r.strings = append(r.strings, b)
			}
		case tpName:
			var b []byte
			if b, err = f.Message(); err == nil {
				r.name = string(b)
			}
		case tpRawData:
			r.raw, err = f.Message()
			r.hasRaw = true
		case tpExternalData:
			r.external = true
		case tpDataLocation:
			r.external = r.external || f.Num == 1
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
	dt, err := onnxproto.Datatype(r.dataType)
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

// Value is a decoded backend-test value: a tensor, a sequence of values, or an
// optional that holds nothing.
type Value struct {
	Kind   Kind
	Tensor *tensor.Tensor
	Seq    []Value
}

// Kind says which of Value's fields holds it.
type Kind uint8

const (
	KindTensor Kind = iota
	KindSequence
	KindNone // an empty optional
)

// Proto is the onnx.proto message a file holds. The files do not say; the
// backend test runner knows it from the type of the graph input or output the
// file belongs to.
type Proto uint8

const (
	TensorProto Proto = iota
	SequenceProto
	OptionalProto
)

// DecodeValue reads a TensorProto, SequenceProto or OptionalProto. An optional
// decodes to the value it holds, or to KindNone.
func DecodeValue(msg []byte, p Proto) (Value, error) {
	return decodeValueDepth(msg, p, 0)
}

func decodeValueDepth(msg []byte, p Proto, depth int) (Value, error) {
	if depth > 16 {
		return Value{}, errors.New("values nested more than 16 deep")
	}
	switch p {
	case TensorProto:
		t, err := DecodeTensorProto(msg)
		if err != nil {
			return Value{}, err
		}
		return Value{Tensor: t}, nil
	case SequenceProto, OptionalProto:
	default:
		return Value{}, fmt.Errorf("onnx.proto message %d is not supported", p)
	}
	elemType := 0
	var elems []Value
	err := onnxproto.ForEachField(msg, func(f onnxproto.Field) error {
		var sub Proto
		switch f.Number {
		case spElemType:
			elemType = int(f.Num)
			return nil
		case spTensorValues:
			sub = TensorProto
		case spSequenceValues:
			sub = SequenceProto
		case spOptionalValues:
			sub = OptionalProto
		case 4, 6:
			return errors.New("sparse tensors and maps are not supported")
		default:
			return nil
		}
		b, err := f.Message()
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
		return Value{}, err
	}
	if p == OptionalProto {
		switch {
		case len(elems) == 0:
			return Value{Kind: KindNone}, nil
		case len(elems) > 1:
			return Value{}, fmt.Errorf("optional holds %d values", len(elems))
		}
		return elems[0], nil
	}
	_ = elemType // elements say what they are; the declared type is informative only
	return Value{Kind: KindSequence, Seq: elems}, nil
}
