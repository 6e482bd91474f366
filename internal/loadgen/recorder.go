package loadgen

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"
)

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with three
// significant digits for the whole run (0.1 % error) and two for each second's
// histogram, which is kept once per second of the run and so must stay small.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
)

// Sample is one second of the run: what was sent and what came back in it.
// Latencies are those of the requests that completed within the second.
type Sample struct {
	Second int `json:"t"` // seconds since the run began; the sample covers [t-1, t)
	// Span is the seconds the sample covers: 1, except for the last one,
	// which ends when the last request does.
	Span     float64 `json:"span_s"`
	Target   float64 `json:"target"`
	Sent     int64   `json:"sent"`
	OK       int64   `json:"ok"`
	Errors   int64   `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	InFlight int64   `json:"in_flight"`
	// Replicas is filled only when a cluster is watched; -1 means unknown.
	DesiredReplicas int `json:"desired_replicas"`
	ReadyReplicas   int `json:"ready_replicas"`
	// Backlog is the broker's count of messages not yet answered, for a
	// queue target; -1 means unknown.
	Backlog int64 `json:"backlog"`
}

// Summary is the whole run, the numbers a report leads with.
type Summary struct {
	Mode      string         `json:"mode"` // "open" or "closed"
	URL       string         `json:"url"`
	Protocol  Protocol       `json:"protocol"`
	Plan      string         `json:"stages"`
	Started   time.Time      `json:"started"`
	Elapsed   float64        `json:"elapsed_s"`
	Sent      int64          `json:"sent"`
	Completed int64          `json:"completed"`
	OK        int64          `json:"ok"`
	Errors    int64          `json:"errors"`
	Rate      float64        `json:"rate"`    // completed requests per second
	OKRate    float64        `json:"ok_rate"` // 2xx responses per second
	BytesIn   int64          `json:"bytes_in"`
	Latency   LatencySummary `json:"latency_ms"`
	// Service is latency from the moment each request actually left, which
	// leaves out time spent waiting for its turn. Open loop only: comparing
	// it with Latency tells a slow server from a slow generator.
	Service    *LatencySummary `json:"service_ms,omitempty"`
	StatusCode map[int]int64   `json:"status_codes"`
	// GRPCCodes counts gRPC calls by the status the server answered with,
	// named as the specification names them (OK, RESOURCE_EXHAUSTED, ...).
	GRPCCodes  map[string]int64 `json:"grpc_codes,omitempty"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	// Late counts open-loop requests sent more than a millisecond after their
	// intended time: the generator, not the server, was the limit. Their latency
	// still counts from the intended time.
	Late int64 `json:"late"`
}

// LatencySummary holds the whole run's latency distribution in milliseconds.
type LatencySummary struct {
	Min  float64            `json:"min"`
	Mean float64            `json:"mean"`
	Max  float64            `json:"max"`
	Pct  map[string]float64 `json:"percentiles"` // "50", "90", "99", "99.9"
}

// Percentiles reported in summaries, in order.
var summaryPercentiles = []float64{10, 25, 50, 75, 90, 95, 99, 99.9}

// recorder collects outcomes from every worker. One mutex is enough: a record
// is a few adds and two histogram increments, far below a request's cost.
type recorder struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram
	service  *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram
	sent     int64
	done     int64
	ok       int64
	errs     int64
	late     int64
	bytesIn  int64
	inFlight int64
	status   map[int]int64
	grpc     map[codes.Code]int64
	errKinds map[string]int64
	// per-second counters, reset by tick
	secSent, secOK, secErrs int64
}

func newRecorder() *recorder {
	return &recorder{
		total:    hdrhistogram.New(histMinMicros, histMaxMicros, 3),
		service:  hdrhistogram.New(histMinMicros, histMaxMicros, 3),
		interval: hdrhistogram.New(histMinMicros, histMaxMicros, 2),
		status:   map[int]int64{},
		grpc:     map[codes.Code]int64{},
		errKinds: map[string]int64{},
	}
}

func (r *recorder) started(late bool) {
	r.mu.Lock()
	r.sent++
	r.secSent++
	r.inFlight++
	if late {
		r.late++
	}
	r.mu.Unlock()
}

// finished records one request: latency from its intended send time, service
// from when it actually left. status is 0 when no response came back.
func (r *recorder) finished(latency, service time.Duration, status int, bytesIn int64, err error) {
	us := clampMicros(latency)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	r.done++
	r.bytesIn += bytesIn
	if err != nil {
		r.errs++
		r.secErrs++
		r.errKinds[errorKind(err)]++
		// A failed request has no response time to speak of; counting a
		// refused connection's 50 µs would flatter the latency.
		return
	}
	r.status[status]++
	r.answered(status >= 200 && status < 300, us, service)
}

// finishedGRPC records one gRPC call the server answered: OK is a success,
// any other code an error counted under its name, as a non-2xx response is.
func (r *recorder) finishedGRPC(latency, service time.Duration, code codes.Code, bytesIn int64) {
	us := clampMicros(latency)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	r.done++
	r.bytesIn += bytesIn
	r.grpc[code]++
	r.answered(code == codes.OK, us, service)
}

// answered counts a request the server answered, over HTTP or gRPC, as a success or
// an error and records its latency. The caller holds r.mu.
func (r *recorder) answered(success bool, us int64, service time.Duration) {
	if success {
		r.ok++
		r.secOK++
	} else {
		r.errs++
		r.secErrs++
	}
	_ = r.total.RecordValue(us)
	_ = r.interval.RecordValue(us)
	_ = r.service.RecordValue(clampMicros(service))
}

func clampMicros(d time.Duration) int64 {
	return min(max(d.Microseconds(), histMinMicros), histMaxMicros)
}

// tick closes the current second and starts the next.
func (r *recorder) tick(second int, span, target float64) Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Sample{
		Second: second, Span: span, Target: target,
		Sent: r.secSent, OK: r.secOK, Errors: r.secErrs, InFlight: r.inFlight,
		DesiredReplicas: -1, ReadyReplicas: -1, Backlog: -1,
	}
	if r.interval.TotalCount() > 0 {
		s.P50 = ms(r.interval.ValueAtQuantile(50))
		s.P90 = ms(r.interval.ValueAtQuantile(90))
		s.P99 = ms(r.interval.ValueAtQuantile(99))
		s.Max = ms(r.interval.Max())
	}
	r.interval.Reset()
	r.secSent, r.secOK, r.secErrs = 0, 0, 0
	return s
}

func (r *recorder) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{
		Sent: r.sent, Completed: r.done, OK: r.ok, Errors: r.errs, Late: r.late, BytesIn: r.bytesIn,
		StatusCode: make(map[int]int64, len(r.status)),
		ErrorKinds: make(map[string]int64, len(r.errKinds)),
	}
	for k, v := range r.status {
		s.StatusCode[k] = v
	}
	for k, v := range r.errKinds {
		s.ErrorKinds[k] = v
	}
	if len(r.grpc) > 0 {
		s.GRPCCodes = make(map[string]int64, len(r.grpc))
		for k, v := range r.grpc {
			s.GRPCCodes[CodeName(k)] = v
		}
	}
	s.Latency = summarize(r.total)
	service := summarize(r.service)
	s.Service = &service
	return s
}

func summarize(h *hdrhistogram.Histogram) LatencySummary {
	l := LatencySummary{Pct: map[string]float64{}}
	if h.TotalCount() > 0 {
		l.Min = ms(h.Min())
		l.Max = ms(h.Max())
		l.Mean = h.Mean() / 1000
		for _, q := range summaryPercentiles {
			l.Pct[PercentileKey(q)] = ms(h.ValueAtQuantile(q))
		}
	}
	return l
}

// PercentileKey names a percentile in Summary.Latency.Pct: 99.9 → "99.9".
func PercentileKey(q float64) string {
	return strconv.FormatFloat(q, 'f', -1, 64)
}

// SortedPercentiles returns the summary's percentile keys in numeric order.
func (l LatencySummary) SortedPercentiles() []string {
	keys := make([]string, 0, len(l.Pct))
	for k := range l.Pct {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.ParseFloat(keys[i], 64)
		b, _ := strconv.ParseFloat(keys[j], 64)
		return a < b
	})
	return keys
}

func ms(us int64) float64 { return float64(us) / 1000 }

// errorKind names a transport failure by its cause, so a breakdown groups
// thousands of "dial tcp 127.0.0.1:8080: connect: connection refused" under one line.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EMFILE):
		return "too many open files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// pending reports whether anything was recorded since the last tick.
func (r *recorder) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.secSent+r.secOK+r.secErrs > 0 || r.interval.TotalCount() > 0
}
