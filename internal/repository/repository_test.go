package repository

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats/formatstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const good = `{"weights":[1,-1]}`

func TestFolderLayouts(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "plain", "model.tlin"), good)              // unversioned
	write(t, filepath.Join(root, "versioned", "1", "model.tlin"), good)     // versions
	write(t, filepath.Join(root, "versioned", "10", "weights.tlin"), good)  // any file name
	write(t, filepath.Join(root, "versioned", "notes", "x.txt"), "ignored") // not a version
	write(t, filepath.Join(root, "versioned", "config.yaml"), "version_policy: {all: true}\n")
	write(t, filepath.Join(root, "renamed", "model.tlin"), good) //
	write(t, filepath.Join(root, "renamed", "config.yaml"), "name: fraud\nfeatures: [amount, hour]\n")
	write(t, filepath.Join(root, "broken", "model.tlin"), `{"fail_load":"bad bytes"}`)
	write(t, filepath.Join(root, "empty", "README"), "no model here") // reported, skipped
	write(t, filepath.Join(root, ".hidden", "model.tlin"), good)      // ignored

	r, err := Open(root, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "broken,fraud,plain,versioned" {
		t.Fatalf("names %s", got)
	}
	if len(r.Problems()) != 1 || !strings.Contains(r.Problems()[0], "empty: no model file") {
		t.Fatalf("problems %q", r.Problems())
	}
	if r.Ready(false) {
		t.Fatal("ready before loading")
	}
	r.LoadAll(context.Background())
	if !r.Ready(false) || r.Ready(true) {
		t.Fatalf("ready lenient=%v strict=%v, want true false", r.Ready(false), r.Ready(true))
	}

	v, err := r.Get("versioned", "")
	if err != nil || v.Version != "10" {
		t.Fatalf("default version %v %v, want 10", v, err)
	}
	if v, err := r.Get("versioned", "1"); err != nil || v.Version != "1" {
		t.Fatalf("version 1: %v", err)
	}
	if _, err := r.Get("versioned", "2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
	if _, err := r.Get("nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing model: %v", err)
	}
	v, _ = r.Get("fraud", "")
	_, md, err := v.Model()
	if err != nil || strings.Join(md.Features, ",") != "amount,hour" {
		t.Fatalf("config features not applied: %v %v", md.Features, err)
	}
	v, _ = r.Get("broken", "")
	if _, _, err := v.Model(); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "bad bytes") {
		t.Fatalf("broken model: %v", err)
	}
	idx := r.Index()
	if len(idx) != 5 || idx[0].State != Failed || idx[0].Reason == "" {
		t.Fatalf("index %+v", idx)
	}
}

func TestSingleFile(t *testing.T) {
	dir := t.TempDir()
	p, err := formatstest.Write(dir, "model_rf", formatstest.Spec{Weights: []float64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); len(got) != 1 || got[0] != "model_rf" {
		t.Fatalf("names %v, want the file stem", got)
	}
	// A sidecar config renames it.
	write(t, filepath.Join(dir, "model_rf.yaml"), "name: fraud\n")
	r, err = Open(p, Options{}, quiet)
	if err != nil || r.Names()[0] != "fraud" {
		t.Fatalf("sidecar config: %v %v", r.Names(), err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "model.unknown"), "x")
	write(t, filepath.Join(dir, "bad name.tlin"), good)
	write(t, filepath.Join(dir, "typo.tlin"), good)
	write(t, filepath.Join(dir, "typo.yaml"), "nmae: x\n")
	write(t, filepath.Join(dir, "two", "a.tlin"), good)
	write(t, filepath.Join(dir, "two", "b.tlin"), good)
	cases := []struct{ path, err string }{
		{filepath.Join(dir, "missing.pkl"), "no such file"},
		{filepath.Join(dir, "model.unknown"), `no runtime for ".unknown" files`},
		{filepath.Join(dir, "bad name.tlin"), "may hold only letters"},
		{filepath.Join(dir, "typo.tlin"), `unknown field "nmae"`},
		{filepath.Join(dir, "two"), "no models found"}, // a folder whose subfolder is not a model
	}
	for _, c := range cases {
		_, err := Open(c.path, Options{}, quiet)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Open(%s) = %v, want %q", filepath.Base(c.path), err, c.err)
		}
	}
	// Two model files in one model folder: that model is skipped with a reason.
	root := t.TempDir()
	write(t, filepath.Join(root, "two", "a.tlin"), good)
	write(t, filepath.Join(root, "two", "b.tlin"), good)
	write(t, filepath.Join(root, "ok", "model.tlin"), good)
	r, err := Open(root, Options{}, quiet)
	if err != nil || len(r.Names()) != 1 || !strings.Contains(strings.Join(r.Problems(), ""), "several model files") {
		t.Fatalf("%v %v %v", r.Names(), r.Problems(), err)
	}
}

func TestParseConfig(t *testing.T) {
	cases := []struct{ in, err string }{
		{in: "name: fraud\nformat: sklearn\nfeatures: [a, b]\noutputs: [label, proba]\n"},
		{in: `{"features": ["a"]}`},
		{in: "", err: ""},
		{in: "features: [a, a]", err: "listed twice"},
		{in: "features: [a, '']", err: "empty feature"},
		{in: "name: ../etc", err: "may hold only"},
		{in: "features: 3", err: "parse config"},
		{in: "unknown: 1", err: "unknown field"},
		{in: "{", err: "parse config"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.in))
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: %v, want %q", c.in, err, c.err)
		}
	}
}

// FuzzParseConfig: a config file never panics the parser and what parses is valid.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("name: fraud\nfeatures: [a, b]\n"))
	f.Add([]byte(`{"outputs": ["x"], "format": "sklearn"}`))
	f.Add([]byte("features:\n  - &a x\n  - *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err == nil && c.validate() != nil {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
	})
}

// TestUnknownNamesAreNotEchoedWhole: a client's model name or version can be any
// length; the not-found error quotes at most 64 bytes of it.
func TestUnknownNamesAreNotEchoedWhole(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "m", "1", "model.tlin"), `{"weights":[1]}`)
	r, err := Open(root, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 8000)
	for _, c := range [][2]string{{long, ""}, {"m", long}} {
		_, err := r.Get(c[0], c[1])
		if !errors.Is(err, ErrNotFound) || len(err.Error()) > 200 {
			t.Errorf("Get(%d-byte name, %d-byte version): %d-byte error, want not found in under 200 bytes", len(c[0]), len(c[1]), len(err.Error()))
		}
	}
	if err := r.LoadModel(t.Context(), long); !errors.Is(err, ErrNotFound) || len(err.Error()) > 200 {
		t.Errorf("LoadModel of an 8000-byte name: %d-byte error", len(err.Error()))
	}
}

// TestDefaultFormat: Options.Format (tide-server serve --format, which the
// operator sets from a Model's format) names the runtime of a file whose
// extension does not, in a single file and in a repository folder; a config's
// own format still wins.
func TestDefaultFormat(t *testing.T) {
	dir := t.TempDir()
	p, err := formatstest.Write(dir, "model", formatstest.Spec{Weights: []float64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(dir, "fraud.bin")
	if err := os.Rename(p, odd); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(odd, Options{}, quiet); err == nil {
		t.Fatal("a .bin file opened without a format")
	}
	r, err := Open(odd, Options{Format: "testlinear"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r.LoadAll(context.Background())
	if idx := r.Index(); len(idx) != 1 || idx[0].Name != "fraud" || idx[0].State != Ready {
		t.Fatalf("with Format testlinear: %+v", idx)
	}
	write(t, filepath.Join(dir, "fraud.yaml"), "format: elsewhere\n")
	if _, err := Open(odd, Options{Format: "testlinear"}, quiet); err == nil || !strings.Contains(err.Error(), `unknown format "elsewhere"`) {
		t.Fatalf("the config's format should win over the default: %v", err)
	}
}
