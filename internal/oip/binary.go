package oip

// The binary tensor data extension of OIP REST (Triton's "binary_tensor_data"): a
// request or response body is a JSON header followed by the raw bytes of some
// tensors, and the Inference-Header-Content-Length HTTP header says where the JSON
// ends. A tensor sent this way carries "parameters":{"binary_data_size":N} instead
// of "data"; its bytes follow the JSON in the order the tensors are listed. A client
// asks for binary outputs with "binary_data":true on a requested output, or with
// "binary_data_output":true in the request's parameters for all outputs.
//
// The raw layout is the one gRPC's raw_input_contents/raw_output_contents use too:
// elements in row-major order, little-endian, BOOL as one byte (0 or 1), FP16/BF16
// as their 16 bits, and BYTES as a 4-byte little-endian length before each element.

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/tensor"
)

// HeaderContentLength is the HTTP header that gives the length of the JSON part of a
// body that also carries binary tensor data.
const HeaderContentLength = "Inference-Header-Content-Length"

// ExtensionBinaryTensorData is the name GET /v2 advertises for this extension.
const ExtensionBinaryTensorData = "binary_tensor_data"

// BinaryOutputs records which outputs a request wants as binary data.
type BinaryOutputs struct {
	// All is the request parameter "binary_data_output".
	All bool
	// Named holds each requested output's "binary_data" parameter, which wins over All.
	Named map[string]bool
}

// Binary reports whether the output called name goes out as binary data.
func (b BinaryOutputs) Binary(name string) bool {
	if v, ok := b.Named[name]; ok {
		return v
	}
	return b.All
}

// Any reports whether some output may go out as binary data.
func (b BinaryOutputs) Any() bool {
	if b.All {
		return true
	}
	for _, v := range b.Named {
		if v {
			return true
		}
	}
	return false
}

// DecodeBinaryInferRequest parses an inference request that may use the binary
// tensor data extension. The first headerLen bytes of body are the JSON header and
// the rest is the binary data of the inputs that declare binary_data_size; a
// negative headerLen means the whole body is JSON (a request that only asks for
// binary outputs). Numeric inputs from the binary part are copied out of body;
// BYTES elements alias it, so keep body alive while the request is served.
func DecodeBinaryInferRequest(body []byte, headerLen int) (*InferRequest, BinaryOutputs, error) {
	var bin BinaryOutputs
	if headerLen < 0 {
		headerLen = len(body)
	}
	if headerLen > len(body) {
		return nil, bin, badRequest("%s is %d but the body has only %d bytes", HeaderContentLength, headerLen, len(body))
	}
	if headerLen == 0 {
		return nil, bin, badRequest("%s is 0: the body has no JSON header", HeaderContentLength)
	}
	s := jsonwire.NewScanner(body[:headerLen])
	req := &InferRequest{}
	var sizes []int64 // binary_data_size per input, -1 if the input has JSON data
	more, err := s.ObjectStart()
	if err != nil {
		return nil, bin, wrapScan("request", err)
	}
	sawInputs := false
	for more {
		key, err := s.Key()
		if err != nil {
			return nil, bin, wrapScan("request", err)
		}
		switch string(key) {
		case "id":
			if s.Null() {
				break
			}
			id, err := s.String()
			if err != nil {
				return nil, bin, wrapScan("id", err)
			}
			req.ID = string(id)
		case "parameters":
			start := s.Offset()
			if bin.All, err = decodeRequestParameters(s); err != nil {
				return nil, bin, err
			}
			req.Parameters = trimSpace(body[start:s.Offset()])
		case "inputs":
			sawInputs = true
			if req.Inputs, sizes, err = decodeBinaryInputs(s); err != nil {
				return nil, bin, err
			}
		case "outputs":
			if req.Outputs, bin.Named, err = decodeBinaryOutputs(s); err != nil {
				return nil, bin, err
			}
		default:
			if err := s.Skip(); err != nil {
				return nil, bin, wrapScan("request", err)
			}
		}
		if more, err = s.More('}'); err != nil {
			return nil, bin, wrapScan("request", err)
		}
	}
	if err := s.End(); err != nil {
		return nil, bin, wrapScan("request", err)
	}
	if !sawInputs || len(req.Inputs) == 0 {
		return nil, bin, unprocessable("request has no inputs")
	}
	if err := fillBinaryInputs(req.Inputs, sizes, body[headerLen:]); err != nil {
		return nil, bin, err
	}
	return req, bin, nil
}

// decodeRequestParameters reads the request's parameters object and returns its
// binary_data_output flag; other parameters are left to the raw copy.
func decodeRequestParameters(s *jsonwire.Scanner) (binaryOutput bool, err error) {
	more, err := s.ObjectStart()
	if err != nil {
		return false, wrapScan("parameters", err)
	}
	for more {
		key, err := s.Key()
		if err != nil {
			return false, wrapScan("parameters", err)
		}
		if string(key) == "binary_data_output" {
			if binaryOutput, err = s.Bool(); err != nil {
				return false, wrapScan("parameters.binary_data_output", err)
			}
		} else if err := s.Skip(); err != nil {
			return false, wrapScan("parameters", err)
		}
		if more, err = s.More('}'); err != nil {
			return false, wrapScan("parameters", err)
		}
	}
	return binaryOutput, nil
}

func decodeBinaryInputs(s *jsonwire.Scanner) ([]*tensor.Tensor, []int64, error) {
	more, err := s.ArrayStart()
	if err != nil {
		return nil, nil, wrapScan("inputs", err)
	}
	var out []*tensor.Tensor
	var sizes []int64
	for more {
		if len(out) == maxTensors {
			return nil, nil, unprocessable("inputs: more than %d tensors", maxTensors)
		}
		t, size, err := decodeBinaryInput(s, len(out))
		if err != nil {
			return nil, nil, err
		}
		for _, prev := range out {
			if prev.Name == t.Name {
				return nil, nil, unprocessable("inputs: tensor %q appears twice", t.Name)
			}
		}
		out = append(out, t)
		sizes = append(sizes, size)
		if more, err = s.More(']'); err != nil {
			return nil, nil, wrapScan("inputs", err)
		}
	}
	return out, sizes, nil
}

// decodeBinaryInput reads one input object. It returns the input's
// binary_data_size, or -1 when the input carries JSON data (already decoded).
func decodeBinaryInput(s *jsonwire.Scanner, index int) (*tensor.Tensor, int64, error) {
	where := fmt.Sprintf("inputs[%d]", index)
	more, err := s.ObjectStart()
	if err != nil {
		return nil, 0, wrapScan(where, err)
	}
	t := &tensor.Tensor{}
	dataStart, dataEnd := -1, -1
	size := int64(-1)
	var haveShape, haveType bool
	for more {
		key, err := s.Key()
		if err != nil {
			return nil, 0, wrapScan(where, err)
		}
		switch string(key) {
		case "name":
			name, err := s.String()
			if err != nil {
				return nil, 0, wrapScan(where+".name", err)
			}
			t.Name = string(name)
		case "datatype":
			dt, err := s.String()
			if err != nil {
				return nil, 0, wrapScan(where+".datatype", err)
			}
			if t.Datatype, err = tensor.ParseDatatype(string(dt)); err != nil {
				return nil, 0, unprocessable("%s.datatype: %v", where, err)
			}
			haveType = true
		case "shape":
			if t.Shape, err = decodeShape(s); err != nil {
				return nil, 0, wrapScan(where+".shape", err)
			}
			haveShape = true
		case "data":
			dataStart = s.Offset()
			if err := s.Skip(); err != nil {
				return nil, 0, wrapScan(where+".data", err)
			}
			dataEnd = s.Offset()
		case "parameters":
			if size, err = decodeInputParameters(s, where); err != nil {
				return nil, 0, err
			}
		default:
			if err := s.Skip(); err != nil {
				return nil, 0, wrapScan(where, err)
			}
		}
		if more, err = s.More('}'); err != nil {
			return nil, 0, wrapScan(where, err)
		}
	}
	switch {
	case t.Name == "":
		return nil, 0, unprocessable("%s: missing name", where)
	case !haveType:
		return nil, 0, unprocessable("input %q: missing datatype", t.Name)
	case !haveShape:
		return nil, 0, unprocessable("input %q: missing shape", t.Name)
	case dataStart >= 0 && size >= 0:
		return nil, 0, unprocessable("input %q: has both data and binary_data_size", t.Name)
	case dataStart < 0 && size < 0:
		return nil, 0, unprocessable("input %q: missing data (or binary_data_size)", t.Name)
	}
	n := tensor.NumElements(t.Shape)
	if n < 0 {
		return nil, 0, unprocessable("input %q: invalid shape %v", t.Name, t.Shape)
	}
	if size >= 0 {
		return t, size, nil // filled from the binary part once every input is known
	}
	if t.Data, err = decodeData(s.Sub(dataStart, dataEnd), t.Datatype, t.Shape, n); err != nil {
		return nil, 0, wrapScan(fmt.Sprintf("input %q data", t.Name), err)
	}
	if got := int64(t.Len()); got != n {
		return nil, 0, unprocessable("input %q: shape %v needs %d elements, data has %d", t.Name, t.Shape, n, got)
	}
	return t, -1, nil
}

// decodeInputParameters returns binary_data_size, or -1 if the parameters lack it.
func decodeInputParameters(s *jsonwire.Scanner, where string) (int64, error) {
	size := int64(-1)
	more, err := s.ObjectStart()
	if err != nil {
		return 0, wrapScan(where+".parameters", err)
	}
	for more {
		key, err := s.Key()
		if err != nil {
			return 0, wrapScan(where+".parameters", err)
		}
		if string(key) == "binary_data_size" {
			if size, err = s.Int(); err != nil {
				return 0, wrapScan(where+".parameters.binary_data_size", err)
			}
			if size < 0 {
				return 0, unprocessable("%s.parameters.binary_data_size is negative", where)
			}
		} else if err := s.Skip(); err != nil {
			return 0, wrapScan(where+".parameters", err)
		}
		if more, err = s.More('}'); err != nil {
			return 0, wrapScan(where+".parameters", err)
		}
	}
	return size, nil
}

func decodeBinaryOutputs(s *jsonwire.Scanner) ([]RequestedOutput, map[string]bool, error) {
	more, err := s.ArrayStart()
	if err != nil {
		return nil, nil, wrapScan("outputs", err)
	}
	var out []RequestedOutput
	var named map[string]bool
	for more {
		if len(out) == maxTensors {
			return nil, nil, unprocessable("outputs: more than %d tensors", maxTensors)
		}
		where := fmt.Sprintf("outputs[%d]", len(out))
		var o RequestedOutput
		binaryData, haveBinary := false, false
		m, err := s.ObjectStart()
		if err != nil {
			return nil, nil, wrapScan(where, err)
		}
		for m {
			key, err := s.Key()
			if err != nil {
				return nil, nil, wrapScan(where, err)
			}
			switch string(key) {
			case "name":
				name, err := s.String()
				if err != nil {
					return nil, nil, wrapScan(where+".name", err)
				}
				o.Name = string(name)
			case "parameters":
				if binaryData, haveBinary, err = decodeOutputParameters(s, where); err != nil {
					return nil, nil, err
				}
			default:
				if err := s.Skip(); err != nil {
					return nil, nil, wrapScan(where, err)
				}
			}
			if m, err = s.More('}'); err != nil {
				return nil, nil, wrapScan(where, err)
			}
		}
		if o.Name == "" {
			return nil, nil, unprocessable("%s: missing name", where)
		}
		if haveBinary {
			if named == nil {
				named = make(map[string]bool)
			}
			named[o.Name] = binaryData
		}
		out = append(out, o)
		if more, err = s.More(']'); err != nil {
			return nil, nil, wrapScan("outputs", err)
		}
	}
	return out, named, nil
}

func decodeOutputParameters(s *jsonwire.Scanner, where string) (binaryData, present bool, err error) {
	more, err := s.ObjectStart()
	if err != nil {
		return false, false, wrapScan(where+".parameters", err)
	}
	for more {
		key, err := s.Key()
		if err != nil {
			return false, false, wrapScan(where+".parameters", err)
		}
		if string(key) == "binary_data" {
			if binaryData, err = s.Bool(); err != nil {
				return false, false, wrapScan(where+".parameters.binary_data", err)
			}
			present = true
		} else if err := s.Skip(); err != nil {
			return false, false, wrapScan(where+".parameters", err)
		}
		if more, err = s.More('}'); err != nil {
			return false, false, wrapScan(where+".parameters", err)
		}
	}
	return binaryData, present, nil
}

// fillBinaryInputs cuts data into the inputs that declared binary_data_size, in
// request order, and decodes each. The sizes must account for data exactly.
func fillBinaryInputs(inputs []*tensor.Tensor, sizes []int64, data []byte) error {
	var want int64
	for _, sz := range sizes {
		if sz > 0 {
			want += sz
			if want > int64(len(data)) {
				break // reported below, without overflowing on forged sizes
			}
		}
	}
	if want != int64(len(data)) {
		return badRequest("binary data is %d bytes but the inputs' binary_data_size add up to %s", len(data), sumString(sizes, int64(len(data))))
	}
	off := 0
	for i, t := range inputs {
		if sizes[i] < 0 {
			continue
		}
		chunk := data[off : off+int(sizes[i])]
		off += int(sizes[i])
		d, err := DecodeRaw(t.Name, t.Datatype, t.Shape, chunk)
		if err != nil {
			return err
		}
		t.Data = d
	}
	return nil
}

// sumString prints the total of the positive sizes, or "more than limit" when it
// exceeds limit (so a forged size does not print an overflowed number).
func sumString(sizes []int64, limit int64) string {
	var sum int64
	for _, sz := range sizes {
		if sz > 0 {
			if sz > limit-sum {
				return "more than " + strconv.FormatInt(limit, 10)
			}
			sum += sz
		}
	}
	return strconv.FormatInt(sum, 10)
}

// DecodeRaw decodes the raw (binary) bytes of one tensor into the typed slice its
// datatype calls for, checking that raw holds exactly the elements shape promises.
// Errors are *Error with status 422 and name the tensor.
func DecodeRaw(name string, dt tensor.Datatype, shape []int64, raw []byte) (any, error) {
	n := tensor.NumElements(shape)
	if n < 0 {
		return nil, unprocessable("input %q: invalid shape %v", name, shape)
	}
	if dt == tensor.Bytes {
		return decodeRawBytes(name, n, raw)
	}
	size := int64(dt.ElementSize())
	if size == 0 {
		return nil, unprocessable("input %q: datatype %s is not supported", name, dt)
	}
	// Compared by division: n*size may overflow for a forged shape.
	if int64(len(raw))%size != 0 || int64(len(raw))/size != n {
		return nil, unprocessable("input %q: shape %v of %s needs %s bytes, got %d", name, shape, dt, rawNeed(n, size), len(raw))
	}
	le := binary.LittleEndian
	switch dt {
	case tensor.Bool:
		v := make([]bool, n)
		for i, b := range raw {
			if b > 1 {
				return nil, unprocessable("input %q: BOOL element %d is %d, want 0 or 1", name, i, b)
			}
			v[i] = b == 1
		}
		return v, nil
	case tensor.Uint8:
		return append([]uint8(nil), raw...), nil
	case tensor.Int8:
		v := make([]int8, n)
		for i, b := range raw {
			v[i] = int8(b)
		}
		return v, nil
	case tensor.Uint16, tensor.FP16, tensor.BF16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = le.Uint16(raw[2*i:])
		}
		return v, nil
	case tensor.Int16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(le.Uint16(raw[2*i:]))
		}
		return v, nil
	case tensor.Uint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = le.Uint32(raw[4*i:])
		}
		return v, nil
	case tensor.Int32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(le.Uint32(raw[4*i:]))
		}
		return v, nil
	case tensor.FP32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return v, nil
	case tensor.Uint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = le.Uint64(raw[8*i:])
		}
		return v, nil
	case tensor.Int64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(le.Uint64(raw[8*i:]))
		}
		return v, nil
	case tensor.FP64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return v, nil
	}
	return nil, unprocessable("input %q: datatype %s is not supported", name, dt)
}

func rawNeed(n, size int64) string {
	if n > math.MaxInt64/size {
		return "more than " + strconv.FormatInt(math.MaxInt64, 10)
	}
	return strconv.FormatInt(n*size, 10)
}

// decodeRawBytes splits length-prefixed BYTES elements; they alias raw.
func decodeRawBytes(name string, n int64, raw []byte) ([][]byte, error) {
	// Each element takes at least its 4-byte prefix: a larger count cannot fit.
	if n > int64(len(raw)/4) {
		return nil, unprocessable("input %q: %d BYTES elements need at least %s bytes, got %d", name, n, rawNeed(n, 4), len(raw))
	}
	v := make([][]byte, n)
	off := 0
	for i := range v {
		if len(raw)-off < 4 {
			return nil, unprocessable("input %q: BYTES element %d: truncated length prefix", name, i)
		}
		l := binary.LittleEndian.Uint32(raw[off:])
		off += 4
		if uint64(l) > uint64(len(raw)-off) {
			return nil, unprocessable("input %q: BYTES element %d is %d bytes but only %d remain", name, i, l, len(raw)-off)
		}
		v[i] = raw[off : off+int(l) : off+int(l)]
		off += int(l)
	}
	if off != len(raw) {
		return nil, unprocessable("input %q: %d bytes left after %d BYTES elements", name, len(raw)-off, n)
	}
	return v, nil
}

// RawSize is the number of bytes AppendRaw writes for t.
func RawSize(t *tensor.Tensor) int {
	if v, ok := t.Data.([][]byte); ok {
		n := 0
		for _, b := range v {
			n += 4 + len(b)
		}
		return n
	}
	return t.Len() * t.Datatype.ElementSize()
}

// AppendRaw appends t's elements in the raw layout (little-endian, BYTES
// length-prefixed) to dst.
func AppendRaw(dst []byte, t *tensor.Tensor) []byte {
	le := binary.LittleEndian
	switch v := t.Data.(type) {
	case []bool:
		for _, x := range v {
			b := byte(0)
			if x {
				b = 1
			}
			dst = append(dst, b)
		}
	case []uint8:
		dst = append(dst, v...)
	case []int8:
		for _, x := range v {
			dst = append(dst, byte(x))
		}
	case []uint16:
		for _, x := range v {
			dst = le.AppendUint16(dst, x)
		}
	case []int16:
		for _, x := range v {
			dst = le.AppendUint16(dst, uint16(x))
		}
	case []uint32:
		for _, x := range v {
			dst = le.AppendUint32(dst, x)
		}
	case []int32:
		for _, x := range v {
			dst = le.AppendUint32(dst, uint32(x))
		}
	case []float32:
		for _, x := range v {
			dst = le.AppendUint32(dst, math.Float32bits(x))
		}
	case []uint64:
		for _, x := range v {
			dst = le.AppendUint64(dst, x)
		}
	case []int64:
		for _, x := range v {
			dst = le.AppendUint64(dst, uint64(x))
		}
	case []float64:
		for _, x := range v {
			dst = le.AppendUint64(dst, math.Float64bits(x))
		}
	case [][]byte:
		for _, x := range v {
			dst = le.AppendUint32(dst, uint32(len(x)))
			dst = append(dst, x...)
		}
	}
	return dst
}

// AppendBinaryInferResponse encodes r with the outputs that bin selects as binary
// data: the JSON header first, then those outputs' raw bytes in output order. It
// returns the body and the header's length (for Inference-Header-Content-Length).
func AppendBinaryInferResponse(dst []byte, r *InferResponse, bin BinaryOutputs) ([]byte, int) {
	start := len(dst)
	dst = appendResponseHead(dst, r)
	for i, t := range r.Outputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if !bin.Binary(t.Name) {
			dst = AppendTensor(dst, t)
			continue
		}
		dst = append(dst, `{"name":`...)
		dst = jsonwire.AppendString(dst, t.Name)
		dst = append(dst, `,"datatype":"`...)
		dst = append(dst, t.Datatype.String()...)
		dst = append(dst, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, `],"parameters":{"binary_data_size":`...)
		dst = strconv.AppendInt(dst, int64(RawSize(t)), 10)
		dst = append(dst, "}}"...)
	}
	dst = append(dst, "]}"...)
	headerLen := len(dst) - start
	for _, t := range r.Outputs {
		if bin.Binary(t.Name) {
			dst = AppendRaw(dst, t)
		}
	}
	return dst, headerLen
}
