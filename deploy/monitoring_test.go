package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// alertRules renders the chart's PrometheusRule and returns its spec as a
// Prometheus rule file.
func alertRules(t *testing.T, set ...string) []byte {
	t.Helper()
	args := append([]string{"--set", "metrics.prometheusRule.enabled=true"}, set...)
	r, err := helmTemplate(t, helmBinary(t), args...)
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(r.docs["PrometheusRule/fraud-tide"], &rule); err != nil {
		t.Fatal(err)
	}
	b, err := yaml.JSONToYAML(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAlertValuesAndOff(t *testing.T) {
	flat := func(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") } // YAML folds long lines
	on := flat(alertRules(t, "--set", "metrics.prometheusRule.alerts.drift.stat=js", "--set", "metrics.prometheusRule.alerts.drift.threshold=0.3",
		"--set", "metrics.prometheusRule.alerts.accuracy.metric=roc_auc", "--set", "metrics.prometheusRule.alerts.accuracy.below=0.75"))
	for _, want := range []string{`tide_feature_drift{stat="js", namespace="ml",pod=~"fraud-tide-.*"}) > 0.3`,
		`tide_model_quality{metric="roc_auc", namespace="ml",pod=~"fraud-tide-.*"}`, ") < 0.75", "alert: TideFeedbackStalled", "severity: warning"} {
		if !strings.Contains(on, want) {
			t.Errorf("rules lack %q:\n%s", want, on)
		}
	}
	off := flat(alertRules(t, "--set", "metrics.prometheusRule.alerts.enabled=false"))
	if strings.Contains(off, "alert:") || !strings.Contains(off, "record: namespace_model:tide_requests:rate1m") {
		t.Errorf("alerts off:\n%s", off)
	}
}

// TestAlertRulesWithPromtool: the chart's alert rules, rendered with the
// defaults, checked by promtool and unit-tested on synthetic series as
// Prometheus evaluates them (promtool test rules): each fires when it should,
// after its for:, and not otherwise.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("promtool is not installed and TIDE_REQUIRE_INTEGRATION=1")
		}
		t.Skip("promtool not installed")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.yml"), alertRules(t), 0o644)
	if out, err := exec.Command(promtool, "check", "rules", filepath.Join(dir, "rules.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	const pod = `namespace="ml",pod="fraud-tide-0",model="fraud",version="1"`
	tests := `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  # Drift above 0.25 for 10 minutes fires; a brief spike does not.
  - interval: 1m
    input_series:
      - series: 'tide_feature_drift{` + pod + `,feature="amount",stat="psi"}'
        values: '0.02x5 0.9x3 0.02x3 0.6x15'
      - series: 'tide_feature_drift{` + pod + `,feature="age",stat="psi"}'
        values: '0.05x30'
      - series: 'tide_feature_drift{namespace="other",pod="fraud-tide-0",model="fraud",version="1",feature="amount",stat="psi"}'
        values: '5x30'
    alert_rule_test:
      - eval_time: 8m
        alertname: TideFeatureDrift
        exp_alerts: []
      - eval_time: 27m
        alertname: TideFeatureDrift
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ml, model: fraud, version: "1", feature: amount}
            exp_annotations:
              summary: 'Feature amount of model fraud v1 drifted from its profile (psi 0.600 > 0.25)'
              description: 'Live traffic no longer looks like the reference data; GET /v2/models/fraud/monitoring shows every feature''s statistics.'
  # Accuracy below 0.8 fires only once the window holds 100 labelled rows.
  - interval: 1m
    input_series:
      - series: 'tide_model_quality{` + pod + `,metric="accuracy"}'
        values: '0.95x5 0.6x40'
      - series: 'tide_feedback_window_rows{` + pod + `}'
        values: '50x25 200x20'
    alert_rule_test:
      - eval_time: 24m
        alertname: TideAccuracyDrop
        exp_alerts: []
      - eval_time: 44m
        alertname: TideAccuracyDrop
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ml, model: fraud, version: "1"}
            exp_annotations:
              summary: 'Model fraud v1: accuracy 0.600 over its last labelled predictions, below 0.8'
  # Feedback that used to arrive and stopped: fires an hour and a quarter later;
  # a model that never had feedback does not.
  - interval: 5m
    input_series:
      - series: 'tide_feedback_predictions_kept{namespace="ml",pod="fraud-tide-0",model="fraud"}'
        values: '100x40'
      - series: 'tide_feedback_total{namespace="ml",pod="fraud-tide-0",model="fraud",result="ok"}'
        values: '0 10 20 30 40x36'
      - series: 'tide_feedback_predictions_kept{namespace="ml",pod="fraud-tide-0",model="quiet"}'
        values: '100x40'
    alert_rule_test:
      - eval_time: 60m
        alertname: TideFeedbackStalled
        exp_alerts: []
      - eval_time: 100m
        alertname: TideFeedbackStalled
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ml, model: fraud}
            exp_annotations:
              summary: 'Ground truth for model fraud stopped arriving: no feedback matched a prediction in 1h'
`
	os.WriteFile(filepath.Join(dir, "tests.yml"), []byte(tests), 0o644)
	cmd := exec.Command(promtool, "test", "rules", "tests.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestFeedbackPeers: by default the replicas know each other through a
// headless Service, and each is told its name; off, neither is rendered.
func TestFeedbackPeers(t *testing.T) {
	helm := helmBinary(t)
	r, err := helmTemplate(t, helm)
	if err != nil {
		t.Fatal(err)
	}
	svc := decode[corev1.Service](t, r, "Service", "fraud-tide-peers")
	if svc.Spec.ClusterIP != "None" || svc.Spec.Selector["app.kubernetes.io/instance"] != "fraud" || svc.Spec.Ports[0].Port != 8080 {
		t.Errorf("peers Service %+v", svc.Spec)
	}
	dep := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	if args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--feedback-peers=fraud-tide-peers.ml.svc:8080") {
		t.Errorf("args %s", args)
	}
	r, err = helmTemplate(t, helm, "--set", "monitoring.feedbackPeers=false")
	if err != nil {
		t.Fatal(err)
	}
	dep = decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	if r.has("Service", "fraud-tide-peers") || strings.Contains(strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "), "feedback-peers") {
		t.Error("feedbackPeers=false still renders the peers")
	}
}
