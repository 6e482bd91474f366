package activator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tideserve/tide/internal/rollout"
)

// version is a backend answering /predict as a classifier that always says
// label, after delay, with status code (an error body unless 200).
func version(t *testing.T, label string, delay time.Duration, code int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code == http.StatusOK {
			fmt.Fprintf(w, `{"prediction":[%s]}`, label)
		} else {
			w.Write([]byte(`{"error":"boom"}`))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func routedPost(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/predict", strings.NewReader(`{"feature1":1,"feature2":2}`))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(rollout.RouteHeader)
}

func TestRouterSplitsByWeightAndComparesAnswers(t *testing.T) {
	stable, cand := version(t, "0", 0, 200), version(t, "1", 0, 200)
	p, front, reg := newProxy(t, stable.URL, Config{})

	// No route: every request to the stable version, unlabelled.
	if code, route := routedPost(t, front.URL, nil); code != 200 || route != "" {
		t.Fatalf("no route: %d %q", code, route)
	}
	p.SetRoute(rollout.Route{ID: "step-1", Candidate: cand.URL, Weight: 30}, mustURL(t, cand.URL))
	n, toCand := 1000, 0
	for range n {
		code, route := routedPost(t, front.URL, nil)
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		if route == "candidate" {
			toCand++
		} else if route != "stable" {
			t.Fatalf("route header %q", route)
		}
	}
	if toCand < 220 || toCand > 380 {
		t.Errorf("candidate answered %d of %d at weight 30", toCand, n)
	}
	// Each request the candidate answered was mirrored to the stable version and
	// the two answers (0 and 1) compared: they never agree.
	waitFor(t, "the comparisons", func() bool { return p.Report().Agreement.Compared == int64(toCand) })
	rep := p.Report()
	if rep.Candidate.Requests != int64(toCand) || rep.Stable.Requests != int64(n-toCand) || rep.Agreement.Agreed != 0 || rep.Route.ID != "step-1" {
		t.Errorf("report %+v", rep)
	}
	if got := testutil.ToFloat64(p.router.agreement.WithLabelValues("disagree")); got != float64(toCand) {
		t.Errorf("tide_router_agreement_total{disagree} = %v", got)
	}
	if got := testutil.ToFloat64(p.router.predictions.WithLabelValues("candidate", "1")); got < float64(toCand) {
		t.Errorf("candidate's exported label-1 predictions %v < %d", got, toCand)
	}
	if _, err := testutil.GatherAndCount(reg, "tide_router_backend_requests_total"); err != nil {
		t.Error(err)
	}
	// The same ID again keeps the measurement; a new one starts it afresh.
	p.SetRoute(rollout.Route{ID: "step-1", Candidate: cand.URL, Weight: 30}, mustURL(t, cand.URL))
	if p.Report().Candidate.Requests != int64(toCand) {
		t.Error("re-setting the same route reset its measurement")
	}
	p.SetRoute(rollout.Route{ID: "step-2", Candidate: cand.URL, Weight: 100}, mustURL(t, cand.URL))
	if r := p.Report(); r.Candidate.Requests != 0 || r.Stable.Requests != 0 {
		t.Errorf("a new route kept the old measurement: %+v", r)
	}
	if _, route := routedPost(t, front.URL, nil); route != "candidate" {
		t.Errorf("weight 100 answered from %q", route)
	}
	// At 100% the stable version answers only the mirror; its latency is still known.
	waitFor(t, "the mirror's comparison", func() bool { return p.Report().Agreement.Compared == 1 })
	if r := p.Report(); r.Stable.Requests != 0 || r.Stable.P99 <= 0 {
		t.Errorf("stable at a 100%% step: %+v", r.Stable)
	}
}

func TestRouterStickyKeyKeepsOneVersion(t *testing.T) {
	stable, cand := version(t, "0", 0, 200), version(t, "0", 0, 200)
	p, front, _ := newProxy(t, stable.URL, Config{})
	p.SetRoute(rollout.Route{ID: "s", Candidate: cand.URL, Weight: 50, StickyHeader: "X-Customer-Id"}, mustURL(t, cand.URL))
	seen := map[string]map[string]bool{}
	for i := range 1000 {
		id := fmt.Sprintf("customer-%d", i%50)
		_, route := routedPost(t, front.URL, map[string]string{"X-Customer-Id": id})
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		seen[id][route] = true
	}
	versions := map[string]int{}
	for id, routes := range seen {
		if len(routes) != 1 {
			t.Errorf("%s was answered by %v", id, routes)
		}
		for r := range routes {
			versions[r]++
		}
	}
	if versions["stable"] == 0 || versions["candidate"] == 0 {
		t.Errorf("50 ids at weight 50 all went one way: %v", versions)
	}
	// A cookie works the same, and a larger weight only moves ids to the candidate.
	p.SetRoute(rollout.Route{ID: "s2", Candidate: cand.URL, Weight: 80, StickyCookie: "cust"}, mustURL(t, cand.URL))
	for id, routes := range seen {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/predict", strings.NewReader(`{}`))
		req.AddCookie(&http.Cookie{Name: "cust", Value: id})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if routes["candidate"] && resp.Header.Get(rollout.RouteHeader) != "candidate" {
			t.Errorf("%s moved back to the stable version as the weight grew", id)
		}
	}
}

func TestRouterShadowAnswersFromStableAndMeasuresCandidate(t *testing.T) {
	stable, cand := version(t, "0", 0, 200), version(t, "0", 0, 500)
	p, front, _ := newProxy(t, stable.URL, Config{})
	p.SetRoute(rollout.Route{ID: "shadow", Candidate: cand.URL, Weight: 100, Shadow: true}, mustURL(t, cand.URL))
	for range 100 {
		if code, route := routedPost(t, front.URL, nil); code != 200 || route != "stable" {
			t.Fatalf("shadow answered %d from %q", code, route)
		}
	}
	waitFor(t, "100 mirrors answered", func() bool { return p.Report().Candidate.Requests == 100 })
	rep := p.Report()
	if rep.Candidate.Errors != 100 || rep.Stable.Requests != 100 || rep.Stable.Errors != 0 || rep.Mirrors.Sent != 100 || rep.Mirrors.Failed != 100 {
		t.Errorf("shadow of a failing candidate: %+v", rep)
	}
	if rep.Agreement.Compared != 0 {
		t.Errorf("an error answer was compared: %+v", rep.Agreement)
	}
}

func TestRouterMirrorQueueIsBoundedAndNeverDelaysAnswers(t *testing.T) {
	stable, cand := version(t, "0", 0, 200), version(t, "0", 300*time.Millisecond, 200)
	p, front, _ := newProxy(t, stable.URL, Config{MirrorQueue: 2, MirrorWorkers: 1})
	p.SetRoute(rollout.Route{ID: "shadow", Candidate: cand.URL, Weight: 100, Shadow: true}, mustURL(t, cand.URL))
	start := time.Now()
	for range 50 {
		routedPost(t, front.URL, nil)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("50 answers took %s behind a 300 ms shadow", took)
	}
	rep := p.Report()
	if rep.Mirrors.Dropped < 40 || testutil.ToFloat64(p.router.mirrors.WithLabelValues("dropped")) != float64(rep.Mirrors.Dropped) {
		t.Errorf("mirrors %+v: a queue of 2 behind one slow worker must drop most of 50", rep.Mirrors)
	}
}

func TestRouteControlNeedsTheToken(t *testing.T) {
	stable, cand := version(t, "0", 0, 200), version(t, "1", 0, 200)
	put := func(p *Proxy, token, body string) (int, string) {
		ops := http.NewServeMux()
		p.registerControl(ops)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPut, rollout.RoutePath, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		ops.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	good := fmt.Sprintf(`{"id":"a","candidate":%q,"weight":25}`, cand.URL)
	off, _, _ := newProxy(t, stable.URL, Config{})
	if code, _ := put(off, "x", good); code != http.StatusForbidden {
		t.Errorf("without a configured token: %d", code)
	}
	p, _, _ := newProxy(t, stable.URL, Config{ControlToken: "s3cret"})
	for _, tc := range []struct {
		token, body string
		code        int
	}{
		{"", good, 401}, {"wrong", good, 401},
		{"s3cret", `{"id":`, 400},
		{"s3cret", `{"id":"a","weight":101,"candidate":"http://x"}`, 422},
		{"s3cret", `{"id":"a","weight":5}`, 422},
		{"s3cret", `{"id":"a","weight":5,"candidate":"ftp://x"}`, 422},
		{"s3cret", `{"id":"a","weight":5,"candidate":"http://x","extra":1}`, 400},
		{"s3cret", `{"id":"a","weight":5,"candidate":"http://x","stickyHeader":"bad header"}`, 422},
		{"s3cret", `{"id":"a","weight":5,"candidate":"http://x"}` + strings.Repeat(" ", rollout.MaxRouteBytes), 413},
		{"s3cret", good, 200},
	} {
		code, body := put(p, tc.token, tc.body)
		if code != tc.code {
			t.Errorf("PUT %.60q with %q: %d %s, want %d", tc.body, tc.token, code, body, tc.code)
		}
		if code != 200 && (strings.Count(body, "\n") > 0 || !strings.HasPrefix(body, `{"error":`)) {
			t.Errorf("error body %q is not one JSON line", body)
		}
	}
	if r := p.Report().Route; r.Weight != 25 || r.Candidate != cand.URL {
		t.Errorf("route after PUT: %+v", r)
	}
}

// BenchmarkMeasurementObserve is the router's bookkeeping per answer (the
// route's counts and latency histogram, under their mutex).
func BenchmarkMeasurementObserve(b *testing.B) {
	var m measurement
	m.reset(rollout.Route{}, time.Now())
	for i := 0; b.Loop(); i++ {
		m.observe(stableBackend, http.StatusOK, time.Duration(i%5000)*time.Microsecond)
	}
}
