package onnxproto

import (
	"testing"

	"github.com/tideserve/tide/internal/tensor"
)

func TestDatatypeMapping(t *testing.T) {
	for dt := tensor.Bool; dt <= tensor.BF16; dt++ {
		elem, ok := ElemType(dt)
		if !ok {
			t.Errorf("%s has no ONNX element type", dt)
			continue
		}
		back, err := Datatype(elem)
		if err != nil || back != dt {
			t.Errorf("%s -> ONNX %s -> %s, %v", dt, TypeName(elem), back, err)
		}
	}
	for _, elem := range []int{Undefined, Complex64, Complex128, 17, 99} {
		if _, err := Datatype(elem); err == nil {
			t.Errorf("ONNX element type %d mapped to an OIP datatype", elem)
		}
	}
}
