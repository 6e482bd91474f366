package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A minimal protocol-buffers wire-format reader: enough to walk the few ONNX
// messages Tide reads itself (TensorProto and friends for the conformance data,
// the graph's nodes for the classifier label fix) without generated code for
// all of onnx.proto. It never allocates more than the input's size and reports
// truncation and malformed varints as errors.

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var errTruncated = errors.New("protobuf: truncated message")

// field is one decoded field: its number, wire type and payload (the varint or
// fixed value in num, the bytes of a length-delimited field in bytes).
type field struct {
	number int
	wire   int
	num    uint64
	bytes  []byte
}

// forEachField calls fn for every field in msg, in order.
func forEachField(msg []byte, fn func(f field) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return fmt.Errorf("protobuf: bad field key")
		}
		msg = msg[n:]
		f := field{number: int(key >> 3), wire: int(key & 7)}
		if key>>3 == 0 || key>>3 > math.MaxInt32 {
			return fmt.Errorf("protobuf: bad field number %d", key>>3)
		}
		switch f.wire {
		case wireVarint:
			v, n := binary.Uvarint(msg)
			if n <= 0 {
				return fmt.Errorf("protobuf: bad varint in field %d", f.number)
			}
			f.num, msg = v, msg[n:]
		case wireFixed64:
			if len(msg) < 8 {
				return errTruncated
			}
			f.num, msg = binary.LittleEndian.Uint64(msg), msg[8:]
		case wireFixed32:
			if len(msg) < 4 {
				return errTruncated
			}
			f.num, msg = uint64(binary.LittleEndian.Uint32(msg)), msg[4:]
		case wireBytes:
			l, n := binary.Uvarint(msg)
			if n <= 0 {
				return fmt.Errorf("protobuf: bad length in field %d", f.number)
			}
			msg = msg[n:]
			if l > uint64(len(msg)) {
				return errTruncated
			}
			f.bytes, msg = msg[:l], msg[l:]
		default:
			return fmt.Errorf("protobuf: unsupported wire type %d in field %d", f.wire, f.number)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// varints appends a repeated integer field, packed (one length-delimited run)
// or not (one varint per field).
func (f field) varints(dst []uint64) ([]uint64, error) {
	switch f.wire {
	case wireVarint:
		return append(dst, f.num), nil
	case wireBytes:
		b := f.bytes
		for len(b) > 0 {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("protobuf: bad packed varint in field %d", f.number)
			}
			dst, b = append(dst, v), b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("protobuf: field %d: want varints, got wire type %d", f.number, f.wire)
}

// fixed32s appends a repeated float field (packed or not) as raw bits.
func (f field) fixed32s(dst []uint32) ([]uint32, error) {
	switch f.wire {
	case wireFixed32:
		return append(dst, uint32(f.num)), nil
	case wireBytes:
		if len(f.bytes)%4 != 0 {
			return nil, fmt.Errorf("protobuf: field %d: packed fixed32 of %d bytes", f.number, len(f.bytes))
		}
		for b := f.bytes; len(b) > 0; b = b[4:] {
			dst = append(dst, binary.LittleEndian.Uint32(b))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("protobuf: field %d: want fixed32, got wire type %d", f.number, f.wire)
}

// fixed64s appends a repeated double field (packed or not) as raw bits.
func (f field) fixed64s(dst []uint64) ([]uint64, error) {
	switch f.wire {
	case wireFixed64:
		return append(dst, f.num), nil
	case wireBytes:
		if len(f.bytes)%8 != 0 {
			return nil, fmt.Errorf("protobuf: field %d: packed fixed64 of %d bytes", f.number, len(f.bytes))
		}
		for b := f.bytes; len(b) > 0; b = b[8:] {
			dst = append(dst, binary.LittleEndian.Uint64(b))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("protobuf: field %d: want fixed64, got wire type %d", f.number, f.wire)
}

func (f field) message() ([]byte, error) {
	if f.wire != wireBytes {
		return nil, fmt.Errorf("protobuf: field %d: want a length-delimited field, got wire type %d", f.number, f.wire)
	}
	return f.bytes, nil
}
