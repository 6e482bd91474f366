package activator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tideserve/tide/internal/rollout"
)

// router.go is the request path of a route: pick the version, forward, count,
// and hand a copy to the mirror workers when the answer is to be compared.

// MirrorHeader marks a mirrored request, for the backend's logs.
const MirrorHeader = "X-Tide-Mirror"

// routed is one request's routing, carried in its context to the proxy's
// Rewrite and ModifyResponse.
type routed struct {
	target  *url.URL
	backend backend
	// answer collects the answer body (up to MaxAnswerBytes) while a candidate
	// is routed, for the comparison and the prediction export; nil otherwise.
	answer *capture
	label  bool // set rollout.RouteHeader
}

type routedKey struct{}

func routedOf(ctx context.Context) *routed {
	if r, ok := ctx.Value(routedKey{}).(*routed); ok {
		return r
	}
	return &routed{}
}

// serveRouted forwards r to the version the route picks. body is the request
// body already read (nil without one), which a mirror sends again.
func (p *Proxy) serveRouted(rec *statusRecorder, r *http.Request, body []byte) {
	rt := p.route.Load()
	primary, mirror := rt.pick(r)
	rd := &routed{target: p.cfg.Target, backend: primary, label: rt.candidate != nil}
	if primary == candidateBackend {
		rd.target = rt.candidate
	}
	if rt.candidate != nil {
		rd.answer = &capture{limit: p.cfg.MaxAnswerBytes}
	}
	start := time.Now()
	p.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routedKey{}, rd)))
	took := time.Since(start)
	if rec.code == 499 {
		return // the client left: neither version is to blame
	}
	p.observe(primary, rec.code, took)
	if rd.answer == nil {
		return
	}
	// The answer is read once: for the prediction export and, with a mirror,
	// for the comparison (nil: not whole, not a 200, or not readable).
	var prediction *rollout.Prediction
	if raw, complete := rd.answer.bytes(); complete && rec.code == http.StatusOK {
		prediction = p.router.export(primary, raw)
	}
	if mirror == "" {
		return
	}
	job := mirrorJob{route: rt, to: mirror, method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: body,
		primaryCode: rec.code, primary: prediction}
	select {
	case p.mirrors <- job:
	default:
		p.countMirror(mirrorDropped)
	}
}

// observe counts one answer of version b, in the measurement and the metrics.
func (p *Proxy) observe(b backend, code int, took time.Duration) {
	p.meas.observe(b, code, took)
	p.router.requests.WithLabelValues(string(b), strconv.Itoa(code)).Inc()
	p.router.latency.WithLabelValues(string(b)).Observe(took.Seconds())
}

// countMirror counts a mirror's fate, in the measurement and the metrics.
func (p *Proxy) countMirror(result string) {
	p.meas.mirror(result)
	p.router.mirrors.WithLabelValues(result).Inc()
}

// markAnswer names the answering version and starts capturing its body.
func (p *Proxy) markAnswer(resp *http.Response) error {
	rd := routedOf(resp.Request.Context())
	if rd.label {
		resp.Header.Set(rollout.RouteHeader, string(rd.backend))
	}
	if rd.answer != nil {
		resp.Body = &teeBody{ReadCloser: resp.Body, c: rd.answer}
	}
	return nil
}

// capture keeps the first limit bytes written to it.
type capture struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	limit     int
	truncated bool
}

func (c *capture) write(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.truncated {
		return
	}
	if c.buf.Len()+len(b) > c.limit {
		c.truncated = true
		c.buf.Reset()
		return
	}
	c.buf.Write(b)
}

// bytes is the captured answer and whether it is whole.
func (c *capture) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Bytes(), !c.truncated && c.buf.Len() > 0
}

type teeBody struct {
	io.ReadCloser
	c *capture
}

func (t *teeBody) Read(b []byte) (int, error) {
	n, err := t.ReadCloser.Read(b)
	if n > 0 {
		t.c.write(b[:n])
	}
	return n, err
}

// mirrorJob is a request to send again to the other version, with the answer
// the client got, to compare.
type mirrorJob struct {
	route        *liveRoute
	to           backend
	method, path string
	header       http.Header
	body         []byte
	primaryCode  int
	// primary is the client's answer read, nil when it cannot be compared.
	primary *rollout.Prediction
}

func (p *Proxy) mirrorLoop() {
	defer p.workers.Done()
	for job := range p.mirrors {
		p.sendMirror(job)
	}
}

// sendMirror sends one mirror and compares the two answers. In shadow mode the
// mirror is the candidate's only traffic, so its status and latency are the
// candidate's measurement; a mirror to the stable version (split mode) only
// serves the comparison.
func (p *Proxy) sendMirror(job mirrorJob) {
	if p.route.Load() != job.route {
		return // the route changed while it waited: it belongs to no measurement now
	}
	base := p.cfg.Target
	if job.to == candidateBackend {
		base = job.route.candidate
	}
	u := *base
	rel, err := url.Parse(job.path)
	if err != nil {
		return
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + rel.Path
	u.RawQuery = rel.RawQuery
	req, err := http.NewRequest(job.method, u.String(), bytes.NewReader(job.body))
	if err != nil {
		return
	}
	for k, v := range job.header {
		if !hopByHop(k) {
			req.Header[k] = v
		}
	}
	req.Header.Set(MirrorHeader, "1")
	p.countMirror(mirrorSent)
	start := time.Now()
	resp, err := p.mirrorC.Do(req)
	code := http.StatusBadGateway // a mirror that was not answered failed
	var answer []byte
	complete := false
	if err == nil {
		c := &capture{limit: p.cfg.MaxAnswerBytes}
		_, rerr := io.Copy(io.Discard, &teeBody{ReadCloser: resp.Body, c: c})
		resp.Body.Close()
		code = resp.StatusCode
		if rerr != nil {
			code = http.StatusBadGateway
		}
		answer, complete = c.bytes()
	}
	took := time.Since(start)
	if code >= 500 {
		p.countMirror(mirrorFailed)
	}
	switch {
	case job.to == candidateBackend && job.route.Shadow:
		p.observe(candidateBackend, code, took)
	case job.to == stableBackend && code == http.StatusOK:
		p.meas.observeLatency(stableBackend, took)
	}
	if code != http.StatusOK || job.primaryCode != http.StatusOK {
		return // an error is counted as one; only two answers compare
	}
	var mirrored *rollout.Prediction
	if complete {
		mirrored = p.router.export(job.to, answer)
	}
	if mirrored == nil || job.primary == nil {
		p.incomparable()
		return
	}
	stable, candidate := *job.primary, *mirrored
	if job.to == stableBackend {
		stable, candidate = candidate, stable
	}
	a, err := rollout.Compare(stable, candidate, rollout.Tolerance{Relative: job.route.Tolerance, Absolute: 1e-12})
	if err != nil {
		p.incomparable()
		return
	}
	p.meas.compared(a)
	p.router.agreement.WithLabelValues("agree").Add(float64(a.Agreed))
	p.router.agreement.WithLabelValues("disagree").Add(float64(a.Compared - a.Agreed))
}

func (p *Proxy) incomparable() {
	p.meas.incomparableAnswers()
	p.router.agreement.WithLabelValues("incomparable").Inc()
}

func hopByHop(h string) bool {
	switch http.CanonicalHeaderKey(h) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
		return true
	}
	return false
}

// SetRoute installs rt. A new ID starts a new measurement; the same ID (the
// operator sets its route on every pass) changes nothing.
func (p *Proxy) SetRoute(rt rollout.Route, candidate *url.URL) {
	if p.route.Load().Route == rt {
		return
	}
	p.route.Store(&liveRoute{Route: rt, candidate: candidate})
	p.router.weight.Set(float64(rt.Weight))
	p.meas.follow(rt, time.Now())
	p.log.Info("route set", "id", rt.ID, "candidate", rt.Candidate, "weight", rt.Weight, "shadow", rt.Shadow)
}

// Report is the current route's measurement.
func (p *Proxy) Report() rollout.Report { return p.meas.report() }

// Close stops the mirror workers after the mirrors already queued.
func (p *Proxy) Close() {
	close(p.mirrors)
	p.workers.Wait()
}

// routerMetrics are the router's Prometheus series, beside the activator's.
type routerMetrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	mirrors     *prometheus.CounterVec
	agreement   *prometheus.CounterVec
	weight      prometheus.Gauge
	predictions *prometheus.CounterVec
	values      *prometheus.SummaryVec

	mu     sync.Mutex
	labels map[backend]map[string]bool
}

// maxExportedLabels per version: more distinct labels are counted as "other",
// so a model with free-form labels cannot blow up the series count.
const maxExportedLabels = 32

func newRouterMetrics() *routerMetrics {
	return &routerMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_router_backend_requests_total",
			Help: "Requests each version answered (backend stable or candidate; mirrors to a shadow candidate included), by HTTP status."}, []string{"backend", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tide_router_backend_latency_seconds",
			Help: "Time each version took to answer, as the router saw it.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"backend"}),
		mirrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_router_mirrors_total",
			Help: "Mirrored requests: sent, dropped (the bounded mirror queue was full) or failed."}, []string{"result"}),
		agreement: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_router_agreement_total",
			Help: "Predictions compared between the stable and the candidate version: agree, disagree, or incomparable answers."}, []string{"result"}),
		weight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tide_router_candidate_weight_percent",
			Help: "The candidate's share of traffic (of mirrored traffic in shadow mode), in percent."}),
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tide_router_predictions_total",
			Help: "Classifier predictions each version answered, by label (at most 32 labels, then other)."}, []string{"backend", "label"}),
		values: prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "tide_router_prediction_value",
			Help:       "Regressor predictions each version answered.",
			Objectives: map[float64]float64{0.1: 0.01, 0.5: 0.01, 0.9: 0.01, 0.99: 0.001}, MaxAge: time.Minute}, []string{"backend"}),
		labels: map[backend]map[string]bool{},
	}
}

func (m *routerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.latency, m.mirrors, m.agreement, m.weight, m.predictions, m.values}
}

// export counts one answer's predictions, so Prometheus can compare the two
// versions' distributions even for requests that were not mirrored, and
// returns them read (nil when the answer cannot be read).
func (m *routerMetrics) export(b backend, answer []byte) *rollout.Prediction {
	p, err := rollout.ReadAnswer(answer)
	if err != nil {
		return nil
	}
	for _, l := range p.Labels {
		m.predictions.WithLabelValues(string(b), m.exportedLabel(b, l)).Inc()
	}
	if p.Labels == nil {
		o := m.values.WithLabelValues(string(b))
		for _, v := range p.Values {
			o.Observe(v)
		}
	}
	return &p
}

func (m *routerMetrics) exportedLabel(b backend, l string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.labels[b]
	if seen == nil {
		seen = map[string]bool{}
		m.labels[b] = seen
	}
	if seen[l] {
		return l
	}
	if len(seen) >= maxExportedLabels || len(l) > 64 {
		return "other"
	}
	seen[l] = true
	return l
}
