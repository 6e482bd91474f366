package server

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tracing"
)

// What every request carries for whoever follows it later: a request id (in the
// answer, the logs, the span and the OIP id), a span when tracing is on, and a
// line in the access log when it is sampled.

// headerRequestID is the request id header, accepted from clients and proxies and
// always answered.
const headerRequestID = "X-Request-Id"

// maxRequestIDLen bounds an accepted request id: ids travel into logs and spans.
const maxRequestIDLen = 128

// requestIDHeader is the request id as the answer's header value: the client's
// (the first of given, its header's or metadata's values) if it is 1 to 128
// visible ASCII characters, else a new one, made in box (a new box when nil):
// a hostile id (control characters, megabytes) must not reach a log line. A
// kept id's slice is given's, cut to the one value and its capacity, so an
// append to the answer's header copies rather than writing into the request's.
func requestIDHeader(given []string, box *requestIDBox) []string {
	if len(given) > 0 && validRequestID(given[0]) {
		return given[:1:1]
	}
	if box == nil {
		box = new(requestIDBox)
	}
	return box.newID()
}

func validRequestID(id string) bool {
	n := len(id)
	if n == 0 || n > maxRequestIDLen {
		return false
	}
	for i := 0; i < n; i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID is a new id on its own.
func newRequestID() string { return new(requestIDBox).newID()[0] }

// requestIDBox holds a new id as the answer's header value: the id and the
// one-element slice the header map holds share one allocation, since every
// request without an id of its own needs both.
type requestIDBox struct {
	value [1]string
	digit [16]byte
}

// newID makes the box's id, 16 random hex digits: unique enough to find one
// request in a day of logs, and cheap (no lock, no syscall) on every request.
func (b *requestIDBox) newID() []string {
	const hex = "0123456789abcdef"
	v := rand.Uint64()
	for i := range b.digit {
		b.digit[i] = hex[v&15]
		v >>= 4
	}
	b.value[0] = unsafe.String(&b.digit[0], len(b.digit)) // never written again
	return b.value[:]
}

// requestIDOf is the id ServeHTTP chose for this request. It is read back from
// the answer's headers, where ServeHTTP put it before any handler ran, rather
// than from the request's context: a context value would cost a copy of the
// request on every call.
func requestIDOf(w http.ResponseWriter) string {
	if v := w.Header()[headerRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// The probes' and the scrapes' routes: every kubelet and Prometheus calls them
// on every pod every few seconds.
const (
	routeLive    = "GET /v2/health/live"
	routeReady   = "GET /v2/health/ready"
	routeMetrics = "GET /metrics"
)

// quietRoutes are the probes' and the scrapes' routes, which are not client
// traffic: no one wants a span or an access log line per call of them, and
// they do not hold a draining server listening (isTraffic).
var quietRoutes = map[string]bool{routeLive: true, routeReady: true, routeMetrics: true}

// observed serves r through h with a server span (when tracing is on) and an
// access log line (when sampled). It is the slow path: ServeHTTP takes it only
// when one of them applies.
func (s *Server) observed(w http.ResponseWriter, r *http.Request, pattern, rid string, traced, logged bool) {
	start := time.Now()
	var span trace.Span // the server span, when this request is sampled
	if traced {
		r, span = serverSpan(r, pattern, rid)
	}
	if span == nil && !logged {
		// Not sampled and not logged, as most requests are: the plain path.
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if span != nil {
			tracing.EndServer(span, rec.status)
		}
		if logged {
			s.accessLog(r, rec, pattern, rid, time.Since(start))
		}
	}()
	s.mux.ServeHTTP(rec, r)
}

// serverSpan starts r's server span and returns r carrying it, or r and nil
// when the request is not sampled (its own unsampled trace, or not drawn).
func serverSpan(r *http.Request, pattern, rid string) (*http.Request, trace.Span) {
	ctx, ok := tracing.RequestContext(r.Context(), r.Header)
	if !ok {
		return r, nil
	}
	ctx, span := tracing.Tracer().Start(ctx, pattern, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return r, nil
	}
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLPath(r.URL.Path),
		semconv.HTTPRoute(routeOf(pattern)),
		tracing.RequestID.String(rid),
	)
	return r.WithContext(ctx), span
}

// routeOf drops the method from a ServeMux pattern ("POST /predict" → "/predict").
func routeOf(pattern string) string {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			return pattern[i+1:]
		}
	}
	return pattern
}

// sampleAccessLog decides whether this request gets an access log line.
func (s *Server) sampleAccessLog() bool {
	p := s.opts.AccessLogSample
	return p > 0 && (p >= 1 || rand.Float64() < p)
}

// accessLog writes one structured line about a finished request: never its body,
// its query string or its API key.
func (s *Server) accessLog(r *http.Request, rec *recordingWriter, pattern, rid string, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("request_id", rid),
		slog.String("method", r.Method),
		slog.String("route", routeOf(pattern)),
		slog.String("path", echoPath(r.URL.Path)),
		slog.Int("status", rec.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int64("bytes_in", r.ContentLength),
		slog.Int64("bytes_out", rec.bytes),
		slog.String("remote", r.RemoteAddr),
	}
	if id := tracing.TraceID(r.Context()); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "access log", attrs...)
}

// recordingWriter notes the status and the bytes written, for the span and the
// access log.
type recordingWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// phase starts the span of one step of a request (decode, encode) under the
// request's span; with tracing off, or no span to hang it on, it costs nothing
// and the returned span's End does nothing.
func phase(ctx context.Context, name string) trace.Span {
	if tracing.Recording(ctx) == nil {
		return trace.SpanFromContext(context.Background()) // a no-op span
	}
	_, span := tracing.Tracer().Start(ctx, name)
	return span
}

// endPhase ends a phase's span, failed if err is not nil.
func endPhase(span trace.Span, err error) {
	if err != nil {
		tracing.Fail(span, err)
	}
	span.End()
}

// grpcRequestIDKey carries a gRPC call's request id in its context, as a
// *string (a pointer goes into the context without a copy).
type grpcRequestIDKey struct{}

// grpcCallContext is a gRPC call's context with its request id: the context,
// the id and a new id's digits in one allocation, where context.WithValue and
// the id would take one each.
type grpcCallContext struct {
	context.Context
	id  *string
	box requestIDBox
	// outputs is the memory the call lends its model (ModelInfer's pooled
	// calls), answered for model.OutputReuseKey.
	outputs *model.OutputReuse
}

func (c *grpcCallContext) Value(key any) any {
	switch key.(type) {
	case grpcRequestIDKey:
		return c.id
	case model.OutputReuseKey:
		return c.outputs
	}
	return c.Context.Value(key)
}

// grpcMetadataRequestID is the request id's metadata key (lower case, as gRPC
// metadata keys are).
const grpcMetadataRequestID = "x-request-id"

// grpcObserve is the gRPC counterpart of what ServeHTTP does for every request:
// it accepts or makes the request id, tags the RPC's span with it, and returns
// the call's context, the header metadata that answers the id (for the caller
// to send once the answer is ready: grpcUnary) and what to call with the
// call's outcome, which writes the sampled access log line.
func (s *Server) grpcObserve(ctx context.Context, info *grpc.UnaryServerInfo) (context.Context, metadata.MD, func(error)) {
	// Only this key's values, not FromIncomingContext's copy of every key. The
	// header takes the id's slice and the context a pointer into it, so the id
	// is not copied.
	call := &grpcCallContext{Context: ctx}
	hdr := requestIDHeader(metadata.ValueFromIncomingContext(ctx, grpcMetadataRequestID), &call.box)
	rid := hdr[0]
	header := metadata.MD{grpcMetadataRequestID: hdr}
	call.id = &hdr[0]
	ctx = call
	if span := tracing.Recording(ctx); span != nil {
		span.SetAttributes(tracing.RequestID.String(rid))
	}
	if !s.sampleAccessLog() {
		return ctx, header, noAccessLog
	}
	start := time.Now()
	return ctx, header, func(err error) {
		attrs := []slog.Attr{
			slog.String("request_id", rid),
			slog.String("method", info.FullMethod),
			slog.String("code", status.Code(err).String()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if p, ok := peer.FromContext(ctx); ok {
			attrs = append(attrs, slog.String("remote", p.Addr.String()))
		}
		if id := tracing.TraceID(ctx); id != "" {
			attrs = append(attrs, slog.String("trace_id", id))
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "access log", attrs...)
	}
}

// noAccessLog is grpcObserve's outcome function for a call outside the sample.
func noAccessLog(error) {}

// grpcRequestID is the id grpcObserve chose for this call.
func grpcRequestID(ctx context.Context) string {
	if id, _ := ctx.Value(grpcRequestIDKey{}).(*string); id != nil {
		return *id
	}
	return ""
}
