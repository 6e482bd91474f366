package oip

// One gRPC ModelInfer call's messages and the memory they take, for a server
// that answers many calls: decoding the request, its inputs as tensors and the
// response's outputs reuse what the call before left, so a steady stream of
// calls allocates none of it. The decoder reads the message shapes clients send
// (names, shapes, typed or raw contents, requested outputs) and leaves anything
// else (parameters, unknown fields, wrong wire types, invalid UTF-8, malformed
// bytes) to protobuf's own decoder, so the message it gives is always the one
// proto.Unmarshal gives.

import (
	"encoding/binary"
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/tensor"
)

// InferCall is one ModelInfer call: its request, its response and the memory
// decoding and answering them took. Use it again only once nothing holds the
// last call's tensors or messages (the response encoded, the model done with
// its inputs): the request's contents are the inputs' data.
type InferCall struct {
	Request  pb.ModelInferRequest
	Response pb.ModelInferResponse
	// Outputs is the memory of the last call's outputs, which a model may
	// write this call's into (the caller lends it through the call's context).
	Outputs model.OutputReuse

	// The request's messages: inputs[i] and its contents[i] are the i-th input
	// of any request decoded here, requested[i] the i-th requested output.
	inputs    []*pb.ModelInferRequest_InferInputTensor
	contents  []*pb.InferTensorContents
	requested []*pb.ModelInferRequest_InferRequestedOutputTensor
	raw       [][]byte // raw_input_contents, each its own buffer

	tensors  []tensor.Tensor
	pointers []*tensor.Tensor
	answer   outputMemory

	// byProtobuf: the request was decoded by proto.Unmarshal, into memory of
	// its own that Retained counts apart.
	byProtobuf bool
}

// Unmarshal decodes b into the call's request, as proto.Unmarshal would.
func (c *InferCall) Unmarshal(b []byte) error {
	c.byProtobuf = !c.decode(b)
	if !c.byProtobuf {
		return nil
	}
	if err := proto.Unmarshal(b, &c.Request); err != nil {
		c.Request.Reset()
		return err
	}
	return nil
}

// Inputs converts the request's inputs to tensors, as InferInputsFromProto does.
func (c *InferCall) Inputs() ([]*tensor.Tensor, error) {
	var err error
	var out []*tensor.Tensor
	out, c.tensors, err = inferInputs(&c.Request, c.tensors, c.pointers)
	if out != nil {
		c.pointers = out
	}
	return out, err
}

// SetOutputs puts outputs into the response, as InferOutputsToProto makes them.
func (c *InferCall) SetOutputs(outs []*tensor.Tensor, raw bool) {
	c.Response.Outputs, c.Response.RawOutputContents = c.answer.outputs(outs, raw)
}

// Retained is about how many bytes the call keeps for the next one: a server
// lets a call that took a large request go rather than hold its memory. The
// strings count too, since they are kept to be compared with the next call's.
func (c *InferCall) Retained() int {
	r := &c.Request
	n := cap(c.answer.buf) + len(r.ModelName) + len(r.ModelVersion) + len(r.Id)
	for _, in := range c.inputs {
		n += 8*cap(in.Shape) + len(in.Name) + len(in.Datatype)
	}
	for _, o := range c.requested {
		n += len(o.Name)
	}
	for _, ct := range c.contents {
		n += cap(ct.BoolContents) + 4*cap(ct.IntContents) + 8*cap(ct.Int64Contents) + 4*cap(ct.UintContents) +
			8*cap(ct.Uint64Contents) + 4*cap(ct.Fp32Contents) + 8*cap(ct.Fp64Contents) + 24*cap(ct.BytesContents)
	}
	for _, r := range c.raw {
		n += cap(r)
	}
	if c.byProtobuf {
		n += proto.Size(&c.Request)
	}
	return n + c.Outputs.Bytes()
}

// decode is Unmarshal for the messages it knows, into the memory of the last
// call; false means b holds something it leaves to protobuf, and the request
// is then in no particular state.
func (c *InferCall) decode(b []byte) bool {
	r := &c.Request
	// Strings equal to the last request's are kept rather than made again:
	// model names, datatypes and input names repeat from call to call.
	name, version, id := r.ModelName, r.ModelVersion, r.Id
	r.Reset()
	var hasName, hasVersion, hasID bool
	decoded := eachField(b, func(f field) bool {
		if f.typ != protowire.BytesType {
			return false // every field of the request is length-delimited
		}
		var ok bool
		switch f.num {
		case 1:
			ok, hasName = keepString(&name, f.bytes), true
		case 2:
			ok, hasVersion = keepString(&version, f.bytes), true
		case 3:
			ok, hasID = keepString(&id, f.bytes), true
		case 5:
			ok = c.decodeInput(f.bytes)
		case 6:
			ok = c.decodeRequested(f.bytes)
		case 7:
			i := len(r.RawInputContents)
			if i == len(c.raw) {
				c.raw = append(c.raw, nil)
			}
			c.raw[i] = append(c.raw[i][:0], f.bytes...)
			r.RawInputContents = c.raw[:i+1]
			ok = true
		}
		return ok
	})
	if !decoded {
		return false
	}
	if hasName {
		r.ModelName = name
	}
	if hasVersion {
		r.ModelVersion = version
	}
	if hasID {
		r.Id = id
	}
	return true
}

// field is one field of a message: its number and wire type, and its bytes
// (length-delimited) or its value (varint and fixed-width).
type field struct {
	num   protowire.Number
	typ   protowire.Type
	bytes []byte
	value uint64
}

// nextField reads the field b begins with and says how many bytes it took,
// or a negative count when b does not begin with one (groups, which no
// request field is, included).
func nextField(b []byte) (field, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, n
	}
	f, m := field{num: num, typ: typ}, -1
	switch typ {
	case protowire.BytesType:
		f.bytes, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		f.value, m = protowire.ConsumeVarint(b[n:])
	case protowire.Fixed32Type:
		var v uint32
		v, m = protowire.ConsumeFixed32(b[n:])
		f.value = uint64(v)
	case protowire.Fixed64Type:
		f.value, m = protowire.ConsumeFixed64(b[n:])
	}
	if m < 0 {
		return field{}, -1
	}
	return f, n + m
}

// eachField gives take each field of the message b in turn; false when b is
// not a run of whole fields or take says false to one.
func eachField(b []byte, take func(field) bool) bool {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 || !take(f) {
			return false
		}
		b = b[n:]
	}
	return true
}

// keepString sets *s to the UTF-8 text v (protobuf refuses any other in a
// string field), keeping *s when it already says the same.
func keepString(s *string, v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	if string(v) != *s { // compared without making a string
		*s = string(v)
	}
	return true
}

// decodeInput appends an InferInputTensor to the request.
func (c *InferCall) decodeInput(b []byte) bool {
	r := &c.Request
	i := len(r.Inputs)
	if i >= maxGRPCTensors {
		return false // protobuf's decoder takes them; the conversion refuses them
	}
	if i == len(c.inputs) {
		c.inputs = append(c.inputs, new(pb.ModelInferRequest_InferInputTensor))
		c.contents = append(c.contents, new(pb.InferTensorContents))
	}
	in := c.inputs[i]
	name, datatype, shape := in.Name, in.Datatype, in.Shape[:0]
	in.Reset()
	in.Shape = shape
	var hasName, hasDatatype bool
	decoded := eachField(b, func(f field) bool {
		var ok bool
		switch {
		case f.num == 3 && f.typ == protowire.VarintType: // one dimension, unpacked
			in.Shape, ok = append(in.Shape, int64(f.value)), true
		case f.typ != protowire.BytesType:
		case f.num == 1:
			ok, hasName = keepString(&name, f.bytes), true
		case f.num == 2:
			ok, hasDatatype = keepString(&datatype, f.bytes), true
		case f.num == 3:
			in.Shape, ok = appendVarints(in.Shape, f.bytes, func(x uint64) int64 { return int64(x) })
		case f.num == 5:
			if in.Contents == nil {
				// A second contents field merges into the first, as protobuf does.
				in.Contents = c.contents[i]
				resetContents(in.Contents)
			}
			ok = decodeContents(in.Contents, f.bytes)
		}
		return ok
	})
	if !decoded {
		return false
	}
	if hasName {
		in.Name = name
	}
	if hasDatatype {
		in.Datatype = datatype
	}
	r.Inputs = c.inputs[:i+1]
	return true
}

// decodeRequested appends an InferRequestedOutputTensor to the request.
func (c *InferCall) decodeRequested(b []byte) bool {
	r := &c.Request
	i := len(r.Outputs)
	if i >= maxGRPCTensors {
		return false
	}
	if i == len(c.requested) {
		c.requested = append(c.requested, new(pb.ModelInferRequest_InferRequestedOutputTensor))
	}
	o := c.requested[i]
	name := o.Name
	o.Reset()
	var hasName bool
	decoded := eachField(b, func(f field) bool {
		hasName = true
		return f.num == 1 && f.typ == protowire.BytesType && keepString(&name, f.bytes)
	})
	if !decoded {
		return false
	}
	if hasName {
		o.Name = name
	}
	r.Outputs = c.requested[:i+1]
	return true
}

// resetContents empties every list of ct, keeping their memory.
func resetContents(ct *pb.InferTensorContents) {
	bools, ints, int64s, uints, uint64s := ct.BoolContents[:0], ct.IntContents[:0], ct.Int64Contents[:0], ct.UintContents[:0], ct.Uint64Contents[:0]
	fp32s, fp64s, bytes := ct.Fp32Contents[:0], ct.Fp64Contents[:0], ct.BytesContents[:0]
	clear(bytes[:cap(bytes)]) // the elements are the last request's, not to be kept
	ct.Reset()
	ct.BoolContents, ct.IntContents, ct.Int64Contents, ct.UintContents, ct.Uint64Contents = bools, ints, int64s, uints, uint64s
	ct.Fp32Contents, ct.Fp64Contents, ct.BytesContents = fp32s, fp64s, bytes
}

// decodeContents appends an InferTensorContents' lists to ct's, each packed or
// not, as protobuf accepts both.
func decodeContents(ct *pb.InferTensorContents, b []byte) bool {
	return eachField(b, func(f field) bool {
		var ok bool
		switch f.typ {
		case protowire.BytesType:
			v := f.bytes
			switch f.num {
			case 1:
				ct.BoolContents, ok = appendVarints(ct.BoolContents, v, protowire.DecodeBool)
			case 2:
				ct.IntContents, ok = appendVarints(ct.IntContents, v, func(x uint64) int32 { return int32(x) })
			case 3:
				ct.Int64Contents, ok = appendVarints(ct.Int64Contents, v, func(x uint64) int64 { return int64(x) })
			case 4:
				ct.UintContents, ok = appendVarints(ct.UintContents, v, func(x uint64) uint32 { return uint32(x) })
			case 5:
				ct.Uint64Contents, ok = appendVarints(ct.Uint64Contents, v, func(x uint64) uint64 { return x })
			case 6:
				ct.Fp32Contents, ok = appendFixed(ct.Fp32Contents, v, 4, float32At)
			case 7:
				ct.Fp64Contents, ok = appendFixed(ct.Fp64Contents, v, 8, float64At)
			case 8:
				ct.BytesContents, ok = append(ct.BytesContents, append([]byte{}, v...)), true
			}
		case protowire.VarintType: // one element of an unpacked list
			x := f.value
			ok = true
			switch f.num {
			case 1:
				ct.BoolContents = append(ct.BoolContents, protowire.DecodeBool(x))
			case 2:
				ct.IntContents = append(ct.IntContents, int32(x))
			case 3:
				ct.Int64Contents = append(ct.Int64Contents, int64(x))
			case 4:
				ct.UintContents = append(ct.UintContents, uint32(x))
			case 5:
				ct.Uint64Contents = append(ct.Uint64Contents, x)
			default:
				ok = false
			}
		case protowire.Fixed32Type:
			if ok = f.num == 6; ok {
				ct.Fp32Contents = append(ct.Fp32Contents, math.Float32frombits(uint32(f.value)))
			}
		case protowire.Fixed64Type:
			if ok = f.num == 7; ok {
				ct.Fp64Contents = append(ct.Fp64Contents, math.Float64frombits(f.value))
			}
		}
		return ok
	})
}

// appendVarints appends a packed list of varints, each converted by conv.
func appendVarints[T any](dst []T, b []byte, conv func(uint64) T) ([]T, bool) {
	for len(b) > 0 {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return dst, false
		}
		dst = append(dst, conv(x))
		b = b[n:]
	}
	return dst, true
}

// appendFixed appends a packed list of size-byte elements, each read by conv.
func appendFixed[T any](dst []T, b []byte, size int, conv func([]byte) T) ([]T, bool) {
	if len(b)%size != 0 {
		return dst, false
	}
	dst = slices.Grow(dst, len(b)/size)
	for ; len(b) >= size; b = b[size:] {
		dst = append(dst, conv(b))
	}
	return dst, true
}

func float32At(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
func float64At(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
