//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The operator on the project's cluster: the operator chart installed from its
// image, Models applied with kubectl, traffic from the host and from tide load.

const operatorChartDir = "../../deploy/helm/tide-operator"

var operatorTestImage = &testImage{tarEnv: "TIDE_E2E_OPERATOR_IMAGE_TAR", refEnv: "TIDE_E2E_OPERATOR_IMAGE",
	defaultRef: "tide.local/tide-operator:e2e", hint: "build it with tide image build --package ./cmd/tide-operator --tag tide.local/tide-operator:e2e"}

// installOperator installs the operator chart into the test namespace, with the
// fraud image as the default server image, and waits for it.
func (c *cluster) installOperator(t *testing.T) {
	t.Helper()
	image := operatorTestImage.ref(t)
	server := fraudImage(t)
	repo, tag, _ := strings.Cut(image, ":")
	c.helm(t, "install", "tide-operator", operatorChartDir, "--wait", "--timeout", "3m",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "defaultModelImage="+server)
	helm := helmBin(t)
	t.Cleanup(func() {
		exec.Command(helm, "--kubeconfig", c.kubeconfig, "--namespace", c.namespace, "uninstall", "tide-operator", "--wait", "--timeout", "2m").Run()
	})
}

// modelManifest is a Model serving the ConfigMap configMap (key fraud.pkl), plus extra spec YAML.
func modelManifest(name, configMap, extra string) string {
	return fmt.Sprintf(`apiVersion: serving.tideserve.io/v1alpha1
kind: Model
metadata:
  name: %s
spec:
  source:
    configMap: {name: %s, key: fraud.pkl}
%s`, name, configMap, extra)
}

func (c *cluster) modelCondition(ctx context.Context, name, typ string) (status, reason, message string) {
	out := c.jsonpath(ctx, "model/"+name, fmt.Sprintf(`{.status.conditions[?(@.type=="%s")].status}|{.status.conditions[?(@.type=="%[1]s")].reason}|{.status.conditions[?(@.type=="%[1]s")].message}`, typ))
	parts := strings.SplitN(out, "|", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

// waitModelReady waits until the Model is Ready for its current generation.
func (c *cluster) waitModelReady(t *testing.T, name string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, "Model "+name+" Ready", timeout, 500*time.Millisecond, func() bool {
		st, _, _ := c.modelCondition(t.Context(), name, "Ready")
		gen := c.jsonpath(t.Context(), "model/"+name, "{.metadata.generation}/{.status.observedGeneration}")
		g, o, _ := strings.Cut(gen, "/")
		return st == "True" && g == o
	})
	return time.Since(start)
}

// serviceURL is the Model's Service by its ClusterIP (the host routes to it).
func (c *cluster) serviceURL(t *testing.T, service string) string {
	if envOr("TIDE_E2E_HOST_REACHES_CLUSTER_IP", "") != "1" {
		t.Skip("TIDE_E2E_HOST_REACHES_CLUSTER_IP is not 1: this host cannot reach Service ClusterIPs")
	}
	ip := c.jsonpath(t.Context(), "service/"+service, "{.spec.clusterIP}")
	if ip == "" {
		t.Fatalf("service %s has no ClusterIP", service)
	}
	return "http://" + hostPort(ip, "8080")
}

// evilPickle writes a pickle whose load would call os.system.
func evilPickle(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fraud.pkl")
	script := `import os, pickle, sys
class E:
    def __reduce__(self): return (os.system, ("echo pwned",))
open(sys.argv[1], "wb").write(pickle.dumps(E()))`
	if out, err := exec.Command("/usr/bin/python3", "-c", script, p).CombinedOutput(); err != nil {
		t.Skipf("python3 for the malicious pickle: %v %s", err, out)
	}
	return p
}

// predictOnceProgrammed is predict, retried for a few seconds while the
// connection is refused: a Service whose pod just became ready may not be in
// kube-proxy's rules yet (the Model's status follows the Deployment, not the
// node's rules). Any other error, or an answer, ends it.
func predictOnceProgrammed(ctx context.Context, url string, x1, x2 float64) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := predict(ctx, url, x1, x2)
		if err == nil || !strings.Contains(err.Error(), "connection refused") || time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// operatorRSS reads the operator's resident memory from its own metrics.
func (c *cluster) operatorRSS(t *testing.T) float64 {
	ip := c.jsonpath(t.Context(), "pods", `{.items[?(@.metadata.labels.app\.kubernetes\.io/name=="tide-operator")].status.podIP}`)
	if ip == "" {
		return 0
	}
	resp, err := http.Get("http://" + hostPort(strings.Fields(ip)[0], "8080") + "/metrics")
	if err != nil {
		t.Logf("operator metrics: %v", err)
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func TestOperator(t *testing.T) {
	c := testCluster
	c.installOperator(t)
	c.kubectl(t, "create", "configmap", "fraud-model", "--from-file=fraud.pkl=../../examples/fraud/model.pkl")
	rows := [][2]float64{{1, 2}, {-1, -1}, {0.5, -2}, {3, 3}, {-2, 1.5}}
	want := sklearnPredictions(t, rows)
	checkAnswers := func(t *testing.T, url string) {
		t.Helper()
		expectSklearnAnswers(t, url, "the Model's Service", rows, want)
	}

	t.Run("ConfigMapModelReady", func(t *testing.T) {
		start := time.Now()
		c.apply(t, modelManifest("fraud", "fraud-model", "  replicas: {min: 2, max: 3}\n"))
		c.waitModelReady(t, "fraud", 60*time.Second)
		t.Logf("Model fraud (ConfigMap) Ready %s after apply", time.Since(start).Round(100*time.Millisecond))
		// Ready means serving; Scaled, that all replicas are ready, may follow it.
		if st, reason, msg := c.modelCondition(t.Context(), "fraud", "ModelLoaded"); st != "True" {
			t.Errorf("ModelLoaded = %s %s: %s", st, reason, msg)
		}
		eventually(t, "Scaled=True", 30*time.Second, 500*time.Millisecond, func() bool {
			st, _, _ := c.modelCondition(t.Context(), "fraud", "Scaled")
			return st == "True"
		})
		if v := c.jsonpath(t.Context(), "model/fraud", "{.status.modelVersion} {.status.url} {.status.readyReplicas}"); v != "fraud/1 http://fraud."+c.namespace+".svc:8080 2" {
			t.Errorf("status: %s", v)
		}
		out := c.kubectl(t, "get", "models")
		if !strings.Contains(out, "READY") || !strings.Contains(out, "URL") || !strings.Contains(out, "FORMAT") || !strings.Contains(out, "True") {
			t.Errorf("kubectl get models:\n%s", out)
		}
		checkAnswers(t, c.serviceURL(t, "fraud"))
	})

	t.Run("NewVersionUnderLoadWithOperatorKilled", func(t *testing.T) {
		c.kubectl(t, "create", "configmap", "fraud-model-v2", "--from-file=fraud.pkl=../../examples/fraud/model.pkl")
		url := c.serviceURL(t, "fraud")
		wait := startTideLoad(t, tideBinary(t), 3*time.Minute, "--rate", "100", "--duration", "50s",
			"--template", `{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}`, url+"/predict")
		time.Sleep(8 * time.Second)
		gen := c.jsonpath(t.Context(), "model/fraud", "{.metadata.generation}")
		c.apply(t, modelManifest("fraud", "fraud-model-v2", "  replicas: {min: 2, max: 3}\n"))
		// The operator dies mid-rollout; its replacement takes over and converges.
		time.Sleep(2 * time.Second)
		c.kubectl(t, "delete", "pod", "-l", "app.kubernetes.io/name=tide-operator", "--wait=false")
		eventually(t, "new generation observed", 90*time.Second, time.Second, func() bool {
			return c.jsonpath(t.Context(), "model/fraud", "{.status.observedGeneration}") != gen
		})
		c.waitModelReady(t, "fraud", 2*time.Minute)
		c.kubectl(t, "rollout", "status", "deployment/fraud", "--timeout=120s")
		wait().expectNoFailures(t, "through the rollout", 4000)
		// Converged without duplicates: one of each object, the template on v2.
		for _, kind := range []string{"deployments", "services", "poddisruptionbudgets", "serviceaccounts"} {
			names := strings.Fields(c.jsonpath(t.Context(), kind, `{.items[?(@.metadata.labels.app\.kubernetes\.io/instance=="fraud")].metadata.name}`))
			if len(names) != 1 {
				t.Errorf("%s of Model fraud: %v", kind, names)
			}
		}
		if cm := c.jsonpath(t.Context(), "deployment/fraud", "{.spec.template.spec.volumes[?(@.name==\"models\")].configMap.name}"); cm != "fraud-model-v2" {
			t.Errorf("deployment serves ConfigMap %q", cm)
		}
		checkAnswers(t, url)
	})

	t.Run("MaliciousUpdateKeepsOldServing", func(t *testing.T) {
		c.kubectl(t, "create", "configmap", "evil-model", "--from-file=fraud.pkl="+evilPickle(t))
		start := time.Now()
		c.apply(t, modelManifest("fraud", "evil-model", "  replicas: {min: 2, max: 3}\n"))
		var msg string
		eventually(t, "Ready=False with the refusal", 30*time.Second, 500*time.Millisecond, func() bool {
			var st, reason string
			st, reason, msg = c.modelCondition(t.Context(), "fraud", "Ready")
			return st == "False" && reason == "LoadFailed" && strings.Contains(msg, `refusing to load "posix.system"`)
		})
		t.Logf("Ready=False %s after the update: %s", time.Since(start).Round(100*time.Millisecond), msg)
		if st, reason, _ := c.modelCondition(t.Context(), "fraud", "Degraded"); st != "True" || reason != "PreviousSpecServing" {
			t.Errorf("Degraded = %s %s", st, reason)
		}
		events := c.kubectl(t, "get", "events", "--field-selector", "involvedObject.kind=Model,involvedObject.name=fraud,reason=LoadFailed", "-o", "jsonpath={.items[*].message}")
		if !strings.Contains(events, "posix.system") {
			t.Errorf("no LoadFailed event with the reason: %q", events)
		}
		checkAnswers(t, c.serviceURL(t, "fraud")) // the previous version keeps serving
		c.apply(t, modelManifest("fraud", "fraud-model-v2", "  replicas: {min: 2, max: 3}\n"))
		c.waitModelReady(t, "fraud", 90*time.Second)
	})

	t.Run("CPUAutoscalingUpAndDown", func(t *testing.T) {
		c.apply(t, modelManifest("cpu", "fraud-model", `  replicas: {min: 1, max: 3}
  autoscaling: {mode: cpu, target: 30}
  resources:
    requests: {cpu: 100m}
`))
		c.waitModelReady(t, "cpu", 90*time.Second)
		url := c.serviceURL(t, "cpu")
		replicas := func() int {
			n, _ := strconv.Atoi(c.jsonpath(t.Context(), "deployment/cpu", "{.spec.replicas}"))
			return n
		}
		// tide load drives it open loop: 400 requests/s (well over 30% of the 100m
		// request) then 5/s, watching the Deployment, so its report plots the
		// replicas going up and back down.
		start := time.Now()
		wait := startTideLoad(t, tideBinary(t), 5*time.Minute, "--stages", "45s:400,100s:5",
			"--watch", "deployment/cpu", "--namespace", c.namespace, "--kubeconfig", c.kubeconfig,
			"--template", `{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}`, url+"/predict")
		eventually(t, "scale up on CPU", 3*time.Minute, 3*time.Second, func() bool { return replicas() > 1 })
		t.Logf("cpu: scaled to %d after %s of load", replicas(), time.Since(start).Round(time.Second))
		r := wait()
		r.expectNoFailures(t, "through the CPU scaling", 15000)
		checkWatchedScaling(t, r.report, 1)
		eventually(t, "scale back down", 4*time.Minute, 5*time.Second, func() bool { return replicas() == 1 })
		t.Logf("cpu: back to 1 replica %s after the 400/s stage ended", time.Since(start.Add(45*time.Second)).Round(time.Second))
		c.kubectl(t, "delete", "model", "cpu", "--wait=true")
	})

	t.Run("ScaleToZeroAndWake", func(t *testing.T) {
		if !c.served(t.Context(), "keda.sh/v1alpha1", "ScaledObject") {
			t.Skip("no KEDA")
		}
		c.apply(t, modelManifest("zero", "fraud-model", `  replicas: {min: 1, max: 2}
  autoscaling:
    mode: rps
    target: 20
    scaleToZero: {enabled: true, idlePeriod: 15s}
`))
		replicas := func() string { return c.jsonpath(t.Context(), "deployment/zero", "{.spec.replicas}") }
		start := time.Now()
		eventually(t, "scaled to zero", 4*time.Minute, 2*time.Second, func() bool { return replicas() == "0" })
		t.Logf("zero: at 0 replicas %s after apply", time.Since(start).Round(time.Second))
		eventually(t, "Ready=True ScaledToZero", time.Minute, time.Second, func() bool {
			st, reason, _ := c.modelCondition(t.Context(), "zero", "Ready")
			return st == "True" && reason == "ScaledToZero"
		})
		if u := c.jsonpath(t.Context(), "model/zero", "{.status.url}"); u != "http://zero-activator."+c.namespace+".svc:8080" {
			t.Errorf("url %s: clients go to the activator", u)
		}
		wake := time.Now()
		got, err := predictOnceProgrammed(t.Context(), c.serviceURL(t, "zero-activator"), rows[0][0], rows[0][1])
		if err != nil || got != want[0] {
			t.Fatalf("first request after zero: %d, %v (sklearn %d)", got, err, want[0])
		}
		t.Logf("zero: the first request was answered after %s (held by the activator while a pod started)", time.Since(wake).Round(time.Millisecond))
		c.kubectl(t, "delete", "model", "zero", "--wait=true")
	})

	t.Run("FiftyModels", func(t *testing.T) {
		var b strings.Builder
		for i := range 50 {
			fmt.Fprintf(&b, "---\n%s", modelManifest(fmt.Sprintf("m%02d", i), "fraud-model", "  replicas: {min: 1, max: 1}\n  resources:\n    requests: {cpu: 5m, memory: 24Mi}\n"))
		}
		start := time.Now()
		c.apply(t, b.String())
		peak := 0.0
		eventually(t, "50 Models Ready", 5*time.Minute, 2*time.Second, func() bool {
			peak = max(peak, c.operatorRSS(t))
			out := c.jsonpath(t.Context(), "models", `{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			ready := 0
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "m") && strings.HasSuffix(l, "=True") {
					ready++
				}
			}
			return ready == 50
		})
		took := time.Since(start)
		peak = max(peak, c.operatorRSS(t))
		t.Logf("50 Models Ready %s after one apply; operator RSS peak %.1f MiB (sampled every 2 s)", took.Round(time.Second), peak/(1<<20))
		if peak == 0 {
			t.Error("could not read the operator's RSS")
		}
		if peak > 64<<20 {
			t.Errorf("operator RSS %.1f MiB with 50 Models, over 64 MiB", peak/(1<<20))
		}
		var names []string
		for i := range 50 {
			names = append(names, fmt.Sprintf("m%02d", i))
		}
		c.kubectl(t, append([]string{"delete", "model", "--wait=true"}, names...)...)
	})

	t.Run("DeleteLeavesNothing", func(t *testing.T) {
		c.kubectl(t, "delete", "model", "fraud", "--wait=true")
		eventually(t, "every object of Model fraud gone", 2*time.Minute, 2*time.Second, func() bool {
			out, _ := c.run(t.Context(), "", "get", "deployments,replicasets,pods,services,serviceaccounts,poddisruptionbudgets,horizontalpodautoscalers,networkpolicies",
				"-l", "app.kubernetes.io/managed-by=tide-operator", "-o", "name")
			return strings.TrimSpace(out) == ""
		})
	})
}
