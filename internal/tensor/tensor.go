// Package tensor defines the one data type that flows through the server: a named,
// typed, shaped flat buffer. Protocol codecs convert to and from it; runtimes consume
// and produce it. Nothing here knows about HTTP, JSON or any model format.
package tensor

import (
	"fmt"
	"strings"
)

// Datatype is an Open Inference Protocol (v2) tensor datatype.
type Datatype uint8

// The OIP datatypes. Invalid is the zero value so that a forgotten field is caught.
const (
	Invalid Datatype = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	FP32
	FP64
	Bytes
	BF16
)

var datatypeNames = [...]string{
	Invalid: "INVALID", Bool: "BOOL",
	Uint8: "UINT8", Uint16: "UINT16", Uint32: "UINT32", Uint64: "UINT64",
	Int8: "INT8", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	FP16: "FP16", FP32: "FP32", FP64: "FP64", Bytes: "BYTES", BF16: "BF16",
}

// String returns the protocol name, e.g. "FP32".
func (d Datatype) String() string {
	if int(d) < len(datatypeNames) {
		return datatypeNames[d]
	}
	return fmt.Sprintf("Datatype(%d)", uint8(d))
}

// ParseDatatype maps a protocol name ("FP32") to a Datatype. The names are case
// exact, as the protocol defines them: "fp32" is refused, with the name it meant,
// so that a client's mistake is found rather than quietly accepted by one server.
func ParseDatatype(s string) (Datatype, error) {
	for i, n := range datatypeNames {
		if i != 0 && n == s {
			return Datatype(i), nil
		}
	}
	for i, n := range datatypeNames {
		if i != 0 && strings.EqualFold(n, s) {
			return Invalid, fmt.Errorf("unknown datatype %q (datatypes are upper case: %s)", s, n)
		}
	}
	return Invalid, fmt.Errorf("unknown datatype %q", truncate(s, 64))
}

// truncate shortens s to n bytes for a %q in an error message, so that a hostile
// value is not echoed whole (%q escapes a rune cut in two).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ElementSize is the size in bytes of one element in the binary (raw) encoding;
// 0 for BYTES, whose elements are variable-length.
func (d Datatype) ElementSize() int {
	switch d {
	case Bool, Uint8, Int8:
		return 1
	case Uint16, Int16, FP16, BF16:
		return 2
	case Uint32, Int32, FP32:
		return 4
	case Uint64, Int64, FP64:
		return 8
	}
	return 0
}

// Tensor is a named n-dimensional array in row-major order.
//
// Data holds the elements as one typed Go slice, chosen by Datatype:
//
//	Bool→[]bool  Uint8→[]uint8  Uint16→[]uint16  Uint32→[]uint32  Uint64→[]uint64
//	Int8→[]int8  Int16→[]int16  Int32→[]int32    Int64→[]int64
//	FP16, BF16→[]uint16 (the raw IEEE/bfloat16 bits)  FP32→[]float32  FP64→[]float64
//	Bytes→[][]byte
//
// A typed slice (rather than raw bytes) keeps runtimes free of unsafe casts and lets
// codecs fill the buffer in one pass.
type Tensor struct {
	Name     string
	Datatype Datatype
	Shape    []int64
	Data     any
}

// NumElements is the product of the shape (1 for a scalar, 0 if any dim is 0).
// It returns -1 if a dimension is negative or the product overflows.
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > (1<<62)/d {
			return -1
		}
		n *= d
	}
	return n
}

// Len is the number of elements actually held in Data.
func (t *Tensor) Len() int {
	switch v := t.Data.(type) {
	case []bool:
		return len(v)
	case []uint8:
		return len(v)
	case []uint16:
		return len(v)
	case []uint32:
		return len(v)
	case []uint64:
		return len(v)
	case []int8:
		return len(v)
	case []int16:
		return len(v)
	case []int32:
		return len(v)
	case []int64:
		return len(v)
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	case [][]byte:
		return len(v)
	}
	return -1
}

// dataMatches reports whether Data's Go type is the one Datatype calls for.
func (t *Tensor) dataMatches() bool {
	switch t.Data.(type) {
	case []bool:
		return t.Datatype == Bool
	case []uint8:
		return t.Datatype == Uint8
	case []uint16:
		return t.Datatype == Uint16 || t.Datatype == FP16 || t.Datatype == BF16
	case []uint32:
		return t.Datatype == Uint32
	case []uint64:
		return t.Datatype == Uint64
	case []int8:
		return t.Datatype == Int8
	case []int16:
		return t.Datatype == Int16
	case []int32:
		return t.Datatype == Int32
	case []int64:
		return t.Datatype == Int64
	case []float32:
		return t.Datatype == FP32
	case []float64:
		return t.Datatype == FP64
	case [][]byte:
		return t.Datatype == Bytes
	}
	return false
}

// Validate checks that Data's type fits Datatype and its length fits Shape.
func (t *Tensor) Validate() error {
	if !t.dataMatches() {
		return fmt.Errorf("tensor %q: data of type %T does not match datatype %s", t.Name, t.Data, t.Datatype)
	}
	want := NumElements(t.Shape)
	if want < 0 {
		return fmt.Errorf("tensor %q: invalid shape %v", t.Name, t.Shape)
	}
	if got := int64(t.Len()); got != want {
		return fmt.Errorf("tensor %q: shape %v needs %d elements, got %d", t.Name, t.Shape, want, got)
	}
	return nil
}

// Float64s returns the elements as float64: the Data slice itself for FP64, a
// converted copy for other numeric types. FP16/BF16 are decoded from their bits.
func (t *Tensor) Float64s() ([]float64, error) {
	switch v := t.Data.(type) {
	case []float64:
		return v, nil
	case []float32:
		return convert(v), nil
	case []int64:
		return convert(v), nil
	case []int32:
		return convert(v), nil
	case []int16:
		return convert(v), nil
	case []int8:
		return convert(v), nil
	case []uint64:
		return convert(v), nil
	case []uint32:
		return convert(v), nil
	case []uint8:
		return convert(v), nil
	case []uint16:
		out := make([]float64, len(v))
		for i, b := range v {
			switch t.Datatype {
			case FP16:
				out[i] = float64(HalfToFloat32(b))
			case BF16:
				out[i] = float64(BFloat16ToFloat32(b))
			default:
				out[i] = float64(b)
			}
		}
		return out, nil
	case []bool:
		out := make([]float64, len(v))
		for i, b := range v {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: datatype %s is not numeric", t.Name, t.Datatype)
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

func convert[T number](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// New makes a zero-filled tensor of the given datatype and shape.
func New(name string, dt Datatype, shape []int64) (*Tensor, error) {
	n := NumElements(shape)
	if n < 0 {
		return nil, fmt.Errorf("tensor %q: invalid shape %v", name, shape)
	}
	t := &Tensor{Name: name, Datatype: dt, Shape: shape}
	switch dt {
	case Bool:
		t.Data = make([]bool, n)
	case Uint8:
		t.Data = make([]uint8, n)
	case Uint16, FP16, BF16:
		t.Data = make([]uint16, n)
	case Uint32:
		t.Data = make([]uint32, n)
	case Uint64:
		t.Data = make([]uint64, n)
	case Int8:
		t.Data = make([]int8, n)
	case Int16:
		t.Data = make([]int16, n)
	case Int32:
		t.Data = make([]int32, n)
	case Int64:
		t.Data = make([]int64, n)
	case FP32:
		t.Data = make([]float32, n)
	case FP64:
		t.Data = make([]float64, n)
	case Bytes:
		t.Data = make([][]byte, n)
	default:
		return nil, fmt.Errorf("tensor %q: invalid datatype %s", name, dt)
	}
	return t, nil
}
