package server

// The Open Inference Protocol v2 over gRPC (inference.GRPCInferenceService), beside
// the REST front end: the same repository, the same infer path (admission, batching,
// metrics), the same errors mapped to gRPC codes. Also the standard gRPC health
// service (for Kubernetes gRPC probes) and server reflection (for grpcurl).

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tracing"
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
	codec := newLenientCodec()
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(s.opts.MaxBodyBytes, math.MaxInt32))),
		grpc.InitialWindowSize(grpcWindow(s.opts.MaxBodyBytes)),
		grpc.InitialConnWindowSize(grpcWindow(s.opts.MaxBodyBytes)),
		grpc.ForceServerCodecV2(codec),
		// One unary interceptor: gRPC's chain of several allocates a closure per
		// interceptor per call.
		grpc.UnaryInterceptor(s.grpcUnary(codec, auth)),
		grpc.ChainStreamInterceptor(s.grpcRecoverStream, codec.stream, auth.stream),
		// Idle connections close like HTTP keep-alives do, so clients re-resolve and
		// spread over new replicas.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.opts.IdleTimeout}),
	}
	if tracing.On() {
		// otelgrpc continues the client's trace and makes the RPC's server span;
		// decode, infer and encode hang under it as they do for REST.
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithPropagators(tracing.Propagator()),
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool { return !strings.HasPrefix(info.FullMethodName, "/grpc.health.") }))))
	}
	cfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	gs := grpc.NewServer(opts...)
	gs.RegisterService(inferenceServiceDesc(), newInferenceService(s))
	healthpb.RegisterHealthServer(gs, &healthService{s: s})
	reflection.Register(gs)
	return gs, nil
}

// grpcWindow is the HTTP/2 flow-control window of the gRPC server's streams
// and connections: room for the largest request the server takes, between
// HTTP/2's default of 64 KiB and 16 MiB, the most gRPC's bandwidth estimator
// would grow a window to. A window set is a fixed one, so the estimator is
// off, and with it the ping it sends (and parses the answer to) on every
// call that carries data: a request of any allowed size goes out without
// waiting for the window to grow, and a client can have no more unread bytes
// in flight than the estimator would have let it at its peak.
func grpcWindow(maxBody int64) int32 {
	const http2Default, estimatorPeak = 64 << 10, 16 << 20
	const grpcMessageHeader = 5 // each message's length prefix
	return int32(min(max(maxBody+grpcMessageHeader, http2Default), estimatorPeak))
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
	go func() {
		g.errc <- gs.Serve(arrivalListener{Listener: ln, draining: &s.draining, arrivals: &s.arrivals})
	}()
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
	// inferInfo and inferHandler are what handleModelInfer gives the
	// interceptor on every call, made once.
	inferInfo    *grpc.UnaryServerInfo
	inferHandler grpc.UnaryHandler
}

func newInferenceService(s *Server) *inferenceService {
	g := &inferenceService{s: s}
	g.inferInfo = &grpc.UnaryServerInfo{Server: g, FullMethod: pb.GRPCInferenceService_ModelInfer_FullMethodName}
	g.inferHandler = func(ctx context.Context, req any) (any, error) {
		call := req.(*oip.InferCall)
		// The model may write into its last outputs' memory: their answer was
		// encoded before the call came back to the pool (handleModelInfer).
		call.Outputs.Next()
		if c, ok := ctx.(*grpcCallContext); ok {
			c.outputs = &call.Outputs
		}
		resp, err := g.inferCall(ctx, call)
		if err != nil {
			return nil, err
		}
		// Encoded here, inside the interceptor, which sends the header after
		// it: the header then goes out with the answer's bytes, not alone.
		return encodeAnswer(resp)
	}
	return g
}

// inferenceServiceDesc is the generated service description with ModelInfer
// handled by handleModelInfer, which decodes into pooled calls, rather than by
// the generated handler, which decodes every request into new messages.
func inferenceServiceDesc() *grpc.ServiceDesc {
	desc := pb.GRPCInferenceService_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "ModelInfer" {
			desc.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				return srv.(*inferenceService).handleModelInfer(ctx, dec, interceptor)
			}
		}
	}
	return &desc
}

// inferCalls are ModelInfer calls' messages and memory, for the next calls.
var inferCalls = sync.Pool{New: func() any { return new(oip.InferCall) }}

// maxPooledCall is the most memory a call may keep and go back to the pool:
// a call that took a larger request is left to the collector.
const maxPooledCall = 256 << 10

// handleModelInfer decodes the request into a pooled call and runs it through
// the interceptor; the handler encodes the answer, so the call goes back to the
// pool with nothing of it left to read (the answer's outputs may share the
// request's memory) once the next request reuses it. A call that failed is not
// reused: the model may still hold its inputs (a request given up in a
// batcher's queue).
func (g *inferenceService) handleModelInfer(ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	call := inferCalls.Get().(*oip.InferCall)
	if err := dec(call); err != nil {
		return nil, err
	}
	var answer any
	var err error
	if interceptor == nil {
		answer, err = g.inferHandler(ctx, call)
	} else {
		answer, err = interceptor(ctx, call, g.inferInfo, g.inferHandler)
	}
	if err != nil {
		return nil, err
	}
	if call.Retained() <= maxPooledCall {
		inferCalls.Put(call)
	}
	return answer, nil
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
		out.Versions = e.VersionNames()
	}
	for _, sp := range md.Inputs {
		out.Inputs = append(out.Inputs, &pb.ModelMetadataResponse_TensorMetadata{Name: sp.Name, Datatype: sp.Datatype.String(), Shape: sp.Shape})
	}
	for _, sp := range md.Outputs {
		out.Outputs = append(out.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: sp.Name, Datatype: sp.Datatype.String(), Shape: sp.Shape})
	}
	return out, nil
}

// ModelInfer answers a request decoded elsewhere (the service's interface;
// the server itself takes ModelInfer calls through handleModelInfer).
func (g *inferenceService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	call := new(oip.InferCall)
	proto.Merge(&call.Request, req)
	return g.inferCall(ctx, call)
}

// inferCall answers the call's request in its response.
func (g *inferenceService) inferCall(ctx context.Context, call *oip.InferCall) (*pb.ModelInferResponse, error) {
	start := time.Now()
	err := g.modelInfer(ctx, call)
	code := http.StatusOK
	if err != nil {
		code = statusOf(err)
	}
	g.s.record(ctx, g.s.metricLabel(call.Request.GetModelName()), protoGRPC, code, start)
	if err != nil {
		return nil, g.s.grpcError(ctx, "ModelInfer", err)
	}
	return &call.Response, nil
}

func (g *inferenceService) modelInfer(ctx context.Context, call *oip.InferCall) error {
	req := &call.Request
	v, err := g.s.repo.Get(req.GetModelName(), req.GetModelVersion())
	if err == nil {
		_, _, err = v.Model() // not ready: say so before decoding
	}
	if err != nil {
		return err
	}
	decoding := phase(ctx, tracing.SpanDecode)
	inputs, err := call.Inputs()
	endPhase(decoding, err)
	if err != nil {
		return err
	}
	var requested []string
	if len(req.GetOutputs()) > 0 {
		requested = make([]string, len(req.GetOutputs()))
		for i, o := range req.GetOutputs() {
			requested[i] = o.GetName()
		}
	}
	id := req.GetId()
	if id == "" {
		id = grpcRequestID(ctx)
	}
	outs, mon, err := g.s.infer(ctx, v, id, inputs, requested)
	if err != nil {
		return err
	}
	encoding := phase(ctx, tracing.SpanEncode)
	defer encoding.End()
	resp := &call.Response
	resp.Reset()
	resp.ModelName, resp.ModelVersion, resp.Id = v.Name, v.Version, id
	call.SetOutputs(outs, len(req.GetRawInputContents()) > 0)
	if mon != nil && mon.SamplePayload() {
		// The protobuf JSON mapping of both messages (raw contents as base64).
		reqJSON, _ := protojson.Marshal(req)
		respJSON, _ := protojson.Marshal(resp)
		mon.LogPayload(monitor.Payload{ID: id, Model: v.Name, Version: v.Version, Endpoint: "grpc", Time: time.Now(),
			Request: reqJSON, Response: respJSON, ContentType: "application/json"})
	}
	return nil
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

// modelControlRefusal is why load and unload are refused over gRPC, or nil: the
// repository API off, model control served on the management port instead, or
// model control off.
func (g *inferenceService) modelControlRefusal(ctx context.Context, rpc string) error {
	switch {
	case g.s.opts.DisableRepositoryAPI:
		return errRepositoryAPIOff
	case g.s.management != nil:
		return status.Error(codes.Unimplemented, errControlElsewhere)
	case !g.s.modelControlOn():
		return g.s.grpcError(ctx, rpc, modelControlOff)
	}
	return nil
}

func (g *inferenceService) RepositoryModelLoad(ctx context.Context, req *pb.RepositoryModelLoadRequest) (*pb.RepositoryModelLoadResponse, error) {
	if err := g.modelControlRefusal(ctx, "RepositoryModelLoad"); err != nil {
		return nil, err
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
	if err := g.modelControlRefusal(ctx, "RepositoryModelUnload"); err != nil {
		return nil, err
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
	return status.Error(oip.GRPCCode(st), msg)
}

// grpcUnary is the server's unary interceptor. In order: a panicking handler
// is recovered (it must not take the process down, as the HTTP server's
// recovery ensures for REST), the call is observed (grpcObserve), the codec's
// check runs before anything that may answer early (auth), so that every note
// it took is taken out again, then the key is checked.
//
// The request id's header is sent last, whatever the outcome, panics included:
// gRPC writes the answer right after, so the header frame goes out with it, and
// a header sent is the stream's header as it is, where one set (SetHeader) is
// copied into a new map for the answer to send later.
func (s *Server) grpcUnary(codec *lenientCodec, auth *grpcAuth) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		var header metadata.MD
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("gRPC handler panic", "method", info.FullMethod, "panic", fmt.Sprint(p))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
			if header != nil {
				grpc.SendHeader(ctx, header) // fails only once the call is over (its deadline, the client gone)
			}
		}()
		ctx, header, done := s.grpcObserve(ctx, info)
		if err = codec.malformed(req); err == nil {
			if err = auth.check(ctx, info.FullMethod); err == nil {
				resp, err = handler(ctx, req)
			}
		}
		done(err)
		return resp, err
	}
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
