package image

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fixture writes a fake binary, a model file, a repository folder and a library.
type fixture struct{ binary, model, repo, lib string }

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{
		binary: filepath.Join(dir, "tide"),
		model:  filepath.Join(dir, "model.pkl"),
		repo:   filepath.Join(dir, "repo"),
		lib:    filepath.Join(dir, "libonnxruntime.so"),
	}
	write := func(p, s string, mode os.FileMode) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(f.binary, "\x7fELF binary", 0o700)
	write(f.model, "pickle bytes", 0o600)
	write(filepath.Join(f.repo, "fraud", "1", "model.pkl"), "v1", 0o600)
	write(filepath.Join(f.repo, "fraud", "2", "model.pkl"), "v2", 0o600)
	write(filepath.Join(f.repo, "fraud", "config.yaml"), "max-batch-size: 8\n", 0o600)
	write(f.lib, "ort", 0o644)
	return f
}

// file is what a test expects of one entry of the image's file system.
type file struct {
	mode int64
	uid  int
	data string // "" for directories, not checked
}

// files flattens the image's layers into path → header (later layers win).
func files(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			name := "/" + filepath.Clean(h.Name)
			hdrs[name], data[name] = h, string(b)
		}
		rc.Close()
	}
	return hdrs, data
}

func TestBuildLayout(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name    string
		spec    Spec
		want    map[string]file
		absent  []string
		cmd     []string
		env     string // an Env entry that must be present ("" for none)
		nLayers int
	}{
		{
			name: "binary only",
			spec: Spec{Binary: fx.binary},
			want: map[string]file{
				"/usr/local/bin/tide-server": {0o755, 0, "\x7fELF binary"},
				"/home/nonroot":              {0o700, NonRootUID, ""},
				"/tmp":                       {0o1777, 0, ""},
				"/etc/passwd":                {0o644, 0, ""},
				"/models":                    {0o755, 0, ""},
			},
			absent:  []string{"/bin/sh", "/models/model.pkl"},
			cmd:     []string{"/models"},
			nLayers: 2,
		},
		{
			name: "model file",
			spec: Spec{Binary: fx.binary, Model: fx.model},
			want: map[string]file{
				"/models/model.pkl": {0o644, 0, "pickle bytes"},
			},
			cmd:     []string{"/models/model.pkl"},
			nLayers: 3,
		},
		{
			name: "repository folder",
			spec: Spec{Binary: fx.binary, Model: fx.repo},
			want: map[string]file{
				"/models/fraud":             {0o755, 0, ""},
				"/models/fraud/1/model.pkl": {0o644, 0, "v1"},
				"/models/fraud/2/model.pkl": {0o644, 0, "v2"},
				"/models/fraud/config.yaml": {0o644, 0, "max-batch-size: 8\n"},
			},
			cmd:     []string{"/models"},
			nLayers: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Build(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != tt.nLayers {
				t.Errorf("%d layers, want %d", len(layers), tt.nLayers)
			}
			hdrs, data := files(t, img)
			for p, w := range tt.want {
				h, ok := hdrs[p]
				if !ok {
					t.Errorf("%s missing", p)
					continue
				}
				if h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.uid {
					t.Errorf("%s: mode %o uid %d gid %d, want mode %o uid/gid %d", p, h.Mode, h.Uid, h.Gid, w.mode, w.uid)
				}
				if !h.ModTime.Equal(Epoch) {
					t.Errorf("%s: mtime %v, want %v", p, h.ModTime, Epoch)
				}
				if w.data != "" && data[p] != w.data {
					t.Errorf("%s: content %q, want %q", p, data[p], w.data)
				}
			}
			for _, p := range tt.absent {
				if _, ok := hdrs[p]; ok {
					t.Errorf("%s is in the image, want it absent", p)
				}
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cf.Config.Cmd, tt.cmd) {
				t.Errorf("cmd %q, want %q", cf.Config.Cmd, tt.cmd)
			}
			if tt.env != "" && !slices.Contains(cf.Config.Env, tt.env) {
				t.Errorf("env %q lacks %q", cf.Config.Env, tt.env)
			}
		})
	}
}

// TestLegacyBinaryLink: /usr/local/bin/tide is a link to tide-server, so manifests
// written for the single-binary images ("tide serve", "tide activator") still run.
func TestLegacyBinaryLink(t *testing.T) {
	fx := newFixture(t)
	img, err := Build(Spec{Binary: fx.binary})
	if err != nil {
		t.Fatal(err)
	}
	hdrs, _ := files(t, img)
	h, ok := hdrs["/usr/local/bin/tide"]
	if !ok {
		t.Fatal("/usr/local/bin/tide missing")
	}
	if h.Typeflag != tar.TypeSymlink || h.Linkname != "tide-server" || h.Uid != 0 {
		t.Errorf("/usr/local/bin/tide: type %c -> %q uid %d, want a root-owned link to tide-server", h.Typeflag, h.Linkname, h.Uid)
	}
}

func TestConfig(t *testing.T) {
	fx := newFixture(t)
	img, err := Build(Spec{Binary: fx.binary, Version: "1.2.3", Revision: "abc", Labels: map[string]string{"team": "ml"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if want := []string{"/usr/local/bin/tide-server", "serve"}; !slices.Equal(cf.Config.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", cf.Config.Entrypoint, want)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.revision": "abc",
		"org.opencontainers.image.title":    "tide",
		"org.opencontainers.image.created":  "1970-01-01T00:00:00Z",
		"team":                              "ml",
	} {
		if got := cf.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if !cf.Created.Time.Equal(Epoch) {
		t.Errorf("created %v, want %v", cf.Created.Time, Epoch)
	}
}

func TestReproducibleDigest(t *testing.T) {
	fx := newFixture(t)
	digest := func(s Spec) v1.Hash {
		t.Helper()
		img, err := Build(s)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	spec := Spec{Binary: fx.binary, Model: fx.repo, Version: "1"}
	first := digest(spec)
	// Different file times on disk must not change the image.
	later := Epoch.AddDate(40, 0, 0)
	if err := os.Chtimes(fx.binary, later, later); err != nil {
		t.Fatal(err)
	}
	if again := digest(spec); again != first {
		t.Errorf("same inputs gave %s then %s", first, again)
	}
	// A different input must change it: the test would pass vacuously otherwise.
	if other := digest(Spec{Binary: fx.binary, Model: fx.repo, Version: "2"}); other == first {
		t.Errorf("different version gave the same digest %s", first)
	}
	if other := digest(Spec{Binary: fx.binary, Model: fx.model, Version: "1"}); other == first {
		t.Errorf("different model gave the same digest %s", first)
	}
}

func TestWriteArchiveReadable(t *testing.T) {
	fx := newFixture(t)
	img, err := Build(Spec{Binary: fx.binary, Model: fx.model})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tide.tar")
	if err := WriteArchive(out, "tide.local/tide:test", img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	// A docker archive keeps the config and the layers but not the OCI manifest, so
	// the image ID (the config digest) is what must survive the round trip.
	want, _ := img.ConfigName()
	got, err := back.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("archive holds image ID %s, built %s", got, want)
	}
	if _, data := files(t, back); data["/models/model.pkl"] != "pickle bytes" {
		t.Errorf("model in the archive reads %q", data["/models/model.pkl"])
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(out) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"tide.local/tide:test"}) {
		t.Errorf("manifest.json %+v, want one image tagged tide.local/tide:test", m)
	}
}

func TestBuildErrors(t *testing.T) {
	fx := newFixture(t)
	missing := filepath.Join(t.TempDir(), "nope")
	onnxModel := filepath.Join(t.TempDir(), "mlp.onnx")
	if err := os.WriteFile(onnxModel, []byte("onnx"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec Spec
		want string // in the error, "" for any error
	}{
		{Spec{}, "no binary"},
		{Spec{Binary: missing}, ""},
		{Spec{Binary: fx.binary, Model: missing}, ""},
		{Spec{Binary: fx.binary, ONNXRuntimeLib: missing}, "statically linked"},
		// A static binary cannot dlopen ONNX Runtime.
		{Spec{Binary: fx.binary, ONNXRuntimeLib: fx.lib}, "build tide with cgo"},
		// An ONNX model (a file, or in a repository) without ONNX Runtime: one line.
		{Spec{Binary: fx.binary, Model: onnxModel}, "needs the ONNX Runtime library in the image: give --onnxruntime-lib"},
		{Spec{Binary: fx.binary, Model: filepath.Dir(onnxModel)}, "--onnxruntime-lib"},
	} {
		_, err := Build(tt.spec)
		if err == nil {
			t.Errorf("Build(%+v) succeeded, want an error", tt.spec)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Build(%+v): %q, want one line containing %q", tt.spec, err, tt.want)
		}
	}
	if err := WriteArchive(filepath.Join(t.TempDir(), "x.tar"), "Not A Ref!", nil); err == nil {
		t.Error("WriteArchive with a bad reference succeeded")
	}
}
