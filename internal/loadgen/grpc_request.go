package loadgen

// gRPC requests are written as OIP REST JSON (a --body-file, a --template, or
// the template generated from the model's metadata) and converted to a
// ModelInferRequest by the server's own JSON decoder (internal/oip), so one
// body means the same tensors over REST and over gRPC.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/tensor"
)

// InferRequestFromJSON converts an OIP JSON inference request to the gRPC
// ModelInferRequest for model (and version, if not empty). With raw, tensor
// data goes in raw_input_contents (little-endian, as the binary extension
// lays it out); without, in the typed contents field of each datatype, except
// that FP16 and BF16, which have no typed field, turn the whole request raw
// (the protocol does not allow mixing the two).
func InferRequestFromJSON(body []byte, model, version string, raw bool) (*pb.ModelInferRequest, error) {
	in, err := oip.DecodeInferRequest(body)
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
			req.RawInputContents[i] = oip.AppendRaw(make([]byte, 0, oip.RawSize(t)), t)
		} else {
			pt.Contents = oip.TensorContents(t)
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

// grpcRequests makes each call's ModelInferRequest from the run's body source.
// A StaticBody is converted once and the one message sent every time (gRPC
// only reads it); a template is rendered and converted for each call.
type grpcRequests struct {
	body           BodySource
	model, version string
	raw            bool
	fixed          *pb.ModelInferRequest
}

// newGRPCRequests checks that the body converts (a template is rendered once
// to see), so a bad body is one error before the run rather than one per call.
func newGRPCRequests(body BodySource, t Target, raw bool) (*grpcRequests, error) {
	if body == nil {
		return nil, fmt.Errorf("a gRPC run needs a request body (an OIP JSON request, from a file, a template or the model's metadata)")
	}
	g := &grpcRequests{body: body, model: t.Model, version: t.Version, raw: raw}
	req, err := InferRequestFromJSON(body.Render(nil, rand.New(rand.NewPCG(1, math.MaxUint64)), 0), g.model, g.version, g.raw)
	if err != nil {
		return nil, fmt.Errorf("gRPC request from the body: %w", err)
	}
	if _, ok := body.(StaticBody); ok {
		g.fixed = req
	}
	return g, nil
}

// next returns the request for one call.
func (g *grpcRequests) next(rng *rand.Rand, seq uint64) (*pb.ModelInferRequest, error) {
	if g.fixed != nil {
		return g.fixed, nil
	}
	return InferRequestFromJSON(g.body.Render(nil, rng, seq), g.model, g.version, g.raw)
}
