//go:build linux || darwin

package pickle

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/loadmem"
)

// A model file truncated while it loads (copied over by the next version) must
// fail that load, not crash the server with SIGBUS on the mapping.
func TestMappedFileTruncatedWhileLoadingIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.pkl")
	q := newPK(4)
	q.bin(make([]byte, 1<<20)).op(opStop)
	if err := os.WriteFile(path, q.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, release, err := readFile(f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if v, err := loadMapped(data, Options{}.withDefaults(), nil, false); err != nil || len(v.([]byte)) != 1<<20 {
		t.Fatalf("the mapped file does not load: %v", err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	_, err = loadMapped(data, Options{}.withDefaults(), nil, false)
	if err == nil || !strings.Contains(err.Error(), "changed while it was being read") {
		t.Fatalf("error %v, want the file-changed error", err)
	}
}

// LoadFile's arrays share the mapped file's bytes (no copy, nothing charged for
// them) until release; other values are the caller's own.
func TestLoadFileBorrowsArraysUntilRelease(t *testing.T) {
	for _, path := range []string{"testdata/forest_20.joblib", "testdata/arrays_joblib_none.joblib"} {
		t.Run(filepath.Base(path), func(t *testing.T) { checkBorrows(t, path) })
	}
}

func checkBorrows(t *testing.T, path string) {
	copied, err := Load(path, Options{Allow: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	budget := loadmem.New(1 << 30)
	v, release, err := LoadFile(path, Options{Allow: allowAll, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if !reflect.DeepEqual(describe(v), describe(copied)) {
		t.Fatal("LoadFile decoded something else than Load")
	}
	copyBudget := loadmem.New(1 << 30)
	if _, err := Load(path, Options{Allow: allowAll, Budget: copyBudget}); err != nil {
		t.Fatal(err)
	}
	if budget.Used() >= copyBudget.Used() {
		t.Errorf("LoadFile charged %d bytes, Load %d: borrowed arrays should cost nothing", budget.Used(), copyBudget.Used())
	}
}

// WhileMapped turns only memory faults into ErrFileChanged: a bug's panic must
// still surface.
func TestWhileMappedPassesOtherPanicsOn(t *testing.T) {
	defer func() {
		if r := recover(); r != "a bug" {
			t.Fatalf("recovered %v, want the bug's own panic", r)
		}
	}()
	_ = WhileMapped(func() error { panic("a bug") })
	t.Fatal("WhileMapped swallowed a panic that is not a fault")
}
