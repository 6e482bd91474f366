package integration

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tideserve/tide/internal/servertest"
)

// TestDriftAndAccuracyAlertsFireInPrometheus: the tutorial's fraud model served
// with a profile that `tide profile` wrote from reference data; a real
// Prometheus scrapes it and evaluates the chart's own alert rules (rendered by
// helm). In-distribution traffic from `tide load --template` leaves the drift
// alert inactive; shifted traffic fires it; traffic back in distribution clears
// it. Feedback with the true labels keeps accuracy at 1; with 30 % of them
// flipped the accuracy alert fires.
func TestDriftAndAccuracyAlertsFireInPrometheus(t *testing.T) {
	promBin := need(t, "prometheus")
	helm := helmBinary(t)
	server := servertest.Build(t)
	tide := buildTideCLI(t)
	dir := t.TempDir()

	// The model, its monitoring settings and a profile of reference data.
	model := filepath.Join(dir, "models", "fraud")
	os.MkdirAll(model, 0o755)
	copyFile(t, "../../internal/server/testdata/fraud_logreg.joblib", filepath.Join(model, "model.joblib"))
	os.WriteFile(filepath.Join(model, "config.yaml"), []byte("monitoring:\n  window: 400\n  min_rows: 200\n  feedback:\n    window: 200\n"), 0o644)
	ref := filepath.Join(dir, "reference.csv")
	writeReference(t, ref, 5000)
	run(t, tide, "profile", "--model", model, ref, "-o", filepath.Join(model, "profile.json"))

	srv := servertest.Serve(t, server, filepath.Join(dir, "models"))
	base := "http://" + srv.HTTP

	// Prometheus with the chart's rules, evaluated every second, alerts after 2 s.
	rules := renderAlertRules(t, helm, "--set", "metrics.prometheusRule.alerts.drift.for=2s",
		"--set", "metrics.prometheusRule.alerts.accuracy.for=2s", "--set", "metrics.prometheusRule.alerts.accuracy.minRows=150")
	prom := startPrometheus(t, promBin, srv.HTTP, rules)

	type sample struct {
		at       float64
		psi      float64
		accuracy float64
		drift    string
		accAlert string
	}
	var (
		mu       sync.Mutex
		timeline []sample
	)
	start := time.Now()
	note := func() sample {
		s := sample{at: time.Since(start).Seconds(), psi: prom.value(`max(tide_feature_drift{feature="feature1",stat="psi"})`),
			accuracy: prom.value(`min(tide_model_quality{metric="accuracy"})`),
			drift:    prom.alertState("TideFeatureDrift"), accAlert: prom.alertState("TideAccuracyDrop")}
		mu.Lock()
		timeline = append(timeline, s)
		mu.Unlock()
		return s
	}
	// A sample every 250 ms while the test runs, for the timeline.
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(250 * time.Millisecond):
				note()
			}
		}
	}()
	waitState := func(what string, limit time.Duration, ok func(sample) bool) sample {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			s := note()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after %s (last %+v)", what, limit, s)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	load := func(template string, seed int) {
		t.Helper()
		run(t, tide, "load", "-r", "300", "-d", "3s", "--seed", strconv.Itoa(seed), "--template", template, base+"/predict")
		note()
	}
	inDistribution := `{"feature1": {{normal -1 1}}, "feature2": {{normal 1 1}}}`
	shifted := `{"feature1": {{normal 1 1}}, "feature2": {{normal 1 1}}}`

	load(inDistribution, 1)
	s := waitState("in-distribution PSI scraped", 20*time.Second, func(s sample) bool { return s.psi >= 0 })
	if s.psi > 0.1 {
		t.Errorf("in-distribution PSI %.3f, want < 0.1", s.psi)
	}
	time.Sleep(3 * time.Second) // two evaluations past the alert's for:
	if s := note(); s.drift != "inactive" {
		t.Fatalf("drift alert %s on in-distribution traffic", s.drift)
	}
	load(shifted, 2)
	s = waitState("drift alert firing on shifted traffic", 30*time.Second, func(s sample) bool { return s.drift == "firing" })
	t.Logf("shifted: PSI %.2f, drift alert firing after %.1f s", s.psi, s.at)
	load(inDistribution, 3)
	s = waitState("drift alert cleared once traffic is back", 30*time.Second, func(s sample) bool { return s.drift == "inactive" })
	t.Logf("back: PSI %.3f, drift alert inactive at %.1f s", s.psi, s.at)

	// Ground truth: the model's own answers as labels, then 30 % flipped.
	rng := rand.New(rand.NewPCG(5, 6))
	feedback := func(n int, flip float64) {
		t.Helper()
		var items []string
		for i := 0; i < n; i++ {
			body := fmt.Sprintf(`{"feature1": %g, "feature2": %g}`, rng.NormFloat64()-1, rng.NormFloat64()+1)
			resp, err := http.Post(base+"/predict", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var ans struct{ Prediction []int }
			json.NewDecoder(resp.Body).Decode(&ans)
			resp.Body.Close()
			label := ans.Prediction[0]
			if rng.Float64() < flip {
				label = 1 - label
			}
			items = append(items, fmt.Sprintf(`{"id": %q, "label": %d}`, resp.Header.Get("X-Request-Id"), label))
		}
		resp, err := http.Post(base+"/v2/models/fraud/feedback", "application/json", strings.NewReader("["+strings.Join(items, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		var ans struct{ Counts map[string]int }
		json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if ans.Counts["ok"] != n {
			t.Fatalf("feedback counts %v, want %d ok", ans.Counts, n)
		}
	}
	feedback(200, 0)
	s = waitState("accuracy 1 with true labels", 20*time.Second, func(s sample) bool { return s.accuracy == 1 })
	time.Sleep(3 * time.Second)
	if s := note(); s.accAlert != "inactive" {
		t.Fatalf("accuracy alert %s at accuracy %.2f", s.accAlert, s.accuracy)
	}
	feedback(200, 0.3)
	s = waitState("accuracy alert firing with 30% flipped labels", 30*time.Second, func(s sample) bool { return s.accAlert == "firing" })
	if s.accuracy < 0.6 || s.accuracy > 0.8 {
		t.Errorf("accuracy %.3f with 30%% flipped labels, want about 0.7", s.accuracy)
	}
	t.Logf("flipped labels: accuracy %.3f, alert firing at %.1f s", s.accuracy, s.at)

	time.Sleep(2 * time.Second)
	close(sampling)
	<-sampled
	sort.Slice(timeline, func(i, j int) bool { return timeline[i].at < timeline[j].at })

	// The timeline, for docs/monitoring.md's plot: TIDE_MONITORING_TIMELINE=DIR
	// writes timeline.csv and monitoring-alerts.png there.
	if out := os.Getenv("TIDE_MONITORING_TIMELINE"); out != "" {
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write([]string{"seconds", "psi_feature1", "accuracy", "drift_alert", "accuracy_alert"})
		var points []timelinePoint
		for _, s := range timeline {
			w.Write([]string{fmt.Sprintf("%.2f", s.at), fmt.Sprintf("%.4f", s.psi), fmt.Sprintf("%.4f", s.accuracy), s.drift, s.accAlert})
			points = append(points, timelinePoint{at: s.at, psi: s.psi, accuracy: s.accuracy, driftFiring: s.drift == "firing", accuracyFiring: s.accAlert == "firing"})
		}
		w.Flush()
		os.WriteFile(filepath.Join(out, "timeline.csv"), b.Bytes(), 0o644)
		if err := plotTimeline(points, 0.25, 0.8, filepath.Join(out, "monitoring-alerts.png")); err != nil {
			t.Error(err)
		}
	}
}

// writeReference writes n rows like the tutorial's training data: feature1
// around -1, feature2 around 1.
func writeReference(t *testing.T, path string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("feature1,feature2\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%g,%g\n", rng.NormFloat64()-1, rng.NormFloat64()+1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func buildTideCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tide")
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/tideserve/tide/cmd/tide").CombinedOutput()
	if err != nil {
		t.Fatalf("go build tide: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// helmBinary finds helm: $TIDE_HELM, PATH, or the cluster harness's build.
func helmBinary(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("TIDE_CLUSTER_CACHE")
	if cache == "" {
		cache = "/var/cache/tide-cluster"
	}
	for _, c := range []string{os.Getenv("TIDE_HELM"), "helm", cache + "/bin/helm"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return need(t, "helm")
}

// renderAlertRules renders the chart's PrometheusRule and returns its spec as a
// Prometheus rule file. The scrape config below labels the server as a pod of
// the release "fraud" in namespace "ml", so the rules' pod selector matches.
func renderAlertRules(t *testing.T, helm string, set ...string) []byte {
	t.Helper()
	args := append([]string{"template", "fraud", "../../deploy/helm/tide", "--namespace", "ml", "--kube-version", "1.34.4",
		"--set", "metrics.prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml"}, set...)
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var rule struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(out, &rule); err != nil {
		t.Fatal(err)
	}
	b, err := yaml.JSONToYAML(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("TideFeatureDrift")) {
		t.Fatalf("rendered rules lack the alerts:\n%s", b)
	}
	return b
}
