// Package activator is the small, always-running HTTP proxy that makes scale to zero
// safe. A Deployment that KEDA scales to zero has no pod to count the request that
// should wake it, and a Service with no endpoints refuses connections. The activator
// sits in front of the Service: it counts every arrival and the requests it is
// holding (the metrics KEDA's Prometheus trigger reads), and while no backend accepts
// connections it keeps the request, retrying until one does or the hold timeout
// passes. The first requests after idle therefore wait for a pod to start instead of
// failing.
//
// It only retries when the connection could not be made, so a request is never sent
// to a backend twice.
//
// It is also the router of a canary rollout (route.go, router.go): a route set
// on its ops port sends a share of requests to a candidate version, or mirrors
// them to it, measures both versions and compares their answers.
package activator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tideserve/tide/internal/rollout"
	"github.com/tideserve/tide/internal/tracing"
)

// Config says where to send requests and how long to hold them.
type Config struct {
	// Target is the backend's base URL, e.g. http://fraud-tide.models.svc:80.
	Target *url.URL
	// HoldTimeout bounds how long one request waits for a backend to accept it.
	HoldTimeout time.Duration
	// RetryInterval is the pause between connection attempts while no backend answers.
	RetryInterval time.Duration
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration
	// MaxBodyBytes caps a request body, which is kept in memory so it can be resent.
	MaxBodyBytes int64
	// MaxHeld caps the requests held at once; more are refused with 503.
	MaxHeld int
	// ControlToken, when set, lets a caller holding it set the route (PUT
	// /v1/route on the ops port); empty, the route cannot be changed.
	ControlToken string
	// MirrorQueue bounds the mirrored requests waiting to be sent; more are
	// dropped (and counted), so mirroring never delays or piles up behind answers.
	MirrorQueue int
	// MirrorWorkers send mirrored requests.
	MirrorWorkers int
	// MaxAnswerBytes of an answer are kept to compare the versions' predictions;
	// a longer answer is passed on but not compared.
	MaxAnswerBytes int
}

// withDefaults fills the zero fields with values that suit a pod start of a few seconds.
func (c Config) withDefaults() Config {
	if c.HoldTimeout <= 0 {
		c.HoldTimeout = 60 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 200 * time.Millisecond
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = 1000
	}
	if c.MirrorQueue <= 0 {
		c.MirrorQueue = 256
	}
	if c.MirrorWorkers <= 0 {
		c.MirrorWorkers = 8
	}
	if c.MaxAnswerBytes <= 0 {
		c.MaxAnswerBytes = 1 << 20
	}
	return c
}

// Proxy is an http.Handler that forwards to Config.Target.
type Proxy struct {
	cfg     Config
	proxy   *httputil.ReverseProxy
	log     *slog.Logger
	held    atomic.Int64
	metrics *metrics
	router  *routerMetrics

	route   atomic.Pointer[liveRoute]
	meas    measurement
	mirrors chan mirrorJob
	mirrorC *http.Client
	workers sync.WaitGroup
}

type metrics struct {
	requests *prometheus.CounterVec
	held     prometheus.Gauge
	wait     prometheus.Histogram
}

// New builds a Proxy and registers its metrics with reg (nil: not registered).
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Proxy, error) {
	if cfg.Target == nil || (cfg.Target.Scheme != "http" && cfg.Target.Scheme != "https") || cfg.Target.Host == "" {
		return nil, errors.New("activator: target must be an http:// or https:// URL with a host")
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tide_activator_requests_total",
			Help: "Requests that reached the activator, by the HTTP status returned.",
		}, []string{"code"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tide_activator_held_requests",
			Help: "Requests waiting for a backend to accept a connection.",
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tide_activator_wait_seconds",
			Help:    "How long requests that found no backend waited for one.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120},
		}),
	}
	rm := newRouterMetrics()
	if reg != nil {
		for _, c := range append([]prometheus.Collector{m.requests, m.held, m.wait}, rm.collectors()...) {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("activator: register metrics: %w", err)
			}
		}
	}
	p := &Proxy{cfg: cfg, log: log, metrics: m, router: rm, mirrors: make(chan mirrorJob, cfg.MirrorQueue)}
	p.route.Store(&liveRoute{})
	p.meas.reset(rollout.Route{}, time.Now())
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:               nil, // the target is inside the cluster: never via an HTTP proxy
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(routedOf(r.In.Context()).target)
			r.SetXForwarded()
			if tracing.On() {
				// The backend's span is a child of the activator's. Off, the client's
				// traceparent passes through as it came.
				tracing.Inject(r.Out.Context(), r.Out.Header)
			}
		},
		Transport:      &holdingTransport{p: p, base: base},
		ErrorHandler:   p.proxyError,
		ModifyResponse: p.markAnswer,
	}
	// Mirrors are not held: a version that refuses a mirror has failed it.
	p.mirrorC = &http.Client{Transport: base, Timeout: 30 * time.Second}
	for range cfg.MirrorWorkers {
		p.workers.Add(1)
		go p.mirrorLoop()
	}
	return p, nil
}

// Held reports how many requests are waiting for a backend now.
func (p *Proxy) Held() int { return int(p.held.Load()) }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	if tracing.On() {
		ctx, span := tracing.Tracer().Start(tracing.Extract(r.Context(), r.Header), tracing.SpanActivator,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		defer func() { tracing.EndServer(span, rec.code) }()
		r = r.WithContext(ctx)
	}
	defer func() { p.metrics.requests.WithLabelValues(strconv.Itoa(rec.code)).Inc() }()
	// The body is read before the first attempt so that it can be sent again after a
	// refused connection; an unread body cannot be replayed.
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(http.MaxBytesReader(rec, r.Body, p.cfg.MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(rec, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("request body larger than %d bytes", p.cfg.MaxBodyBytes))
				return
			}
			writeError(rec, http.StatusBadRequest, "reading request body: "+err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
		p.serveRouted(rec, r, body)
		return
	}
	p.serveRouted(rec, r, nil)
}

// errNoBackend is returned when the hold timeout passed without a backend.
var errNoBackend = errors.New("no backend accepted the request")

// errTooManyHeld is returned when MaxHeld requests are already waiting.
var errTooManyHeld = errors.New("too many requests waiting for a backend")

func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoBackend):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("no %s backend became ready within %s", routedOf(r.Context()).target.Host, p.cfg.HoldTimeout))
	case errors.Is(err, errTooManyHeld):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("%d requests are already waiting for a backend", p.cfg.MaxHeld))
	case errors.Is(err, context.Canceled):
		// The client went away: nobody reads the answer. 499 is what proxies log for it.
		w.WriteHeader(499)
	default:
		p.log.Warn("backend request failed", "target", routedOf(r.Context()).target.Host, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, "backend request failed: "+err.Error())
	}
}

// holdingTransport retries a request while its connection is refused, which is what a
// Service with no ready endpoints (or a pod still starting) does.
type holdingTransport struct {
	p    *Proxy
	base http.RoundTripper
}

func (t *holdingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil || !backendAbsent(err) {
		return resp, err
	}
	p := t.p
	if p.held.Add(1) > int64(p.cfg.MaxHeld) {
		p.held.Add(-1)
		return nil, errTooManyHeld
	}
	p.metrics.held.Inc()
	start := time.Now()
	defer func() {
		p.held.Add(-1)
		p.metrics.held.Dec()
		waited := time.Since(start)
		p.metrics.wait.Observe(waited.Seconds())
		if span := tracing.Recording(req.Context()); span != nil {
			span.SetAttributes(tracing.HeldSeconds.Float64(waited.Seconds()))
		}
	}()
	deadline := time.NewTimer(p.cfg.HoldTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(p.cfg.RetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-deadline.C:
			return nil, errNoBackend
		case <-tick.C:
		}
		retry := req.Clone(req.Context())
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			retry.Body = body
		}
		resp, err = t.base.RoundTrip(retry)
		if err == nil || !backendAbsent(err) {
			if err == nil {
				p.log.Info("backend answered after holding", "target", req.URL.Host,
					"waited", time.Since(start).Round(time.Millisecond))
			}
			return resp, err
		}
	}
}

// backendAbsent reports whether err means the connection was never made, so the
// request did not reach any backend and may be sent again.
func backendAbsent(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	// Refused or unreachable (kube-proxy rejects Service traffic with no endpoints),
	// or the dial timed out (a pod address that is not up yet).
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || op.Timeout()
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(b, '\n'))
}

type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.code, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
