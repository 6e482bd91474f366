//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Canary rollouts on the project's cluster: a Model with spec.canary, its
// router in front of both versions, open-loop tide load through the router
// while the operator judges each candidate.

// canaryManifest is Model ro serving ConfigMap stable, with canary (YAML lines
// under spec.canary, indented by four spaces) after the shared settings.
func canaryManifest(stable, canary string) string {
	return fmt.Sprintf(`apiVersion: serving.tideserve.io/v1alpha1
kind: Model
metadata:
  name: ro
spec:
  source:
    configMap: {name: %s, key: fraud.pkl}
  replicas: {min: 2, max: 3}
  canary:
    stepInterval: 8s
    analysis: {maxErrorRatio: "0.01", minAgreement: "0.99", maxP99: 400ms, minRequests: 20}
%s`, stable, canary)
}

// canarySource is the canary lines for a candidate in ConfigMap cm.
func canarySource(cm string) string {
	return fmt.Sprintf("    source:\n      configMap: {name: %s, key: fraud.pkl}\n", cm)
}

func (c *cluster) canaryField(ctx context.Context, field string) string {
	return c.jsonpath(ctx, "model/ro", "{.status.canary."+field+"}")
}

// applyCanary applies manifest and returns a wait for the new candidate's
// phase (not the previous rollout's, which the status shows until the
// operator's next pass), which returns the reason of the last decision.
func (c *cluster) applyCanary(t *testing.T, manifest string) (waitPhase func(phase string, timeout time.Duration) string) {
	t.Helper()
	previous := c.canaryField(t.Context(), "candidate")
	c.apply(t, manifest)
	return func(phase string, timeout time.Duration) string {
		t.Helper()
		eventually(t, "canary "+phase, timeout, 250*time.Millisecond, func() bool {
			return c.canaryField(t.Context(), "candidate") != previous && c.canaryField(t.Context(), "phase") == phase
		})
		return c.canaryField(t.Context(), "reason")
	}
}

// canarySteps reads status.canary.steps.
func (c *cluster) canarySteps(t *testing.T) []map[string]any {
	var steps []map[string]any
	if out := c.canaryField(t.Context(), "steps"); out != "" {
		if err := json.Unmarshal([]byte(out), &steps); err != nil {
			t.Fatalf("status.canary.steps %q: %v", out, err)
		}
	}
	return steps
}

func TestCanaryRollouts(t *testing.T) {
	c := testCluster
	c.installOperator(t)
	models := t.TempDir()
	if out, err := exec.Command("/usr/bin/python3", "../../examples/fraud/train_candidates.py", models).CombinedOutput(); err != nil {
		t.Skipf("python3-sklearn for the candidate models: %v\n%s", err, out)
	} else {
		t.Logf("candidates: %s", strings.TrimSpace(string(out)))
	}
	for cm, file := range map[string]string{"canary-v1": "../../examples/fraud/model.pkl", "canary-v2": filepath.Join(models, "model_v2.pkl"),
		"canary-shuffled": filepath.Join(models, "model_shuffled.pkl"), "canary-evil": evilPickle(t)} {
		c.kubectl(t, "create", "configmap", cm, "--from-file=fraud.pkl="+file)
	}
	rows := [][2]float64{{1, 2}, {-1, -1}, {0.5, -2}, {3, 3}, {-2, 1.5}}
	bin := tideBinary(t)
	var url string
	// startLoad drives the router open loop at 100 requests/s for d, watching
	// the Model, with its report in the subtest's folder; after settle it
	// returns, and wait gives the run's outcome once it ends.
	startLoad := func(t *testing.T, d, settle time.Duration) (wait func() tideLoadRun) {
		wait = startTideLoad(t, bin, d+2*time.Minute, "--rate", "100", "--duration", d.String(),
			"--watch", "model/ro", "--namespace", c.namespace, "--kubeconfig", c.kubeconfig,
			"--template", `{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}`, url+"/predict")
		time.Sleep(settle)
		return wait
	}

	t.Run("RouterInFront", func(t *testing.T) {
		c.apply(t, canaryManifest("canary-v1", canarySource("canary-v1")))
		c.waitModelReady(t, "ro", 90*time.Second)
		if u := c.jsonpath(t.Context(), "model/ro", "{.status.url}"); u != "http://ro-activator."+c.namespace+".svc:8080" {
			t.Fatalf("status.url %s: clients of a Model with a canary go to its router", u)
		}
		if r := c.canaryField(t.Context(), "reason"); !strings.Contains(r, "nothing to roll out") {
			t.Errorf("canary equal to stable: %q", r)
		}
		eventually(t, "router ready", time.Minute, time.Second, func() bool {
			return c.jsonpath(t.Context(), "deployment/ro-activator", "{.status.readyReplicas}") == "2" // both routers
		})
		url = c.serviceURL(t, "ro-activator")
		expectSklearnAnswers(t, url, "the router", rows, sklearnPredictions(t, rows))
	})

	t.Run("GoodCandidatePromotedThroughOperatorRestart", func(t *testing.T) {
		wait := startLoad(t, 100*time.Second, 5*time.Second)
		start := time.Now()
		waitPhase := c.applyCanary(t, canaryManifest("canary-v1", canarySource("canary-v2")+"    steps: [10, 25, 50, 100]\n"))
		eventually(t, "step 2", 2*time.Minute, 250*time.Millisecond, func() bool {
			n, _ := strconv.Atoi(c.canaryField(t.Context(), "step"))
			return n >= 2
		})
		before, _ := strconv.Atoi(c.canaryField(t.Context(), "step"))
		stepStarted := c.canaryField(t.Context(), "stepStarted")
		c.kubectl(t, "delete", "pod", "-l", "app.kubernetes.io/name=tide-operator", "--wait=false")
		t.Logf("good: operator killed at step %d (started %s), %s after the canary was applied", before, stepStarted, time.Since(start).Round(time.Second))
		// Whatever the new operator writes first carries on from the recorded step.
		eventually(t, "the new operator's first decision", time.Minute, 250*time.Millisecond, func() bool {
			return c.jsonpath(t.Context(), "pods", `{.items[?(@.metadata.labels.app\.kubernetes\.io/name=="tide-operator")].status.containerStatuses[0].ready}`) == "true"
		})
		if after, _ := strconv.Atoi(c.canaryField(t.Context(), "step")); after < before {
			t.Errorf("the restarted operator went back from step %d to %d", before, after)
		}
		reason := waitPhase("Promoted", 3*time.Minute)
		t.Logf("good: promoted %s after the canary was applied: %s", time.Since(start).Round(time.Second), reason)
		eventually(t, "the candidate gone", 2*time.Minute, time.Second, func() bool {
			out, _ := c.run(t.Context(), "", "get", "deployment", "ro-canary", "-o", "name")
			return strings.TrimSpace(out) == ""
		})
		r := wait()
		r.expectNoFailures(t, "through the promotion", 9000)
		steps := c.canarySteps(t)
		if len(steps) != 4 {
			t.Fatalf("status.canary.steps %v: want the 4 steps measured", steps)
		}
		logSteps(t, "good", steps)
		for i, s := range steps {
			if n, _ := s["step"].(float64); int(n) != i+1 {
				t.Errorf("step %d recorded as %v", i+1, s["step"])
			}
			if req, _ := s["requests"].(float64); req < 20 {
				t.Errorf("step %d judged on %v requests", i+1, s["requests"])
			}
		}
		events := c.kubectl(t, "get", "events", "--field-selector", "involvedObject.kind=Model,involvedObject.name=ro", "-o", "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}")
		if strings.Count(events, "CanaryStep") < 4 || !strings.Contains(events, "CanaryPromoted") {
			t.Errorf("events:\n%s", events)
		}
		// The stable Deployment now serves v2, alone.
		if cm := c.jsonpath(t.Context(), "deployment/ro", `{.spec.template.spec.volumes[?(@.name=="models")].configMap.name}`); cm != "canary-v2" {
			t.Errorf("stable serves %s after the promotion", cm)
		}
		expectSklearnAnswers(t, url, "the router after the promotion", rows, predictionsOf(t, filepath.Join(models, "model_v2.pkl"), rows))
		checkCanaryPlot(t, r.report)
		// Recording the promotion in spec.source restarts nothing.
		hash := c.jsonpath(t.Context(), "deployment/ro", `{.spec.template.metadata.annotations.serving\.tideserve\.io/template-hash}`)
		c.apply(t, canaryManifest("canary-v2", canarySource("canary-v2")))
		c.waitModelReady(t, "ro", time.Minute)
		if h := c.jsonpath(t.Context(), "deployment/ro", `{.spec.template.metadata.annotations.serving\.tideserve\.io/template-hash}`); h != hash {
			t.Errorf("moving spec.source to the promoted version changed the pods (%s → %s)", hash, h)
		}
	})

	t.Run("FailingCandidateNeverRouted", func(t *testing.T) {
		start := time.Now()
		reason := c.applyCanary(t, canaryManifest("canary-v2", canarySource("canary-evil")))("RolledBack", 2*time.Minute)
		t.Logf("evil: rolled back %s after apply: %s", time.Since(start).Round(100*time.Millisecond), reason)
		if !strings.Contains(reason, `refusing to load "posix.system"`) {
			t.Errorf("reason %q", reason)
		}
		if steps := c.canarySteps(t); len(steps) != 0 {
			t.Errorf("a candidate that cannot serve was routed: %v", steps)
		}
		if st, r, _ := c.modelCondition(t.Context(), "ro", "Degraded"); st != "True" || r != "CanaryRolledBack" {
			t.Errorf("Degraded %s %s", st, r)
		}
		expectSklearnAnswers(t, url, "the router after the rollback", rows, predictionsOf(t, filepath.Join(models, "model_v2.pkl"), rows))
	})

	t.Run("SlowCandidateRolledBack", func(t *testing.T) {
		wait := startLoad(t, 45*time.Second, 3*time.Second)
		// The same model as stable, but a batching delay that makes each answer wait 500 ms.
		waitPhase := c.applyCanary(t, canaryManifest("canary-v2", canarySource("canary-v1")+"    batching: {maxBatchSize: 4096, maxQueueDelay: 500ms}\n    steps: [10, 50, 100]\n"))
		eventually(t, "step 1", 2*time.Minute, 250*time.Millisecond, func() bool { return c.canaryField(t.Context(), "step") == "1" })
		stepStart := time.Now()
		reason := waitPhase("RolledBack", time.Minute)
		detect := time.Since(stepStart)
		t.Logf("slow: rolled back %s into step 1 (step interval 8s): %s", detect.Round(100*time.Millisecond), reason)
		if detect > 16*time.Second {
			t.Errorf("detection took %s, over 2 step intervals", detect)
		}
		if !strings.Contains(reason, "p99") {
			t.Errorf("reason %q", reason)
		}
		logSteps(t, "slow", c.canarySteps(t))
		r := wait()
		// A slow answer is still an answer: nothing may fail (the bound is 10%
		// of the requests sent while it was detected).
		r.expectNoFailures(t, "through the slow candidate's rollback", 3500)
	})

	t.Run("ShadowDisagreementRolledBack", func(t *testing.T) {
		wait := startLoad(t, 40*time.Second, 3*time.Second)
		reason := c.applyCanary(t, canaryManifest("canary-v2", canarySource("canary-shuffled")+"    shadow: true\n    steps: [50, 100]\n"))("RolledBack", 2*time.Minute)
		t.Logf("shadow: %s", reason)
		if !strings.Contains(reason, "agreement") {
			t.Errorf("reason %q", reason)
		}
		logSteps(t, "shadow", c.canarySteps(t))
		r := wait()
		r.expectNoFailures(t, "through the shadow rollout", 3000)
		checkCanaryPlot(t, r.report)
	})

	t.Run("StickyCustomers", func(t *testing.T) {
		c.applyCanary(t, canaryManifest("canary-v2", canarySource("canary-v1")+"    steps: [50]\n    stepInterval: 10m\n    stickyHeader: X-Customer-Id\n"))
		eventually(t, "weight 50", 2*time.Minute, 250*time.Millisecond, func() bool { return c.canaryField(t.Context(), "weight") == "50" })
		time.Sleep(2 * time.Second) // the router takes the route on the operator's next pass
		versions := map[string]map[string]bool{}
		for i := range 1000 {
			id := fmt.Sprintf("customer-%02d", i%50)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/predict", strings.NewReader(`{"feature1": 1, "feature2": 2}`))
			req.Header.Set("X-Customer-Id", id)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", id, resp.Status)
			}
			if versions[id] == nil {
				versions[id] = map[string]bool{}
			}
			versions[id][resp.Header.Get("X-Tide-Route")] = true
		}
		count := map[string]int{}
		for id, v := range versions {
			if len(v) != 1 {
				t.Errorf("%s was answered by %v", id, v)
			}
			for k := range v {
				count[k]++
			}
		}
		t.Logf("sticky: 1000 requests, 50 customers: %d on the stable version, %d on the candidate, none on both", count["stable"], count["candidate"])
		if count["stable"] == 0 || count["candidate"] == 0 {
			t.Errorf("at weight 50 the customers split %v", count)
		}
		c.apply(t, canaryManifest("canary-v2", canarySource("canary-v1")+"    steps: [50]\n    stepInterval: 10m\n    stickyHeader: X-Customer-Id\n    action: abort\n"))
		// The action does not change the candidate: the rollout was Progressing, so RolledBack is the abort.
		eventually(t, "abort", time.Minute, 250*time.Millisecond, func() bool { return c.canaryField(t.Context(), "phase") == "RolledBack" })
		if reason := c.canaryField(t.Context(), "reason"); !strings.Contains(reason, "aborted by hand") {
			t.Errorf("abort: %q", reason)
		}
	})

	t.Run("DeleteLeavesNothing", func(t *testing.T) {
		c.kubectl(t, "delete", "model", "ro", "--wait=true")
		eventually(t, "every object of Model ro gone", 2*time.Minute, 2*time.Second, func() bool {
			out, _ := c.run(t.Context(), "", "get", "deployments,pods,services,secrets", "-l", "app.kubernetes.io/instance=ro", "-o", "name")
			return strings.TrimSpace(out) == ""
		})
	})
}

// logSteps logs each recorded step's measurement (what docs/rollouts.md quotes).
func logSteps(t *testing.T, what string, steps []map[string]any) {
	t.Helper()
	for _, s := range steps {
		t.Logf("%s: step %v at %v%%: %v requests, %v errors, p99 %v (stable %v), agreement %v of %v compared, probability difference %v, %v mirrors dropped",
			what, s["step"], s["weight"], s["requests"], s["errors"], s["p99"], s["stableP99"], s["agreement"], s["compared"], s["probabilityDiff"], s["mirrorsDropped"])
	}
}

// checkCanaryPlot: the run's report recorded the canary (its plot has the panel).
func checkCanaryPlot(t *testing.T, report string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(report, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"canary"`) {
		t.Errorf("report %s recorded no canary", report)
	}
}
