// Package image builds Tide's container image without a Docker daemon, as ko does:
// go-containerregistry assembles an OCI image from tar layers written here, from
// scratch, around the production binary tide-server: a static one, or a cgo one for ONNX models,
// which then comes with exactly the shared libraries it and ONNX Runtime need.
//
// The image is reproducible: every file carries a fixed modification time, entries
// are written in sorted order with fixed owners and modes, and the config's created
// time is fixed too, so the same inputs give the same digest on any machine.
//
// Layout:
//
//	/etc/passwd, /etc/group     root and nonroot (65532), as distroless has them
//	/tmp                        1777, for libraries that want a temp dir
//	/home/nonroot               the user's home, owned by 65532
//	/usr/local/bin/tide-server  the binary (root-owned, 0755: the user cannot replace it)
//	/usr/local/bin/tide         a symbolic link to tide-server, so manifests written
//	                            for the single-binary images ("tide serve",
//	                            "tide activator") keep working
//	/models/...                 optional model file or repository folder
//	/usr/local/lib/tide/...     optional ONNX Runtime library
//	/lib64/ld-linux-x86-64.so.2 for a dynamically linked (cgo) binary only: the
//	/lib/x86_64-linux-gnu/...   loader at the binary's PT_INTERP path and the
//	                            libraries the binary and ONNX Runtime need (libc,
//	                            libm, libstdc++, libgcc_s, ...), copied from the
//	                            machine that built the binary
//
// There is no shell and no other program in the image.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identities inside the image. The chart and the Dockerfile rely on them.
const (
	BinaryPath = "/usr/local/bin/tide-server"
	// LegacyBinaryPath is where images before the binary split had the binary; it
	// links to BinaryPath.
	LegacyBinaryPath = "/usr/local/bin/tide"
	ModelsDir        = "/models"
	ONNXRuntimeDir   = "/usr/local/lib/tide"
	NonRootUID       = 65532
	NonRootUser      = "65532:65532"
	onnxRuntimeName  = "libonnxruntime.so.1"
)

// Epoch is the modification time of every file and the image's created time unless
// Spec.Created says otherwise: the reproducible-builds convention of a fixed time.
var Epoch = time.Unix(0, 0).UTC()

// Spec says what goes into an image.
type Spec struct {
	// Binary is the path of a linux tide-server binary (the full tide CLI also
	// works, only bigger). A static one goes in alone; for a
	// dynamically linked one (cgo, needed for ONNX) the loader and the shared
	// libraries it needs are resolved on this machine and added as a layer.
	Binary string
	// Model is an optional model file or repository folder, copied under /models.
	Model string
	// ONNXRuntimeLib is an optional libonnxruntime.so, copied to /usr/local/lib/tide
	// with the libraries it needs. It needs a dynamically linked Binary, and an
	// ONNX Model needs it.
	ONNXRuntimeLib string
	// Version goes into the org.opencontainers.image.version label.
	Version string
	// Revision (a VCS commit) and Source (a repository URL) are optional labels.
	Revision, Source string
	// Labels are added to (and override) the OCI labels the builder sets.
	Labels map[string]string
	// Created is the image's created time; zero means Epoch.
	Created time.Time
	// Architecture of the binary; empty means amd64.
	Architecture string
}

// Build assembles the image described by spec.
func Build(spec Spec) (v1.Image, error) {
	if spec.Binary == "" {
		return nil, fmt.Errorf("image: no binary given")
	}
	created := spec.Created
	if created.IsZero() {
		created = Epoch
	}

	base := newLayerBuilder()
	base.dir("/etc", 0o755, 0)
	base.file("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644, 0)
	base.file("/etc/group", []byte("root:x:0:\nnonroot:x:65532:\n"), 0o644, 0)
	base.dir("/home", 0o755, 0)
	base.dir("/home/nonroot", 0o700, NonRootUID)
	base.dir("/tmp", 0o1777|fs.ModeSticky, 0)
	base.dir(ModelsDir, 0o755, 0)

	libs, err := sharedLibraries(spec)
	if err != nil {
		return nil, err
	}
	layers := []*layerBuilder{base}
	if len(libs) > 0 {
		ll := newLayerBuilder()
		if err := ll.addSharedLibraries(libs); err != nil {
			return nil, err
		}
		layers = append(layers, ll)
	}

	bin := newLayerBuilder()
	if err := bin.copyFile(spec.Binary, BinaryPath, 0o755); err != nil {
		return nil, err
	}
	bin.symlink(LegacyBinaryPath, path.Base(BinaryPath))
	layers = append(layers, bin)
	cmd := []string{ModelsDir}
	if spec.Model != "" {
		ml := newLayerBuilder()
		served, err := ml.copyModel(spec.Model)
		if err != nil {
			return nil, err
		}
		cmd = []string{served}
		layers = append(layers, ml)
	}
	env := []string{"PATH=/usr/local/bin"}
	if spec.ONNXRuntimeLib != "" {
		ol := newLayerBuilder()
		if err := ol.copyFile(spec.ONNXRuntimeLib, ONNXRuntimePath, 0o755); err != nil {
			return nil, err
		}
		env = append(env, "TIDE_ONNXRUNTIME_LIB="+ONNXRuntimePath)
		layers = append(layers, ol)
	}

	img := empty.Image
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, lb := range layers {
		layer, err := lb.layer()
		if err != nil {
			return nil, fmt.Errorf("image: layer %d: %w", i, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "tide image build"},
		})
		if err != nil {
			return nil, fmt.Errorf("image: append layer %d: %w", i, err)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	cf = cf.DeepCopy()
	arch := spec.Architecture
	if arch == "" {
		arch = "amd64"
	}
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: created}
	cf.Config.User = NonRootUser
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Entrypoint = []string{BinaryPath, "serve"}
	cf.Config.Cmd = cmd
	cf.Config.Env = env
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "8081/tcp": {}}
	cf.Config.Labels = labels(spec, created)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: set config: %w", err)
	}
	return img, nil
}

// ONNXRuntimePath is where ONNXRuntimeLib goes in the image (TIDE_ONNXRUNTIME_LIB).
var ONNXRuntimePath = path.Join(ONNXRuntimeDir, onnxRuntimeName)

// sharedLibraries checks that the binary, the model and the ONNX Runtime library go
// together, and resolves the loader and libraries a dynamically linked binary and
// ONNX Runtime need (none for a static binary).
func sharedLibraries(spec Spec) ([]SharedLibrary, error) {
	interp, err := dynamicInterpreter(spec.Binary)
	if err != nil {
		return nil, err
	}
	if spec.ONNXRuntimeLib == "" && spec.Model != "" {
		onnx, err := HasONNXModel(spec.Model)
		if err != nil {
			return nil, err
		}
		if onnx {
			return nil, fmt.Errorf("image: %s is an ONNX model, which needs the ONNX Runtime library in the image: give --onnxruntime-lib (hack/install-onnxruntime.sh installs one)", spec.Model)
		}
	}
	if spec.ONNXRuntimeLib != "" && interp == "" {
		return nil, fmt.Errorf("image: %s is statically linked and cannot load ONNX Runtime: build tide with cgo (CGO_ENABLED=1) for an image with --onnxruntime-lib", spec.Binary)
	}
	if interp == "" {
		return nil, nil
	}
	objects := map[string]string{BinaryPath: spec.Binary}
	if spec.ONNXRuntimeLib != "" {
		objects[ONNXRuntimePath] = spec.ONNXRuntimeLib
	}
	arch := spec.Architecture
	if arch == "" {
		arch = "amd64"
	}
	return ResolveSharedLibraries("/", arch, interp, objects)
}

// HasONNXModel reports whether model (a file or a repository folder) is or holds an
// .onnx file, which only a cgo binary with ONNX Runtime can serve.
func HasONNXModel(model string) (bool, error) {
	found := false
	err := filepath.WalkDir(model, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".onnx") {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("image: model: %w", err)
	}
	return found, nil
}

// labels are the OCI annotation keys (image-spec annotations.md) used as labels.
func labels(spec Spec, created time.Time) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "tide",
		"org.opencontainers.image.description": "Tide serves machine-learning models over HTTP and gRPC",
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	if spec.Version != "" {
		l["org.opencontainers.image.version"] = spec.Version
	}
	if spec.Revision != "" {
		l["org.opencontainers.image.revision"] = spec.Revision
	}
	if spec.Source != "" {
		l["org.opencontainers.image.source"] = spec.Source
	}
	for k, v := range spec.Labels {
		l[k] = v
	}
	return l
}

// WriteArchive writes img as a docker-archive tarball tagged ref (what `docker load`,
// `kind load image-archive` and `ctr images import` read).
func WriteArchive(file string, ref string, img v1.Image) error {
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// entry is one file or directory of a layer.
type entry struct {
	name string // absolute path in the image
	mode fs.FileMode
	uid  int
	dir  bool
	data []byte
	link string // target of a symbolic link
}

// layerBuilder collects entries and writes them as a tar in a fixed order.
type layerBuilder struct {
	entries map[string]entry
}

func newLayerBuilder() *layerBuilder { return &layerBuilder{entries: map[string]entry{}} }

func (b *layerBuilder) dir(name string, mode fs.FileMode, uid int) {
	b.entries[name] = entry{name: name, mode: mode, uid: uid, dir: true}
}

// file adds a file and any parent directories not yet added (root-owned, 0755).
func (b *layerBuilder) file(name string, data []byte, mode fs.FileMode, uid int) {
	for d := path.Dir(name); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := b.entries[d]; !ok {
			b.dir(d, 0o755, 0)
		}
	}
	b.entries[name] = entry{name: name, mode: mode, uid: uid, data: data}
}

// symlink adds a symbolic link name -> target (relative targets resolve in name's folder).
func (b *layerBuilder) symlink(name, target string) {
	b.entries[name] = entry{name: name, mode: 0o777, link: target}
}

func (b *layerBuilder) copyFile(src, dst string, mode fs.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	b.file(dst, data, mode, 0)
	return nil
}

// copyModel copies a model file to /models/<base> or a repository folder's contents
// into /models, and returns the path `tide serve` is given. Files are read-only
// (0644, root): the server never writes to its models.
func (b *layerBuilder) copyModel(src string) (string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("image: model: %w", err)
	}
	if !st.IsDir() {
		dst := path.Join(ModelsDir, filepath.Base(src))
		return dst, b.copyFile(src, dst, 0o644)
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		dst := path.Join(ModelsDir, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			b.dir(dst, 0o755, 0)
		case d.Type().IsRegular():
			return b.copyFile(p, dst, 0o644)
		default:
			return fmt.Errorf("%s: only regular files and folders can go into the image", p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("image: model %s: %w", src, err)
	}
	return ModelsDir, nil
}

// layer writes the entries sorted by path (parents before children) with fixed
// times and owners, so the same entries always give the same bytes.
func (b *layerBuilder) layer() (v1.Layer, error) {
	names := make([]string, 0, len(b.entries))
	for n := range b.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := b.entries[n]
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.name, "/"),
			Mode:    int64(e.mode.Perm()),
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: Epoch,
			Format:  tar.FormatPAX,
		}
		if e.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case e.link != "":
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.link
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if len(e.data) > 0 {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}
