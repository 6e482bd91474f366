package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Targets lists the host:port addresses to scrape this tick.
type Targets func(ctx context.Context) ([]string, error)

// DNSTargets resolves a headless Service's name each tick: its A records are the
// ready pods, so pods that come and go are followed with no Kubernetes client. A
// name with no records (a Deployment at zero) is no targets, not an error.
func DNSTargets(name string, port int) Targets {
	p := strconv.Itoa(port)
	return func(ctx context.Context) ([]string, error) {
		ips, err := net.DefaultResolver.LookupHost(ctx, name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out := make([]string, len(ips))
		for i, ip := range ips {
			out[i] = net.JoinHostPort(ip, p)
		}
		return out, nil
	}
}

// StaticTargets is a fixed list of host:port addresses.
func StaticTargets(addrs ...string) Targets {
	return func(context.Context) ([]string, error) { return addrs, nil }
}

// Scraper turns the Tide pods' and activators' /metrics into one Sample per tick.
// Concurrency per pod is the larger of its in-flight gauge (what is queued or
// running at the scrape) and the time-averaged concurrency since the last scrape,
// which is the growth of tide_request_duration_seconds_sum per second (Little's
// law: the seconds spent serving per second of wall time), so a gauge read at one
// instant does not decide alone. The activator's held requests count as demand:
// they are the only demand while the Deployment is at zero.
type Scraper struct {
	Pods, Activators Targets
	Client           *http.Client
	// MaxTargets bounds the pods scraped per tick; MaxBody one answer's size.
	MaxTargets int
	MaxBody    int64

	mu   sync.Mutex
	prev map[string]podCounters // by address, last tick's; rebuilt each tick
}

// podCounters is what one scrape of a Tide pod reads.
type podCounters struct {
	at          time.Time
	requests    float64 // tide_requests_total, all labels
	busySeconds float64 // tide_request_duration_seconds_sum, all labels
	inflight    float64 // tide_inflight_requests, all models
	held        float64 // tide_activator_held_requests (activators)
}

// NewScraper returns a scraper with bounded defaults: 1,000 targets, 8 MiB a body,
// 800 ms a scrape.
func NewScraper(pods, activators Targets) *Scraper {
	return &Scraper{Pods: pods, Activators: activators, Client: &http.Client{Timeout: 800 * time.Millisecond},
		MaxTargets: 1000, MaxBody: 8 << 20, prev: map[string]podCounters{}}
}

// Collect scrapes every target once and returns the tick's sample. A pod that does
// not answer is left out (it is not ready, or going); an error is returned only
// when the pods' address list itself cannot be had.
func (s *Scraper) Collect(ctx context.Context, now time.Time) (Sample, error) {
	pods, err := s.Pods(ctx)
	if err != nil {
		return Sample{At: now}, fmt.Errorf("pods: %w", err)
	}
	var acts []string
	if s.Activators != nil {
		if acts, err = s.Activators(ctx); err != nil {
			acts = nil // the activator's absence only loses the held count
		}
	}
	if len(pods) > s.MaxTargets {
		pods = pods[:s.MaxTargets]
	}
	if len(acts) > s.MaxTargets {
		acts = acts[:s.MaxTargets]
	}
	podRead := s.scrapeAll(ctx, pods)
	actRead := s.scrapeAll(ctx, acts)

	s.mu.Lock()
	defer s.mu.Unlock()
	sample := Sample{At: now}
	next := make(map[string]podCounters, len(podRead))
	for addr, c := range podRead {
		c.at = now
		next[addr] = c
		sample.ReadyPods++
		concurrency := c.inflight
		if p, ok := s.prev[addr]; ok && now.After(p.at) && c.requests >= p.requests {
			dt := now.Sub(p.at).Seconds()
			sample.Rate += (c.requests - p.requests) / dt
			concurrency = max(concurrency, (c.busySeconds-p.busySeconds)/dt)
		}
		sample.Concurrency += concurrency
	}
	for _, c := range actRead {
		sample.Concurrency += c.held
		sample.Rate += c.held
	}
	s.prev = next
	return sample, nil
}

// scrapeAll reads every address at once, at most 32 at a time.
func (s *Scraper) scrapeAll(ctx context.Context, addrs []string) map[string]podCounters {
	out := make(map[string]podCounters, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, a := range addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := s.scrape(ctx, a)
			if err != nil {
				return
			}
			mu.Lock()
			out[a] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (s *Scraper) scrape(ctx context.Context, addr string) (podCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return podCounters{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.Client.Do(req)
	if err != nil {
		return podCounters{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return podCounters{}, fmt.Errorf("%s: status %d", addr, resp.StatusCode)
	}
	return readCounters(resp.Body, s.MaxBody)
}

// readCounters parses a Prometheus text exposition and sums the series the scaler
// needs. Anything larger than maxBody, or unparsable, is an error.
func readCounters(r io.Reader, maxBody int64) (podCounters, error) {
	lr := &io.LimitedReader{R: r, N: maxBody + 1}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(lr)
	if lr.N <= 0 {
		return podCounters{}, fmt.Errorf("metrics larger than %d bytes", maxBody)
	}
	if err != nil {
		return podCounters{}, err
	}
	var c podCounters
	c.requests = sum(fams["tide_requests_total"])
	c.inflight = sum(fams["tide_inflight_requests"])
	c.held = sum(fams["tide_activator_held_requests"])
	if f := fams["tide_request_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			c.busySeconds += m.GetHistogram().GetSampleSum()
		}
	}
	return c, nil
}

// sum adds up a counter or gauge family's samples (NaN and negatives are skipped:
// neither is a count).
func sum(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f.GetMetric() {
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		if v > 0 {
			total += v
		}
	}
	return total
}
