package xgboost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/loadmem"
)

// The load's memory charge must bound what a load really allocates: if the
// decoder grows costlier, this fails before a budget stops meaning anything.
func TestLoadCostBoundsAllocation(t *testing.T) {
	json, _ := filepath.Glob("testdata/*.json")
	ubj, _ := filepath.Glob("testdata/*.ubj")
	checked := 0
	for _, path := range append(json, ubj...) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err = loader{}.Load(context.Background(), path, formats.Config{})
		runtime.ReadMemStats(&after)
		if err != nil {
			continue // expectation files and models refused on purpose
		}
		checked++
		if alloc := int64(after.TotalAlloc - before.TotalAlloc); alloc > loadCost(st.Size()) {
			t.Errorf("%s: loading %d bytes allocated %d, more than the %d charged", path, st.Size(), alloc, loadCost(st.Size()))
		}
	}
	if checked < 10 {
		t.Fatalf("only %d fixtures loaded", checked)
	}
}

func TestLoadIsRefusedBeyondItsBudget(t *testing.T) {
	path := "testdata/binary_logistic.json"
	st, _ := os.Stat(path)
	_, err := loader{}.Load(context.Background(), path, formats.Config{Memory: loadmem.New(loadCost(st.Size()) - 1)})
	if !errors.Is(err, loadmem.ErrExceeded) {
		t.Fatalf("error %v, want the budget exceeded", err)
	}
	if _, err := (loader{}).Load(context.Background(), path, formats.Config{Memory: loadmem.New(loadCost(st.Size()))}); err != nil {
		t.Fatalf("the exact budget must do: %v", err)
	}
}
