//go:build cgo

package onnx

import (
	"context"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/tensor"
)

// Outputs declared [batch, fixed...] are allocated by Tide and bound, so ONNX
// Runtime writes into them. An output declared that way whose first dimension
// is not the batch after all (rowsplit.onnx: x [-1, 6] reshaped to [-1, 3],
// twice the rows) fails the bound run; the run is repeated unbound, the answer
// is right, and the session stops binding.
func TestBoundOutputs(t *testing.T) {
	mlp := load(t, "mlp.onnx", formats.Config{Name: "mlp"})
	in := fp32Tensor("input", []int64{3, 32}, make([]float64, 96))
	if _, err := mlp.Predict(context.Background(), []*tensor.Tensor{in}); err != nil {
		t.Fatal(err)
	}
	if mlp.(*onnxModel).s.unbound.Load() {
		t.Fatal("the MLP's logits [-1, 10] were not bound")
	}

	split := load(t, "rowsplit.onnx", formats.Config{Name: "rowsplit"})
	if got := split.Metadata().Outputs[0].Shape; len(got) != 2 || got[0] != -1 || got[1] != 3 {
		t.Fatalf("rowsplit's output is declared %v, want [-1 3]", got)
	}
	for _, rows := range []int{4, 1, 4} {
		x := make([]float64, rows*6)
		for i := range x {
			x[i] = float64(i + 1)
		}
		outs, err := split.Predict(context.Background(), []*tensor.Tensor{fp32Tensor("x", []int64{int64(rows), 6}, x)})
		if err != nil {
			t.Fatalf("%d rows: %v", rows, err)
		}
		got := outs[0].Data.([]float32)
		if len(outs[0].Shape) != 2 || outs[0].Shape[0] != int64(2*rows) || outs[0].Shape[1] != 3 || len(got) != len(x) {
			t.Fatalf("%d rows: shape %v, %d values", rows, outs[0].Shape, len(got))
		}
		for i, v := range got {
			if v != float32(x[i]) {
				t.Fatalf("%d rows: value %d is %v, want %v", rows, i, v, x[i])
			}
		}
	}
	if !split.(*onnxModel).s.unbound.Load() {
		t.Error("rowsplit's session still binds its outputs")
	}
}
