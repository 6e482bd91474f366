package onnx

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/loadmem"
)

// ONNX Runtime's allocations are native, so the budget is charged before it
// starts: a model whose charge does not fit never reaches it.
func TestLoadIsRefusedBeforeONNXRuntimeWhenOverBudget(t *testing.T) {
	path := "testdata/mlp256.onnx"
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if loadCost(st.Size()) < 3*st.Size() {
		t.Fatalf("loadCost(%d) = %d, below the three copies it stands for", st.Size(), loadCost(st.Size()))
	}
	_, err = loader{}.Load(context.Background(), path, formats.Config{Memory: loadmem.New(loadCost(st.Size()) - 1)})
	if !errors.Is(err, loadmem.ErrExceeded) {
		t.Fatalf("error %v, want the budget exceeded", err)
	}
}
