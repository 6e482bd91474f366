package activator

import (
	"math"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/rollout"
)

// measure.go keeps what the current route has seen, per version: requests,
// errors (5xx, which includes the router's own 502/503/504 for a backend that
// failed or timed out), latency, and the agreement of the two versions' answers
// to the same request. The operator reads it (GET /v1/route) to judge a step; a
// new route ID starts it again.

// latency buckets: upper bounds 50µs·1.1^i, so a quantile is within 10%.
const (
	latencyBase    = 50 * time.Microsecond
	latencyGrowth  = 1.1
	latencyBuckets = 160 // up to ~2.4 minutes
)

type latencyHist struct {
	counts [latencyBuckets]int64
	n      int64
}

func (h *latencyHist) observe(d time.Duration) {
	i := 0
	if d > latencyBase {
		i = int(math.Ceil(math.Log(float64(d)/float64(latencyBase)) / math.Log(latencyGrowth)))
	}
	h.counts[min(max(i, 0), latencyBuckets-1)]++
	h.n++
}

// quantile is the upper bound of the bucket holding the q-th observation (0 with none).
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(float64(latencyBase) * math.Pow(latencyGrowth, float64(i)))
		}
	}
	return time.Duration(float64(latencyBase) * math.Pow(latencyGrowth, latencyBuckets-1))
}

// measurement is the live, locked form of a Report.
type measurement struct {
	mu                sync.Mutex
	route             rollout.Route
	since             time.Time
	stable, candidate struct {
		requests, errors int64
		hist             latencyHist
	}
	agreement    rollout.Agreement
	incomparable int64
	mirrors      rollout.MirrorReport
}

// reset starts a new measurement for rt.
func (m *measurement) reset(rt rollout.Route, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.route, m.since = rt, now
	m.stable.requests, m.stable.errors, m.stable.hist = 0, 0, latencyHist{}
	m.candidate.requests, m.candidate.errors, m.candidate.hist = 0, 0, latencyHist{}
	m.agreement, m.incomparable, m.mirrors = rollout.Agreement{}, 0, rollout.MirrorReport{}
}

func (m *measurement) observe(b backend, code int, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.stable
	if b == candidateBackend {
		s = &m.candidate
	}
	s.requests++
	if code >= 500 {
		s.errors++
	}
	s.hist.observe(took)
}

// observeLatency adds a latency without a request: the stable version's answer
// to a mirror (split mode), so its p99 is known even at a 100% step, when it
// answers no client.
func (m *measurement) observeLatency(b backend, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b == candidateBackend {
		m.candidate.hist.observe(took)
		return
	}
	m.stable.hist.observe(took)
}

func (m *measurement) compared(a rollout.Agreement, incomparable bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if incomparable {
		m.incomparable++
		return
	}
	m.agreement.Add(a)
}

func (m *measurement) mirror(sent, dropped, failed int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mirrors.Sent += sent
	m.mirrors.Dropped += dropped
	m.mirrors.Failed += failed
}

func (m *measurement) report() rollout.Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	br := func(requests, errors int64, h *latencyHist) rollout.BackendReport {
		return rollout.BackendReport{Requests: requests, Errors: errors, P50: h.quantile(0.5).Seconds(), P99: h.quantile(0.99).Seconds()}
	}
	return rollout.Report{
		Route: m.route, Since: m.since,
		Stable:    br(m.stable.requests, m.stable.errors, &m.stable.hist),
		Candidate: br(m.candidate.requests, m.candidate.errors, &m.candidate.hist),
		Agreement: rollout.AgreementReport{Compared: m.agreement.Compared, Agreed: m.agreement.Agreed, Incomparable: m.incomparable,
			MeanProbabilityDiff: m.agreement.MeanProbabilityDiff()},
		Mirrors: m.mirrors,
	}
}
