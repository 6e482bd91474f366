package loadgen

// The gRPC sender: ModelInfer calls of OIP v2 (inference.GRPCInferenceService)
// over a few shared HTTP/2 connections. Every worker's calls are multiplexed on
// them, as a fleet of gRPC clients' calls are on theirs; a call's timeout is its
// context deadline, which gRPC also sends to the server (grpc-timeout).

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/oip/pb"
)

// DefaultGRPCConns is how many connections a gRPC run opens when not told.
// One HTTP/2 connection carries any number of concurrent calls, but it is one
// TCP stream read by one goroutine at each end, and behind a Kubernetes Service
// (which balances connections, not calls) it reaches one pod. Four spread the
// load over up to four pods and keep one slow stream from holding up the rest,
// while staying close to what a handful of real gRPC clients would open.
const DefaultGRPCConns = 4

// maxGRPCMessage bounds the messages a run sends and receives; gRPC's own
// default of 4 MiB for received messages is too small for wide batches.
const maxGRPCMessage = 256 << 20

// GRPCOptions configure the connections of a gRPC run.
type GRPCOptions struct {
	// Timeout is each call's deadline (default 30 s).
	Timeout time.Duration
	// Conns is how many connections the calls share (default DefaultGRPCConns).
	Conns int
	// Insecure skips certificate checks for grpcs targets.
	Insecure bool
	// Raw sends tensor data in raw_input_contents instead of typed contents.
	Raw bool
	// Header is sent as metadata with every call (names lower-cased), for
	// example authorization or x-api-key.
	Header http.Header
}

// GRPCClient is a set of connections to one gRPC target. Calls take the
// connections in turn.
type GRPCClient struct {
	opts    GRPCOptions
	conns   []*grpc.ClientConn
	clients []pb.GRPCInferenceServiceClient
	next    atomic.Uint64
	md      metadata.MD
	base    context.Context // carries md; never cancelled
}

// NewGRPCClient opens o.Conns connections to t (a grpc or grpcs target). They
// start connecting at once, so the first calls of a run do not all wait for
// the handshakes; a server that is not there shows up as failed calls.
func NewGRPCClient(t Target, o GRPCOptions) (*GRPCClient, error) {
	if t.Protocol != ProtocolGRPC {
		return nil, fmt.Errorf("target %s is not a gRPC target (%s)", t.URL, grpcURLForm)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Conns == 0 {
		o.Conns = DefaultGRPCConns
	}
	if o.Conns < 0 || o.Conns > 1024 {
		return nil, fmt.Errorf("gRPC connections: %d, want 1 to 1024", o.Conns)
	}
	md, err := grpcMetadata(o.Header)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if t.URL.Scheme == "grpcs" {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: o.Insecure}) //nolint:gosec // only when asked for
	}
	c := &GRPCClient{opts: o, md: md, base: metadata.NewOutgoingContext(context.Background(), md)}
	for range o.Conns {
		conn, err := grpc.NewClient(t.URL.Host,
			grpc.WithTransportCredentials(creds),
			grpc.WithUserAgent("tide-load"),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage), grpc.MaxCallSendMsgSize(maxGRPCMessage)),
		)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("gRPC target %s: %w", t.URL.Host, err)
		}
		conn.Connect()
		c.conns = append(c.conns, conn)
		c.clients = append(c.clients, pb.NewGRPCInferenceServiceClient(conn))
	}
	return c, nil
}

// grpcMetadata turns -H headers into call metadata, whose keys gRPC wants in
// lower case from a small alphabet.
func grpcMetadata(h http.Header) (metadata.MD, error) {
	md := metadata.MD{}
	for name, values := range h {
		key := strings.ToLower(name)
		if key == "" || strings.HasPrefix(key, "grpc-") || strings.Trim(key, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			return nil, fmt.Errorf("header %q cannot be gRPC metadata: names are letters, digits, '-', '_' and '.', and grpc- is reserved", name)
		}
		md[key] = append(md[key], values...)
	}
	return md, nil
}

// Close closes the connections.
func (c *GRPCClient) Close() error {
	for _, conn := range c.conns {
		conn.Close()
	}
	return nil
}

func (c *GRPCClient) client() pb.GRPCInferenceServiceClient {
	return c.clients[(c.next.Add(1)-1)%uint64(len(c.clients))]
}

// Metadata asks the server for the target model's metadata (the ModelMetadata
// RPC), the gRPC counterpart of FetchMetadata.
func (c *GRPCClient) Metadata(ctx context.Context, t Target) (*ModelMetadata, error) {
	ctx = metadata.NewOutgoingContext(ctx, c.md)
	resp, err := c.client().ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: t.Model, Version: t.Version})
	if err != nil {
		st := status.Convert(err)
		return nil, fmt.Errorf("model metadata: ModelMetadata %s: %s: %s", t.Model, CodeName(st.Code()), st.Message())
	}
	md := &ModelMetadata{Name: resp.GetName()}
	if md.Name == "" {
		md.Name = t.Model
	}
	for _, in := range resp.GetInputs() {
		md.Inputs = append(md.Inputs, TensorMeta{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape()})
	}
	return md, nil
}

// doGRPC sends one ModelInfer call and records it, latency from intended.
// A call the server answered is recorded under its status code, OK or not,
// as an HTTP response is under its status; one that never reached an answer
// (refused connection, the call's own deadline) is a transport error.
func (r *run) doGRPC(intended time.Time, late bool, rng *rand.Rand, seq uint64) {
	req, err := r.grpcReqs.next(rng, seq)
	r.rec.started(late)
	if err != nil {
		r.rec.finished(0, 0, 0, 0, err)
		return
	}
	c := r.cfg.GRPC
	// As over HTTP, the call outlives a cancelled run; its deadline bounds it.
	ctx, cancel := context.WithTimeout(c.base, c.opts.Timeout)
	defer cancel()
	if r.startsTrace(rng) {
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", newTraceparent(rng))
	}
	sent := time.Now()
	resp, err := c.client().ModelInfer(ctx, req)
	latency, service := time.Since(intended), time.Since(sent)
	if err == nil {
		r.rec.finishedGRPC(latency, service, codes.OK, int64(proto.Size(resp)))
		return
	}
	if terr := grpcTransportError(ctx, err); terr != nil {
		r.rec.finished(latency, service, 0, 0, terr)
		return
	}
	r.rec.finishedGRPC(latency, service, status.Code(err), 0)
}

// grpcTransportError says whether a failed call's status came from the client
// rather than the server, and if so why, in the words errorKind groups by.
// gRPC gives every failure a status; the client's own are its deadline and
// UNAVAILABLE for connections that failed or broke, whose messages name the
// cause.
func grpcTransportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the call's own deadline: "timeout", as over HTTP
	}
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		return nil
	}
	msg := st.Message()
	for _, cause := range []string{"connection refused", "connection reset", "broken pipe", "no such host", "i/o timeout", "too many open files"} {
		if strings.Contains(msg, cause) {
			return fmt.Errorf("%s", cause)
		}
	}
	for _, clientSide := range []string{"connection error", "error reading from server", "transport is closing", "the connection is draining", "transport: ", "name resolver error"} {
		if strings.Contains(msg, clientSide) {
			if i := strings.Index(msg, "x509: "); i >= 0 {
				msg = "tls: " + msg[i:]
			}
			return fmt.Errorf("grpc: %s", msg)
		}
	}
	return nil
}

// grpcCodeNames are the codes' names as the gRPC specification writes them.
var grpcCodeNames = [...]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
	codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
	codes.Unauthenticated: "UNAUTHENTICATED",
}

// CodeName is a gRPC status code's name as the specification writes it
// (RESOURCE_EXHAUSTED), the key of Summary.GRPCCodes.
func CodeName(c codes.Code) string {
	if int(c) < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}
