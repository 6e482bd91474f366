// Package onnxproto reads the few onnx.proto messages Tide needs without
// generated code for all of onnx.proto: a protobuf wire-format reader and
// TensorProto's element types. The onnx format walks model graphs with it; the
// ONNX conformance tests decode their TensorProto files with it (onnxtest).
package onnxproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// A minimal protocol-buffers wire-format reader: enough to walk the few ONNX
// messages Tide reads itself (the graph's nodes for the classifier label fix,
// TensorProto and friends for the conformance data). It never allocates more
// than the input's size and reports truncation and malformed varints as errors.

// Protobuf wire types (the low three bits of a field key).
const (
	WireVarint  = 0
	WireFixed64 = 1
	WireBytes   = 2
	WireFixed32 = 5
)

// ErrTruncated is a message that ends inside a field.
var ErrTruncated = errors.New("protobuf: truncated message")

// Field is one decoded field: its number, wire type and payload (the varint or
// fixed value in Num, the bytes of a length-delimited field in Bytes).
type Field struct {
	Number int
	Wire   int
	Num    uint64
	Bytes  []byte
}

// ForEachField calls fn for every field in msg, in order.
func ForEachField(msg []byte, fn func(f Field) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return fmt.Errorf("protobuf: bad field key")
		}
		msg = msg[n:]
		f := Field{Number: int(key >> 3), Wire: int(key & 7)}
		if key>>3 == 0 || key>>3 > math.MaxInt32 {
			return fmt.Errorf("protobuf: bad field number %d", key>>3)
		}
		switch f.Wire {
		case WireVarint:
			v, n := binary.Uvarint(msg)
			if n <= 0 {
				return fmt.Errorf("protobuf: bad varint in field %d", f.Number)
			}
			f.Num, msg = v, msg[n:]
		case WireFixed64:
			if len(msg) < 8 {
				return ErrTruncated
			}
			f.Num, msg = binary.LittleEndian.Uint64(msg), msg[8:]
		case WireFixed32:
			if len(msg) < 4 {
				return ErrTruncated
			}
			f.Num, msg = uint64(binary.LittleEndian.Uint32(msg)), msg[4:]
		case WireBytes:
			l, n := binary.Uvarint(msg)
			if n <= 0 {
				return fmt.Errorf("protobuf: bad length in field %d", f.Number)
			}
			msg = msg[n:]
			if l > uint64(len(msg)) {
				return ErrTruncated
			}
			f.Bytes, msg = msg[:l], msg[l:]
		default:
			return fmt.Errorf("protobuf: unsupported wire type %d in field %d", f.Wire, f.Number)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// Varints appends a repeated integer field, packed (one length-delimited run)
// or not (one varint per field).
func (f Field) Varints(dst []uint64) ([]uint64, error) {
	switch f.Wire {
	case WireVarint:
		return append(dst, f.Num), nil
	case WireBytes:
		b := f.Bytes
		for len(b) > 0 {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("protobuf: bad packed varint in field %d", f.Number)
			}
			dst, b = append(dst, v), b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("protobuf: field %d: want varints, got wire type %d", f.Number, f.Wire)
}

// Fixed32s appends a repeated float field (packed or not) as raw bits.
func (f Field) Fixed32s(dst []uint32) ([]uint32, error) {
	switch f.Wire {
	case WireFixed32:
		return append(dst, uint32(f.Num)), nil
	case WireBytes:
		if len(f.Bytes)%4 != 0 {
			return nil, fmt.Errorf("protobuf: field %d: packed fixed32 of %d bytes", f.Number, len(f.Bytes))
		}
		for b := f.Bytes; len(b) > 0; b = b[4:] {
			dst = append(dst, binary.LittleEndian.Uint32(b))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("protobuf: field %d: want fixed32, got wire type %d", f.Number, f.Wire)
}

// Fixed64s appends a repeated double field (packed or not) as raw bits.
func (f Field) Fixed64s(dst []uint64) ([]uint64, error) {
	switch f.Wire {
	case WireFixed64:
		return append(dst, f.Num), nil
	case WireBytes:
		if len(f.Bytes)%8 != 0 {
			return nil, fmt.Errorf("protobuf: field %d: packed fixed64 of %d bytes", f.Number, len(f.Bytes))
		}
		for b := f.Bytes; len(b) > 0; b = b[8:] {
			dst = append(dst, binary.LittleEndian.Uint64(b))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("protobuf: field %d: want fixed64, got wire type %d", f.Number, f.Wire)
}

// Message is a length-delimited field's bytes: an embedded message, a string.
func (f Field) Message() ([]byte, error) {
	if f.Wire != WireBytes {
		return nil, fmt.Errorf("protobuf: field %d: want a length-delimited field, got wire type %d", f.Number, f.Wire)
	}
	return f.Bytes, nil
}

// ScanFields walks the fields of a message read from r, for messages too big
// to hold in memory. Length-delimited
// fields are offered to fn with their length; fn reads them (returning true)
// or leaves them to be skipped. Other fields are skipped.
func ScanFields(r *bufio.Reader, fn func(num, wire int, length uint64) (bool, error)) error {
	for {
		key, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("protobuf: bad field key: %w", err)
		}
		num, wire := int(key>>3), int(key&7)
		if key>>3 == 0 || key>>3 > math.MaxInt32 {
			return fmt.Errorf("protobuf: bad field number %d", key>>3)
		}
		var skip int64
		switch wire {
		case WireVarint:
			if _, err := binary.ReadUvarint(r); err != nil {
				return ErrTruncated
			}
		case WireFixed64:
			skip = 8
		case WireFixed32:
			skip = 4
		case WireBytes:
			length, err := binary.ReadUvarint(r)
			if err != nil || length > math.MaxInt64 {
				return ErrTruncated
			}
			consumed, err := fn(num, wire, length)
			if err != nil {
				return err
			}
			if !consumed {
				skip = int64(length)
			}
		default:
			return fmt.Errorf("protobuf: unsupported wire type %d in field %d", wire, num)
		}
		if skip > 0 {
			if n, _ := io.CopyN(io.Discard, r, skip); n != skip {
				return ErrTruncated
			}
		}
	}
}
