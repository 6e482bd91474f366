package server

// The Open Inference Protocol v2 over gRPC (inference.GRPCInferenceService), beside
// the REST front end: the same repository, the same infer path (admission, batching,
// metrics), the same errors mapped to gRPC codes. Also the standard gRPC health
// service (for Kubernetes gRPC probes) and server reflection (for grpcurl).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tensor"
)

const protoGRPC = "oip-grpc"

// grpcExtensions are the OIP extensions the gRPC front end implements.
var grpcExtensions = []string{"model_repository"}

// inferenceServiceName is the OIP service's full name; the health service answers
// for it as for the whole server.
const inferenceServiceName = "inference.GRPCInferenceService"

// GRPCServer builds the gRPC front end: the OIP service, health and reflection,
// with the server's TLS settings and limits. Serve runs it on Options.GRPCAddr;
// tests and embedders may serve it on a listener of their own.
func (s *Server) GRPCServer() (*grpc.Server, error) {
	auth := s.newGRPCAuth()
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(s.opts.MaxBodyBytes, math.MaxInt32))),
		grpc.ChainUnaryInterceptor(s.grpcRecover, auth.unary),
		grpc.ChainStreamInterceptor(s.grpcRecoverStream, auth.stream),
		// Idle connections close like HTTP keep-alives do, so clients re-resolve and
		// spread over new replicas.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.opts.IdleTimeout}),
	}
	cfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	gs := grpc.NewServer(opts...)
	pb.RegisterGRPCInferenceServiceServer(gs, &inferenceService{s: s})
	healthpb.RegisterHealthServer(gs, &healthService{s: s})
	reflection.Register(gs)
	return gs, nil
}

// tlsConfig loads Options.TLSCertFile/TLSKeyFile, or returns nil when TLS is off.
// The files are read again when they change, so a rotated certificate (a
// Kubernetes Secret updated by cert-manager) takes effect without a restart.
func (s *Server) tlsConfig() (*tls.Config, error) {
	cert, key := s.opts.TLSCertFile, s.opts.TLSKeyFile
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, errors.New("TLS needs both a certificate and a key file (--tls-cert and --tls-key)")
	}
	r := &certReloader{certFile: cert, keyFile: key, interval: certCheckInterval, log: s.log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: r.get, MinVersion: tls.VersionTLS12}, nil
}

// certCheckInterval is how often, at most, a handshake looks at the files again.
const certCheckInterval = 10 * time.Second

// certReloader hands out the current key pair and reloads it when the files'
// size or modification time changes. A pair that fails to load (a rotation caught
// half-written) is logged and the previous one kept.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func (r *certReloader) fileStamp() string {
	var b strings.Builder
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

// load reads the pair; the caller holds mu or has not shared r yet.
func (r *certReloader) load() error {
	stamp := r.fileStamp()
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &pair, stamp
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		if r.fileStamp() != r.stamp {
			if err := r.load(); err != nil {
				r.log.Warn("TLS certificate changed but does not load; keeping the previous one", "error", err)
			} else {
				r.log.Info("TLS certificate reloaded", "cert", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// grpcFront is the running gRPC server inside Serve; a nil *grpcFront is a
// disabled one, so Serve needs no special cases.
type grpcFront struct {
	srv  *grpc.Server
	errc chan error
}

// startGRPC listens on Options.GRPCAddr and serves there, or returns nil when the
// address is empty.
func (s *Server) startGRPC() (*grpcFront, error) {
	if s.opts.GRPCAddr == "" {
		return nil, nil
	}
	gs, err := s.GRPCServer()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.opts.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for gRPC on %s: %w", s.opts.GRPCAddr, err)
	}
	s.grpcAddr.Store(ln.Addr().String())
	g := &grpcFront{srv: gs, errc: make(chan error, 1)}
	go func() { g.errc <- gs.Serve(ln) }()
	s.log.Info("serving gRPC", "addr", ln.Addr().String(), "tls", s.opts.TLSCertFile != "")
	return g, nil
}

// failed delivers an error if the gRPC server stops on its own; it never fires
// for a disabled server.
func (g *grpcFront) failed() <-chan error {
	if g == nil {
		return nil
	}
	return g.errc
}

// stop cuts off the gRPC server at once (a no-op after a finished drain).
func (g *grpcFront) stop() {
	if g != nil {
		g.srv.Stop()
	}
}

// drain starts a graceful stop (no new calls, GOAWAY to clients) and reports on the
// returned channel once in-flight calls have finished, or when ctx ends first, in
// which case the remaining calls are cut off and the error says so.
func (g *grpcFront) drain(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	if g == nil {
		done <- nil
		return done
	}
	stopped := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(stopped) }()
	go func() {
		select {
		case <-stopped:
			done <- nil
		case <-ctx.Done():
			g.srv.Stop()
			done <- fmt.Errorf("gRPC calls still running: %w", ctx.Err())
		}
	}()
	return done
}

// GRPCAddr is the address the gRPC server listens on once Serve has started it
// ("" before, or when gRPC is off). With GRPCAddr ":0" it tells the chosen port.
func (s *Server) GRPCAddr() string {
	a, _ := s.grpcAddr.Load().(string)
	return a
}

// --- the OIP service ----------------------------------------------------------

type inferenceService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (g *inferenceService) ServerLive(ctx context.Context, _ *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (g *inferenceService) ServerReady(ctx context.Context, _ *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.IsReady()}, nil
}

func (g *inferenceService) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	v, err := g.s.repo.Get(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, g.s.grpcError(ctx, "ModelReady", err)
	}
	st, _ := v.Status()
	return &pb.ModelReadyResponse{Ready: st == repository.Ready && !g.s.draining.Load()}, nil
}

func (g *inferenceService) ServerMetadata(ctx context.Context, _ *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	ext := grpcExtensions
	if g.s.opts.DisableRepositoryAPI {
		ext = nil
	}
	return &pb.ServerMetadataResponse{Name: "tide", Version: g.s.opts.Version, Extensions: ext}, nil
}

func (g *inferenceService) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	v, err := g.s.repo.Get(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, g.s.grpcError(ctx, "ModelMetadata", err)
	}
	_, md, err := v.Model()
	if err != nil {
		return nil, g.s.grpcError(ctx, "ModelMetadata", err)
	}
	out := &pb.ModelMetadataResponse{Name: v.Name, Platform: md.Platform}
	if e, ok := g.s.repo.Entry(v.Name); ok {
		for _, ver := range e.Versions {
			out.Versions = append(out.Versions, ver.Version)
		}
	}
	for _, sp := range md.Inputs {
		out.Inputs = append(out.Inputs, &pb.ModelMetadataResponse_TensorMetadata{Name: sp.Name, Datatype: sp.Datatype.String(), Shape: sp.Shape})
	}
	for _, sp := range md.Outputs {
		out.Outputs = append(out.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: sp.Name, Datatype: sp.Datatype.String(), Shape: sp.Shape})
	}
	return out, nil
}

func (g *inferenceService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	start := time.Now()
	resp, err := g.modelInfer(ctx, req)
	code := http.StatusOK
	if err != nil {
		code = statusOf(err)
	}
	g.s.record(g.s.metricLabel(req.GetModelName()), protoGRPC, code, start)
	if err != nil {
		return nil, g.s.grpcError(ctx, "ModelInfer", err)
	}
	return resp, nil
}

func (g *inferenceService) modelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	v, err := g.s.repo.Get(req.GetModelName(), req.GetModelVersion())
	if err == nil {
		_, _, err = v.Model() // not ready: say so before decoding
	}
	if err != nil {
		return nil, err
	}
	inputs, err := InferInputsFromProto(req)
	if err != nil {
		return nil, err
	}
	var requested []string
	if len(req.GetOutputs()) > 0 {
		requested = make([]string, len(req.GetOutputs()))
		for i, o := range req.GetOutputs() {
			requested[i] = o.GetName()
		}
	}
	outs, err := g.s.infer(ctx, v, inputs, requested)
	if err != nil {
		return nil, err
	}
	resp := &pb.ModelInferResponse{ModelName: v.Name, ModelVersion: v.Version, Id: req.GetId()}
	resp.Outputs, resp.RawOutputContents = InferOutputsToProto(outs, len(req.GetRawInputContents()) > 0)
	return resp, nil
}

// errRepositoryAPIOff answers the repository RPCs when Options.DisableRepositoryAPI
// turns the extension off, as it does for REST.
var errRepositoryAPIOff = status.Error(codes.Unimplemented, "the model repository API is turned off on this server (--disable-repository-api)")

func (g *inferenceService) RepositoryIndex(ctx context.Context, req *pb.RepositoryIndexRequest) (*pb.RepositoryIndexResponse, error) {
	if g.s.opts.DisableRepositoryAPI {
		return nil, errRepositoryAPIOff
	}
	out := &pb.RepositoryIndexResponse{}
	for _, e := range g.s.repo.Index() {
		if req.GetReady() && e.State != repository.Ready {
			continue
		}
		out.Models = append(out.Models, &pb.RepositoryIndexResponse_ModelIndex{
			Name: e.Name, Version: e.Version, State: string(e.State), Reason: e.Reason})
	}
	return out, nil
}

// modelLoader is what a repository offers when it can load and unload models on
// request; the repository RPCs use it when it is there.
type modelLoader interface {
	LoadModel(ctx context.Context, name string) error
	UnloadModel(name string) error
}

func (g *inferenceService) RepositoryModelLoad(ctx context.Context, req *pb.RepositoryModelLoadRequest) (*pb.RepositoryModelLoadResponse, error) {
	if g.s.opts.DisableRepositoryAPI {
		return nil, errRepositoryAPIOff
	}
	ml, ok := any(g.s.repo).(modelLoader)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this server loads every model in its repository at start; loading a model on request is not supported")
	}
	if err := ml.LoadModel(ctx, req.GetModelName()); err != nil {
		return nil, g.s.grpcError(ctx, "RepositoryModelLoad", err)
	}
	return &pb.RepositoryModelLoadResponse{ModelName: req.GetModelName(), IsLoaded: true}, nil
}

func (g *inferenceService) RepositoryModelUnload(ctx context.Context, req *pb.RepositoryModelUnloadRequest) (*pb.RepositoryModelUnloadResponse, error) {
	if g.s.opts.DisableRepositoryAPI {
		return nil, errRepositoryAPIOff
	}
	ml, ok := any(g.s.repo).(modelLoader)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this server keeps every model in its repository loaded; unloading a model on request is not supported")
	}
	if err := ml.UnloadModel(req.GetModelName()); err != nil {
		return nil, g.s.grpcError(ctx, "RepositoryModelUnload", err)
	}
	return &pb.RepositoryModelUnloadResponse{ModelName: req.GetModelName(), IsUnloaded: true}, nil
}

// --- errors --------------------------------------------------------------------

// grpcCode maps the HTTP status statusOf chose to the gRPC code that means the same.
func grpcCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusOK:
		return codes.OK
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case 499:
		return codes.Canceled
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	}
	return codes.Internal
}

// grpcError turns err into a gRPC status with the same message REST would send,
// logging server-side failures, and asks shed or unready callers to retry later.
func (s *Server) grpcError(ctx context.Context, method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	st := statusOf(err)
	msg := err.Error()
	if st >= 500 && st != http.StatusServiceUnavailable && st != http.StatusGatewayTimeout {
		s.log.Error("gRPC call failed", "method", method, "status", st, "error", err)
		if st == http.StatusInternalServerError {
			msg = "internal error: " + msg
		}
	}
	if st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests {
		grpc.SetTrailer(ctx, metadata.Pairs("retry-after", "1"))
	}
	return status.Error(grpcCode(st), msg)
}

// grpcRecover keeps a panicking handler from taking the process down, as the HTTP
// front end does.
func (s *Server) grpcRecover(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("gRPC handler panic", "method", info.FullMethod, "panic", fmt.Sprint(p))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

func (s *Server) grpcRecoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("gRPC handler panic", "method", info.FullMethod, "panic", fmt.Sprint(p))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(srv, ss)
}

// --- tensors from and to protobuf ---------------------------------------------

// maxGRPCTensors bounds the inputs a request may list, as the REST decoder does.
const maxGRPCTensors = 1024

// maxGRPCRank bounds a tensor's dimensions, as the REST decoder does.
const maxGRPCRank = 32

// InferInputsFromProto converts a request's inputs to tensors: typed contents are
// used in place where the Go types agree (FP32, FP64, INT32, INT64, UINT32,
// UINT64, BOOL, BYTES), raw_input_contents are decoded from little-endian bytes.
// Errors are the caller's (InvalidArgument).
func InferInputsFromProto(req *pb.ModelInferRequest) ([]*tensor.Tensor, error) {
	ins := req.GetInputs()
	raw := req.GetRawInputContents()
	switch {
	case len(ins) == 0:
		return nil, invalidArg("request has no inputs")
	case len(ins) > maxGRPCTensors:
		return nil, invalidArg("more than %d inputs", maxGRPCTensors)
	case len(raw) > 0 && len(raw) != len(ins):
		return nil, invalidArg("raw_input_contents has %d entries for %d inputs; send one per input, in order", len(raw), len(ins))
	}
	out := make([]*tensor.Tensor, len(ins))
	for i, in := range ins {
		t, err := inputHeader(in, i)
		if err != nil {
			return nil, err
		}
		for _, prev := range out[:i] {
			if prev.Name == t.Name {
				return nil, invalidArg("input %q appears twice", t.Name)
			}
		}
		if len(raw) > 0 {
			if in.GetContents() != nil {
				return nil, invalidArg("input %q has contents although the request uses raw_input_contents; use one or the other", t.Name)
			}
			if t.Data, err = oip.DecodeRaw(t.Name, t.Datatype, t.Shape, raw[i]); err != nil {
				return nil, err
			}
		} else if t.Data, err = typedContents(t, in.GetContents()); err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func inputHeader(in *pb.ModelInferRequest_InferInputTensor, index int) (*tensor.Tensor, error) {
	if in.GetName() == "" {
		return nil, invalidArg("inputs[%d]: missing name", index)
	}
	dt, err := tensor.ParseDatatype(in.GetDatatype())
	if err != nil {
		return nil, invalidArg("input %q: %v", in.GetName(), err)
	}
	shape := in.GetShape()
	if len(shape) > maxGRPCRank {
		return nil, invalidArg("input %q: more than %d dimensions", in.GetName(), maxGRPCRank)
	}
	if tensor.NumElements(shape) < 0 {
		return nil, invalidArg("input %q: invalid shape %v", in.GetName(), shape)
	}
	return &tensor.Tensor{Name: in.GetName(), Datatype: dt, Shape: shape}, nil
}

// typedContents picks the contents field the datatype calls for and checks its
// length against the shape.
func typedContents(t *tensor.Tensor, c *pb.InferTensorContents) (any, error) {
	n := tensor.NumElements(t.Shape)
	var data any
	var field string
	var got int
	switch t.Datatype {
	case tensor.Bool:
		v := c.GetBoolContents()
		data, field, got = v, "bool_contents", len(v)
	case tensor.Int32:
		v := c.GetIntContents()
		data, field, got = v, "int_contents", len(v)
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
		data, field, got = v, "int64_contents", len(v)
	case tensor.Uint32:
		v := c.GetUintContents()
		data, field, got = v, "uint_contents", len(v)
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
		data, field, got = v, "uint64_contents", len(v)
	case tensor.FP32:
		v := c.GetFp32Contents()
		data, field, got = v, "fp32_contents", len(v)
	case tensor.FP64:
		v := c.GetFp64Contents()
		data, field, got = v, "fp64_contents", len(v)
	case tensor.Bytes:
		v := c.GetBytesContents()
		data, field, got = v, "bytes_contents", len(v)
	default: // FP16, BF16: the protocol has no typed field for them
		return nil, invalidArg("input %q: %s has no typed contents in the protocol; send it in raw_input_contents", t.Name, t.Datatype)
	}
	if int64(got) != n {
		return nil, invalidArg("input %q: shape %v needs %d elements, %s has %d", t.Name, t.Shape, n, field, got)
	}
	return data, nil
}

func narrowInts(t *tensor.Tensor, v []int32) (any, error) {
	lo, hi := int32(math.MinInt8), int32(math.MaxInt8)
	if t.Datatype == tensor.Int16 {
		lo, hi = math.MinInt16, math.MaxInt16
	}
	for i, x := range v {
		if x < lo || x > hi {
			return nil, invalidArg("input %q: element %d is %d, out of range for %s", t.Name, i, x, t.Datatype)
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
			return nil, invalidArg("input %q: element %d is %d, out of range for %s", t.Name, i, x, t.Datatype)
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
	for _, t := range outs {
		if t.Datatype == tensor.FP16 || t.Datatype == tensor.BF16 {
			raw = true
		}
	}
	pbOuts := make([]*pb.ModelInferResponse_InferOutputTensor, len(outs))
	for i, t := range outs {
		pbOuts[i] = &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape}
	}
	if raw {
		size := 0
		for _, t := range outs {
			size += oip.RawSize(t)
		}
		buf := make([]byte, 0, size) // one allocation for every output
		contents := make([][]byte, len(outs))
		for i, t := range outs {
			start := len(buf)
			buf = oip.AppendRaw(buf, t)
			contents[i] = buf[start:len(buf):len(buf)]
		}
		return pbOuts, contents
	}
	for i, t := range outs {
		pbOuts[i].Contents = typedOutput(t)
	}
	return pbOuts, nil
}

func typedOutput(t *tensor.Tensor) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
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
	return c
}

func widen[T int32 | uint32, S int8 | int16 | uint8 | uint16](v []S) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

// invalidArg is a caller error; statusOf makes it 400 and grpcCode InvalidArgument.
func invalidArg(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// --- health --------------------------------------------------------------------

// healthService answers grpc.health.v1 from the server's readiness at the moment of
// the call, so it needs no updates pushed to it: SERVING once the models are
// loaded, NOT_SERVING while loading or draining. The empty service name and the
// OIP service name both mean the whole server.
type healthService struct {
	healthpb.UnimplementedHealthServer
	s *Server
}

// healthWatchInterval is how often Watch re-reads readiness.
const healthWatchInterval = 250 * time.Millisecond

func (h *healthService) status(service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	if service != "" && service != inferenceServiceName {
		return healthpb.HealthCheckResponse_SERVICE_UNKNOWN, status.Errorf(codes.NotFound, "unknown service %q (known: \"\", %q)", service, inferenceServiceName)
	}
	if h.s.IsReady() {
		return healthpb.HealthCheckResponse_SERVING, nil
	}
	return healthpb.HealthCheckResponse_NOT_SERVING, nil
}

func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, err := h.status(req.GetService())
	if err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

func (h *healthService) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	st, _ := h.status("")
	resp := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{
		"":                   {Status: st},
		inferenceServiceName: {Status: st},
	}}
	return resp, nil
}

// Watch sends the status now and on every change. It ends once the server drains,
// after saying NOT_SERVING, so that open watches do not hold up the graceful stop.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	service := req.GetService()
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	tick := time.NewTicker(healthWatchInterval)
	defer tick.Stop()
	for {
		// Read draining before the status: once it is seen, the status read after it
		// is NOT_SERVING and goes out before the stream ends.
		draining := h.s.draining.Load()
		st, err := h.status(service)
		if err != nil {
			st = healthpb.HealthCheckResponse_SERVICE_UNKNOWN // Watch reports, never fails, for unknown services
		}
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		if draining {
			return nil
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-tick.C:
		}
	}
}
