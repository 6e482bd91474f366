// Thin helpers over the ONNX Runtime C API (OrtApi), included once by ort.go.
//
// onnxruntime_go opens the library and creates the process-wide environment;
// these helpers reach the same library through dlopen(RTLD_NOLOAD) and call the
// C API directly for sessions and runs, so that Tide controls how every value
// crosses the boundary: 0-d tensors, empty tensors, float16/bfloat16, strings,
// sequences and models without inputs all go through the same few calls.
//
// Every function returns an OrtStatus* (NULL on success) that the Go side turns
// into an error and releases; nothing here aborts or prints.

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"

static const OrtApi *tide_ort;
static OrtEnv *tide_env;
static OrtMemoryInfo *tide_cpu;
static OrtAllocator *tide_alloc;

typedef const OrtApiBase *(*tide_get_api_base_fn)(void);

// tide_ort_attach finds the already loaded library at path and fetches the
// OrtApi of the version the header was written for. It returns a static
// message on failure (never an OrtStatus: there is no API to make one yet).
static const char *tide_ort_attach(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) h = dlopen(path, RTLD_NOW);
	if (h == NULL) return "dlopen failed";
	tide_get_api_base_fn get = (tide_get_api_base_fn)dlsym(h, "OrtGetApiBase");
	if (get == NULL) return "OrtGetApiBase not found";
	const OrtApiBase *base = get();
	if (base == NULL) return "OrtGetApiBase returned NULL";
	tide_ort = base->GetApi(ORT_API_VERSION);
	if (tide_ort == NULL) return "the library does not offer the C API version this build needs";
	return NULL;
}

// tide_env_init creates (or, since ORT keeps one environment per process,
// shares) the environment and the CPU memory description used for inputs.
// ORT logs only fatal errors: every failure Tide cares about comes back as a
// status and reaches the user through the server's own logs and responses.
static OrtStatus *tide_env_init(void) {
	OrtStatus *st = tide_ort->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "tide", &tide_env);
	if (st) return st;
	// Telemetry is off by default on Linux builds; a failure to say so again is harmless.
	OrtStatus *tel = tide_ort->DisableTelemetryEvents(tide_env);
	if (tel) tide_ort->ReleaseStatus(tel);
	st = tide_ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &tide_cpu);
	if (st) return st;
	return tide_ort->GetAllocatorWithDefaultOptions(&tide_alloc);
}

static const char *tide_status_message(OrtStatus *st) { return tide_ort->GetErrorMessage(st); }
static int tide_status_code(OrtStatus *st) { return (int)tide_ort->GetErrorCode(st); }
static void tide_status_release(OrtStatus *st) { tide_ort->ReleaseStatus(st); }

// ---- session options ----

static OrtStatus *tide_options_new(int intra, int inter, int parallel, int opt_level, OrtSessionOptions **out) {
	OrtStatus *st = tide_ort->CreateSessionOptions(out);
	if (st) return st;
	if (intra > 0 && (st = tide_ort->SetIntraOpNumThreads(*out, intra))) return st;
	if (inter > 0 && (st = tide_ort->SetInterOpNumThreads(*out, inter))) return st;
	if (parallel && (st = tide_ort->SetSessionExecutionMode(*out, ORT_PARALLEL))) return st;
	return tide_ort->SetSessionGraphOptimizationLevel(*out, (GraphOptimizationLevel)opt_level);
}

static void tide_options_release(OrtSessionOptions *o) { tide_ort->ReleaseSessionOptions(o); }

// tide_options_cuda appends the CUDA execution provider; keys and values are
// OrtCUDAProviderOptionsV2 fields ("device_id", "gpu_mem_limit", ...).
static OrtStatus *tide_options_cuda(OrtSessionOptions *o, const char **keys, const char **values, size_t n) {
	OrtCUDAProviderOptionsV2 *cuda = NULL;
	OrtStatus *st = tide_ort->CreateCUDAProviderOptions(&cuda);
	if (st) return st;
	if (n > 0) st = tide_ort->UpdateCUDAProviderOptions(cuda, keys, values, n);
	if (!st) st = tide_ort->SessionOptionsAppendExecutionProvider_CUDA_V2(o, cuda);
	tide_ort->ReleaseCUDAProviderOptions(cuda);
	return st;
}

// ---- sessions ----

static OrtStatus *tide_session_from_file(const char *path, OrtSessionOptions *o, OrtSession **out) {
	return tide_ort->CreateSession(tide_env, path, o, out);
}

static OrtStatus *tide_session_from_bytes(const void *data, size_t n, OrtSessionOptions *o, OrtSession **out) {
	return tide_ort->CreateSessionFromArray(tide_env, data, n, o, out);
}

static void tide_session_release(OrtSession *s) { tide_ort->ReleaseSession(s); }

static OrtStatus *tide_session_counts(OrtSession *s, size_t *inputs, size_t *outputs) {
	OrtStatus *st = tide_ort->SessionGetInputCount(s, inputs);
	if (st) return st;
	return tide_ort->SessionGetOutputCount(s, outputs);
}

// tide_io_name copies input (output=0) or output (output=1) i's name into a
// malloc'd string the caller frees.
static OrtStatus *tide_io_name(OrtSession *s, int output, size_t i, char **out) {
	char *name = NULL;
	OrtStatus *st = output ? tide_ort->SessionGetOutputName(s, i, tide_alloc, &name)
	                       : tide_ort->SessionGetInputName(s, i, tide_alloc, &name);
	if (st) return st;
	*out = strdup(name);
	tide_alloc->Free(tide_alloc, name);
	return NULL;
}

// tide_type describes a graph input or output, or a sequence's elements.
typedef struct {
	int onnx_type;    // ONNXType: tensor, sequence, map, optional, ...
	int elem_type;    // ONNXTensorElementDataType for tensors (and their containers)
	size_t ndim;      // number of dimensions (tensors)
	int64_t dims[16]; // dimensions, -1 where dynamic (only the first 16 are kept)
	int depth;        // how many sequence/optional levels wrap the tensor
} tide_type;

static OrtStatus *tide_describe(const OrtTypeInfo *ti, tide_type *t) {
	enum ONNXType ot;
	OrtStatus *st = tide_ort->GetOnnxTypeFromTypeInfo(ti, &ot);
	if (st) return st;
	if (t->depth == 0) t->onnx_type = (int)ot;
	if (ot == ONNX_TYPE_TENSOR || ot == ONNX_TYPE_SPARSETENSOR) {
		const OrtTensorTypeAndShapeInfo *tsi = NULL;
		if ((st = tide_ort->CastTypeInfoToTensorInfo(ti, &tsi))) return st;
		if (tsi == NULL) return NULL;
		ONNXTensorElementDataType et;
		if ((st = tide_ort->GetTensorElementType(tsi, &et))) return st;
		t->elem_type = (int)et;
		size_t n = 0;
		if ((st = tide_ort->GetDimensionsCount(tsi, &n))) return st;
		t->ndim = n;
		if (n > 16) n = 16;
		if (n > 0) return tide_ort->GetDimensions(tsi, t->dims, n);
		return NULL;
	}
	if (t->depth >= 8) return NULL;
	if (ot == ONNX_TYPE_SEQUENCE) {
		const OrtSequenceTypeInfo *sti = NULL;
		if ((st = tide_ort->CastTypeInfoToSequenceTypeInfo(ti, &sti))) return st;
		if (sti == NULL) return NULL;
		OrtTypeInfo *elem = NULL;
		if ((st = tide_ort->GetSequenceElementType(sti, &elem))) return st;
		t->depth++;
		st = tide_describe(elem, t);
		tide_ort->ReleaseTypeInfo(elem);
		return st;
	}
	if (ot == ONNX_TYPE_OPTIONAL) {
		const OrtOptionalTypeInfo *oti = NULL;
		if ((st = tide_ort->CastTypeInfoToOptionalTypeInfo(ti, &oti))) return st;
		if (oti == NULL) return NULL;
		OrtTypeInfo *inner = NULL;
		if ((st = tide_ort->GetOptionalContainedTypeInfo(oti, &inner))) return st;
		t->depth++;
		st = tide_describe(inner, t);
		tide_ort->ReleaseTypeInfo(inner);
		return st;
	}
	return NULL;
}

static OrtStatus *tide_io_type(OrtSession *s, int output, size_t i, tide_type *t) {
	OrtTypeInfo *ti = NULL;
	OrtStatus *st = output ? tide_ort->SessionGetOutputTypeInfo(s, i, &ti)
	                       : tide_ort->SessionGetInputTypeInfo(s, i, &ti);
	if (st) return st;
	memset(t, 0, sizeof(*t));
	st = tide_describe(ti, t);
	tide_ort->ReleaseTypeInfo(ti);
	return st;
}

// ---- values ----

// tide_tensor_wrap makes a tensor over caller-owned (pinned) memory; data may
// be NULL when the tensor has no elements, and dims NULL for a 0-d tensor.
static OrtStatus *tide_tensor_wrap(void *data, size_t nbytes, const int64_t *dims, size_t ndim, int elem, OrtValue **out) {
	static int64_t no_dims[1];
	static char no_data[1];
	return tide_ort->CreateTensorWithDataAsOrtValue(tide_cpu, data ? data : no_data, nbytes,
	                                                 dims ? dims : no_dims, ndim,
	                                                 (ONNXTensorElementDataType)elem, out);
}

// tide_tensor_strings makes a string tensor from one byte buffer and the end
// offset of each element (so elements may hold any bytes, NUL included).
static OrtStatus *tide_tensor_strings(const char *bytes, const size_t *ends, size_t n, const int64_t *dims, size_t ndim, OrtValue **out) {
	static int64_t no_dims[1];
	OrtStatus *st = tide_ort->CreateTensorAsOrtValue(tide_alloc, dims ? dims : no_dims, ndim,
	                                                 ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, out);
	if (st) return st;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		char *buf = NULL;
		size_t len = ends[i] - start;
		st = tide_ort->GetResizedStringTensorElementBuffer(*out, i, len, &buf);
		if (st) {
			tide_ort->ReleaseValue(*out);
			*out = NULL;
			return st;
		}
		if (len > 0) memcpy(buf, bytes + start, len);
		start = ends[i];
	}
	return NULL;
}

// tide_sequence makes a sequence of the given values (which it does not take
// ownership of: ORT copies them).
static OrtStatus *tide_sequence(OrtValue **elems, size_t n, OrtValue **out) {
	return tide_ort->CreateValue((const OrtValue *const *)elems, n, ONNX_TYPE_SEQUENCE, out);
}

static void tide_value_release(OrtValue *v) {
	if (v) tide_ort->ReleaseValue(v);
}

// tide_value_info reads what a value holds: its ONNXType; for a tensor its
// element type, dimensions (up to max_dims; *ndim is the true count), element
// count and data pointer (NULL for strings, whose total byte length goes in
// *str_bytes); for a sequence its length in *count; for an optional whether it
// holds a value in *count.
static OrtStatus *tide_value_info(const OrtValue *v, int *onnx_type, int *elem, int64_t *dims, size_t max_dims,
                                  size_t *ndim, size_t *count, void **data, size_t *str_bytes) {
	enum ONNXType ot;
	OrtStatus *st = tide_ort->GetValueType(v, &ot);
	if (st) return st;
	*onnx_type = (int)ot;
	*count = 0;
	*data = NULL;
	*str_bytes = 0;
	*ndim = 0;
	if (ot == ONNX_TYPE_SEQUENCE) return tide_ort->GetValueCount(v, count);
	if (ot == ONNX_TYPE_OPTIONAL) {
		int has = 0;
		st = tide_ort->HasValue(v, &has);
		*count = (size_t)has;
		return st;
	}
	if (ot != ONNX_TYPE_TENSOR) return NULL;
	OrtTensorTypeAndShapeInfo *tsi = NULL;
	if ((st = tide_ort->GetTensorTypeAndShape(v, &tsi))) return st;
	ONNXTensorElementDataType et;
	size_t n = 0;
	if (!(st = tide_ort->GetTensorElementType(tsi, &et))) {
		*elem = (int)et;
		st = tide_ort->GetDimensionsCount(tsi, &n);
	}
	if (!st) {
		*ndim = n;
		if (n > 0) st = tide_ort->GetDimensions(tsi, dims, n < max_dims ? n : max_dims);
	}
	if (!st) st = tide_ort->GetTensorShapeElementCount(tsi, count);
	tide_ort->ReleaseTensorTypeAndShapeInfo(tsi);
	if (st) return st;
	if (et == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) return tide_ort->GetStringTensorDataLength(v, str_bytes);
	if (*count > 0) return tide_ort->GetTensorMutableData((OrtValue *)v, data);
	return NULL;
}

// tide_strings_read copies a string tensor's bytes and element start offsets
// into caller buffers sized from tide_value_info.
static OrtStatus *tide_strings_read(const OrtValue *v, void *bytes, size_t nbytes, size_t *offsets, size_t n) {
	static char none[1];
	return tide_ort->GetStringTensorContent(v, nbytes ? bytes : none, nbytes, offsets, n);
}

// tide_element returns element i of a sequence or the value inside an optional.
static OrtStatus *tide_element(const OrtValue *v, int i, OrtValue **out) {
	return tide_ort->GetValue(v, i, tide_alloc, out);
}

// ---- runs ----

static OrtStatus *tide_run_options_new(OrtRunOptions **out) { return tide_ort->CreateRunOptions(out); }
static void tide_run_options_terminate(OrtRunOptions *o) {
	OrtStatus *st = tide_ort->RunOptionsSetTerminate(o);
	if (st) tide_ort->ReleaseStatus(st); // cannot fail on valid options
}
static void tide_run_options_release(OrtRunOptions *o) { tide_ort->ReleaseRunOptions(o); }

static OrtStatus *tide_run(OrtSession *s, OrtRunOptions *ro, const char **in_names, OrtValue **inputs, size_t n_in,
                           const char **out_names, OrtValue **outputs, size_t n_out) {
	return tide_ort->Run(s, ro, in_names, (const OrtValue *const *)inputs, n_in, out_names, n_out, outputs);
}
