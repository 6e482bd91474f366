//go:build cgo

package onnx

// #cgo CFLAGS: -I${SRCDIR}/../../../third_party/onnxruntime/include -O2
// #cgo LDFLAGS: -ldl
// #cgo nocallback tide_run
// #cgo nocallback tide_tensor_wrap
// #cgo nocallback tide_value_info
// #cgo nocallback tide_value_release
// #cgo noescape tide_run
// #cgo noescape tide_value_info
// #include "shim.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tideserve/tide/internal/formats/onnx/onnxproto"
	"github.com/tideserve/tide/internal/tensor"
)

// environment is the process-wide ONNX Runtime state, set up on the first load.
var environment struct {
	sync.Mutex
	ready   bool
	path    string
	version string
}

// ensureEnvironment opens the library and creates the environment once. A
// failure is not remembered: the next ONNX load tries again, so installing the
// library (or fixing the flag and reloading) needs no restart.
func ensureEnvironment() error {
	environment.Lock()
	defer environment.Unlock()
	if environment.ready {
		return nil
	}
	path, err := configuredLibrary()
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(path)
	if !ort.IsInitialized() {
		if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
			msg := oneLine(err.Error())
			if strings.Contains(msg, "API version") {
				return fmt.Errorf("open ONNX Runtime %s: the library is older than 1.24 (%s); %s", path, msg, installHint)
			}
			return fmt.Errorf("open ONNX Runtime %s: %s; %s", path, msg, installHint)
		}
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.tide_ort_attach(cpath); msg != nil {
		return fmt.Errorf("open ONNX Runtime %s: %s", path, C.GoString(msg))
	}
	if err := statusError(C.tide_env_init()); err != nil {
		return fmt.Errorf("create ONNX Runtime environment: %w", err)
	}
	environment.ready, environment.path, environment.version = true, path, ort.GetVersion()
	return nil
}

// ortError is an error reported by ONNX Runtime, with its OrtErrorCode.
type ortError struct {
	code int
	msg  string
}

func (e *ortError) Error() string { return e.msg }

// ORT_INVALID_ARGUMENT: Run reports inputs of the wrong type or shape with it.
const ortInvalidArgument = 2

// statusError converts and releases an OrtStatus.
func statusError(st *C.OrtStatus) error {
	if st == nil {
		return nil
	}
	defer C.tide_status_release(st)
	return &ortError{code: int(C.tide_status_code(st)), msg: oneLine(C.GoString(C.tide_status_message(st)))}
}

// oneLine folds ONNX Runtime's multi-line messages into one line for logs and
// load errors.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ioSpec describes a graph input or output as ONNX Runtime reports it.
type ioSpec struct {
	name string
	// onnxType is the C API's ONNXType (tensor, sequence, map, optional...).
	onnxType int
	// elem is the tensor element type (for a sequence or optional: of the
	// tensors inside).
	elem int
	// dims are the dimensions, -1 where dynamic; nil for a 0-d tensor.
	dims []int64
}

// session is one ONNX Runtime session, shared by every request to a model.
type session struct {
	// mu is held for reading by every run and for writing by close, so that a
	// session is never released under a running request.
	mu       sync.RWMutex
	ptr      *C.OrtSession
	inputs   []ioSpec
	outputs  []ioSpec
	inNames  []*C.char // C copies of the names, kept for every Run call
	outNames []*C.char
	// unbound is set once a run with bound outputs failed and the same run
	// unbound succeeded: the session's outputs are then always left to ONNX
	// Runtime to allocate.
	unbound atomic.Bool
}

// modelSource is where a session's model comes from: a file (which may refer
// to external weight files next to it) or, when inMemory is set, bytes.
type modelSource struct {
	path     string
	bytes    []byte
	inMemory bool
}

func newSession(src modelSource, opts Options) (*session, error) {
	if err := ensureEnvironment(); err != nil {
		return nil, err
	}
	so, err := newSessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer C.tide_options_release(so)

	s := &session{}
	if src.inMemory {
		if len(src.bytes) == 0 {
			return nil, errors.New("empty model")
		}
		var pin runtime.Pinner
		pin.Pin(&src.bytes[0])
		err = statusError(C.tide_session_from_bytes(unsafe.Pointer(&src.bytes[0]), C.size_t(len(src.bytes)), so, &s.ptr))
		pin.Unpin()
	} else {
		cpath := C.CString(src.path)
		err = statusError(C.tide_session_from_file(cpath, so, &s.ptr))
		C.free(unsafe.Pointer(cpath))
	}
	if err != nil {
		return nil, err
	}
	if err := s.describe(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func newSessionOptions(o Options) (*C.OrtSessionOptions, error) {
	var so *C.OrtSessionOptions
	parallel := C.int(0)
	if o.ParallelExecution {
		parallel = 1
	}
	if err := statusError(C.tide_options_new(C.int(o.IntraOpThreads), C.int(o.InterOpThreads), parallel, C.ORT_ENABLE_ALL, &so)); err != nil {
		if so != nil {
			C.tide_options_release(so)
		}
		return nil, fmt.Errorf("session options: %w", err)
	}
	if o.Provider == CUDA {
		settings := map[string]string{"device_id": fmt.Sprint(o.CUDADeviceID)}
		for k, v := range o.CUDAOptions {
			settings[k] = v
		}
		keys, values := make([]*C.char, 0, len(settings)), make([]*C.char, 0, len(settings))
		for k, v := range settings {
			keys, values = append(keys, C.CString(k)), append(values, C.CString(v))
		}
		kp, vp := (**C.char)(C.malloc(C.size_t(len(keys))*C.size_t(unsafe.Sizeof(keys[0])))), (**C.char)(C.malloc(C.size_t(len(keys))*C.size_t(unsafe.Sizeof(keys[0]))))
		copy(unsafe.Slice(kp, len(keys)), keys)
		copy(unsafe.Slice(vp, len(values)), values)
		err := statusError(C.tide_options_cuda(so, kp, vp, C.size_t(len(keys))))
		for i := range keys {
			C.free(unsafe.Pointer(keys[i]))
			C.free(unsafe.Pointer(values[i]))
		}
		C.free(unsafe.Pointer(kp))
		C.free(unsafe.Pointer(vp))
		if err != nil {
			C.tide_options_release(so)
			return nil, fmt.Errorf("CUDA execution provider (needs ONNX Runtime's GPU build with CUDA and cuDNN): %w", err)
		}
	}
	return so, nil
}

// describe reads the graph's inputs and outputs.
func (s *session) describe() error {
	var nIn, nOut C.size_t
	if err := statusError(C.tide_session_counts(s.ptr, &nIn, &nOut)); err != nil {
		return err
	}
	for side, n := range []C.size_t{nIn, nOut} {
		for i := C.size_t(0); i < n; i++ {
			var cname *C.char
			if err := statusError(C.tide_io_name(s.ptr, C.int(side), i, &cname)); err != nil {
				return err
			}
			var t C.tide_type
			if err := statusError(C.tide_io_type(s.ptr, C.int(side), i, &t)); err != nil {
				C.free(unsafe.Pointer(cname))
				return err
			}
			spec := ioSpec{name: C.GoString(cname), onnxType: int(t.onnx_type), elem: int(t.elem_type)}
			if int(t.ndim) > len(t.dims) {
				C.free(unsafe.Pointer(cname))
				return fmt.Errorf("%q has %d dimensions; at most %d are supported", spec.name, int(t.ndim), len(t.dims))
			}
			for d := 0; d < int(t.ndim); d++ {
				spec.dims = append(spec.dims, int64(t.dims[d]))
			}
			if side == 0 {
				s.inputs, s.inNames = append(s.inputs, spec), append(s.inNames, cname)
			} else {
				s.outputs, s.outNames = append(s.outputs, spec), append(s.outNames, cname)
			}
		}
	}
	return nil
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr != nil {
		C.tide_session_release(s.ptr)
		s.ptr = nil
	}
	for _, n := range append(s.inNames, s.outNames...) {
		C.free(unsafe.Pointer(n))
	}
	s.inNames, s.outNames = nil, nil
}

// run feeds inputs (one per graph input, in graph order) and returns the
// outputs listed by index in want.
func (s *session) run(ctx context.Context, inputs []value, want []int) ([]value, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil, errors.New("model is unloaded")
	}
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("model takes %d inputs, got %d", len(s.inputs), len(inputs))
	}

	var pin runtime.Pinner
	defer pin.Unpin()
	in := make([]*C.OrtValue, len(inputs))
	defer func() {
		for _, v := range in {
			C.tide_value_release(v)
		}
	}()
	for i := range inputs {
		v, err := toOrtValue(&inputs[i], &pin)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", s.inputs[i].name, err)
		}
		in[i] = v
	}

	outNames := make([]*C.char, len(want))
	for i, w := range want {
		outNames[i] = s.outNames[w]
	}
	out := make([]*C.OrtValue, len(want))
	defer func() {
		for _, v := range out {
			C.tide_value_release(v)
		}
	}()
	// Outputs whose shape follows from the batch are allocated here and bound,
	// so that ONNX Runtime writes the answer straight into Go memory: no copy,
	// and no C calls to read the output's type and shape back.
	bound := s.bindOutputs(inputs, want, out, &pin)

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run cancelled: %w", err)
	}
	var ro *C.OrtRunOptions
	if ctx.Done() != nil {
		if err := statusError(C.tide_run_options_new(&ro)); err != nil {
			return nil, err
		}
		defer C.tide_run_options_release(ro)
		terminated := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			C.tide_run_options_terminate(ro)
			close(terminated)
		})
		defer func() {
			if !stop() {
				<-terminated // the options must outlive the terminate call
			}
		}()
	}

	var inNamesPtr **C.char
	var inPtr **C.OrtValue
	if len(in) > 0 {
		inNamesPtr, inPtr = &s.inNames[0], &in[0]
	}
	var outNamesPtr **C.char
	var outPtr **C.OrtValue
	if len(out) > 0 {
		outNamesPtr, outPtr = &outNames[0], &out[0]
	}
	err := statusError(C.tide_run(s.ptr, ro, inNamesPtr, inPtr, C.size_t(len(in)), outNamesPtr, outPtr, C.size_t(len(out))))
	if err != nil && bound != nil && ctx.Err() == nil {
		// An output's shape may not have followed the batch after all (ONNX
		// Runtime refuses a bound output of the wrong shape): run again with
		// every output left to it. Only when that run succeeds was binding the
		// cause, and the session stops binding; a request the model refuses
		// either way must not turn binding off for everyone.
		for i, v := range out {
			C.tide_value_release(v)
			out[i] = nil
		}
		bound = nil
		if err = statusError(C.tide_run(s.ptr, ro, inNamesPtr, inPtr, C.size_t(len(in)), outNamesPtr, outPtr, C.size_t(len(out)))); err == nil {
			s.unbound.Store(true)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("run cancelled: %w", ctx.Err())
		}
		return nil, err
	}

	result := make([]value, len(out))
	for i, v := range out {
		if bound != nil && bound[i] != nil {
			result[i] = value{tensor: bound[i]}
			continue
		}
		r, err := fromOrtValue(v, 0)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", s.outputs[want[i]].name, err)
		}
		result[i] = r
	}
	return result, nil
}

// bindOutputs allocates and wraps, in out, each wanted output whose declared
// shape is a dynamic batch dimension followed by fixed ones, for a batch of the
// first input's rows, and returns the Go tensors (nil where not bound; nil
// when none is). Strings, sequences and outputs with other dynamic dimensions
// are left to ONNX Runtime.
func (s *session) bindOutputs(inputs []value, want []int, out []*C.OrtValue, pin *runtime.Pinner) []*tensor.Tensor {
	if s.unbound.Load() || len(inputs) == 0 || inputs[0].kind != tensorValue || len(inputs[0].tensor.Shape) == 0 {
		return nil
	}
	batch := inputs[0].tensor.Shape[0]
	var bound []*tensor.Tensor
	for i, w := range want {
		spec := s.outputs[w]
		if spec.onnxType != onnxValueTensor || len(spec.dims) == 0 || spec.dims[0] != -1 {
			continue
		}
		shape := make([]int64, len(spec.dims))
		shape[0] = batch
		fixed := true
		for d := 1; d < len(shape); d++ {
			shape[d] = spec.dims[d]
			fixed = fixed && shape[d] >= 0
		}
		dt, err := onnxproto.Datatype(spec.elem)
		if !fixed || err != nil || dt == tensor.Bytes {
			continue
		}
		t, err := tensor.New(spec.name, dt, shape)
		if err != nil {
			continue
		}
		v, err := toOrtValue(&value{tensor: t}, pin)
		if err != nil {
			continue
		}
		if bound == nil {
			bound = make([]*tensor.Tensor, len(want))
		}
		out[i], bound[i] = v, t
	}
	return bound
}

// toOrtValue makes an OrtValue for v. Numeric tensors are wrapped, not copied:
// their Go buffers are pinned until the run ends.
func toOrtValue(v *value, pin *runtime.Pinner) (*C.OrtValue, error) {
	switch v.kind {
	case sequenceValue:
		elems := make([]*C.OrtValue, 0, len(v.seq))
		defer func() {
			for _, e := range elems {
				C.tide_value_release(e)
			}
		}()
		for i := range v.seq {
			e, err := toOrtValue(&v.seq[i], pin)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			elems = append(elems, e)
		}
		if len(elems) == 0 {
			return nil, errors.New("ONNX Runtime cannot take an empty sequence as input")
		}
		var out *C.OrtValue
		if err := statusError(C.tide_sequence(&elems[0], C.size_t(len(elems)), &out)); err != nil {
			return nil, err
		}
		return out, nil
	case noneValue:
		return nil, errors.New("ONNX Runtime cannot take an empty optional as input")
	}
	t := v.tensor
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var dims *C.int64_t
	if len(t.Shape) > 0 {
		pin.Pin(&t.Shape[0])
		dims = (*C.int64_t)(unsafe.Pointer(&t.Shape[0]))
	}
	if t.Datatype == tensor.Bytes {
		return stringsToOrt(t.Data.([][]byte), dims, len(t.Shape))
	}
	elem, ok := onnxproto.ElemType(t.Datatype)
	if !ok {
		return nil, fmt.Errorf("datatype %s has no ONNX element type", t.Datatype)
	}
	ptr, nbytes := dataPointer(t)
	if ptr != nil {
		pin.Pin(ptr)
	}
	var out *C.OrtValue
	if err := statusError(C.tide_tensor_wrap(ptr, C.size_t(nbytes), dims, C.size_t(len(t.Shape)), C.int(elem), &out)); err != nil {
		return nil, err
	}
	return out, nil
}

// dataPointer returns the first element of a numeric tensor's buffer (nil when
// it is empty) and its size in bytes.
func dataPointer(t *tensor.Tensor) (unsafe.Pointer, int) {
	n := t.Len()
	if n == 0 {
		return nil, 0
	}
	size := t.Datatype.ElementSize() * n
	switch d := t.Data.(type) {
	case []bool:
		return unsafe.Pointer(&d[0]), size
	case []uint8:
		return unsafe.Pointer(&d[0]), size
	case []uint16:
		return unsafe.Pointer(&d[0]), size
	case []uint32:
		return unsafe.Pointer(&d[0]), size
	case []uint64:
		return unsafe.Pointer(&d[0]), size
	case []int8:
		return unsafe.Pointer(&d[0]), size
	case []int16:
		return unsafe.Pointer(&d[0]), size
	case []int32:
		return unsafe.Pointer(&d[0]), size
	case []int64:
		return unsafe.Pointer(&d[0]), size
	case []float32:
		return unsafe.Pointer(&d[0]), size
	case []float64:
		return unsafe.Pointer(&d[0]), size
	}
	return nil, 0
}

// stringsToOrt copies BYTES elements into an ONNX string tensor, one buffer
// and end offsets so no Go pointer is handed to C.
func stringsToOrt(elems [][]byte, dims *C.int64_t, ndim int) (*C.OrtValue, error) {
	total := 0
	for _, e := range elems {
		total += len(e)
	}
	buf := make([]byte, 0, total+1)
	ends := make([]C.size_t, len(elems)+1)
	for i, e := range elems {
		buf = append(buf, e...)
		ends[i] = C.size_t(len(buf))
	}
	buf = append(buf, 0) // never empty, so &buf[0] is valid
	var out *C.OrtValue
	err := statusError(C.tide_tensor_strings((*C.char)(unsafe.Pointer(&buf[0])), &ends[0], C.size_t(len(elems)), dims, C.size_t(ndim), &out))
	runtime.KeepAlive(buf)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxRank bounds the dimensions read from an output; ONNX Runtime itself
// supports far fewer in practice.
const maxRank = 64

// fromOrtValue copies an output into Go memory. v stays owned by the caller.
func fromOrtValue(v *C.OrtValue, depth int) (value, error) {
	if v == nil {
		return value{kind: noneValue}, nil
	}
	var (
		onnxType, elem C.int
		dims           [maxRank]C.int64_t
		ndim, count    C.size_t
		data           unsafe.Pointer
		strBytes       C.size_t
	)
	if err := statusError(C.tide_value_info(v, &onnxType, &elem, &dims[0], maxRank, &ndim, &count, &data, &strBytes)); err != nil {
		return value{}, err
	}
	switch int(onnxType) {
	case onnxValueTensor:
	case onnxValueSequence, onnxValueOptional:
		if depth > 8 {
			return value{}, errors.New("values nested more than 8 deep")
		}
		if int(onnxType) == onnxValueOptional && count == 0 {
			return value{kind: noneValue}, nil
		}
		n := int(count)
		if int(onnxType) == onnxValueOptional {
			n = 1
		}
		out := value{kind: sequenceValue, seq: make([]value, 0, n)}
		for i := 0; i < n; i++ {
			var e *C.OrtValue
			if err := statusError(C.tide_element(v, C.int(i), &e)); err != nil {
				return value{}, err
			}
			ev, err := fromOrtValue(e, depth+1)
			C.tide_value_release(e)
			if err != nil {
				return value{}, err
			}
			if int(onnxType) == onnxValueOptional {
				return ev, nil
			}
			out.seq = append(out.seq, ev)
		}
		return out, nil
	default:
		return value{}, fmt.Errorf("ONNX %s outputs are not supported", onnxTypeKind(int(onnxType)))
	}
	if int(ndim) > maxRank {
		return value{}, fmt.Errorf("%d dimensions; at most %d are supported", int(ndim), maxRank)
	}
	shape := make([]int64, int(ndim))
	for i := range shape {
		shape[i] = int64(dims[i])
	}
	dt, err := onnxproto.Datatype(int(elem))
	if err != nil {
		return value{}, err
	}
	n := int(count)
	t := &tensor.Tensor{Datatype: dt, Shape: shape}
	if dt == tensor.Bytes {
		t.Data, err = readStrings(v, n, int(strBytes))
		if err != nil {
			return value{}, err
		}
		return value{tensor: t}, nil
	}
	switch dt {
	case tensor.Bool:
		t.Data = copyOut[bool](data, n)
	case tensor.Uint8:
		t.Data = copyOut[uint8](data, n)
	case tensor.Uint16, tensor.FP16, tensor.BF16:
		t.Data = copyOut[uint16](data, n)
	case tensor.Uint32:
		t.Data = copyOut[uint32](data, n)
	case tensor.Uint64:
		t.Data = copyOut[uint64](data, n)
	case tensor.Int8:
		t.Data = copyOut[int8](data, n)
	case tensor.Int16:
		t.Data = copyOut[int16](data, n)
	case tensor.Int32:
		t.Data = copyOut[int32](data, n)
	case tensor.Int64:
		t.Data = copyOut[int64](data, n)
	case tensor.FP32:
		t.Data = copyOut[float32](data, n)
	case tensor.FP64:
		t.Data = copyOut[float64](data, n)
	default:
		return value{}, fmt.Errorf("unsupported datatype %s", dt)
	}
	return value{tensor: t}, nil
}

func copyOut[T any](data unsafe.Pointer, n int) []T {
	out := make([]T, n)
	if n > 0 {
		copy(out, unsafe.Slice((*T)(data), n))
	}
	return out
}

func readStrings(v *C.OrtValue, n, nbytes int) ([][]byte, error) {
	out := make([][]byte, n)
	if n == 0 {
		return out, nil
	}
	buf := make([]byte, nbytes+1)
	offsets := make([]C.size_t, n)
	if err := statusError(C.tide_strings_read(v, unsafe.Pointer(&buf[0]), C.size_t(nbytes), &offsets[0], C.size_t(n))); err != nil {
		return nil, err
	}
	for i := range out {
		start, end := int(offsets[i]), nbytes
		if i+1 < n {
			end = int(offsets[i+1])
		}
		if start > end || end > nbytes {
			return nil, fmt.Errorf("string tensor offsets out of range")
		}
		out[i] = buf[start:end:end]
	}
	return out, nil
}
