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
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

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

	// The request's messages: inputs[i] and its contents[i] are the i-th input
	// of any request decoded here, requested[i] the i-th requested output.
	inputs    []*pb.ModelInferRequest_InferInputTensor
	contents  []*pb.InferTensorContents
	requested []*pb.ModelInferRequest_InferRequestedOutputTensor
	raw       [][]byte // raw_input_contents, each its own buffer

	tensors  []tensor.Tensor
	pointers []*tensor.Tensor
	answer   outputMemory
}

// Unmarshal decodes b into the call's request, as proto.Unmarshal would.
func (c *InferCall) Unmarshal(b []byte) error {
	if c.decode(b) {
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
	return n
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
	r.ModelName, r.ModelVersion, r.Id = name, version, id
	var seen [4]bool // model_name, model_version and id were in b
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return false // every field of the request is length-delimited
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1:
			ok, seen[1] = keepString(&r.ModelName, v), true
		case 2:
			ok, seen[2] = keepString(&r.ModelVersion, v), true
		case 3:
			ok, seen[3] = keepString(&r.Id, v), true
		case 5:
			ok = c.decodeInput(v)
		case 6:
			ok = c.decodeRequested(v)
		case 7:
			i := len(r.RawInputContents)
			if i == len(c.raw) {
				c.raw = append(c.raw, nil)
			}
			c.raw[i] = append(c.raw[i][:0], v...)
			r.RawInputContents = c.raw[:i+1]
			ok = true
		}
		if !ok {
			return false
		}
	}
	if !seen[1] {
		r.ModelName = ""
	}
	if !seen[2] {
		r.ModelVersion = ""
	}
	if !seen[3] {
		r.Id = ""
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
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == 3 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			in.Shape = append(in.Shape, int64(x))
			continue
		case typ != protowire.BytesType:
			return false
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1:
			ok, hasName = keepString(&name, v), true
		case 2:
			ok, hasDatatype = keepString(&datatype, v), true
		case 3:
			in.Shape, ok = appendVarints(in.Shape, v, func(x uint64) int64 { return int64(x) })
		case 5:
			if in.Contents == nil {
				// A second contents field merges into the first, as protobuf does.
				in.Contents = c.contents[i]
				resetContents(in.Contents)
			}
			ok = decodeContents(in.Contents, v)
		}
		if !ok {
			return false
		}
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
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 || !keepString(&name, v) {
			return false
		}
		b = b[n:]
		hasName = true
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
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			var ok bool
			switch num {
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
				ct.Fp32Contents, ok = appendFloat32s(ct.Fp32Contents, v)
			case 7:
				ct.Fp64Contents, ok = appendFloat64s(ct.Fp64Contents, v)
			case 8:
				ct.BytesContents, ok = append(ct.BytesContents, append([]byte{}, v...)), true
			}
			if !ok {
				return false
			}
			continue
		}
		// One element of an unpacked list.
		var n2 int
		switch {
		case typ == protowire.VarintType && num >= 1 && num <= 5:
			var x uint64
			if x, n2 = protowire.ConsumeVarint(b); n2 >= 0 {
				switch num {
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
				}
			}
		case typ == protowire.Fixed32Type && num == 6:
			var x uint32
			if x, n2 = protowire.ConsumeFixed32(b); n2 >= 0 {
				ct.Fp32Contents = append(ct.Fp32Contents, math.Float32frombits(x))
			}
		case typ == protowire.Fixed64Type && num == 7:
			var x uint64
			if x, n2 = protowire.ConsumeFixed64(b); n2 >= 0 {
				ct.Fp64Contents = append(ct.Fp64Contents, math.Float64frombits(x))
			}
		default:
			return false
		}
		if n2 < 0 {
			return false
		}
		b = b[n2:]
	}
	return true
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

func appendFloat32s(dst []float32, b []byte) ([]float32, bool) {
	if len(b)%4 != 0 {
		return dst, false
	}
	dst = growBy(dst, len(b)/4)
	for ; len(b) >= 4; b = b[4:] {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b)))
	}
	return dst, true
}

func appendFloat64s(dst []float64, b []byte) ([]float64, bool) {
	if len(b)%8 != 0 {
		return dst, false
	}
	dst = growBy(dst, len(b)/8)
	for ; len(b) >= 8; b = b[8:] {
		dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}
	return dst, true
}

// growBy makes room for n more elements in one step.
func growBy[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	grown := make([]T, len(s), len(s)+n)
	copy(grown, s)
	return grown
}
