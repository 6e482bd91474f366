// Package loadgen drives HTTP and gRPC load at a model server and measures it
// honestly.
//
// Two generators share one recorder. Closed loop keeps N workers busy, each
// sending its next request when the last one answers: it measures what N
// clients see, but a stalled server also stalls the clients, so a stall shows
// up as a handful of slow requests rather than the hundreds that real users
// arriving at a fixed rate would have suffered. Open loop sends at a fixed
// arrival rate from a schedule and measures every latency from the request's
// intended send time, so time spent waiting behind a stall counts (no
// "coordinated omission", in Gil Tene's phrase).
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Mode says how load is generated.
type Mode string

const (
	// Open sends at the plan's rate (requests/s), whatever the server does.
	Open Mode = "open"
	// Closed keeps the plan's number of workers busy.
	Closed Mode = "closed"
)

// Forever is a stage duration for runs bounded by a request count instead.
const Forever = time.Duration(math.MaxInt64)

// BodySource renders one request body. *Template is one; StaticBody another.
type BodySource interface {
	Render(dst []byte, rng *rand.Rand, seq uint64) []byte
}

// StaticBody sends the same bytes every time.
type StaticBody []byte

// Render appends the body.
func (b StaticBody) Render(dst []byte, _ *rand.Rand, _ uint64) []byte { return append(dst, b...) }

// Config is one run.
type Config struct {
	Target Target
	Method string      // HTTP: POST when a body is given, else GET, unless set
	Header http.Header // HTTP: extra headers; Content-Type defaults to application/json with a body
	// Body is each request's body; nil: none. For gRPC targets it renders an
	// OIP JSON request, which becomes each call's ModelInferRequest.
	Body BodySource
	Mode Mode
	Plan Plan
	// MaxRequests stops the run after this many requests (0: no limit).
	MaxRequests int64
	// MaxInFlight caps open-loop concurrency, so a dead server cannot make the
	// generator open connections without end. Requests that wait for a slot
	// still count their latency from their intended send time.
	MaxInFlight int
	Client      *http.Client
	// HTTP1, if set, carries an http:// target's requests instead of Client
	// (NewHTTP1Client): a leaner client, so that the generator's own CPU is
	// not what limits a run. Client still fetches metadata.
	HTTP1 *HTTP1Client
	// EventLoop runs a closed loop over HTTP1 on event loops of the
	// generator's own (epoll, Linux; one per usable CPU) instead of a goroutine
	// per worker: the same requests and measurements for less of the
	// generator's CPU. Elsewhere, and for open loops, it is ignored.
	EventLoop bool
	// GRPC carries a gRPC target's calls, and must be set for one; the
	// caller closes it. Its GRPCOptions.Header is the calls' metadata.
	GRPC *GRPCClient
	// Publisher carries a queue target's requests, and must be set for one.
	Publisher Publisher
	// Backlog, if set, is asked once a second for the broker's backlog
	// (-1 when unknown); it must not block.
	Backlog func() int64
	// OnSample, if set, is called once a second from the sampling goroutine.
	OnSample func(Sample)
	// Replicas, if set, is asked once a second for the watched deployment's
	// desired and ready replicas (-1 when unknown).
	Replicas func() (desired, ready int)
	// Seed makes generated bodies reproducible; 0 picks one from the clock.
	Seed uint64
	// TraceSample is the share of requests (0 to 1) that start a sampled W3C
	// trace: each carries a traceparent with a new trace id and the sampled
	// flag, which a traced server continues whatever its own sampling ratio.
	TraceSample float64
}

// Result is what a run measured.
type Result struct {
	Summary Summary
	Samples []Sample
}

// ClientOptions configure the HTTP client a run uses.
type ClientOptions struct {
	Timeout time.Duration
	// HTTP2 speaks HTTP/2: negotiated by TLS for https, and h2c (HTTP/2 with
	// prior knowledge, no upgrade) for http.
	HTTP2 bool
	// MaxConns bounds connections per host (0: no bound).
	MaxConns int
	// Insecure skips TLS certificate checks.
	Insecure bool
}

// NewClient builds a client that reuses connections: enough idle connections
// are kept for every worker, so a run measures requests, not TCP handshakes.
func NewClient(o ClientOptions) *http.Client {
	idle := o.MaxConns
	if idle <= 0 {
		idle = 10000
	}
	tr := &http.Transport{
		Proxy:               nil, // load goes where it is told, never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		MaxConnsPerHost:     o.MaxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: o.Insecure}, //nolint:gosec // only when asked for
	}
	protocols := new(http.Protocols)
	if o.HTTP2 {
		protocols.SetHTTP2(true)
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	tr.Protocols = protocols
	return &http.Client{Transport: tr, Timeout: o.Timeout}
}

// Run drives load until the plan ends, MaxRequests have been sent or ctx is
// cancelled, then waits for the requests in flight (each bounded by the
// client's timeout) and returns what it measured. Cancelling ctx stops new
// requests only: the ones already sent are measured to their end.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, rec: newRecorder(), start: time.Now()}
	if cfg.Target.Protocol == ProtocolGRPC {
		var err error
		if r.grpcReqs, err = newGRPCRequests(cfg.Body, cfg.Target, cfg.GRPC.opts.Raw); err != nil {
			return nil, err
		}
	}
	if cfg.Seed == 0 {
		r.cfg.Seed = uint64(r.start.UnixNano())
	}
	end := cfg.Plan.Duration()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if end != Forever {
		var stop context.CancelFunc
		runCtx, stop = context.WithDeadline(runCtx, r.start.Add(end))
		defer stop()
	}

	samplerDone := make(chan struct{})
	samplerStop := make(chan struct{})
	go func() { defer close(samplerDone); r.sample(samplerStop) }()

	if cfg.Mode == Open {
		r.openLoop(runCtx)
	} else if !r.closedLoopOnEvents(runCtx) {
		r.closedLoop(runCtx)
	}
	r.inflight.Wait()
	close(samplerStop)
	<-samplerDone

	s := r.rec.summary()
	if cfg.Mode == Closed {
		s.Service = nil // the same as Latency: every request leaves when it is due
	}
	s.Mode = string(cfg.Mode)
	s.URL = cfg.Target.URL.String()
	s.Protocol = cfg.Target.Protocol
	s.Plan = cfg.Plan.String()
	s.Started = r.start
	s.Elapsed = time.Since(r.start).Seconds()
	if s.Elapsed > 0 {
		s.Rate = float64(s.Completed) / s.Elapsed
		s.OKRate = float64(s.OK) / s.Elapsed
	}
	return &Result{Summary: s, Samples: r.samples}, nil
}

func (c *Config) fill() error {
	if c.Target.URL == nil {
		return fmt.Errorf("no target URL")
	}
	if len(c.Plan) == 0 {
		return fmt.Errorf("no stages: give a duration, a request count or --stages")
	}
	if c.Mode != Open && c.Mode != Closed {
		return fmt.Errorf("mode %q: want open or closed", c.Mode)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 10000
	}
	if c.TraceSample < 0 || c.TraceSample > 1 {
		return fmt.Errorf("trace sample %g: want a share from 0 to 1", c.TraceSample)
	}
	if c.Target.Protocol.IsQueue() {
		switch {
		case c.Publisher == nil:
			return fmt.Errorf("a queue target needs a Publisher (NewQueuePublisher)")
		case c.Body == nil:
			return fmt.Errorf("a queue target needs a body for each message (--template or --body-file)")
		case c.Method != "" || len(c.Header) > 0:
			return fmt.Errorf("a queue target takes no HTTP method or headers")
		}
		return nil
	}
	if c.Target.Protocol == ProtocolGRPC {
		switch {
		case c.Method != "":
			return fmt.Errorf("a gRPC target has no HTTP method (each request is a ModelInfer call)")
		case len(c.Header) > 0:
			return fmt.Errorf("a gRPC target takes its metadata from GRPCOptions.Header, not Config.Header")
		case c.GRPC == nil:
			return fmt.Errorf("a gRPC target needs a GRPCClient (NewGRPCClient)")
		}
		return nil
	}
	if c.Method == "" {
		c.Method = http.MethodGet
		if c.Body != nil {
			c.Method = http.MethodPost
		}
	}
	if c.Client == nil {
		c.Client = NewClient(ClientOptions{Timeout: 30 * time.Second})
	}
	return nil
}

type run struct {
	cfg      Config
	rec      *recorder
	start    time.Time
	inflight sync.WaitGroup
	grpcReqs *grpcRequests // gRPC targets only
	issued   atomic.Int64  // requests handed out, for MaxRequests
	samples  []Sample      // written only by the sampler goroutine until Run reads them
}

// take reserves one request against MaxRequests.
func (r *run) take() bool {
	n := r.issued.Add(1)
	return r.cfg.MaxRequests <= 0 || n <= r.cfg.MaxRequests
}

// openLoop sends on a schedule computed from the plan. Each request's
// intended send time is fixed before it is sent; if the generator or the
// in-flight cap holds a request back, its latency still starts at that time.
func (r *run) openLoop(ctx context.Context) {
	slots := make(chan struct{}, r.cfg.MaxInFlight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var next time.Duration // intended send time of the next request, since start
	var seq uint64
	for {
		rate, ok := r.cfg.Plan.Target(next)
		if !ok {
			// A plan that ends idle (a rate-0 stage) runs to its end all the
			// same: the samples, the backlog and the watched replicas go on
			// while the server works off what was sent.
			if wait := time.Until(r.start.Add(next)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
			return
		}
		if rate <= 0 {
			// An idle stretch: look again a little later.
			next += 10 * time.Millisecond
			continue
		}
		intended := r.start.Add(next)
		if wait := time.Until(intended); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if !r.take() {
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		late := time.Since(intended) > time.Millisecond
		r.inflight.Add(1)
		rng := rand.New(rand.NewPCG(r.cfg.Seed, seq))
		go func(intended time.Time, seq uint64) {
			defer r.inflight.Done()
			r.do(intended, late, rng, seq)
			<-slots
		}(intended, seq)
		seq++
		next += time.Duration(float64(time.Second) / rate)
	}
}

// closedLoopOnEvents runs the closed loop on the event loops when the run asks
// for them (Config.EventLoop over HTTP1, an http:// target). It reports whether
// it ran; when it did not (runEventLoops answers false where there is no epoll,
// or when the target cannot be resolved), the goroutine engine runs the loop.
func (r *run) closedLoopOnEvents(ctx context.Context) bool {
	if !r.cfg.EventLoop || r.cfg.HTTP1 == nil {
		return false
	}
	return r.runEventLoops(ctx)
}

// closedLoop keeps the plan's number of workers busy, adding and retiring
// workers as the target changes. A retired worker finishes its request first.
func (r *run) closedLoop(ctx context.Context) {
	var stops []chan struct{}
	var workers sync.WaitGroup
	defer func() {
		for _, s := range stops {
			close(s)
		}
		workers.Wait()
	}()
	exhausted := make(chan struct{})
	var once sync.Once
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		target, ok := r.cfg.Plan.Target(time.Since(r.start))
		if !ok {
			return
		}
		want := int(math.Round(target))
		for len(stops) < want {
			stop := make(chan struct{})
			stops = append(stops, stop)
			id := uint64(len(stops))
			workers.Add(1)
			go func() {
				defer workers.Done()
				rng := rand.New(rand.NewPCG(r.cfg.Seed, id))
				for seq := uint64(0); ; seq++ {
					select {
					case <-stop:
						return
					case <-ctx.Done():
						return
					default:
					}
					if !r.take() {
						once.Do(func() { close(exhausted) })
						return
					}
					r.inflight.Add(1)
					r.do(time.Now(), false, rng, seq)
					r.inflight.Done()
				}
			}()
		}
		for len(stops) > want {
			close(stops[len(stops)-1])
			stops = stops[:len(stops)-1]
		}
		select {
		case <-ctx.Done():
			return
		case <-exhausted:
			return
		case <-tick.C:
		}
	}
}

// do sends one request and records it, latency measured from intended.
func (r *run) do(intended time.Time, late bool, rng *rand.Rand, seq uint64) {
	if r.grpcReqs != nil {
		r.doGRPC(intended, late, rng, seq)
		return
	}
	if r.cfg.Publisher != nil {
		r.doPublish(intended, late, rng, seq)
		return
	}
	if r.cfg.HTTP1 != nil {
		r.doHTTP1(intended, late, rng, seq)
		return
	}
	var body io.Reader
	if r.cfg.Body != nil {
		body = bytes.NewReader(r.cfg.Body.Render(nil, rng, seq))
	}
	// The request outlives a cancelled run on purpose (see Run); the client's
	// timeout bounds it.
	req, err := http.NewRequestWithContext(context.Background(), r.cfg.Method, r.cfg.Target.URL.String(), body)
	if err != nil {
		r.rec.started(late)
		r.rec.finished(0, 0, 0, 0, err)
		return
	}
	for k, v := range r.cfg.Header {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.startsTrace(rng) {
		req.Header["Traceparent"] = []string{newTraceparent(rng)}
	}
	r.rec.started(late)
	sent := time.Now()
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		r.rec.finished(time.Since(intended), time.Since(sent), 0, 0, err)
		return
	}
	// Reading the body to its end is what lets the connection be reused.
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.rec.finished(time.Since(intended), time.Since(sent), resp.StatusCode, n, err)
}

// doHTTP1 is do over the HTTP/1.1 client: the body is rendered into a pooled
// buffer, and the client writes it before it returns.
func (r *run) doHTTP1(intended time.Time, late bool, rng *rand.Rand, seq uint64) {
	buf := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(buf)
	var body []byte
	if r.cfg.Body != nil {
		body = r.cfg.Body.Render((*buf)[:0], rng, seq)
		*buf = body
	}
	traceparent := ""
	if r.startsTrace(rng) {
		traceparent = newTraceparent(rng)
	}
	r.rec.started(late)
	sent := time.Now()
	status, n, err := r.cfg.HTTP1.Do(body, traceparent)
	r.rec.finished(time.Since(intended), time.Since(sent), status, n, err)
}

// bodyBuffers keeps rendered request bodies' buffers between requests.
var bodyBuffers = sync.Pool{New: func() any { return new([]byte) }}

// sample closes a second of the run every second, on the second.
func (r *run) sample(stop <-chan struct{}) {
	second := 0
	emit := func(span float64) {
		second++
		// The sample covers [second-1, second): its target is the plan's at
		// the middle, which for a ramp is the second's average.
		target, _ := r.cfg.Plan.Target(time.Duration(second)*time.Second - time.Second/2)
		s := r.rec.tick(second, span, target)
		if r.cfg.Replicas != nil {
			s.DesiredReplicas, s.ReadyReplicas = r.cfg.Replicas()
		}
		if r.cfg.Backlog != nil {
			s.Backlog = r.cfg.Backlog()
		}
		r.samples = append(r.samples, s)
		if r.cfg.OnSample != nil {
			r.cfg.OnSample(s)
		}
	}
	for {
		next := r.start.Add(time.Duration(second+1) * time.Second)
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
			emit(1)
		case <-stop:
			t.Stop()
			// The last, partial second: kept when anything happened in it so
			// counts add up to the summary's.
			if r.rec.pending() {
				emit(time.Since(r.start.Add(time.Duration(second) * time.Second)).Seconds())
			}
			return
		}
	}
}

// startsTrace decides whether this request starts a sampled trace.
func (r *run) startsTrace(rng *rand.Rand) bool {
	p := r.cfg.TraceSample
	return p > 0 && (p >= 1 || rng.Float64() < p)
}

// newTraceparent is a W3C traceparent for a new, sampled trace: version 00, a
// random 16-byte trace id and 8-byte parent id (never all zero), flags 01.
func newTraceparent(rng *rand.Rand) string {
	const hexDigits = "0123456789abcdef"
	var b [55]byte
	copy(b[:], "00-")
	put := func(at int, v uint64) {
		for i := 15; i >= 0; i-- {
			b[at+i] = hexDigits[v&15]
			v >>= 4
		}
	}
	put(3, rng.Uint64()|1)
	put(19, rng.Uint64())
	b[35] = '-'
	put(36, rng.Uint64()|1)
	copy(b[52:], "-01")
	return string(b[:])
}
