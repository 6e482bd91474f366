// Package tracing owns Tide's OpenTelemetry traces: whether they are on, how they
// are exported (the standard OTEL_* environment variables, so that a collector's
// usual settings work unchanged), the span names and attribute keys (a contract
// with whoever builds dashboards on them, as internal/metrics' series are), and
// the W3C trace-context propagation that carries a client's trace through the
// activator into the server.
//
// Tracing is off unless the environment asks for it. Off, the hot path pays one
// atomic load per request: callers check On before they build a span, because
// even the no-op tracer allocates a context per span.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Span names. A request's trace is: the server span (named by its route, e.g.
// "POST /v2/models/{name}/infer"), under it decode, infer and encode; under infer,
// queue (admission and the batch wait) and batch (the joined run), and under
// batch, model (the runtime itself). The activator adds its own span above the
// server's.
const (
	SpanDecode    = "decode"
	SpanInfer     = "infer"
	SpanQueue     = "queue"
	SpanBatch     = "batch"
	SpanModel     = "model"
	SpanEncode    = "encode"
	SpanActivator = "activator"
)

// Attribute keys Tide sets on its spans, besides OpenTelemetry's HTTP and RPC
// conventions.
const (
	Model         = attribute.Key("tide.model")
	ModelVersion  = attribute.Key("tide.model.version")
	Protocol      = attribute.Key("tide.protocol")
	RequestID     = attribute.Key("tide.request_id")
	BatchRows     = attribute.Key("tide.batch.rows")
	BatchRequests = attribute.Key("tide.batch.requests")
	QueueSeconds  = attribute.Key("tide.queue.seconds")
	RequestRows   = attribute.Key("tide.request.rows")
	HeldSeconds   = attribute.Key("tide.activator.held_seconds")
)

// instrumentation is the tracer's name: the code that makes the spans.
const instrumentation = "github.com/tideserve/tide"

var (
	on     atomic.Bool
	tracer trace.Tracer = noop.NewTracerProvider().Tracer(instrumentation)
)

// propagator is W3C trace context plus baggage, always: with tracing off, a
// traceparent still passes through the activator untouched (it is just a header).
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// On reports whether spans are recorded and exported.
func On() bool { return on.Load() }

// Tracer is the tracer every Tide span starts from (a no-op one when off).
func Tracer() trace.Tracer { return tracer }

// Extract returns ctx carrying the remote span context in h (traceparent,
// tracestate, baggage), if any.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject writes ctx's span context into h for the next hop.
func Inject(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Propagator is the propagator Tide uses (for instrumentation libraries such as
// otelgrpc that take one).
func Propagator() propagation.TextMapPropagator { return propagator }

// Config is the tracing setup the OTEL_* environment asks for.
type Config struct {
	// Enabled: an OTLP endpoint is set or OTEL_TRACES_EXPORTER=otlp, and neither
	// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise.
	Enabled bool
	// Protocol is "grpc" or "http/protobuf" (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
	// else OTEL_EXPORTER_OTLP_PROTOCOL; the specification's default is
	// http/protobuf).
	Protocol string
	// Sampler is the parsed OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
	Sampler sdktrace.Sampler
	// SamplerName describes it for the startup log line.
	SamplerName string
	// RootRatio is the share of requests without a trace context that start a
	// trace (1 for always_on, 0 for always_off, the ratio for traceidratio).
	RootRatio float64
}

// FromEnv reads the tracing configuration from getenv (os.Getenv in production),
// refusing values the SDK would silently ignore. Endpoint, headers, timeout,
// compression and TLS are read by the OTLP exporters themselves from the same
// standard variables.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch exporter {
	case "", "otlp":
		c.Enabled = exporter == "otlp" || endpoint != ""
	case "none":
	default:
		return c, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Tide exports traces over OTLP only (want otlp or none)", exporter)
	}
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); strings.EqualFold(v, "true") {
		c.Enabled = false
	}
	c.Protocol = firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch c.Protocol {
	case "":
		c.Protocol = "http/protobuf"
	case "grpc", "http/protobuf":
	default:
		return c, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want grpc or http/protobuf", c.Protocol)
	}
	s, name, root, err := parseSampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return c, err
	}
	c.Sampler, c.SamplerName, c.RootRatio = s, name, root
	return c, nil
}

func firstSet(getenv func(string) string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

// parseSampler understands the specification's sampler names. The default is
// the specification's too, parentbased_always_on: a trace a client started and
// sampled is recorded, and every request without one starts a trace. Production
// setups set parentbased_traceidratio with a small ratio.
func parseSampler(name, arg string) (sdktrace.Sampler, string, float64, error) {
	name = strings.TrimSpace(name)
	ratio := 1.0
	if arg = strings.TrimSpace(arg); arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, "", 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	withRatio := name + " " + strconv.FormatFloat(ratio, 'g', -1, 64)
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), "parentbased_always_on", 1, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), name, 0, nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), withRatio, ratio, nil
	case "always_on":
		return sdktrace.AlwaysSample(), name, 1, nil
	case "always_off":
		return sdktrace.NeverSample(), name, 0, nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), withRatio, ratio, nil
	}
	return nil, "", 0, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// The sampling decision for a request that arrives without a trace context is
// made before any span exists (RequestContext), because at 1% sampling the other
// 99% must cost next to nothing, and a span the SDK starts and drops costs an ID,
// a sampler call and two allocations. The SDK's sampler is wrapped to honour it.

// rootRatio is Config.RootRatio while tracing is on.
var rootRatio atomic.Uint64 // math.Float64bits

// chosenRoot marks a context whose request was drawn to start a trace.
type chosenRoot struct{}

// RequestContext is the context a server span for an incoming request starts
// from: the request's own trace context when it carries one (the sampler then
// follows it, parent-based), else, for the configured share of requests, a
// context marked to start a sampled trace. ok is false for a request that is
// not to be traced at all.
func RequestContext(ctx context.Context, h http.Header) (_ context.Context, ok bool) {
	if _, has := h["Traceparent"]; has {
		return Extract(ctx, h), true
	}
	r := math.Float64frombits(rootRatio.Load())
	if r <= 0 || (r < 1 && rand.Float64() >= r) {
		return ctx, false
	}
	return context.WithValue(ctx, chosenRoot{}, true), true
}

// sampler is the configured sampler, except where Tide decided already: a root
// chosen by RequestContext is sampled, and a span under a local parent (decode,
// infer… under the server span) follows its parent, so that a trace is never
// cut in two by a ratio applied again inside one process.
type sampler struct{ configured sdktrace.Sampler }

func (s sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	switch {
	case psc.IsValid() && !psc.IsRemote():
		if psc.IsSampled() {
			return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: psc.TraceState()}
		}
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: psc.TraceState()}
	case !psc.IsValid() && p.ParentContext.Value(chosenRoot{}) != nil:
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
	}
	return s.configured.ShouldSample(p)
}

func (s sampler) Description() string { return "tide(" + s.configured.Description() + ")" }

// Start turns tracing on as cfg says, for the named service (OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES win over it). The returned shutdown flushes what
// is buffered; call it once, on exit. With cfg.Enabled false it does nothing.
func Start(ctx context.Context, cfg Config, service, version string) (shutdown func(context.Context) error, err error) {
	if !cfg.Enabled {
		return func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	switch cfg.Protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // after the defaults, so that the environment wins
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource attributes: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler{cfg.Sampler}),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	turnOn(tp, cfg)
	return func(ctx context.Context) error {
		turnOff()
		return tp.Shutdown(ctx)
	}, nil
}

func turnOn(tp *sdktrace.TracerProvider, cfg Config) {
	tracer = tp.Tracer(instrumentation)
	rootRatio.Store(math.Float64bits(cfg.RootRatio))
	on.Store(true)
}

func turnOff() {
	on.Store(false)
	tracer = noop.NewTracerProvider().Tracer(instrumentation)
}

// Use turns tracing on with exp as the exporter and cfg's sampler, for tests and
// benchmarks that need spans without a collector: spans go to exp as they end
// (sync) or in batches. stop flushes and turns tracing off.
func Use(exp sdktrace.SpanExporter, cfg Config, sync bool) (stop func()) {
	export := sdktrace.WithBatcher(exp)
	if sync {
		export = sdktrace.WithSyncer(exp)
	}
	tp := sdktrace.NewTracerProvider(export, sdktrace.WithSampler(sampler{cfg.Sampler}))
	turnOn(tp, cfg)
	return func() {
		turnOff()
		tp.Shutdown(context.Background())
	}
}

// TraceID returns the sampled span's trace id in ctx as hex, or "" (for
// exemplars and log lines: an id nobody can look up is noise).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}

// Recording returns ctx's span when tracing is on and that span records, else
// nil: the one check every layer makes before it spends anything on a span.
func Recording(ctx context.Context) trace.Span {
	if !On() {
		return nil
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		return span
	}
	return nil
}

// Fail marks span failed with err's one-line message, if it records.
func Fail(span trace.Span, err error) {
	if span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// EndServer ends a server span (the server's, the activator's) with the HTTP
// status it answered, failed when that is a 5xx.
func EndServer(span trace.Span, status int) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
