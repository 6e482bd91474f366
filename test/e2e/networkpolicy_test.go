//go:build e2e

package e2e

// The chart's NetworkPolicy on a cluster that enforces it: with networkPolicy.enabled,
// a client pod the values allow gets /predict answers, pods outside the allowed set
// (no client label; the client label in another namespace) are refused, a pod in a
// namespace the Prometheus selector names reads /metrics (and the harness' Prometheus in
// monitoring, the chart's default peer, scrapes the pod where it runs), and once the
// policy object is deleted the refused pod gets through, so the refusal was the
// policy's doing. With model control on, load and unload live on the management
// port, which only the managementClients peers reach: an inference client the
// policy admits on the HTTP port is refused there.
//
// The bridge CNI of hack/cluster enforces nothing by itself; its network-policies
// add-on (sigs.k8s.io/kube-network-policies) does. The test skips when that add-on is
// not running, unless TIDE_E2E_NETWORK_POLICY=enforced says the cluster's CNI enforces
// policies (Calico, Cilium, kindnet with kube-network-policies, ...).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// networkPolicyEnforcer names what enforces NetworkPolicy here, or "" if nothing does.
func (c *cluster) networkPolicyEnforcer(ctx context.Context) string {
	if os.Getenv("TIDE_E2E_NETWORK_POLICY") == "enforced" {
		return "the cluster's CNI (TIDE_E2E_NETWORK_POLICY=enforced)"
	}
	out, err := c.run(ctx, "", "--namespace", "kube-system", "get", "daemonset", "kube-network-policies",
		"-o", "jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}")
	if err != nil {
		return ""
	}
	ready, desired, _ := strings.Cut(strings.TrimSpace(out), "/")
	if ready == "" || ready == "0" || ready != desired {
		return ""
	}
	return "kube-system/kube-network-policies (" + out + " nodes)"
}

// policyPod is a one-shot pod in namespace ns with the given labels, running command
// in image.
type policyPod struct {
	ns, name, image string
	labels          map[string]string
	command         []string
}

// target is the URL a client pod's command ends with.
func (p policyPod) target() string {
	if len(p.command) == 0 {
		return ""
	}
	return p.command[len(p.command)-1]
}

func (p policyPod) manifest() string {
	m := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": p.name, "labels": p.labels},
		"spec": map[string]any{
			"restartPolicy":                 "Never",
			"terminationGracePeriodSeconds": 1,
			"containers": []any{map[string]any{
				"name":            "client",
				"image":           p.image,
				"imagePullPolicy": "IfNotPresent",
				"command":         p.command,
				"resources": map[string]any{
					"requests": map[string]any{"cpu": "50m", "memory": "32Mi"},
					"limits":   map[string]any{"cpu": "500m", "memory": "128Mi"},
				},
			}},
		},
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// runPolicyPod starts the pod, waits for it to finish and returns its phase and log.
func (c *cluster) runPolicyPod(t *testing.T, p policyPod) (phase, logs string) {
	t.Helper()
	ns := []string{"--namespace", p.ns}
	if _, err := c.run(t.Context(), "", append(ns, "delete", "pod", p.name, "--ignore-not-found", "--wait=true")...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(t.Context(), p.manifest(), append(ns, "apply", "-f", "-")...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod "+p.ns+"/"+p.name+" to finish", 2*time.Minute, time.Second, func() bool {
		out, _ := c.run(t.Context(), "", append(ns, "get", "pod", p.name, "-o", "jsonpath={.status.phase}")...)
		phase = strings.TrimSpace(out)
		return phase == "Succeeded" || phase == "Failed"
	})
	logs, err := c.run(t.Context(), "", append(ns, "logs", p.name)...)
	if err != nil {
		t.Fatal(err)
	}
	return phase, logs
}

// loadSummary is the part of tide load's final {"summary": ...} line the test reads.
type loadSummary struct {
	Sent       int64            `json:"sent"`
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
}

func parseLoadSummary(t *testing.T, logs string) loadSummary {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.HasPrefix(line, `{"summary":`) {
			continue
		}
		var v struct {
			Summary loadSummary `json:"summary"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("tide load summary %q: %v", line, err)
		}
		return v.Summary
	}
	t.Fatalf("no tide load summary in the log:\n%s", logs)
	return loadSummary{}
}

func TestTideNetworkPolicyRefusesOutsiders(t *testing.T) {
	c := testCluster
	enforcer := c.networkPolicyEnforcer(t.Context())
	if enforcer == "" {
		t.Skip("nothing enforces NetworkPolicy on this cluster: the bridge CNI does not, and the " +
			"kube-system/kube-network-policies DaemonSet is not ready (add-on network-policies: " +
			`TIDE_CLUSTER_ADDONS="network-policies" hack/cluster/cluster addons; ` +
			"on another CNI that enforces policies set TIDE_E2E_NETWORK_POLICY=enforced)")
	}
	t.Logf("NetworkPolicy enforced by %s", enforcer)
	// The clients run Tide's load generator, which is in the people's CLI, not in the
	// production binary the fraud image carries.
	clientImage := cliImage(t)

	// A namespace the Prometheus selector names, and one with nothing allowed in it.
	promNS, otherNS := c.namespace+"-prom", c.namespace+"-other"
	for _, ns := range []string{promNS, otherNS} {
		c.kubectl(t, "create", "namespace", ns)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c.run(ctx, "", "delete", "namespace", ns, "--wait=true", "--timeout=100s")
		})
	}
	values := filepath.Join(t.TempDir(), "netpol-values.yaml")
	if err := os.WriteFile(values, []byte(`server:
  modelControl: true
networkPolicy:
  enabled: true
  allowedClients:
    - podSelector: {matchLabels: {tide-e2e/role: client}}
  managementClients:
    - podSelector: {matchLabels: {tide-e2e/role: operator}}
  prometheus:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: `+promNS+`}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c.installFraud(t, "netpol", "-f", values, "--set", "autoscaling.mode=none", "--set", "replicaCount=1")
	if got := c.jsonpath(t.Context(), "networkpolicy/netpol-tide", "{.spec.policyTypes[0]}"); got != "Ingress" {
		t.Fatalf("networkpolicy/netpol-tide: policyTypes[0] = %q, want Ingress", got)
	}
	// The Service's ClusterIP, not a DNS name: a refusal must not be a lookup failure.
	ip := c.jsonpath(t.Context(), "service/netpol-tide", "{.spec.clusterIP}")
	port := c.jsonpath(t.Context(), "service/netpol-tide", `{.spec.ports[?(@.name=="http")].port}`)
	if ip == "" || port == "" {
		t.Fatalf("service/netpol-tide: clusterIP %q, http port %q", ip, port)
	}
	base := "http://" + hostPort(ip, port)
	mport := c.jsonpath(t.Context(), "service/netpol-tide", `{.spec.ports[?(@.name=="management")].port}`)
	if mport == "" {
		t.Fatal("service/netpol-tide has no management port although model control and the policy are on")
	}
	management := "http://" + hostPort(ip, mport)

	// Every /predict client runs the same command, Tide's own load generator: three
	// requests one after another, each given 3 s.
	predict := func(ns, name string, labels map[string]string) policyPod {
		return policyPod{ns: ns, name: name, image: clientImage, labels: labels, command: []string{
			"/usr/local/bin/tide", "load", "-c", "1", "-n", "3", "--timeout", "3s",
			"--template", `{"feature1": 1.5, "feature2": -0.5}`, base + "/predict"}}
	}
	client := map[string]string{"tide-e2e/role": "client"}
	allowed := func(p policyPod) {
		t.Helper()
		phase, logs := c.runPolicyPod(t, p)
		s := parseLoadSummary(t, logs)
		if phase != "Succeeded" || s.OK != s.Sent || s.OK == 0 {
			t.Fatalf("%s/%s (labels %v) should be let in: phase %s, %d of %d requests ok, errors %v",
				p.ns, p.name, p.labels, phase, s.OK, s.Sent, s.ErrorKinds)
		}
		t.Logf("allowed: %s/%s (labels %v): %d of %d requests to %s answered", p.ns, p.name, p.labels, s.OK, s.Sent, p.target())
	}
	refused := func(p policyPod) {
		t.Helper()
		phase, logs := c.runPolicyPod(t, p)
		s := parseLoadSummary(t, logs)
		if phase != "Failed" || s.OK != 0 || s.Errors == 0 {
			t.Fatalf("%s/%s (labels %v) should be refused: phase %s, %d of %d requests ok", p.ns, p.name, p.labels, phase, s.OK, s.Sent)
		}
		t.Logf("refused: %s/%s (labels %v): 0 of %d requests to %s answered, errors %v", p.ns, p.name, p.labels, s.Sent, p.target(), s.ErrorKinds)
	}

	allowed(predict(c.namespace, "client", client))
	refused(predict(c.namespace, "outsider", map[string]string{"tide-e2e/role": "outsider"}))
	// allowedClients' podSelector without a namespaceSelector means this namespace only.
	refused(predict(otherNS, "client-elsewhere", client))

	// The management port: the operator may read the index there (and so load and
	// unload); the inference client, admitted on the HTTP port, is refused.
	index := func(name string, labels map[string]string) policyPod {
		return policyPod{ns: c.namespace, name: name, image: clientImage, labels: labels, command: []string{
			"/usr/local/bin/tide", "load", "-c", "1", "-n", "3", "--timeout", "3s",
			"--template", `{}`, management + "/v2/repository/index"}}
	}
	allowed(index("operator", map[string]string{"tide-e2e/role": "operator"}))
	refused(index("client-manages", client))

	// Prometheus' peer: any pod of the selected namespace may read /metrics.
	phase, logs := c.runPolicyPod(t, policyPod{ns: promNS, name: "scraper", image: c.demoImage,
		labels: map[string]string{"tide-e2e/role": "scraper"}, command: []string{"/demo", "get", base + "/metrics"}})
	if phase != "Succeeded" || !strings.Contains(logs, "200 OK") || !strings.Contains(logs, "# HELP") {
		t.Fatalf("%s/scraper should read /metrics: phase %s, log:\n%s", promNS, phase, logs)
	}
	t.Logf("allowed: %s/scraper (Prometheus' namespace selector): GET /metrics 200", promNS)

	// The chart's default Prometheus peer is the monitoring namespace; where a real
	// Prometheus runs there (the harness add-on prometheus), its scrape of the pod is up.
	if _, err := c.run(t.Context(), "", "--namespace", "monitoring", "get", "service", "prometheus"); err == nil {
		query := url.QueryEscape(fmt.Sprintf(`up{namespace=%q,pod=~"netpol-tide-.*"}`, c.namespace))
		eventually(t, "monitoring/prometheus to scrape the pod behind the policy", 2*time.Minute, 5*time.Second, func() bool {
			out, err := c.run(t.Context(), "", "get", "--raw",
				"/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query="+query)
			return err == nil && strings.Contains(out, `,"1"]`)
		})
		t.Log("allowed: monitoring/prometheus scrapes the pod (up == 1)")
	} else {
		t.Log("no monitoring/prometheus here: the real scrape is not checked")
	}

	// Without the policy the outsider gets in: the refusals above were the policy's.
	c.kubectl(t, "delete", "networkpolicy", "netpol-tide")
	p := predict(c.namespace, "outsider", map[string]string{"tide-e2e/role": "outsider"})
	eventually(t, "the outsider to get in once the policy is deleted", time.Minute, time.Second, func() bool {
		phase, logs := c.runPolicyPod(t, p)
		return phase == "Succeeded" && parseLoadSummary(t, logs).OK > 0
	})
	t.Logf("allowed: %s/outsider once networkpolicy/netpol-tide is deleted", c.namespace)
}
