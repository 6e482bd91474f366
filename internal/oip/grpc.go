package oip

// The OIP v2 gRPC messages and tensors, both ways: a ModelInferRequest's inputs to
// tensors (typed contents shared with the message where the Go types agree, raw
// contents decoded from the little-endian layout of the REST binary extension),
// tensors to a response's outputs, and an OIP JSON request to a ModelInferRequest
// (what tide load sends, so that one body means the same tensors over REST and
// gRPC). Errors are *Error, the caller's (400 / INVALID_ARGUMENT).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unsafe"

	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/tensor"
)

// maxGRPCTensors bounds the inputs a request may list, as the REST decoder does.
const maxGRPCTensors = 1024

// maxGRPCRank bounds a tensor's dimensions, as the REST decoder does.
const maxGRPCRank = 32

// InferInputsFromProto converts a gRPC request's inputs to tensors: typed contents are
// used in place where the Go types agree (FP32, FP64, INT32, INT64, UINT32,
// UINT64, BOOL, BYTES), raw_input_contents are decoded from little-endian bytes.
// Errors are the caller's (InvalidArgument).
func InferInputsFromProto(req *pb.ModelInferRequest) ([]*tensor.Tensor, error) {
	out, _, err := inferInputs(req, nil, nil)
	return out, err
}

// inferInputs is InferInputsFromProto into the memory of an earlier call's
// tensors and their pointers (nil for new), which it returns for the next call.
// The tensors are made in one slice rather than one allocation each.
func inferInputs(req *pb.ModelInferRequest, slab []tensor.Tensor, out []*tensor.Tensor) ([]*tensor.Tensor, []tensor.Tensor, error) {
	ins := req.GetInputs()
	raw := req.GetRawInputContents()
	switch {
	case len(ins) == 0:
		return nil, slab, badRequest("request has no inputs")
	case len(ins) > maxGRPCTensors:
		return nil, slab, badRequest("more than %d inputs", maxGRPCTensors)
	case len(raw) > 0 && len(raw) != len(ins):
		return nil, slab, badRequest("raw_input_contents has %d entries for %d inputs; send one per input, in order", len(raw), len(ins))
	}
	// The tensors are not cleared: each is set whole below, and its data
	// before is what typedContents compares with.
	if cap(slab) < len(ins) {
		slab = make([]tensor.Tensor, len(ins))
	}
	slab, out = slab[:len(ins)], resize(out, len(ins))
	for i, in := range ins {
		t := &slab[i]
		before := t.Data
		if err := inputHeader(t, in, i); err != nil {
			return nil, slab, err
		}
		for _, prev := range out[:i] {
			if prev.Name == t.Name {
				return nil, slab, badRequest("input %q appears twice", t.Name)
			}
		}
		var err error
		if len(raw) > 0 {
			if in.GetContents() != nil {
				return nil, slab, badRequest("input %q has contents although the request uses raw_input_contents; use one or the other", t.Name)
			}
			if t.Data, err = DecodeRaw(t.Name, t.Datatype, t.Shape, raw[i]); err != nil {
				return nil, slab, err
			}
		} else if t.Data, err = typedContents(t, in.GetContents(), before); err != nil {
			return nil, slab, err
		}
		out[i] = t
	}
	return out, slab, nil
}

// resize is s with length n, in its own memory when its capacity allows, its
// elements zero.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// inputHeader fills in t's name, datatype and shape from the request's input.
func inputHeader(t *tensor.Tensor, in *pb.ModelInferRequest_InferInputTensor, index int) error {
	if in.GetName() == "" {
		return badRequest("inputs[%d]: missing name", index)
	}
	dt, err := tensor.ParseDatatype(in.GetDatatype())
	if err != nil {
		return badRequest("input %q: %v", in.GetName(), err)
	}
	shape := in.GetShape()
	if len(shape) > maxGRPCRank {
		return badRequest("input %q: more than %d dimensions", in.GetName(), maxGRPCRank)
	}
	if tensor.NumElements(shape) < 0 {
		return badRequest("input %q: invalid shape %v", in.GetName(), shape)
	}
	*t = tensor.Tensor{Name: in.GetName(), Datatype: dt, Shape: shape}
	return nil
}

// typedContents picks the contents field the datatype calls for and checks its
// length against the shape. A field used in place comes back as before when
// before holds the very same slice (a request decoded into the memory of the
// one before it): putting a slice into an interface allocates.
func typedContents(t *tensor.Tensor, c *pb.InferTensorContents, before any) (any, error) {
	n := tensor.NumElements(t.Shape)
	var data any
	var field string
	var got int
	switch t.Datatype {
	case tensor.Bool:
		v := c.GetBoolContents()
		data, field, got = boxed(before, v), "bool_contents", len(v)
	case tensor.Int32:
		v := c.GetIntContents()
		data, field, got = boxed(before, v), "int_contents", len(v)
	case tensor.Int8, tensor.Int16:
		v := c.GetIntContents()
		field, got = "int_contents", len(v)
		if int64(got) == n {
			var err error
			if data, err = narrowInts(t, v); err != nil {
				return nil, err
			}
		}
	case tensor.Int64:
		v := c.GetInt64Contents()
		data, field, got = boxed(before, v), "int64_contents", len(v)
	case tensor.Uint32:
		v := c.GetUintContents()
		data, field, got = boxed(before, v), "uint_contents", len(v)
	case tensor.Uint8, tensor.Uint16:
		v := c.GetUintContents()
		field, got = "uint_contents", len(v)
		if int64(got) == n {
			var err error
			if data, err = narrowUints(t, v); err != nil {
				return nil, err
			}
		}
	case tensor.Uint64:
		v := c.GetUint64Contents()
		data, field, got = boxed(before, v), "uint64_contents", len(v)
	case tensor.FP32:
		v := c.GetFp32Contents()
		data, field, got = boxed(before, v), "fp32_contents", len(v)
	case tensor.FP64:
		v := c.GetFp64Contents()
		data, field, got = boxed(before, v), "fp64_contents", len(v)
	case tensor.Bytes:
		v := c.GetBytesContents()
		data, field, got = boxed(before, v), "bytes_contents", len(v)
	default: // FP16, BF16: the protocol has no typed field for them
		return nil, badRequest("input %q: %s has no typed contents in the protocol; send it in raw_input_contents", t.Name, t.Datatype)
	}
	if int64(got) != n {
		return nil, badRequest("input %q: shape %v needs %d elements, %s has %d", t.Name, t.Shape, n, field, got)
	}
	return data, nil
}

// boxed is v in an interface: before itself when it holds the same slice.
func boxed[T any](before any, v []T) any {
	if b, ok := before.([]T); ok && len(b) == len(v) && cap(b) == cap(v) && unsafe.SliceData(b) == unsafe.SliceData(v) {
		return before
	}
	return v
}

func narrowInts(t *tensor.Tensor, v []int32) (any, error) {
	lo, hi := int32(math.MinInt8), int32(math.MaxInt8)
	if t.Datatype == tensor.Int16 {
		lo, hi = math.MinInt16, math.MaxInt16
	}
	for i, x := range v {
		if x < lo || x > hi {
			return nil, badRequest("input %q: element %d is %d, out of range for %s", t.Name, i, x, t.Datatype)
		}
	}
	if t.Datatype == tensor.Int8 {
		out := make([]int8, len(v))
		for i, x := range v {
			out[i] = int8(x)
		}
		return out, nil
	}
	out := make([]int16, len(v))
	for i, x := range v {
		out[i] = int16(x)
	}
	return out, nil
}

func narrowUints(t *tensor.Tensor, v []uint32) (any, error) {
	hi := uint32(math.MaxUint8)
	if t.Datatype == tensor.Uint16 {
		hi = math.MaxUint16
	}
	for i, x := range v {
		if x > hi {
			return nil, badRequest("input %q: element %d is %d, out of range for %s", t.Name, i, x, t.Datatype)
		}
	}
	if t.Datatype == tensor.Uint8 {
		out := make([]uint8, len(v))
		for i, x := range v {
			out[i] = uint8(x)
		}
		return out, nil
	}
	out := make([]uint16, len(v))
	for i, x := range v {
		out[i] = uint16(x)
	}
	return out, nil
}

// InferOutputsToProto converts outputs for a response: as raw_output_contents when
// raw is set or when an output is FP16/BF16 (which have no typed field, and the
// protocol forbids mixing raw and typed outputs), as typed contents otherwise. Typed
// contents share the outputs' slices where the Go types agree.
func InferOutputsToProto(outs []*tensor.Tensor, raw bool) ([]*pb.ModelInferResponse_InferOutputTensor, [][]byte) {
	var m outputMemory
	return m.outputs(outs, raw)
}

// outputMemory is what converting outputs takes, kept by a caller that
// converts again once the last conversion's messages are no longer used.
type outputMemory struct {
	pointers []*pb.ModelInferResponse_InferOutputTensor
	typed    []typedOutput
	headers  []pb.ModelInferResponse_InferOutputTensor // raw outputs' messages
	contents [][]byte                                  // raw outputs' contents, cut from buf
	buf      []byte
}

// outputs is InferOutputsToProto in m's memory.
func (m *outputMemory) outputs(outs []*tensor.Tensor, raw bool) ([]*pb.ModelInferResponse_InferOutputTensor, [][]byte) {
	for _, t := range outs {
		if t.Datatype == tensor.FP16 || t.Datatype == tensor.BF16 {
			raw = true
		}
	}
	m.pointers = resize(m.pointers, len(outs))
	if raw {
		// The messages are made in place in one slice (never copied: a message
		// must not be), rather than one allocation per output.
		m.headers = resize(m.headers, len(outs))
		size := 0
		for i, t := range outs {
			m.pointers[i] = outputHeader(&m.headers[i], t)
			size += RawSize(t)
		}
		if cap(m.buf) < size {
			m.buf = make([]byte, 0, size) // one allocation for every output
		}
		buf := m.buf[:0]
		m.contents = resize(m.contents, len(outs))
		for i, t := range outs {
			start := len(buf)
			buf = AppendRaw(buf, t)
			m.contents[i] = buf[start:len(buf):len(buf)]
		}
		return m.pointers, m.contents
	}
	// Each output and its contents, made in place in one slice for every output.
	m.typed = resize(m.typed, len(outs))
	for i, t := range outs {
		o := &m.typed[i]
		setTensorContents(&o.contents, t)
		o.output.Contents = &o.contents
		m.pointers[i] = outputHeader(&o.output, t)
	}
	return m.pointers, nil
}

// typedOutput is an output's message and its typed contents, side by side.
type typedOutput struct {
	output   pb.ModelInferResponse_InferOutputTensor
	contents pb.InferTensorContents
}

// outputHeader fills in o's name, datatype and shape from t, and returns o.
func outputHeader(o *pb.ModelInferResponse_InferOutputTensor, t *tensor.Tensor) *pb.ModelInferResponse_InferOutputTensor {
	o.Name, o.Datatype, o.Shape = t.Name, t.Datatype.String(), t.Shape
	return o
}

// tensorContents puts a tensor's data in the gRPC contents field its datatype uses,
// sharing the slice where the Go types agree and widening INT8/16 and UINT8/16 to
// the 32-bit fields the protocol carries them in. FP16 and BF16 have no contents
// field: they travel as raw contents (AppendRaw). The server's outputs and the
// load generator's inputs both go through here.
func tensorContents(t *tensor.Tensor) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	setTensorContents(c, t)
	return c
}

// setTensorContents is tensorContents into an empty message of the caller's.
func setTensorContents(c *pb.InferTensorContents, t *tensor.Tensor) {
	switch v := t.Data.(type) {
	case []bool:
		c.BoolContents = v
	case []int8:
		c.IntContents = widen[int32](v)
	case []int16:
		c.IntContents = widen[int32](v)
	case []int32:
		c.IntContents = v
	case []int64:
		c.Int64Contents = v
	case []uint8:
		c.UintContents = widen[uint32](v)
	case []uint16: // UINT16 (FP16/BF16 never get here: they go raw)
		c.UintContents = widen[uint32](v)
	case []uint32:
		c.UintContents = v
	case []uint64:
		c.Uint64Contents = v
	case []float32:
		c.Fp32Contents = v
	case []float64:
		c.Fp64Contents = v
	case [][]byte:
		c.BytesContents = v
	}
}

func widen[T int32 | uint32, S int8 | int16 | uint8 | uint16](v []S) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

// InferRequestFromJSON converts an OIP JSON inference request to the gRPC
// ModelInferRequest for model (and version, if not empty). With raw, tensor
// data goes in raw_input_contents (little-endian, as the binary extension
// lays it out); without, in the typed contents field of each datatype, except
// that FP16 and BF16, which have no typed field, turn the whole request raw
// (the protocol does not allow mixing the two).
func InferRequestFromJSON(body []byte, model, version string, raw bool) (*pb.ModelInferRequest, error) {
	in, err := DecodeInferRequest(body)
	if err != nil {
		return nil, fmt.Errorf("OIP request: %w", err)
	}
	req := &pb.ModelInferRequest{ModelName: model, ModelVersion: version, Id: in.ID}
	if in.Parameters != nil {
		if req.Parameters, err = protoParameters(in.Parameters); err != nil {
			return nil, fmt.Errorf("OIP request: %w", err)
		}
	}
	for _, o := range in.Outputs {
		req.Outputs = append(req.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name})
	}
	for _, t := range in.Inputs {
		if t.Datatype == tensor.FP16 || t.Datatype == tensor.BF16 {
			raw = true
		}
	}
	req.Inputs = make([]*pb.ModelInferRequest_InferInputTensor, len(in.Inputs))
	if raw {
		req.RawInputContents = make([][]byte, len(in.Inputs))
	}
	for i, t := range in.Inputs {
		pt := &pb.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape}
		if raw {
			req.RawInputContents[i] = AppendRaw(make([]byte, 0, RawSize(t)), t)
		} else {
			pt.Contents = tensorContents(t)
		}
		req.Inputs[i] = pt
	}
	return req, nil
}

// protoParameters converts a request's "parameters" object: gRPC parameters
// are booleans, 64-bit integers and strings, so anything else is refused
// rather than changed.
func protoParameters(raw []byte) (map[string]*pb.InferParameter, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var params map[string]any
	if err := dec.Decode(&params); err != nil || params == nil {
		return nil, fmt.Errorf("parameters: want a JSON object")
	}
	out := make(map[string]*pb.InferParameter, len(params))
	for k, v := range params {
		switch v := v.(type) {
		case bool:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: v}}
		case string:
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
		case json.Number:
			n, err := v.Int64()
			if err != nil {
				return nil, fmt.Errorf("parameter %q: %s is not a 64-bit integer, and gRPC parameters have no other numbers", k, v)
			}
			out[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: n}}
		default:
			return nil, fmt.Errorf("parameter %q: gRPC parameters are booleans, integers or strings", k)
		}
	}
	return out, nil
}
