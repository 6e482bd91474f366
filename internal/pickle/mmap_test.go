//go:build linux || darwin

package pickle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	data, release, err := readFile(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if v, err := loadMapped(data, Options{}.withDefaults(), nil); err != nil || len(v.([]byte)) != 1<<20 {
		t.Fatalf("the mapped file does not load: %v", err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	_, err = loadMapped(data, Options{}.withDefaults(), nil)
	if err == nil || !strings.Contains(err.Error(), "changed while it was being read") {
		t.Fatalf("error %v, want the file-changed error", err)
	}
}
