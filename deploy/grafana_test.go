package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// exportedMetrics reads the metric names Tide registers from the server's source, so
// a renamed metric breaks this test instead of a dashboard in production.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, file := range []string{"../internal/metrics/metrics.go", "../internal/metrics/monitoring.go", "../internal/autoscaler/scaler.go", "../internal/metrics/queue.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Series declared inline (Name: "tide_…"), as named constants (= "tide_…") or
		// through a constructor's first argument (g("tide_…", help)).
		for _, m := range regexp.MustCompile(`(?:Name:|=|\()\s*"(tide_[a-z_]+)"`).FindAllSubmatch(src, -1) {
			names[string(m[1])] = true
		}
	}
	if len(names) < 5 {
		t.Fatalf("found only %d metric names in metrics.go: %v", len(names), names)
	}
	return names
}

// Recording-rule names (level:metric:operations) contain colons and are skipped.
var metricRef = regexp.MustCompile(`[a-z_:]*tide_[a-z_:]*`)

// checkMetricRefs fails on any tide_* series the server does not export.
func checkMetricRefs(t *testing.T, where, text string, exported map[string]bool) int {
	t.Helper()
	n := 0
	for _, ref := range metricRef.FindAllString(text, -1) {
		if strings.Contains(ref, ":") || strings.HasSuffix(ref, "_per_second") || ref == "tide_rules" {
			continue // adapter names and rule group, not series
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(ref, "_bucket"), "_count"), "_sum")
		if !exported[base] {
			t.Errorf("%s uses %s, which Tide does not export", where, ref)
		}
		n++
	}
	return n
}

func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	raw, err := os.ReadFile("grafana/tide-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	want := []string{"Requests per second", "Latency", "Errors", "In-flight", "Replicas", "CPU per pod",
		"Feature drift", "Accuracy and ROC AUC", "Prediction distribution", "Feedback matched", "Scaler demand", "Scaler decision"}
	for _, w := range want {
		found := false
		for _, p := range dash.Panels {
			if strings.Contains(p.Title, w) && len(p.Targets) > 0 {
				found = true
				for _, tg := range p.Targets {
					checkMetricRefs(t, "panel "+p.Title, tg.Expr, exported)
				}
			}
		}
		if !found {
			t.Errorf("dashboard has no %q panel with a query", w)
		}
	}
	for _, f := range []string{"grafana/prometheus-rules.yaml", "helm/tide/files/recording-rules.yaml", "helm/tide/files/adapter-rules.yaml"} {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(text, &doc); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if n := checkMetricRefs(t, f, string(text), exported); n == 0 {
			t.Errorf("%s references no Tide metric", f)
		}
	}
}
