// Package onnx serves ONNX models through ONNX Runtime's C API.
//
// The ONNX Runtime shared library is opened at run time, on the first ONNX model
// load, so a Tide binary starts and serves every other format without it. A build
// without cgo (CGO_ENABLED=0, the static release binary) cannot call C at all:
// there the runtime is still registered, and an ONNX model fails to load with a
// message that says how to get a build that can serve it.
//
// The library is looked for, in order, at $TIDE_ONNXRUNTIME_LIB, at the path given
// to SetLibraryPath (the --onnxruntime-lib flag), then in the usual places (see
// LibraryCandidates). hack/install-onnxruntime.sh installs the pinned build.
//
// Each model gets one ONNX Runtime session, created at load and shared by every
// request: ORT sessions are safe for concurrent Run calls.
package onnx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
)

// LibraryEnv names the environment variable that points at the ONNX Runtime
// shared library; it wins over SetLibraryPath and the default places.
const LibraryEnv = "TIDE_ONNXRUNTIME_LIB"

// LibraryVersion is the ONNX Runtime release Tide is built and tested against.
// onnxruntime_go v1.27 asks for C API version 24, so 1.24 is also the oldest
// release that loads.
const LibraryVersion = "1.24.1"

// installHint ends every "library not found" error: the one command that fixes it.
const installHint = "install it with hack/install-onnxruntime.sh, or point " + LibraryEnv + " or --onnxruntime-lib at libonnxruntime.so (ONNX Runtime >= 1.24)"

// Provider is the ONNX Runtime execution provider a session runs on.
type Provider string

const (
	// CPU is ONNX Runtime's default CPU execution provider.
	CPU Provider = "cpu"
	// CUDA runs on an NVIDIA GPU. It needs ONNX Runtime's GPU build (with
	// libonnxruntime_providers_cuda.so next to libonnxruntime.so) and the CUDA and
	// cuDNN libraries that build was made for; nodes CUDA cannot run fall back to CPU.
	CUDA Provider = "cuda"
)

// Options configure every ONNX session created after they are set.
type Options struct {
	// IntraOpThreads is the size of each session's thread pool for work inside
	// one operator (a large MatMul split across cores). 0 lets ONNX Runtime pick
	// (one per physical core). With many concurrent requests, 1 usually gives the
	// best throughput: parallelism then comes from the requests themselves.
	IntraOpThreads int
	// InterOpThreads is the size of the pool that runs independent graph branches
	// at once; it is used only when ParallelExecution is set. 0 lets ONNX
	// Runtime pick.
	InterOpThreads int
	// ParallelExecution runs independent branches of the graph concurrently
	// (ORT_PARALLEL); off, nodes run one after another (ORT_SEQUENTIAL), which
	// suits most models.
	ParallelExecution bool
	// Provider selects the execution provider; empty means CPU.
	Provider Provider
	// CUDADeviceID is the GPU a CUDA session runs on.
	CUDADeviceID int
	// CUDAOptions are extra OrtCUDAProviderOptionsV2 settings passed through by
	// name, e.g. "gpu_mem_limit": "2147483648", "cudnn_conv_algo_search": "HEURISTIC".
	CUDAOptions map[string]string
}

var (
	configMu    sync.RWMutex
	libraryPath string
	options     Options
)

// SetLibraryPath sets where the ONNX Runtime shared library is (the
// --onnxruntime-lib flag). TIDE_ONNXRUNTIME_LIB still wins. It takes effect at
// the first ONNX model load; once the library is open it cannot be changed.
func SetLibraryPath(path string) {
	configMu.Lock()
	defer configMu.Unlock()
	libraryPath = path
}

// SetOptions sets the session options for ONNX models loaded from now on.
func SetOptions(o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	o.CUDAOptions = cloneMap(o.CUDAOptions)
	configMu.Lock()
	defer configMu.Unlock()
	options = o
	return nil
}

func currentOptions() Options {
	configMu.RLock()
	defer configMu.RUnlock()
	o := options
	o.CUDAOptions = cloneMap(o.CUDAOptions)
	return o
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (o Options) validate() error {
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return fmt.Errorf("onnx: thread counts must be >= 0 (0 lets ONNX Runtime choose), got intra-op %d, inter-op %d", o.IntraOpThreads, o.InterOpThreads)
	}
	switch o.Provider {
	case "", CPU, CUDA:
	default:
		return fmt.Errorf("onnx: unknown execution provider %q (want %q or %q)", o.Provider, CPU, CUDA)
	}
	if o.CUDADeviceID < 0 {
		return fmt.Errorf("onnx: CUDA device id must be >= 0, got %d", o.CUDADeviceID)
	}
	return nil
}

// LibraryCandidates lists, in search order, the default places the library is
// looked for when neither TIDE_ONNXRUNTIME_LIB nor SetLibraryPath names one.
func LibraryCandidates() []string {
	names := []string{"libonnxruntime.so", "libonnxruntime.so.1", "libonnxruntime.so." + LibraryVersion}
	dirs := []string{"/usr/local/lib/tide", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/local/lib"}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	var out []string
	for _, d := range dirs {
		for _, n := range names {
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

// errLibraryNotFound is returned when no configured or default path holds the library.
var errLibraryNotFound = errors.New("ONNX Runtime library not found")

// findLibrary picks the library file: an explicitly configured path must exist
// (a typo should not silently fall back to some other copy); otherwise the
// first default candidate that exists.
func findLibrary(fromEnv, fromSetter string, candidates []string) (string, error) {
	for _, explicit := range []struct{ path, from string }{{fromEnv, LibraryEnv}, {fromSetter, "--onnxruntime-lib"}} {
		if explicit.path == "" {
			continue
		}
		if _, err := os.Stat(explicit.path); err != nil {
			return "", fmt.Errorf("%w at %s=%s: %v; %s", errLibraryNotFound, explicit.from, explicit.path, errors.Unwrap(err), installHint)
		}
		return explicit.path, nil
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w in %s or next to the tide binary; %s", errLibraryNotFound, "/usr/local/lib/tide, /usr/lib, /usr/local/lib", installHint)
}

func configuredLibrary() (string, error) {
	configMu.RLock()
	setter := libraryPath
	configMu.RUnlock()
	return findLibrary(os.Getenv(LibraryEnv), setter, LibraryCandidates())
}

// loader adapts the package to formats.Loader.
type loader struct{}

// Load opens the model at path. The first call opens the ONNX Runtime library;
// if that fails, every ONNX model fails to load with the reason and the other
// formats keep serving.
func (loader) Load(ctx context.Context, path string, cfg formats.Config) (model.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := cfg.Memory.Charge(loadCost(st.Size())); err != nil {
		return nil, fmt.Errorf("load %s: an ONNX model of %d bytes: %w", path, st.Size(), err)
	}
	return loadModel(path, cfg)
}

// loadCost is what opening an ONNX model file of size bytes is charged before
// ONNX Runtime sees it. (Tensors kept in external data files are not counted:
// ONNX Runtime reads them itself, and has no option to bound that.) Its allocations are native and
// out of the budget's sight, so the charge is a measured multiple: Tide's own
// read of the graph (1×), ONNX Runtime's parse of the protobuf (1×) and the
// initializer tensors it copies out of it (1×), plus a fixed part for the
// session's own structures.
func loadCost(size int64) int64 {
	const perByte, fixed = 3, 16 << 20
	if size > (1<<62)/perByte {
		return 1 << 62
	}
	return perByte*size + fixed
}

func init() {
	formats.Register(formats.Runtime{Format: "onnx", Extensions: []string{".onnx"}, Loader: loader{}})
}
