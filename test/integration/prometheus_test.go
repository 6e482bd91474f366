// Package integration runs Tide against real outside components started by the
// test itself. Each test skips when its component is not installed, unless
// TIDE_REQUIRE_INTEGRATION=1 (as CI sets), when a missing component fails the run.
package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/tideserve/tide/internal/formats/sklearn"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/server"
)

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is not installed and TIDE_REQUIRE_INTEGRATION=1", bin)
		}
		t.Skipf("%s not installed", bin)
	}
	return p
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestPrometheusScrapesTide: a real Prometheus scrapes a real `tide serve`, and the
// request counters and latency histogram it stores match the traffic sent.
func TestPrometheusScrapesTide(t *testing.T) {
	promBin := need(t, "prometheus")

	repo, err := repository.Open("../../internal/server/testdata/fraud_logreg.joblib", repository.Options{}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(repo, server.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tideLn := listen(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go srv.Serve(ctx, tideLn)

	prom := startPrometheus(t, promBin, tideLn.Addr().String(), nil)

	base := "http://" + tideLn.Addr().String()
	waitTideReady(t, base)
	const good, bad = 25, 4
	for i := 0; i < good; i++ {
		post(t, base+"/predict", fmt.Sprintf(`{"feature1": %d, "feature2": -1.2}`, i))
	}
	for i := 0; i < bad; i++ {
		post(t, base+"/predict", `{"feature1": 1}`)
	}

	expect := map[string]string{
		`up{job="tide"}`: "1",
		`tide_requests_total{model="fraud_logreg",protocol="predict",code="200"}`:      fmt.Sprint(good),
		`tide_requests_total{model="fraud_logreg",protocol="predict",code="422"}`:      fmt.Sprint(bad),
		`tide_request_duration_seconds_count{model="fraud_logreg",protocol="predict"}`: fmt.Sprint(good + bad),
		`tide_model_ready{model="fraud_logreg"}`:                                       "1",
		`tide_inflight_requests{model="fraud_logreg"}`:                                 "0",
	}
	for q, want := range expect {
		waitFor(t, 30*time.Second, q, func() (bool, string) {
			got, err := prom.query(q)
			if err != nil {
				return false, err.Error()
			}
			return got == want, "got " + got + ", want " + want
		})
	}
}

// waitTideReady waits until the Tide server at base reports ready.
func waitTideReady(t *testing.T, base string) {
	t.Helper()
	waitFor(t, 15*time.Second, "tide ready", func() (bool, string) {
		resp, err := http.Get(base + "/v2/health/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

func post(t *testing.T, u, body string) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func waitFor(t *testing.T, limit time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s (%s)", what, limit, last)
}
