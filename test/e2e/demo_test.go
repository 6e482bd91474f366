//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// demoWorkload renders a Deployment and a NodePort Service of the demo image. The CPU
// request is what the HPA measures utilisation against; the limit keeps a loaded pod
// from taking a shared machine's every core.
func demoWorkload(name, image string, replicas int) string {
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: demo
        image: %[2]s
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 10}
        resources:
          requests: {cpu: 100m, memory: 16Mi}
          limits: {cpu: 500m, memory: 64Mi}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  type: NodePort
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: http}]
`, name, image, replicas)
}

// clientPod renders a one-shot pod that runs the demo binary's client mode.
func clientPod(name, image string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: %s
    imagePullPolicy: IfNotPresent
    args: [%s]
    resources:
      requests: {cpu: 50m, memory: 16Mi}
      limits: {cpu: 300m, memory: 64Mi}
`, name, image, strings.Join(quoted, ", "))
}

// waitPodDone waits for a one-shot pod to finish and returns its phase and log.
func (c *cluster) waitPodDone(t *testing.T, pod string, timeout time.Duration) (phase, logs string) {
	t.Helper()
	eventually(t, "pod "+pod+" to finish", timeout, time.Second, func() bool {
		phase = c.jsonpath(t.Context(), "pod/"+pod, "{.status.phase}")
		return phase == "Succeeded" || phase == "Failed"
	})
	return phase, c.kubectl(t, "logs", pod)
}

func TestServiceReachableFromHostAndPod(t *testing.T) {
	c := testCluster
	c.apply(t, demoWorkload("hello", c.demoImage, 2))
	c.kubectl(t, "rollout", "status", "deployment/hello", "--timeout=180s")

	t.Run("from the host through the NodePort", func(t *testing.T) {
		nodeIP := c.jsonpath(t.Context(), "nodes", `{.items[0].status.addresses[?(@.type=="InternalIP")].address}`)
		nodePort := c.jsonpath(t.Context(), "service/hello", "{.spec.ports[0].nodePort}")
		if nodeIP == "" || nodePort == "" {
			t.Fatalf("no node address (%q) or node port (%q)", nodeIP, nodePort)
		}
		expectHello(t, "http://"+hostPort(nodeIP, nodePort)+"/")
	})

	t.Run("from the host through the ClusterIP", func(t *testing.T) {
		if envOr("TIDE_E2E_HOST_REACHES_CLUSTER_IP", "") != "1" {
			t.Skip("TIDE_E2E_HOST_REACHES_CLUSTER_IP is not 1: this host is not a node of the cluster")
		}
		clusterIP := c.jsonpath(t.Context(), "service/hello", "{.spec.clusterIP}")
		expectHello(t, "http://"+hostPort(clusterIP, "80")+"/")
	})

	t.Run("from a pod by DNS name", func(t *testing.T) {
		// Both the short name (search path of the pod's namespace) and the fully
		// qualified name must resolve through the cluster DNS.
		fqdn := "hello." + c.namespace + ".svc.cluster.local"
		c.apply(t, clientPod("dns-client", c.demoImage, "get", "http://hello/", "http://"+fqdn+"/"))
		phase, logs := c.waitPodDone(t, "dns-client", 2*time.Minute)
		if phase != "Succeeded" || strings.Count(logs, "200 OK") != 2 || !strings.Contains(logs, "hello from hello-") {
			t.Fatalf("in-cluster GET by DNS name: phase %s, log:\n%s", phase, logs)
		}
		t.Logf("pod dns-client:\n%s", strings.TrimSpace(logs))
	})
}

// expectHello retries a host-side GET for a while: kube-proxy programs a new Service's
// rules a moment after the endpoints become ready.
func expectHello(t *testing.T, url string) {
	t.Helper()
	var lastErr error
	var body string
	eventually(t, "GET "+url, 60*time.Second, time.Second, func() bool {
		body, lastErr = httpGet(t.Context(), url)
		return lastErr == nil
	})
	if !strings.HasPrefix(body, "hello from hello-") {
		t.Fatalf("GET %s: unexpected body %q", url, body)
	}
	t.Logf("GET %s: %s", url, strings.TrimSpace(body))
}

func TestHPAScalesOnCPU(t *testing.T) {
	c := testCluster
	c.apply(t, demoWorkload("burn", c.demoImage, 1))
	c.kubectl(t, "rollout", "status", "deployment/burn", "--timeout=180s")
	// Scale-up reacts at once; scale-down uses a 15 s window instead of the default
	// 5 minutes so the test sees the way back down in about a minute.
	c.apply(t, `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleUp: {stabilizationWindowSeconds: 0}
    scaleDown:
      stabilizationWindowSeconds: 15
      policies: [{type: Percent, value: 100, periodSeconds: 15}]
`)
	h := newHPATimeline(t, c, "hpa/burn", "deployment/burn", func() string {
		return "cpu=" + c.jsonpath(t.Context(), "hpa/burn", "{.status.currentMetrics[0].resource.current.averageUtilization}") + "%"
	})
	timeline := h.log
	eventually(t, "the HPA to read CPU metrics", 3*time.Minute, 5*time.Second, func() bool {
		return c.jsonpath(t.Context(), "hpa/burn", "{.status.currentMetrics[0].resource.current.averageUtilization}") != ""
	})
	timeline("metrics available")

	// Load is bounded twice: the client stops by itself after loadFor, and the pod is
	// deleted as soon as the scale-up has been seen.
	const loadFor = 3 * time.Minute
	c.apply(t, clientPod("load", c.demoImage, "load", "-c", "4", "-d", loadFor.String(), "http://burn/?ms=20"))
	stopLoad := func() { c.run(t.Context(), "", "delete", "pod", "load", "--wait=false", "--ignore-not-found") }
	t.Cleanup(stopLoad)

	eventually(t, "scale-up above 1 replica under load", loadFor, 5*time.Second, func() bool {
		timeline("under load")
		return h.ready() > 1
	})
	stopLoad()
	timeline("load stopped")
	eventually(t, "scale-down to 1 replica without load", 4*time.Minute, 5*time.Second, func() bool {
		timeline("after load")
		return c.jsonpath(t.Context(), "hpa/burn", "{.status.desiredReplicas}") == "1" &&
			c.jsonpath(t.Context(), "deployment/burn", "{.status.replicas}") == "1"
	})
	t.Logf("HPA scaled %s", h.summary(1))
}
