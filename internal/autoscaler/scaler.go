package autoscaler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source gives one tick's sample (Scraper in production, a fixed series in tests).
type Source interface {
	Collect(ctx context.Context, now time.Time) (Sample, error)
}

// Raiser sets the Deployment's replicas up to n at once, between the HPA's syncs;
// it never lowers them and never wakes a Deployment at zero (KEDA owns zero and one,
// and the HPA the way down). nil: the HPA alone applies the decisions.
type Raiser interface {
	// Raise returns the replicas the Deployment had: 0 (left at zero), n or more
	// (left alone), or fewer (set to n).
	Raise(ctx context.Context, n int) (from int, err error)
}

// Scaler runs Decide once a tick over the last stable window's samples, keeps the
// answer for KEDA (grpc.go) and tells KEDA's push streams when activity changes.
type Scaler struct {
	policy Policy
	source Source
	raise  Raiser
	log    *slog.Logger
	series *series

	mu       sync.Mutex
	samples  []Sample
	state    State
	last     Decision
	raisedTo int // the count last seen or set on the Deployment; raise only above it
	started  time.Time
	watchers map[chan struct{}]struct{}
}

// New returns a scaler; reg (may be nil) gets its tide_autoscaler_* series.
func New(p Policy, src Source, raise Raiser, log *slog.Logger, reg prometheus.Registerer) (*Scaler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Scaler{policy: p, source: src, raise: raise, log: log, series: newSeries(reg), watchers: map[chan struct{}]struct{}{}}
	// Until the first tick: asking for MinReplicas and inactive is what an idle
	// Deployment would get.
	s.last.Desired = p.MinReplicas
	return s, nil
}

// Run ticks every interval until ctx ends.
func (s *Scaler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick collects one sample, decides, and acts on the decision.
func (s *Scaler) Tick(ctx context.Context, now time.Time) Decision {
	sample, err := s.source.Collect(ctx, now)
	if err != nil {
		// No sample this tick: the windows average what they have. A missing pod list
		// must not read as zero demand.
		s.series.collectErrors.Inc()
		s.log.Warn("autoscaler: no sample this tick", "err", err)
	}
	s.mu.Lock()
	if s.started.IsZero() {
		s.started = now
	}
	if err == nil {
		s.samples = append(s.samples, sample)
	}
	s.samples = trim(s.samples, now.Add(-s.policy.StableWindow))
	d, st := Decide(now, s.samples, s.state, s.policy)
	d.Warm = !now.Before(s.started.Add(s.policy.StableWindow))
	wasActive := s.last.Active
	s.state, s.last = st, d
	raise := s.raise != nil && d.Desired > s.raisedTo
	if d.Desired < s.raisedTo {
		s.raisedTo = d.Desired // the HPA brings it down; a later rise is raised again
	}
	if d.Active != wasActive {
		for w := range s.watchers {
			select {
			case w <- struct{}{}:
			default: // a watcher that has not read the last change still will
			}
		}
	}
	s.mu.Unlock()
	s.series.observe(d)

	if raise {
		s.raiseTo(ctx, d)
	}
	return d
}

// raiseTo raises the Deployment to the decision's count when it is awake and below.
func (s *Scaler) raiseTo(ctx context.Context, d Decision) {
	from, err := s.raise.Raise(ctx, d.Desired)
	if err != nil {
		s.series.raiseErrors.Inc()
		s.log.Warn("autoscaler: could not raise the replicas", "to", d.Desired, "err", err)
		return
	}
	if from == 0 {
		return // KEDA wakes it; the next tick raises it further once it is awake
	}
	if from < d.Desired {
		s.series.raises.Inc()
		s.log.Info("autoscaler: raised the replicas", "from", from, "to", d.Desired, "panic", d.Panic,
			"concurrency", d.PanicConcurrency, "rate", d.PanicRate, "ready", d.ReadyPods)
	}
	s.mu.Lock()
	s.raisedTo = max(s.raisedTo, from, d.Desired)
	s.mu.Unlock()
}

// Last is the latest decision.
func (s *Scaler) Last() Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// watch returns a channel told of each change of Active, and its cancel.
func (s *Scaler) watch() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers[c] = struct{}{}
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		delete(s.watchers, c)
		s.mu.Unlock()
	}
}

// trim drops samples taken before since (they are in time order).
func trim(samples []Sample, since time.Time) []Sample {
	i := 0
	for i < len(samples) && samples[i].At.Before(since) {
		i++
	}
	if i == 0 {
		return samples
	}
	return append(samples[:0], samples[i:]...)
}

// series are the scaler's own metrics: what it sees and what it decides.
type series struct {
	concurrency, rate             *prometheus.GaugeVec // window: stable | panic
	ready, desired, panic, active prometheus.Gauge
	collectErrors                 prometheus.Counter
	raises, raiseErrors           prometheus.Counter
}

func newSeries(reg prometheus.Registerer) *series {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	s := &series{
		concurrency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_autoscaler_demand_concurrency",
			Help: "In-flight requests (plus those the activator holds) averaged over the window."}, []string{"window"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_autoscaler_demand_rate",
			Help: "Requests per second averaged over the window."}, []string{"window"}),
		ready:         g("tide_autoscaler_ready_pods", "Pods that answered the last scrape: the capacity panic is judged against."),
		desired:       g("tide_autoscaler_desired_replicas", "The replicas the scaler asks for (what KEDA's HPA reads)."),
		panic:         g("tide_autoscaler_panic", "1 while in panic mode (the short window decides and the count never drops)."),
		active:        g("tide_autoscaler_active", "1 while there is demand in the panic window (KEDA keeps zero replicas otherwise)."),
		collectErrors: c("tide_autoscaler_collect_errors_total", "Ticks with no sample because the pod list could not be had."),
		raises:        c("tide_autoscaler_raises_total", "Times the scaler raised the Deployment's replicas ahead of the HPA."),
		raiseErrors:   c("tide_autoscaler_raise_errors_total", "Raises the API server refused or did not answer."),
	}
	if reg != nil {
		reg.MustRegister(s.concurrency, s.rate, s.ready, s.desired, s.panic, s.active, s.collectErrors, s.raises, s.raiseErrors)
	}
	return s
}

func (s *series) observe(d Decision) {
	s.concurrency.WithLabelValues("stable").Set(d.StableConcurrency)
	s.concurrency.WithLabelValues("panic").Set(d.PanicConcurrency)
	s.rate.WithLabelValues("stable").Set(d.StableRate)
	s.rate.WithLabelValues("panic").Set(d.PanicRate)
	s.ready.Set(float64(d.ReadyPods))
	s.desired.Set(float64(d.Desired))
	s.panic.Set(b2f(d.Panic))
	s.active.Set(b2f(d.Active))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
