// Package server is Tide's HTTP front: protocol handlers (the tutorial's /predict,
// Open Inference Protocol v2 REST, KServe v1), health, metrics, request limits and
// graceful drain. It decodes each request once into tensors, runs the model once and
// encodes once; everything about models lives below it, in repository and runtime.
package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tideserve/tide/internal/metrics"
	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/serving"
	"github.com/tideserve/tide/internal/tensor"
	"github.com/tideserve/tide/internal/tracing"
)

// Options configure a Server. Zero values take the defaults in DefaultOptions.
type Options struct {
	// MaxBodyBytes caps a request body; larger requests get 413.
	MaxBodyBytes int64
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound slow or idle
	// clients (net/http's own fields).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// DrainDelay is how long the server keeps serving, already not ready, after it is
	// told to stop: time for load balancers (Kubernetes endpoints) to stop sending.
	DrainDelay time.Duration
	// DrainQuiet extends the drain past DrainDelay while clients still arrive: the
	// listeners close only once no client request (probes and scrapes aside) has
	// come for this long, or half of DrainTimeout has gone by. 0 closes them right
	// after DrainDelay.
	DrainQuiet time.Duration
	// DrainTimeout bounds how long in-flight requests may take to finish on shutdown.
	DrainTimeout time.Duration
	// StrictReadiness makes the server unready while any model failed to load. By
	// default a failed model is reported, and the server is ready once loading is
	// done and at least one model serves.
	StrictReadiness bool
	// DefaultModel is the model /predict serves when the repository has several.
	DefaultModel string
	// Version is reported by GET /v2 and tide_build_info.
	Version string
	// GRPCAddr is where Serve serves OIP v2 gRPC (HOST:PORT); "" turns gRPC off.
	GRPCAddr string
	// TLSCertFile and TLSKeyFile, both PEM, turn on TLS for HTTP and gRPC.
	TLSCertFile string
	TLSKeyFile  string
	// APIKeys, if any, are required on inference and model metadata requests, REST
	// and gRPC (see auth.go); health, metrics and server metadata stay open.
	APIKeys []string
	// DisableRepositoryAPI turns off the model repository extension's endpoints
	// (index, load, unload).
	DisableRepositoryAPI bool
	// ManagementKeys, if any, are required on the repository endpoints, and turn on
	// model control (load and unload) for their holders.
	ManagementKeys []string
	// ManagementAddr, if set, is where load and unload are served (HOST:PORT, REST
	// only): the main HTTP and gRPC ports then refuse them, so that a network
	// policy on this port alone decides who may change what is served (one on the
	// main port cannot, since it cannot tell paths apart). The index stays
	// readable on both.
	ManagementAddr string
	// ModelControl turns on load and unload through the repository API without
	// management keys (then open to whoever may call inference). Off by default:
	// unloading a model is an outage, so nothing that changes what is served is
	// open unless configured.
	ModelControl bool
	// WatchRepository reloads models when their files change (WatchDebounce after
	// the last change; also every WatchPoll if > 0).
	WatchRepository bool
	WatchDebounce   time.Duration
	WatchPoll       time.Duration
	// Admission holds the default admission control and batching for every model
	// (off when zero); a model's config file overrides it.
	Admission serving.Admission
	// AccessLogSample is the share of requests (0 to 1) that get an access log
	// line; 0, the default, logs none.
	AccessLogSample float64
	// DisableDocs turns off GET /openapi.json and GET /docs.
	DisableDocs bool
	// PayloadLog, when set, receives the sampled payloads of monitored models
	// (their config's monitoring.payload_log_sample); the server closes it.
	PayloadLog *monitor.PayloadLogger
	// FeedbackPeers names the other replicas feedback is forwarded to when this
	// one did not make the prediction: HOST:PORT of a headless Service
	// (resolved at each use) or a comma-separated list; "" forwards nothing.
	FeedbackPeers string
}

// DefaultOptions are production defaults.
func DefaultOptions() Options {
	return Options{
		MaxBodyBytes:      16 << 20,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		DrainTimeout:      30 * time.Second,
		Version:           "dev",
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = d.MaxBodyBytes
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = d.ReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = d.WriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = d.IdleTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = d.DrainTimeout
	}
	if o.Version == "" {
		o.Version = d.Version
	}
}

// Server serves a repository's models.
type Server struct {
	repo    *repository.Repository
	opts    Options
	log     *slog.Logger
	metrics *metrics.Set
	mux     *http.ServeMux
	// management serves the repository API on Options.ManagementAddr (nil when
	// that is unset and the main mux has it).
	management *http.ServeMux
	draining   atomic.Bool
	// arrivals are the clients that still come while draining (drain.go).
	arrivals drainArrivals
	// loaded turns true when the repository's first load has finished.
	loaded atomic.Bool
	// grpcAddr is the bound gRPC address (a string) once Serve has started gRPC.
	grpcAddr atomic.Value
	// managementAddr is the bound management address once Serve listens on it.
	managementAddr atomic.Value
	// apiKeys is Options.APIKeys made ready for constant-time checks (nil: no auth).
	apiKeysOnce sync.Once
	apiKeys     *keySet
	// monitoring is every model's drift, feedback and payload logging.
	monitoring *monitor.Hub
	// peers are the replicas feedback is forwarded to (nil: none).
	peers *peerSet
	// background are the in-process consumers Serve runs and drains (Background).
	background []func(ctx context.Context) error
}

// Background adds fn to what Serve runs beside its listeners (the queue
// worker). Its ctx ends when the server starts to drain; Serve waits for it,
// within the drain timeout, before the models close, so that what it holds is
// finished by models that are still there. An error it returns before the
// drain stops the server. Call before Serve.
func (s *Server) Background(fn func(ctx context.Context) error) {
	s.background = append(s.background, fn)
}

// New builds a server for repo. Call LoadModels (or Serve, which does) to load.
// The repository's versions will serve with opts.Admission and the server's
// metrics: the server hands it the serving factory and keeps no per-model state.
func New(repo *repository.Repository, opts Options, log *slog.Logger) *Server {
	opts.fill()
	if log == nil {
		log = slog.Default()
	}
	s := &Server{repo: repo, opts: opts, log: log, metrics: metrics.New(opts.Version), mux: http.NewServeMux()}
	if opts.ManagementAddr != "" {
		s.management = http.NewServeMux()
	}
	s.monitoring = monitor.NewHub(opts.PayloadLog, func(model string) monitor.FeedbackHooks {
		fs := s.metrics.Feedback(model)
		return monitor.FeedbackHooks{Result: fs.Result, Delay: fs.Delay}
	}, log)
	if opts.PayloadLog != nil {
		opts.PayloadLog.SetHooks(monitor.PayloadHooks{
			Sent:    func() { s.metrics.PayloadLog("sent") },
			Dropped: func() { s.metrics.PayloadLog("dropped") },
			Failed:  func() { s.metrics.PayloadLog("failed") },
		})
	}
	s.metrics.SetMonitoringSource(s.monitoring.Export)
	s.peers = newPeerSet(opts.FeedbackPeers, opts.TLSCertFile != "")
	repo.ServeWith(&serving.Factory{Admission: opts.Admission, Metrics: s.metrics, Log: log, Monitoring: s.monitoring})
	s.routes()
	return s
}

// Handler is the server's whole HTTP surface.
func (s *Server) Handler() http.Handler { return s }

// Metrics exposes the server's series (for tests and embedding).
func (s *Server) Metrics() *metrics.Set { return s.metrics }

func (s *Server) routes() {
	s.mux.HandleFunc(routeLive, s.live)
	s.mux.HandleFunc(routeReady, s.ready)
	// OpenMetrics when the scraper asks for it: the format that carries the
	// latency histogram's exemplars (trace ids).
	s.mux.Handle(routeMetrics, promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	s.registerSeed()
	s.registerOIP()
	s.registerKServeV1()
	s.registerRepositoryAPI()
	s.registerAPIDocs()
	s.registerMonitoring()
}

// ServeHTTP adds what every request needs: panic containment and, while draining,
// "Connection: close" so keep-alive clients move to another replica.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			s.writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
		if s.isTraffic(r) {
			s.arrivals.arrived()
		}
	}
	ridHeader := requestIDHeader(r.Header[headerRequestID], nil)
	w.Header()[headerRequestID] = ridHeader
	rid := ridHeader[0]
	if !isLocal(r.Context()) && !s.authorizeHTTP(w, r) {
		return
	}
	if s.refuseUncleanPath(w, r) {
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// No route, or a route for another method: the mux's answer, as JSON.
		rec := &statusOnly{header: w.Header()}
		h.ServeHTTP(rec, r)
		msg := fmt.Sprintf("no route for %s %s", r.Method, echoPath(r.URL.Path))
		if rec.status == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("method %s is not allowed for %s (allowed: %s)", r.Method, r.URL.Path, w.Header().Get("Allow"))
		}
		discard(r)
		s.writeError(w, rec.status, msg)
		return
	}
	quiet := quietRoutes[pattern]
	traced := tracing.On() && !quiet
	if logged := !quiet && s.sampleAccessLog(); traced || logged {
		s.observed(w, r, pattern, rid, traced, logged)
		return
	}
	s.mux.ServeHTTP(w, r) // (not h: only the mux's own ServeHTTP sets path values)
}

// Local is the handler for requests made inside the process: the queue
// worker's. They are answered exactly as over HTTP, with two differences. No
// API key is asked: the caller is the process itself, and its broker
// connection is the boundary it was let in through. And /predict serves the
// model a Tide-Model header names, since a message, unlike a URL, has no
// other place to name it.
func (s *Server) Local() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), localKey{}, r.Header.Get(localModelHeader))))
	})
}

// localModelHeader names /predict's model on a Local request (the queue's message header).
const localModelHeader = "Tide-Model"

type localKey struct{}

func isLocal(ctx context.Context) bool { _, ok := ctx.Value(localKey{}).(string); return ok }

// localModel is the model a Local request's header named, or "".
func localModel(ctx context.Context) string { name, _ := ctx.Value(localKey{}).(string); return name }

// refuseUncleanPath answers an unclean path ("/../x", "//v2", "/v2/") with a JSON
// 404 and reports that it did: ServeMux would answer it with a redirect to the
// cleaned path and an HTML body, where Tide promises JSON errors and 404 for what
// it does not serve.
func (s *Server) refuseUncleanPath(w http.ResponseWriter, r *http.Request) bool {
	if p := r.URL.Path; p != "" && p[0] == '/' && path.Clean(p) == p {
		return false
	}
	discard(r)
	s.writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, echoPath(r.URL.Path)))
	return true
}

// echoPath is a request path as an error may quote it: at most 128 bytes, so that
// a hostile path is not echoed whole.
func echoPath(p string) string {
	if len(p) > 128 {
		return strconv.Quote(p[:128]) + "…"
	}
	return p
}

// statusOnly records the status the mux's fallback handler chose and drops its
// plain-text body, so that the client gets a JSON error instead.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusOnly) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

// LoadModels loads every model in the repository; the server is ready afterwards
// (see Options.StrictReadiness).
func (s *Server) LoadModels(ctx context.Context) {
	s.repo.LoadAll(ctx)
	s.loaded.Store(true)
	for _, p := range s.repo.Problems() {
		s.log.Warn("repository problem", "problem", p)
	}
}

// IsReady reports readiness as GET /v2/health/ready does.
func (s *Server) IsReady() bool {
	return s.loaded.Load() && !s.draining.Load() && s.repo.Ready(s.opts.StrictReadiness)
}

func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	writeJSONBytes(w, http.StatusOK, []byte(`{"live":true}`))
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.IsReady() {
		writeJSONBytes(w, http.StatusOK, []byte(`{"ready":true}`))
		return
	}
	writeJSONBytes(w, http.StatusServiceUnavailable, []byte(`{"ready":false}`))
}

// Serve listens on ln, loads the models in the background, and serves until ctx is
// cancelled; then it drains: not ready at once, keep serving for DrainDelay and
// beyond it while clients still arrive (DrainQuiet), stop accepting, and wait up
// to DrainTimeout for in-flight requests. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	tlsCfg, tlsErr := s.tlsConfig()
	if tlsErr != nil {
		return tlsErr
	}
	gf, grpcErr := s.startGRPC()
	if grpcErr != nil {
		return grpcErr
	}
	defer gf.stop()
	var ms *http.Server // the management listener, when there is one
	if s.management != nil {
		mln, err := net.Listen("tcp", s.opts.ManagementAddr)
		if err != nil {
			return fmt.Errorf("listen for the management API on %s: %w", s.opts.ManagementAddr, err)
		}
		ms = &http.Server{Handler: http.HandlerFunc(s.serveManagement), ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
			ReadTimeout: s.opts.ReadTimeout, WriteTimeout: s.opts.WriteTimeout, IdleTimeout: s.opts.IdleTimeout,
			MaxHeaderBytes: 64 << 10, ErrorLog: hs.ErrorLog, TLSConfig: tlsCfg}
		s.managementAddr.Store(mln.Addr().String())
		go func() {
			var err error
			if tlsCfg != nil {
				err = ms.ServeTLS(mln, "", "")
			} else {
				err = ms.Serve(mln)
			}
			if err != nil && err != http.ErrServerClosed {
				s.log.Error("management API listener stopped", "error", err)
			}
		}()
		s.log.Info("serving the management API", "addr", mln.Addr().String())
		defer ms.Close()
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			hs.TLSConfig = tlsCfg
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	s.log.Info("serving", "addr", ln.Addr().String(), "models", s.repo.Names())
	s.logAccess()
	// The models load only after "serving" is logged, so that the log always
	// reads in the order things happen to a client: the port answers (live,
	// not ready), then each model loads (the docs' examples rely on the order).
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	go func() {
		s.LoadModels(loadCtx)
		if s.opts.WatchRepository {
			debounce := s.opts.WatchDebounce
			if debounce <= 0 {
				debounce = time.Second
			}
			if err := s.repo.Watch(loadCtx, debounce, s.opts.WatchPoll); err != nil {
				s.log.Error("watching the model repository failed; changes on disk will not be picked up", "error", err)
			}
		}
	}()
	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	bgFailed := make(chan error, len(s.background))
	var bg sync.WaitGroup
	for _, fn := range s.background {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := fn(bgCtx); err != nil && bgCtx.Err() == nil {
				bgFailed <- err
			}
		}()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case err := <-gf.failed():
		return fmt.Errorf("serve gRPC: %w", err)
	case err := <-bgFailed:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("draining: not ready, finishing in-flight requests", "delay", s.opts.DrainDelay, "timeout", s.opts.DrainTimeout)
	if s.opts.DrainDelay > 0 {
		time.Sleep(s.opts.DrainDelay)
	}
	// The quiet wait takes at most half the drain timeout, so that requests still
	// in flight when the listeners close keep the other half.
	kept, settled := s.arrivals.waitQuiet(s.opts.DrainQuiet, s.opts.DrainTimeout/2)
	if n := s.arrivals.count.Load(); n > 0 || !settled {
		s.log.Info("draining: closing the listeners", "requests_while_draining", n,
			"kept_past_delay", kept.Round(time.Millisecond), "clients_stopped_arriving", settled)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout-kept)
	defer cancel()
	grpcDrained := gf.drain(shutCtx) // HTTP and gRPC drain side by side, within one timeout
	err := hs.Shutdown(shutCtx)
	if ms != nil {
		ms.Shutdown(shutCtx)
	}
	if derr := <-grpcDrained; err == nil {
		err = derr
	}
	// The consumers' ctx ended with ctx; they finish what they hold.
	bgDone := make(chan struct{})
	go func() { bg.Wait(); close(bgDone) }()
	select {
	case <-bgDone:
	case <-shutCtx.Done():
		if err == nil {
			err = fmt.Errorf("in-process consumers: %w", shutCtx.Err())
		}
	}
	s.repo.Close() // each model's batcher runs what it still holds, then closes
	s.monitoring.Close()
	if err != nil {
		hs.Close()
		return fmt.Errorf("drain: in-flight requests still running after %s: %w", s.opts.DrainTimeout, err)
	}
	s.log.Info("drained, exiting")
	return nil
}

// --- shared request plumbing -------------------------------------------------

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// outPool holds response encoding buffers.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getOut() *[]byte { p := outPool.Get().(*[]byte); *p = (*p)[:0]; return p }

func putOut(p *[]byte) {
	if cap(*p) <= 1<<20 {
		outPool.Put(p)
	}
}

// readBody reads the request body into a pooled buffer, refusing one larger than
// MaxBodyBytes with 413 (and closing the connection, so that the rest of it is
// not read). The caller hands the buffer back with releaseBody once it is done
// with the bytes. (No http.MaxBytesReader and no release closure: each would
// allocate on every request.)
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *bytes.Buffer, error) {
	limit := s.opts.MaxBodyBytes
	tooLarge := func() error {
		w.Header()["Connection"] = connectionClose
		return &oip.Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body is larger than the %d bytes allowed", limit)}
	}
	if r.ContentLength > limit {
		w.Header()["Connection"] = connectionClose
		return nil, nil, &oip.Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body of %d bytes is larger than the %d allowed", r.ContentLength, limit)}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1) // +1: the read that sees EOF needs room
	}
	for {
		if buf.Available() == 0 {
			buf.Grow(min(max(buf.Cap(), 512), int(limit)+1))
		}
		spare := buf.AvailableBuffer()[:buf.Available()]
		// Never read more than one byte past the limit.
		if room := limit + 1 - int64(buf.Len()); int64(len(spare)) > room {
			spare = spare[:room]
		}
		n, err := r.Body.Read(spare)
		buf.Write(spare[:n])
		if int64(buf.Len()) > limit {
			releaseBody(buf)
			return nil, nil, tooLarge()
		}
		if err == io.EOF {
			return buf.Bytes(), buf, nil
		}
		if err != nil {
			releaseBody(buf)
			return nil, nil, &oip.Error{Status: http.StatusBadRequest, Msg: "reading request body: " + err.Error()}
		}
	}
}

// releaseBody hands a body buffer from readBody back to the pool (nil is
// ignored).
func releaseBody(buf *bytes.Buffer) {
	if buf != nil && buf.Cap() <= 1<<20 { // don't keep huge buffers alive
		bufPool.Put(buf)
	}
}

// connectionClose asks net/http to close the connection after the answer.
var connectionClose = []string{"close"}

// infer runs one model version on inputs for the request with this id, holding
// its loaded model for the call so that a reload meanwhile finishes this request
// on the model it started with. It returns the version's monitor (nil when it
// has none) for the payload log.
func (s *Server) infer(ctx context.Context, v *repository.Version, id string, inputs []*tensor.Tensor, requested []string) ([]*tensor.Tensor, *monitor.Monitor, error) {
	m, err := v.Acquire()
	if err != nil {
		return nil, nil, err
	}
	defer m.Release()
	outs, err := m.Infer(ctx, id, inputs, requested)
	return outs, m.Monitor(), err
}

// discard drains an unread body so the connection can be reused.
func discard(r *http.Request) { io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16)) }
