package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tideserve/tide/internal/servertest"
)

// TestONNXImageServes is the proof that an ONNX image works without a container
// runtime in the way: a cgo tide is built as `tide image build --onnxruntime-lib`
// builds it, the image (with testdata's MLP) is written as a docker archive, read
// back, and its layers are extracted into a directory. Run as root, tide then runs
// chrooted into that directory as the image's user (65532) with the image's
// entrypoint, command and environment and nothing else, so the loader, libc,
// libstdc++ and ONNX Runtime can only come from the image; /proc/<pid>/maps shows
// every mapped file inside it. Not root, it runs through the image's own loader with
// --inhibit-cache and --library-path limited to the image's library directories.
// An OIP v2 infer request must then give the outputs torch gave for the model.
func TestONNXImageServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a cgo tide binary")
	}
	ort := installedONNXRuntime()
	if ort == "" {
		if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("ONNX Runtime not installed (hack/install-onnxruntime.sh)")
		}
		t.Skip("ONNX Runtime not installed (run hack/install-onnxruntime.sh)")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the ONNX Runtime library here is linux/amd64, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	const modelFile = "../formats/onnx/testdata/mlp.onnx"
	bin := filepath.Join(t.TempDir(), "tide-server")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(goTool, "build", "-trimpath", "-tags", "netgo,osusergo,"+ServerBuildTags,
		"-ldflags", "-s -w -buildid=", "-o", bin, "../../cmd/tide-server")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (cgo): %v\n%s", err, out)
	}
	img, err := Build(Spec{Binary: bin, Model: modelFile, ONNXRuntimeLib: ort})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "onnx.tar")
	if err := WriteArchive(archive, "tide.local/tide:onnx-test", img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	extract(t, back, root)

	addr := servertest.FreeAddr(t)
	args := append(slices.Clone(cf.Config.Entrypoint), cf.Config.Cmd...)
	args = append(args, "--http-addr", addr, "--grpc-addr", "", "--watch=false")
	var cmd *exec.Cmd
	chrooted := os.Geteuid() == 0
	if chrooted {
		// The image's view of the world: its root, its user, its working
		// directory, its environment.
		cmd = exec.Command(args[0], args[1:]...)
		cmd.Env = cf.Config.Env
		cmd.Dir = cf.Config.WorkingDir
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Chroot:     root,
			Credential: &syscall.Credential{Uid: NonRootUID, Gid: NonRootUID},
		}
	} else {
		interp, err := dynamicInterpreter(filepath.Join(root, BinaryPath))
		if err != nil || interp == "" {
			t.Fatalf("the binary in the image has no loader: %q %v", interp, err)
		}
		var libPath []string
		for _, d := range libraryDirs("amd64") {
			if _, err := os.Stat(filepath.Join(root, d)); err == nil {
				libPath = append(libPath, filepath.Join(root, d))
			}
		}
		for i, a := range args {
			if strings.HasPrefix(a, "/") {
				args[i] = filepath.Join(root, a)
			}
		}
		loaderArgs := append([]string{"--inhibit-cache", "--library-path", strings.Join(libPath, ":")}, args...)
		cmd = exec.Command(filepath.Join(root, interp), loaderArgs...)
		cmd.Env = []string{"TIDE_ONNXRUNTIME_LIB=" + filepath.Join(root, ONNXRuntimePath)}
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	base := "http://" + addr
	waitReady(t, base, cmd, &stderr)

	var fixture struct {
		Input, Output string
		Cases         []struct {
			Shape       []int64   `json:"shape"`
			Input       []float64 `json:"input"`
			OutputShape []int64   `json:"output_shape"`
			Output      []float64 `json:"output"`
		}
	}
	raw, err := os.ReadFile("../formats/onnx/testdata/mlp.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	for _, c := range fixture.Cases {
		got := oipInfer(t, base+"/v2/models/mlp/infer", fixture.Input, c.Shape, c.Input, fixture.Output)
		if !slices.Equal(got.Shape, c.OutputShape) || len(got.Data) != len(c.Output) {
			t.Fatalf("shape %v (%d values), want %v (%d)", got.Shape, len(got.Data), c.OutputShape, len(c.Output))
		}
		var maxErr float64
		for i := range got.Data {
			maxErr = math.Max(maxErr, math.Abs(got.Data[i]-c.Output[i]))
		}
		// ONNX Runtime against torch: within 4e-7 on these models (runtime-notes.md).
		if maxErr > 1e-5 {
			t.Errorf("batch %v: max abs error %g against torch", c.Shape, maxErr)
		}
		t.Logf("batch %v: %d outputs, max abs error %.2g against torch", c.Shape, len(got.Data), maxErr)
	}

	if chrooted {
		checkMappedFromImage(t, cmd.Process.Pid, root)
	}
}

// extract writes the image's flattened file system under root, with the modes and
// (as root) owners of the layers.
func extract(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// The image's / is world-readable; t.TempDir's directories are 0700.
	if err := os.Chmod(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	asRoot := os.Geteuid() == 0
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(path.Clean("/"+h.Name)))
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			// The one link: /usr/local/bin/tide -> tide-server, inside the image.
			if h.Linkname != "tide-server" {
				t.Fatalf("%s: link to %q; the only link should be tide -> tide-server", h.Name, h.Linkname)
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			t.Fatalf("%s: entry type %c; the image should hold only directories, regular files and the tide link", h.Name, h.Typeflag)
		}
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if asRoot {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func waitReady(t *testing.T, base string, cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	exited := make(chan struct{})
	go func() {
		cmd.Process.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("tide exited before it was ready:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tide not ready after 60 s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type oipOutput struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float64 `json:"data"`
}

// oipInfer posts one FP32 input to an OIP v2 infer endpoint and returns the output.
func oipInfer(t *testing.T, url, input string, shape []int64, data []float64, output string) oipOutput {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"inputs": []map[string]any{{"name": input, "datatype": "FP32", "shape": shape, "data": data}},
	})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, b)
	}
	var r struct {
		ModelName string      `json:"model_name"`
		Outputs   []oipOutput `json:"outputs"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	for _, o := range r.Outputs {
		if o.Name == output {
			return o
		}
	}
	t.Fatalf("response has no output %q: %s", output, b)
	return oipOutput{}
}

// checkMappedFromImage reads the server's memory map: every file it maps (the
// binary, the loader, libc, libstdc++, ONNX Runtime) must lie inside root, and
// ONNX Runtime and libstdc++ must be among them (the model ran, so they were used).
func checkMappedFromImage(t *testing.T, pid int, root string) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapped := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") {
			continue // anonymous, [heap], [stack], [vdso]...
		}
		file := strings.Join(fields[5:], " ")
		if strings.HasPrefix(file, "/memfd:") || strings.HasPrefix(file, "/dev/") {
			continue
		}
		mapped[file] = true
	}
	var names []string
	for file := range mapped {
		if !strings.HasPrefix(file, root+"/") {
			t.Errorf("mapped from outside the image: %s", file)
			continue
		}
		names = append(names, strings.TrimPrefix(file, root))
	}
	slices.Sort(names)
	for _, want := range []string{BinaryPath, ONNXRuntimePath, "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libc.so.6"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is not mapped; mapped: %v", want, names)
		}
	}
	t.Logf("files mapped by tide, all from the image: %v", names)
}
