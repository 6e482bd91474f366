// Package oip is the Open Inference Protocol (v2) wire format, the one place every
// conversion between the protocol and tensor.Tensor lives: the REST JSON inference
// request and response and the metadata documents (in one pass, without a generic
// JSON tree), the binary tensor extension, and the gRPC messages (grpc.go), for the
// server and tide load alike. Error is the one error type the front ends answer
// with: an HTTP status and the gRPC code that means the same.
package oip

import (
	"errors"
	"fmt"

	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/tensor"
)

// InferRequest is a decoded inference request.
type InferRequest struct {
	ID      string
	Inputs  []*tensor.Tensor
	Outputs []RequestedOutput
	// Parameters is the request's "parameters" object, raw, or nil.
	Parameters []byte
}

// RequestedOutput names an output the client wants back.
type RequestedOutput struct {
	Name string
}

// wrapScan turns a scanner error into a protocol error: malformed JSON is 400,
// a value of the wrong kind is 422.
func wrapScan(where string, err error) error {
	var te *jsonwire.TypeError
	if errors.As(err, &te) {
		return unprocessable("%s: %s", where, te.Msg)
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return badRequest("%s: %s", where, err.Error())
}

// maxTensors bounds the inputs/outputs a request may list.
const maxTensors = 1024

// DecodeInferRequest parses an OIP JSON inference request.
func DecodeInferRequest(body []byte) (*InferRequest, error) {
	s := jsonwire.NewScanner(body)
	req := &InferRequest{}
	more, err := s.ObjectStart()
	if err != nil {
		return nil, wrapScan("request", err)
	}
	sawInputs := false
	var seen keySet
	for more {
		key, err := s.Key()
		if err != nil {
			return nil, wrapScan("request", err)
		}
		if err := seen.add("request", key, requestKeys); err != nil {
			return nil, err
		}
		switch string(key) {
		case "id":
			if s.Null() {
				break
			}
			id, err := s.String()
			if err != nil {
				return nil, wrapScan("id", err)
			}
			req.ID = string(id)
		case "parameters":
			start := s.Offset()
			if err := s.Skip(); err != nil {
				return nil, wrapScan("parameters", err)
			}
			req.Parameters = trimSpace(body[start:s.Offset()])
		case "inputs":
			sawInputs = true
			if req.Inputs, err = decodeInputs(s); err != nil {
				return nil, err
			}
		case "outputs":
			if req.Outputs, err = decodeOutputs(s); err != nil {
				return nil, err
			}
		default: // unknown members are allowed by the protocol's extension rules
			if err := s.Skip(); err != nil {
				return nil, wrapScan("request", err)
			}
		}
		if more, err = s.More('}'); err != nil {
			return nil, wrapScan("request", err)
		}
	}
	if err := s.End(); err != nil {
		return nil, wrapScan("request", err)
	}
	if !sawInputs || len(req.Inputs) == 0 {
		return nil, unprocessable("request has no inputs")
	}
	return req, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

func decodeInputs(s *jsonwire.Scanner) ([]*tensor.Tensor, error) {
	more, err := s.ArrayStart()
	if err != nil {
		return nil, wrapScan("inputs", err)
	}
	var out []*tensor.Tensor
	for more {
		if len(out) == maxTensors {
			return nil, unprocessable("inputs: more than %d tensors", maxTensors)
		}
		t, err := decodeInput(s, len(out))
		if err != nil {
			return nil, err
		}
		for _, prev := range out {
			if prev.Name == t.Name {
				return nil, unprocessable("inputs: tensor %q appears twice", t.Name)
			}
		}
		out = append(out, t)
		if more, err = s.More(']'); err != nil {
			return nil, wrapScan("inputs", err)
		}
	}
	return out, nil
}

func decodeInput(s *jsonwire.Scanner, index int) (*tensor.Tensor, error) {
	where := fmt.Sprintf("inputs[%d]", index)
	more, err := s.ObjectStart()
	if err != nil {
		return nil, wrapScan(where, err)
	}
	t := &tensor.Tensor{}
	dataStart, dataEnd := -1, -1
	var haveShape, haveType bool
	var seen keySet
	for more {
		key, err := s.Key()
		if err != nil {
			return nil, wrapScan(where, err)
		}
		if err := seen.add(where, key, inputKeys); err != nil {
			return nil, err
		}
		switch string(key) {
		case "name":
			name, err := s.String()
			if err != nil {
				return nil, wrapScan(where+".name", err)
			}
			t.Name = string(name)
		case "datatype":
			dt, err := s.String()
			if err != nil {
				return nil, wrapScan(where+".datatype", err)
			}
			if t.Datatype, err = tensor.ParseDatatype(string(dt)); err != nil {
				return nil, unprocessable("%s.datatype: %v", where, err)
			}
			haveType = true
		case "shape":
			if t.Shape, err = decodeShape(s); err != nil {
				return nil, wrapScan(where+".shape", err)
			}
			haveShape = true
		case "data":
			// The data may come before shape and datatype; remember where it is and
			// read it once the whole object has been seen.
			dataStart = s.Offset()
			if err := s.Skip(); err != nil {
				return nil, wrapScan(where+".data", err)
			}
			dataEnd = s.Offset()
		default: // "parameters" and extensions
			if err := s.Skip(); err != nil {
				return nil, wrapScan(where, err)
			}
		}
		if more, err = s.More('}'); err != nil {
			return nil, wrapScan(where, err)
		}
	}
	switch {
	case t.Name == "":
		return nil, unprocessable("%s: missing name", where)
	case !haveType:
		return nil, unprocessable("input %q: missing datatype", t.Name)
	case !haveShape:
		return nil, unprocessable("input %q: missing shape", t.Name)
	case dataStart < 0:
		return nil, unprocessable("input %q: missing data", t.Name)
	}
	n := tensor.NumElements(t.Shape)
	if n < 0 {
		return nil, unprocessable("input %q: invalid shape %v", t.Name, t.Shape)
	}
	sub := s.Sub(dataStart, dataEnd)
	if t.Data, err = decodeData(sub, t.Datatype, t.Shape, n); err != nil {
		return nil, wrapScan(fmt.Sprintf("input %q data", t.Name), err)
	}
	if got := int64(t.Len()); got != n {
		return nil, unprocessable("input %q: shape %v needs %d elements, data has %d", t.Name, t.Shape, n, got)
	}
	return t, nil
}

// keySet catches a key that appears twice in one object. JSON leaves duplicates
// undefined (decoders keep the first, the last, or refuse), so a request that has
// two "inputs" is ambiguous, and refused (400) rather than read one way here and
// another way by the proxy in front.
type keySet uint32

// The keys whose repetition is checked, per object; extensions are skipped unread.
var (
	requestKeys = []string{"id", "parameters", "inputs", "outputs"}
	inputKeys   = []string{"name", "datatype", "shape", "data", "parameters"}
)

func (k *keySet) add(where string, key []byte, known []string) error {
	for i, name := range known {
		if string(key) == name {
			if *k&(1<<i) != 0 {
				return badRequest("%s: duplicate key %q", where, name)
			}
			*k |= 1 << i
		}
	}
	return nil
}

const maxRank = 32

func decodeShape(s *jsonwire.Scanner) ([]int64, error) {
	more, err := s.ArrayStart()
	if err != nil {
		return nil, err
	}
	shape := make([]int64, 0, 4)
	for more {
		if len(shape) == maxRank {
			return nil, unprocessable("more than %d dimensions", maxRank)
		}
		d, err := s.Int()
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, unprocessable("dimension %d is negative", d)
		}
		shape = append(shape, d)
		if more, err = s.More(']'); err != nil {
			return nil, err
		}
	}
	return shape, nil
}

func decodeOutputs(s *jsonwire.Scanner) ([]RequestedOutput, error) {
	more, err := s.ArrayStart()
	if err != nil {
		return nil, wrapScan("outputs", err)
	}
	var out []RequestedOutput
	for more {
		if len(out) == maxTensors {
			return nil, unprocessable("outputs: more than %d tensors", maxTensors)
		}
		where := fmt.Sprintf("outputs[%d]", len(out))
		var o RequestedOutput
		m, err := s.ObjectStart()
		if err != nil {
			return nil, wrapScan(where, err)
		}
		for m {
			key, err := s.Key()
			if err != nil {
				return nil, wrapScan(where, err)
			}
			if string(key) == "name" {
				name, err := s.String()
				if err != nil {
					return nil, wrapScan(where+".name", err)
				}
				o.Name = string(name)
			} else if err := s.Skip(); err != nil {
				return nil, wrapScan(where, err)
			}
			if m, err = s.More('}'); err != nil {
				return nil, wrapScan(where, err)
			}
		}
		if o.Name == "" {
			return nil, unprocessable("%s: missing name", where)
		}
		out = append(out, o)
		if more, err = s.More(']'); err != nil {
			return nil, wrapScan("outputs", err)
		}
	}
	return out, nil
}
