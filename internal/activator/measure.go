package activator

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tideserve/tide/internal/rollout"
)

// measure.go keeps what the current route has seen, per version: requests,
// errors (5xx, which includes the router's own 502/503/504 for a backend that
// failed or timed out), latency, and the agreement of the two versions' answers
// to the same request. The operator reads it (GET /v1/route) to judge a step; a
// new route ID starts it again.

// Latencies are kept as tide load keeps its own: an HDR histogram of
// microseconds, here with 2 significant digits (quantiles within 1%), up to
// ten minutes (longer ones count as ten minutes).
const maxLatencyMicros = int64(10 * time.Minute / time.Microsecond)

func newLatencyHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxLatencyMicros, 2) }

// measurement is the live, locked form of a Report.
type measurement struct {
	mu                sync.Mutex
	route             rollout.Route
	since             time.Time
	stable, candidate versionCounts
	agreement         rollout.Agreement
	incomparable      int64
	mirrors           rollout.MirrorReport
}

// versionCounts is one version's share of a measurement.
type versionCounts struct {
	requests, errors int64
	latency          *hdrhistogram.Histogram
}

func (v *versionCounts) record(took time.Duration) {
	v.latency.RecordValue(min(max(took.Microseconds(), 1), maxLatencyMicros))
}

func (v *versionCounts) report() rollout.BackendReport {
	return rollout.BackendReport{Requests: v.requests, Errors: v.errors,
		P50: float64(v.latency.ValueAtQuantile(50)) / 1e6, P99: float64(v.latency.ValueAtQuantile(99)) / 1e6}
}

func (m *measurement) of(b backend) *versionCounts {
	if b == candidateBackend {
		return &m.candidate
	}
	return &m.stable
}

// reset starts a new measurement for rt.
func (m *measurement) reset(rt rollout.Route, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.route, m.since = rt, now
	for _, v := range []*versionCounts{&m.stable, &m.candidate} {
		v.requests, v.errors = 0, 0
		if v.latency == nil {
			v.latency = newLatencyHistogram()
		}
		v.latency.Reset()
	}
	m.agreement, m.incomparable, m.mirrors = rollout.Agreement{}, 0, rollout.MirrorReport{}
}

// follow makes rt the measured route: a new ID starts a new measurement, the
// same ID (with, say, another weight) keeps the counts.
func (m *measurement) follow(rt rollout.Route, now time.Time) {
	m.mu.Lock()
	same := m.route.ID == rt.ID
	if same {
		m.route = rt
	}
	m.mu.Unlock()
	if !same {
		m.reset(rt, now)
	}
}

// observe counts one answer of version b.
func (m *measurement) observe(b backend, code int, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.of(b)
	v.requests++
	if code >= 500 {
		v.errors++
	}
	v.record(took)
}

// observeLatency adds a latency without a request: the stable version's answer
// to a mirror (split mode), so its p99 is known even at a 100% step, when it
// answers no client.
func (m *measurement) observeLatency(b backend, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.of(b).record(took)
}

func (m *measurement) compared(a rollout.Agreement) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agreement.Add(a)
}

func (m *measurement) incomparableAnswers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.incomparable++
}

// A mirror's fate, as tide_router_mirrors_total{result} and the report count it.
const (
	mirrorSent    = "sent"
	mirrorDropped = "dropped"
	mirrorFailed  = "failed"
)

func (m *measurement) mirror(result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch result {
	case mirrorSent:
		m.mirrors.Sent++
	case mirrorDropped:
		m.mirrors.Dropped++
	case mirrorFailed:
		m.mirrors.Failed++
	}
}

func (m *measurement) report() rollout.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return rollout.Report{
		Route: m.route, Since: m.since,
		Stable:    m.stable.report(),
		Candidate: m.candidate.report(),
		Agreement: rollout.AgreementReport{Compared: m.agreement.Compared, Agreed: m.agreement.Agreed, Incomparable: m.incomparable,
			MeanProbabilityDiff: m.agreement.MeanProbabilityDiff()},
		Mirrors: m.mirrors,
	}
}
