package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// hostDynamicBinary is a dynamically linked executable of this machine (coreutils'
// true), standing in for a cgo tide binary: what matters here is its ELF dynamic
// section, not what it does.
func hostDynamicBinary(t *testing.T) (file, interp string) {
	t.Helper()
	for _, c := range []string{"/usr/bin/true", "/bin/true"} {
		if interp, err := dynamicInterpreter(c); err == nil && interp != "" {
			return c, interp
		}
	}
	t.Skip("no dynamically linked /usr/bin/true on this machine (not a glibc system?)")
	return "", ""
}

// hostLibrary finds a shared library of this machine in the standard directories.
func hostLibrary(t *testing.T, name string) string {
	t.Helper()
	for _, d := range libraryDirs("amd64") {
		if p, err := filepath.EvalSymlinks(filepath.Join(d, name)); err == nil {
			return p
		}
	}
	t.Skipf("%s not found on this machine", name)
	return ""
}

// installedONNXRuntime is the ONNX Runtime library hack/install-onnxruntime.sh
// installs (or $TIDE_ONNXRUNTIME_LIB); "" when there is none.
func installedONNXRuntime() string {
	for _, c := range []string{os.Getenv("TIDE_ONNXRUNTIME_LIB"), "/usr/local/lib/tide/libonnxruntime.so"} {
		if c == "" {
			continue
		}
		if p, err := filepath.EvalSymlinks(c); err == nil {
			return p
		}
	}
	return ""
}

// layerFiles lists one layer's entries: path → header, and path → content.
func layerFiles(t *testing.T, l v1.Layer) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(tr); err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(h.Name, "/")
		hdrs[name], data[name] = h, buf.Bytes()
	}
	return hdrs, data
}

// TestBuildSharedLibraries builds an image around a dynamically linked binary with a
// library that has dependencies of its own (libstdc++ standing in for ONNX Runtime,
// which needs it): the layer holds the loader at the binary's PT_INTERP path, and
// libc, libm and libgcc_s in the directory the loader searches, all regular files
// with the host's bytes, and nothing else but their directories.
func TestBuildSharedLibraries(t *testing.T) {
	bin, interp := hostDynamicBinary(t)
	stdcxx := hostLibrary(t, "libstdc++.so.6")
	fx := newFixture(t)
	img, err := Build(Spec{Binary: bin, Model: fx.model, ONNXRuntimeLib: stdcxx})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 5 { // base, libraries, binary, model, ONNX Runtime
		t.Fatalf("%d layers, want 5", len(layers))
	}
	hdrs, data := layerFiles(t, layers[1])
	loader, err := os.ReadFile(interp)
	if err != nil {
		t.Fatal(err)
	}
	if h := hdrs[interp]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 || !bytes.Equal(data[interp], loader) {
		t.Errorf("loader %s: header %+v, want a 0755 regular file with the host's bytes", interp, h)
	}
	var libs []string
	for p, h := range hdrs {
		if !h.ModTime.Equal(Epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want %v and root", p, h.ModTime, h.Uid, h.Gid, Epoch)
		}
		if h.Typeflag == tar.TypeDir || p == interp {
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 {
			t.Errorf("%s: type %c mode %o, want a 0644 regular file", p, h.Typeflag, h.Mode)
		}
		if _, err := elf.NewFile(bytes.NewReader(data[p])); err != nil {
			t.Errorf("%s is not ELF: %v", p, err)
		}
		libs = append(libs, path.Base(p))
		if dir := path.Dir(p); !slices.Contains(libraryDirs("amd64"), dir) {
			t.Errorf("%s is outside the loader's default directories", p)
		}
	}
	slices.Sort(libs)
	// libstdc++ itself is the ONNX Runtime stand-in (its own layer); it needs these.
	for _, want := range []string{"libc.so.6", "libgcc_s.so.1", "libm.so.6"} {
		if !slices.Contains(libs, want) {
			t.Errorf("libraries %v lack %s", libs, want)
		}
	}
	if slices.Contains(libs, path.Base(interp)) {
		t.Errorf("the loader is in the layer twice: %v", libs)
	}
	all, _ := files(t, img)
	for _, p := range []string{"/bin/sh", "/usr/bin/sh", "/bin/busybox"} {
		if _, ok := all[p]; ok {
			t.Errorf("%s is in the image", p)
		}
	}
	if h := all[ONNXRuntimePath]; h == nil || h.Mode != 0o755 {
		t.Errorf("ONNX Runtime library %s: %+v", ONNXRuntimePath, h)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != NonRootUser {
		t.Errorf("user %q, want %s", cf.Config.User, NonRootUser)
	}
	if !slices.Contains(cf.Config.Env, "TIDE_ONNXRUNTIME_LIB="+ONNXRuntimePath) {
		t.Errorf("env %q lacks TIDE_ONNXRUNTIME_LIB", cf.Config.Env)
	}
	t.Logf("loader %s, libraries %v", interp, libs)
}

// TestResolveONNXRuntimeLibraries: the real ONNX Runtime library with a binary that
// needs libc resolves to exactly the loader and the seven libraries its dynamic
// section names (ONNX Runtime 1.24: libdl, librt, libpthread, libstdc++, libm,
// libgcc_s, libc; its ld-linux-x86-64.so.2 entry is the loader).
func TestResolveONNXRuntimeLibraries(t *testing.T) {
	ort := installedONNXRuntime()
	if ort == "" {
		if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("ONNX Runtime not installed (hack/install-onnxruntime.sh)")
		}
		t.Skip("ONNX Runtime not installed (run hack/install-onnxruntime.sh)")
	}
	bin, interp := hostDynamicBinary(t)
	libs, err := ResolveSharedLibraries("/", "amd64", interp, map[string]string{BinaryPath: bin, ONNXRuntimePath: ort})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range libs {
		if l.Loader {
			if l.Path != interp {
				t.Errorf("loader at %s, want %s", l.Path, interp)
			}
			continue
		}
		got = append(got, path.Base(l.Path))
	}
	want := []string{"libc.so.6", "libdl.so.2", "libgcc_s.so.1", "libm.so.6", "libpthread.so.0", "librt.so.1", "libstdc++.so.6"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("libraries %v, want %v", got, want)
	}
}

func TestResolveMissingLibrary(t *testing.T) {
	bin, interp := hostDynamicBinary(t)
	// An empty root has neither the loader nor libc.
	_, err := ResolveSharedLibraries(t.TempDir(), "amd64", interp, map[string]string{BinaryPath: bin})
	if err == nil || !strings.Contains(err.Error(), "dynamic loader") {
		t.Errorf("got %v, want an error naming the dynamic loader", err)
	}
	// A root with the loader but no libc names the missing library and where it looked.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, path.Dir(interp)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, interp), []byte("ld"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = ResolveSharedLibraries(root, "amd64", interp, map[string]string{BinaryPath: bin})
	if err == nil || !strings.Contains(err.Error(), "needs libc.so.6, which is not in /lib/x86_64-linux-gnu") {
		t.Errorf("got %v, want an error naming libc.so.6 and the directories searched", err)
	}
}

// TestReproducibleDigestWithLibraries: the libraries layer, like the others, depends
// on file contents only: the same binary at another path with another mtime gives
// the same digest, twice.
func TestReproducibleDigestWithLibraries(t *testing.T) {
	bin, _ := hostDynamicBinary(t)
	stdcxx := hostLibrary(t, "libstdc++.so.6")
	fx := newFixture(t)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	copyBin := filepath.Join(t.TempDir(), "tide")
	if err := os.WriteFile(copyBin, b, 0o700); err != nil {
		t.Fatal(err)
	}
	later := Epoch.Add(30 * 365 * 24 * time.Hour)
	if err := os.Chtimes(copyBin, later, later); err != nil {
		t.Fatal(err)
	}
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
	first := digest(Spec{Binary: bin, Model: fx.model, ONNXRuntimeLib: stdcxx})
	for _, s := range []Spec{
		{Binary: bin, Model: fx.model, ONNXRuntimeLib: stdcxx},
		{Binary: copyBin, Model: fx.model, ONNXRuntimeLib: stdcxx},
	} {
		if d := digest(s); d != first {
			t.Errorf("%+v gave %s, want %s", s, d, first)
		}
	}
	if d := digest(Spec{Binary: bin, Model: fx.repo, ONNXRuntimeLib: stdcxx}); d == first {
		t.Errorf("a different model gave the same digest %s", d)
	}
}

func TestHasONNXModel(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a/1/model.ONNX", "b/1/model.pkl", "c.pkl"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		model string
		want  bool
	}{
		{"a/1/model.ONNX", true},
		{"a", true},
		{".", true},
		{"b", false},
		{"c.pkl", false},
	} {
		got, err := HasONNXModel(filepath.Join(dir, tt.model))
		if err != nil || got != tt.want {
			t.Errorf("HasONNXModel(%s) = %v, %v; want %v", tt.model, got, err, tt.want)
		}
	}
	if _, err := HasONNXModel(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing model gave no error")
	}
}
