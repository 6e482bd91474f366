package loadgen

// gRPC requests are written as OIP REST JSON (a --body-file, a --template, or
// the template generated from the model's metadata) and converted to a
// ModelInferRequest by oip.InferRequestFromJSON, through the server's own JSON
// decoder, so one body means the same tensors over REST and over gRPC.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/oip/pb"
)

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
	req, err := oip.InferRequestFromJSON(body.Render(nil, rand.New(rand.NewPCG(1, math.MaxUint64)), 0), g.model, g.version, g.raw)
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
	return oip.InferRequestFromJSON(g.body.Render(nil, rng, seq), g.model, g.version, g.raw)
}
