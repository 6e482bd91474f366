package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/activator"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/rollout"
	"github.com/tideserve/tide/internal/server"
)

// serveModel runs an in-process Tide server for the model file, served under
// the name "fraud" as both versions of a Model are, and returns its base URL.
func serveModel(t *testing.T, ctx context.Context, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "fraud.joblib")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Open(file, repository.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go server.New(repo, server.Options{}, slog.New(slog.DiscardHandler)).Serve(ctx, ln)
	return "http://" + ln.Addr().String()
}

// The PromQL docs/rollouts.md gives for comparing the versions' label
// distributions without mirroring: each version's share of label 1.
const labelShareQuery = `sum by (backend) (tide_router_predictions_total{label="1"}) / sum by (backend) (tide_router_predictions_total)`

// TestPrometheusComparesTheVersions: a real Prometheus scrapes a real router
// (activator.Run, its route set over HTTP with the control token) that mirrors
// every request from a logistic regression (stable) to a random forest
// (candidate). The agreement it counts and each version's predictions it
// exports are what the clients saw and the router's own report says, and the
// documented query compares the two distributions.
func TestPrometheusComparesTheVersions(t *testing.T) {
	promBin := need(t, "prometheus")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stable := serveModel(t, ctx, "../../internal/server/testdata/fraud_logreg.joblib")
	candidate := serveModel(t, ctx, "../../internal/server/testdata/fraud_rf.joblib")
	for _, base := range []string{stable, candidate} {
		waitTideReady(t, base)
	}
	token := "integration-control-token-0123456789"
	target, _ := url.Parse(stable)
	addrs := make(chan activator.Addrs, 1)
	go activator.Run(ctx, activator.Addrs{Proxy: "127.0.0.1:0", Ops: "127.0.0.1:0"},
		activator.Config{Target: target, ControlToken: token}, slog.New(slog.DiscardHandler), func(a activator.Addrs) { addrs <- a })
	a := <-addrs
	prom := startPrometheus(t, promBin, a.Ops, nil)

	route, _ := json.Marshal(rollout.Route{ID: "shadow-1", Candidate: candidate, Weight: 100, Shadow: true})
	req, _ := http.NewRequest(http.MethodPut, "http://"+a.Ops+rollout.RoutePath, bytes.NewReader(route))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT route: %v %v", resp, err)
	}
	resp.Body.Close()

	// Half the requests are the tutorial's /predict (labels only), half OIP v2
	// (labels and class probabilities).
	const n = 200
	ones := 0
	for i := range n {
		x1, x2 := float64(i%40)/8-2.5, float64(i%17)/4-2
		path, body := "/predict", fmt.Sprintf(`{"feature1": %g, "feature2": %g}`, x1, x2)
		if i%2 == 1 {
			path = "/v2/models/fraud/infer"
			body = fmt.Sprintf(`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,2],"data":[%g,%g]}]}`, x1, x2)
		}
		resp, err := http.Post("http://"+a.Proxy+path, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p, err := rollout.ReadAnswer(b)
		if err != nil || resp.Header.Get(rollout.RouteHeader) != "stable" {
			t.Fatalf("answer %q from %q: %v", b, resp.Header.Get(rollout.RouteHeader), err)
		}
		if p.Labels[0] == "1" {
			ones++
		}
	}
	var rep rollout.Report
	waitFor(t, 10*time.Second, "every mirror compared", func() (bool, string) {
		resp, err := http.Get("http://" + a.Ops + rollout.RoutePath)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&rep)
		return rep.Agreement.Compared == n, fmt.Sprintf("%+v", rep.Agreement)
	})
	t.Logf("router report: %d compared, %d agreed (%.3f), mean probability difference %.4f", rep.Agreement.Compared, rep.Agreement.Agreed,
		float64(rep.Agreement.Agreed)/n, rep.Agreement.MeanProbabilityDiff)
	if rep.Agreement.Agreed == 0 || rep.Agreement.Agreed == n || rep.Agreement.MeanProbabilityDiff <= 0 {
		t.Errorf("a logistic regression and a forest should agree often but not always: %+v", rep.Agreement)
	}
	expect := map[string]float64{
		`sum(tide_router_agreement_total{result="agree"})`:                    float64(rep.Agreement.Agreed),
		`sum(tide_router_agreement_total{result="disagree"})`:                 float64(n - rep.Agreement.Agreed),
		`sum(tide_router_predictions_total{backend="stable"})`:                n,
		`sum(tide_router_predictions_total{backend="candidate"})`:             n,
		`sum(tide_router_predictions_total{backend="stable",label="1"})`:      float64(ones),
		`sum(tide_router_backend_requests_total{backend="candidate"})`:        n,
		`sum(tide_router_mirrors_total{result="sent"})`:                       n,
		`tide_router_candidate_weight_percent`:                                100,
		`sum(tide_router_backend_latency_seconds_count{backend="candidate"})`: n,
	}
	for q, want := range expect {
		waitFor(t, 30*time.Second, q, func() (bool, string) {
			got := prom.value(q)
			return got == want, fmt.Sprintf("got %v, want %v", got, want)
		})
	}
	// The documented comparison: one share per version, the stable one what the clients saw.
	waitFor(t, 10*time.Second, "the label-share query", func() (bool, string) {
		shares, err := prom.vector(labelShareQuery)
		if err != nil {
			return false, err.Error()
		}
		ok := len(shares) == 2 && shares["stable"] == float64(ones)/n && shares["candidate"] >= 0 && shares["candidate"] <= 1
		return ok, fmt.Sprint(shares)
	})
	if doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "rollouts.md")); err != nil || !bytes.Contains(doc, []byte(labelShareQuery)) {
		t.Errorf("docs/rollouts.md no longer gives the query this test runs (%v)", err)
	}
}
