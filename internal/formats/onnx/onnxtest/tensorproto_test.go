package onnxtest

import (
	"encoding/binary"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
	"github.com/tideserve/tide/internal/tensor"
)

// pb builds protobuf messages for tests, field by field.
type pb []byte

func (b pb) key(num, wire int) pb { return binary.AppendUvarint(b, uint64(num<<3|wire)) }
func (b pb) varint(num int, v uint64) pb {
	return binary.AppendUvarint(b.key(num, onnxproto.WireVarint), v)
}
func (b pb) bytes(num int, v []byte) pb {
	b = binary.AppendUvarint(b.key(num, onnxproto.WireBytes), uint64(len(v)))
	return append(b, v...)
}
func (b pb) fixed32(num int, v uint32) pb {
	return binary.LittleEndian.AppendUint32(b.key(num, onnxproto.WireFixed32), v)
}
func (b pb) fixed64(num int, v uint64) pb {
	return binary.LittleEndian.AppendUint64(b.key(num, onnxproto.WireFixed64), v)
}
func (b pb) packedVarints(num int, vs ...uint64) pb {
	var p []byte
	for _, v := range vs {
		p = binary.AppendUvarint(p, v)
	}
	return b.bytes(num, p)
}
func (b pb) dims(ds ...int64) pb {
	for _, d := range ds {
		b = b.varint(tpDims, uint64(d))
	}
	return b
}

func le32(vs ...uint32) []byte {
	var out []byte
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint32(out, v)
	}
	return out
}

func TestDecodeTensorProto(t *testing.T) {
	neg := func(v int64) uint64 { return uint64(v) } // negative int32/int64 travel sign-extended
	for _, tc := range []struct {
		name string
		msg  pb
		want *tensor.Tensor
	}{
		{"float raw", pb{}.dims(2).varint(tpDataType, onnxproto.Float).bytes(tpName, []byte("x")).bytes(tpRawData, le32(math.Float32bits(1.5), math.Float32bits(-2))),
			&tensor.Tensor{Name: "x", Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{1.5, -2}}},
		{"float packed", pb{}.dims(1, 2).varint(tpDataType, onnxproto.Float).bytes(tpFloatData, le32(math.Float32bits(3), math.Float32bits(4))),
			&tensor.Tensor{Datatype: tensor.FP32, Shape: []int64{1, 2}, Data: []float32{3, 4}}},
		{"float unpacked", pb{}.dims(2).varint(tpDataType, onnxproto.Float).fixed32(tpFloatData, math.Float32bits(5)).fixed32(tpFloatData, math.Float32bits(6)),
			&tensor.Tensor{Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{5, 6}}},
		{"double", pb{}.dims(1).varint(tpDataType, onnxproto.Double).fixed64(tpDoubleData, math.Float64bits(math.Pi)),
			&tensor.Tensor{Datatype: tensor.FP64, Shape: []int64{1}, Data: []float64{math.Pi}}},
		{"scalar int64", pb{}.varint(tpDataType, onnxproto.Int64).packedVarints(tpInt64Data, neg(-7)),
			&tensor.Tensor{Datatype: tensor.Int64, Shape: nil, Data: []int64{-7}}},
		{"int8 in int32_data", pb{}.dims(3).varint(tpDataType, onnxproto.Int8).packedVarints(tpInt32Data, neg(-128), 0, 127),
			&tensor.Tensor{Datatype: tensor.Int8, Shape: []int64{3}, Data: []int8{-128, 0, 127}}},
		{"int16 raw", pb{}.dims(2).varint(tpDataType, onnxproto.Int16).bytes(tpRawData, []byte{0xff, 0xff, 2, 0}),
			&tensor.Tensor{Datatype: tensor.Int16, Shape: []int64{2}, Data: []int16{-1, 2}}},
		{"bool", pb{}.dims(2).varint(tpDataType, onnxproto.Bool).packedVarints(tpInt32Data, 1, 0),
			&tensor.Tensor{Datatype: tensor.Bool, Shape: []int64{2}, Data: []bool{true, false}}},
		{"float16 bits", pb{}.dims(1).varint(tpDataType, onnxproto.Float16).packedVarints(tpInt32Data, 0x3c00),
			&tensor.Tensor{Datatype: tensor.FP16, Shape: []int64{1}, Data: []uint16{0x3c00}}},
		{"bfloat16 raw", pb{}.dims(1).varint(tpDataType, onnxproto.BFloat16).bytes(tpRawData, []byte{0x80, 0x3f}),
			&tensor.Tensor{Datatype: tensor.BF16, Shape: []int64{1}, Data: []uint16{0x3f80}}},
		{"uint64", pb{}.dims(1).varint(tpDataType, onnxproto.Uint64).packedVarints(tpUint64Data, math.MaxUint64),
			&tensor.Tensor{Datatype: tensor.Uint64, Shape: []int64{1}, Data: []uint64{math.MaxUint64}}},
		{"uint32 raw", pb{}.dims(1).varint(tpDataType, onnxproto.Uint32).bytes(tpRawData, le32(4e9)),
			&tensor.Tensor{Datatype: tensor.Uint32, Shape: []int64{1}, Data: []uint32{4e9}}},
		{"strings", pb{}.dims(2).varint(tpDataType, onnxproto.String).bytes(tpStringData, []byte("a\x00b")).bytes(tpStringData, nil),
			&tensor.Tensor{Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("a\x00b"), {}}}},
		{"empty", pb{}.dims(0, 3).varint(tpDataType, onnxproto.Float),
			&tensor.Tensor{Datatype: tensor.FP32, Shape: []int64{0, 3}, Data: []float32{}}},
		{"unknown fields skipped", pb{}.dims(1).varint(tpDataType, onnxproto.Uint8).bytes(12, []byte("doc")).bytes(tpRawData, []byte{9}),
			&tensor.Tensor{Datatype: tensor.Uint8, Shape: []int64{1}, Data: []uint8{9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTensorProto(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.want.Name || got.Datatype != tc.want.Datatype || len(got.Shape) != len(tc.want.Shape) ||
				(len(got.Shape) > 0 && !reflect.DeepEqual(got.Shape, tc.want.Shape)) || !reflect.DeepEqual(got.Data, tc.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDecodeTensorProtoErrors(t *testing.T) {
	good := pb{}.dims(2).varint(tpDataType, onnxproto.Float).bytes(tpRawData, le32(1, 2))
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"truncated", good[:len(good)-1], "truncated"},
		{"raw too short", pb{}.dims(3).varint(tpDataType, onnxproto.Float).bytes(tpRawData, le32(1, 2)), "need 12 raw bytes, got 8"},
		{"too few values", pb{}.dims(3).varint(tpDataType, onnxproto.Int64).packedVarints(tpInt64Data, 1), "need 3 values, got 1"},
		{"too few strings", pb{}.dims(2).varint(tpDataType, onnxproto.String).bytes(tpStringData, []byte("a")), "need 2 strings"},
		{"complex", pb{}.dims(1).varint(tpDataType, onnxproto.Complex64), "COMPLEX64"},
		{"undefined type", pb{}.dims(1), "UNDEFINED"},
		{"external data", good.varint(tpDataLocation, 1), "external data"},
		{"negative dim", pb{}.varint(tpDims, uint64(1<<64-1)).varint(tpDataType, onnxproto.Float), "invalid dims"},
		{"huge dims", pb{}.dims(1<<40, 1<<40).varint(tpDataType, onnxproto.Float), "invalid dims"},
		{"bad wire type", []byte{0x0b}, "wire type 3"},
		{"field zero", []byte{0x00}, "field number 0"},
		{"packed float of 3 bytes", pb{}.dims(1).varint(tpDataType, onnxproto.Float).bytes(tpFloatData, []byte{1, 2, 3}), "packed fixed32"},
		{"name as varint", pb{}.varint(tpName, 1), "length-delimited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTensorProto(tc.msg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeSequenceAndOptional(t *testing.T) {
	elem := func(v float32) pb {
		return pb{}.dims(1).varint(tpDataType, onnxproto.Float).bytes(tpRawData, le32(math.Float32bits(v)))
	}
	seq := pb{}.varint(spElemType, containerTensor).bytes(spTensorValues, elem(1)).bytes(spTensorValues, elem(2))
	v, err := DecodeValue(seq, SequenceProto)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != KindSequence || len(v.Seq) != 2 || v.Seq[1].Tensor.Data.([]float32)[0] != 2 {
		t.Fatalf("sequence decoded as %+v", v)
	}
	opt := pb{}.varint(spElemType, containerSequence).bytes(spSequenceValues, seq)
	if v, err = DecodeValue(opt, OptionalProto); err != nil || v.Kind != KindSequence || len(v.Seq) != 2 {
		t.Fatalf("optional sequence decoded as %+v, %v", v, err)
	}
	if v, err = DecodeValue(pb{}.varint(spElemType, containerTensor), OptionalProto); err != nil || v.Kind != KindNone {
		t.Fatalf("empty optional decoded as %+v, %v", v, err)
	}
	if _, err = DecodeValue(pb{}.bytes(6, nil), SequenceProto); err == nil {
		t.Fatal("a sequence of maps decoded")
	}
	deep := elem(1)
	for i := 0; i < 20; i++ {
		deep = pb{}.bytes(spSequenceValues, deep)
	}
	if _, err = DecodeValue(deep, SequenceProto); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("20 levels of nesting: %v", err)
	}
}

// FuzzDecodeTensorProto: any bytes either decode into a valid tensor or give an
// error; never a panic or an allocation beyond the input's size.
func FuzzDecodeTensorProto(f *testing.F) {
	f.Add([]byte(pb{}.dims(2).varint(tpDataType, onnxproto.Float).bytes(tpRawData, le32(1, 2))))
	f.Add([]byte(pb{}.dims(2).varint(tpDataType, onnxproto.String).bytes(tpStringData, []byte("a")).bytes(tpStringData, nil)))
	f.Add([]byte(pb{}.dims(3).varint(tpDataType, onnxproto.Int8).packedVarints(tpInt32Data, 1, 2, 3)))
	f.Add([]byte(pb{}.dims(1).varint(tpDataType, onnxproto.Double).fixed64(tpDoubleData, 0)))
	for _, p := range []string{"/usr/share/libonnx-testdata/data/node/test_abs/test_data_set_0/input_0.pb",
		"/usr/share/libonnx-testdata/data/node/test_cast_FLOAT_to_STRING/test_data_set_0/output_0.pb"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tn, err := DecodeTensorProto(b)
		if err == nil {
			if verr := tn.Validate(); verr != nil {
				t.Fatalf("decoded an invalid tensor: %v", verr)
			}
		}
		for _, kind := range []Proto{SequenceProto, OptionalProto} {
			_, _ = DecodeValue(b, kind)
		}
	})
}
