// Package deploy holds the tests of Tide's Helm chart and Kustomize overlays. They
// render with the real helm binary (no cluster needed) and check the objects by
// decoding them into the Kubernetes API types.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const chartDir = "helm/tide"

// kubeVersion is what the chart is rendered for: the project cluster's version. A
// helm built from the Go module otherwise assumes 1.20, older than the chart allows.
const kubeVersion = "1.34.4"

// helmBinary finds helm: $TIDE_HELM, PATH, or the cluster harness's build.
func helmBinary(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("TIDE_HELM"), "helm", clusterCache() + "/bin/helm"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("helm not found ($TIDE_HELM, PATH, $TIDE_CLUSTER_CACHE/bin/helm) and TIDE_REQUIRE_INTEGRATION=1")
	}
	t.Skip("helm not found; build it with hack/cluster/cluster build or set TIDE_HELM")
	return ""
}

// rendered is one `helm template` output, decoded per kind/name.
type rendered struct {
	docs map[string][]byte // "Kind/name" → YAML
}

func (r rendered) has(kind, name string) bool { _, ok := r.docs[kind+"/"+name]; return ok }

func (r rendered) kinds() []string {
	var k []string
	for key := range r.docs {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func decode[T any](t *testing.T, r rendered, kind, name string) *T {
	t.Helper()
	return decodeWith[T](t, r, kind, name, yaml.UnmarshalStrict)
}

// decodeWith decodes kind/name with unmarshal (strict, or loose for an object
// whose full schema is another project's).
func decodeWith[T any](t *testing.T, r rendered, kind, name string, unmarshal func([]byte, any, ...yaml.JSONOpt) error) *T {
	t.Helper()
	doc, ok := r.docs[kind+"/"+name]
	if !ok {
		t.Fatalf("%s/%s not rendered; have %v", kind, name, r.kinds())
	}
	var v T
	if err := unmarshal(doc, &v); err != nil {
		t.Fatalf("decode %s/%s: %v\n%s", kind, name, err, doc)
	}
	return &v
}

func helmTemplate(t *testing.T, helm string, args ...string) (rendered, error) {
	t.Helper()
	return helmTemplateRelease(t, helm, "fraud", args...)
}

// helmTemplateRelease renders the chart as the named release.
func helmTemplateRelease(t *testing.T, helm, release string, args ...string) (rendered, error) {
	t.Helper()
	full := append([]string{"template", release, chartDir, "--namespace", "ml", "--kube-version", kubeVersion}, args...)
	cmd := exec.Command(helm, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return rendered{}, fmt.Errorf("helm %s: %w: %s", strings.Join(full, " "), err, strings.TrimSpace(stderr.String()))
	}
	return splitDocs(stdout.Bytes())
}

func splitDocs(out []byte) (rendered, error) {
	r := rendered{docs: map[string][]byte{}}
	for _, doc := range bytes.Split(out, []byte("\n---")) {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return r, fmt.Errorf("decode rendered document: %w\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue // comments only
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if _, dup := r.docs[key]; dup {
			return r, fmt.Errorf("%s rendered twice", key)
		}
		r.docs[key] = doc
	}
	return r, nil
}

// valuesFiles are the combinations the chart supports; e2e dry-runs the same files.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci: %v", chartDir, err)
	}
	return files
}

func TestHelmLint(t *testing.T) {
	helm := helmBinary(t)
	for _, f := range valuesFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(helm, "lint", "--strict", "--kube-version", kubeVersion, chartDir, "-f", f).CombinedOutput()
			if err != nil {
				t.Fatalf("helm lint -f %s: %v\n%s", f, err, out)
			}
		})
	}
}

// TestEveryValuesFileRenders renders each file and checks what every install needs.
func TestEveryValuesFileRenders(t *testing.T) {
	helm := helmBinary(t)
	for _, f := range valuesFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := helmTemplate(t, helm, "-f", f)
			if err != nil {
				t.Fatal(err)
			}
			d := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
			checkPodHardening(t, &d.Spec.Template.Spec)
			if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
				t.Error("rolling update may take a ready pod away before its replacement is ready: want maxUnavailable 0")
			}
			svc := decode[corev1.Service](t, r, "Service", "fraud-tide")
			if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
			}
		})
	}
}

func checkPodHardening(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, user 65532", pod.SecurityContext)
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s securityContext %+v: want read-only root, no privilege escalation, drop ALL", c.Name, sc)
		}
	}
	c := pod.Containers[0]
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || !strings.HasPrefix(p.HTTPGet.Path, "/v2/health/") {
			t.Errorf("%s probe %+v: want an HTTP GET on /v2/health/*", name, p)
		}
	}
}

// selects says whether a label selector matches a set of labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false // an empty Service selector would match nothing managed here
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func arg(c corev1.Container, flag string) (string, bool) {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestDefaults(t *testing.T) {
	r, err := helmTemplate(t, helmBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	d := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if got := c.Args[len(c.Args)-1]; got != "/models/model.pkl" {
		t.Errorf("serves %q, want /models/model.pkl (baked into the image)", got)
	}
	if v, ok := arg(c, "--model-control"); ok {
		t.Errorf("--model-control=%s by default: model control must stay off unless configured", v)
	}
	r2, err := helmTemplate(t, helmBinary(t), "--set", "server.modelControl=true")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := arg(decode[appsv1.Deployment](t, r2, "Deployment", "fraud-tide").Spec.Template.Spec.Containers[0], "--model-control"); !ok || v != "true" {
		t.Errorf("server.modelControl=true renders --model-control=%q (present %v), want true", v, ok)
	}
	// Drain: the grace period covers --drain-delay + --drain-timeout.
	delay, _ := arg(c, "--drain-delay")
	timeout, _ := arg(c, "--drain-timeout")
	if delay != "5s" || timeout != "20s" || pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 30 {
		t.Errorf("drain-delay %s drain-timeout %s grace %v: want 5s, 20s, 30", delay, timeout, pod.TerminationGracePeriodSeconds)
	}
	if c.Lifecycle != nil {
		t.Errorf("lifecycle %+v: the default drain is the server's, no preStop", c.Lifecycle)
	}
	if pod.Containers[0].Resources.Requests.Cpu().String() != "250m" {
		t.Errorf("cpu request %s, want 250m", pod.Containers[0].Resources.Requests.Cpu())
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "8080" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v", ann)
	}
	if len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("topology spread %+v: want one over hostnames", pod.TopologySpreadConstraints)
	}
	pdb := decode[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", "fraud-tide")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v: want maxUnavailable 1", pdb.Spec)
	}
	for _, absent := range []string{"HorizontalPodAutoscaler/fraud-tide", "ScaledObject/fraud-tide", "NetworkPolicy/fraud-tide", "Ingress/fraud-tide", "ServiceMonitor/fraud-tide", "HTTPRoute/fraud-tide"} {
		if _, ok := r.docs[absent]; ok {
			t.Errorf("%s rendered by default", absent)
		}
	}
}

func TestAutoscalingModes(t *testing.T) {
	helm := helmBinary(t)
	tests := []struct {
		file       string
		hpaMetric  autoscalingv2.MetricSourceType
		metricName string // Pods metric or resource
		target     string
		scaled     bool // KEDA ScaledObject instead of an HPA
		query      string
		minReplica int64
	}{
		{file: "cpu-nodeport-values.yaml", hpaMetric: autoscalingv2.ResourceMetricSourceType, metricName: "cpu", target: "50"},
		{file: "rps-values.yaml", hpaMetric: autoscalingv2.PodsMetricSourceType, metricName: "tide_requests_per_second", target: "20"},
		{file: "inflight-values.yaml", hpaMetric: autoscalingv2.PodsMetricSourceType, metricName: "tide_inflight_requests", target: "2"},
		{file: "keda-values.yaml", scaled: true, minReplica: 0, query: `(sum(rate(tide_activator_requests_total{namespace="ml",pod=~"fraud-tide-activator-.*"}[30s])) or vector(0)) + ` +
			`(sum(tide_activator_held_requests{namespace="ml",pod=~"fraud-tide-activator-.*"}) or vector(0))`},
		{file: "gpu-values.yaml", scaled: true, query: `avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod=~"fraud-tide-.*"})`, minReplica: 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			d := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment sets replicas %d; the autoscaler must own the count", *d.Spec.Replicas)
			}
			if tt.scaled {
				if r.has("HorizontalPodAutoscaler", "fraud-tide") {
					t.Error("an HPA rendered besides the ScaledObject")
				}
				so := decode[map[string]any](t, r, "ScaledObject", "fraud-tide")
				spec := (*so)["spec"].(map[string]any)
				trig := spec["triggers"].([]any)[0].(map[string]any)
				md := trig["metadata"].(map[string]any)
				if trig["type"] != "prometheus" || md["query"] != tt.query || md["activationThreshold"] == nil {
					t.Errorf("trigger %v: want prometheus, query %s, an activation threshold", trig, tt.query)
				}
				if got := spec["minReplicaCount"].(float64); int64(got) != tt.minReplica {
					t.Errorf("minReplicaCount %v, want %d", got, tt.minReplica)
				}
				return
			}
			hpa := decode[autoscalingv2.HorizontalPodAutoscaler](t, r, "HorizontalPodAutoscaler", "fraud-tide")
			if hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
				t.Errorf("HPA targets %+v", hpa.Spec.ScaleTargetRef)
			}
			m := hpa.Spec.Metrics[0]
			if m.Type != tt.hpaMetric {
				t.Fatalf("metric type %s, want %s", m.Type, tt.hpaMetric)
			}
			switch m.Type {
			case autoscalingv2.ResourceMetricSourceType:
				if string(m.Resource.Name) != tt.metricName || fmt.Sprint(*m.Resource.Target.AverageUtilization) != tt.target {
					t.Errorf("resource metric %+v", m.Resource)
				}
			case autoscalingv2.PodsMetricSourceType:
				if m.Pods.Metric.Name != tt.metricName || m.Pods.Target.AverageValue.String() != tt.target {
					t.Errorf("pods metric %+v", m.Pods)
				}
			}
			b := hpa.Spec.Behavior
			if b == nil || b.ScaleUp == nil || b.ScaleDown == nil || *b.ScaleUp.StabilizationWindowSeconds > *b.ScaleDown.StabilizationWindowSeconds {
				t.Errorf("behavior %+v: want scale-up at least as fast as scale-down", b)
			}
		})
	}
}

func TestModelSources(t *testing.T) {
	helm := helmBinary(t)
	tests := []struct {
		file      string
		path      string
		volume    func(corev1.Volume) bool
		readOnly  bool
		initImage string
	}{
		{file: "pvc-values.yaml", path: "/models", readOnly: true,
			volume: func(v corev1.Volume) bool {
				return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "models"
			}},
		{file: "configmap-values.yaml", path: "/models/model.pkl", readOnly: true,
			volume: func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == "fraud-model" }},
		{file: "url-values.yaml", path: "/models/model.pkl", initImage: "busybox:1.37",
			volume: func(v corev1.Volume) bool { return v.EmptyDir != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			pod := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide").Spec.Template.Spec
			c := pod.Containers[0]
			if got := c.Args[len(c.Args)-1]; got != tt.path {
				t.Errorf("serves %q, want %q", got, tt.path)
			}
			i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "models" })
			if i < 0 || !tt.volume(pod.Volumes[i]) {
				t.Fatalf("models volume %+v not as expected", pod.Volumes)
			}
			j := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "models" })
			if j < 0 || c.VolumeMounts[j].MountPath != "/models" || c.VolumeMounts[j].ReadOnly != tt.readOnly {
				t.Errorf("models mount %+v, want /models readOnly=%v", c.VolumeMounts, tt.readOnly)
			}
			if tt.initImage != "" {
				if len(pod.InitContainers) != 1 || pod.InitContainers[0].Image != tt.initImage ||
					!slices.Contains(pod.InitContainers[0].Command, "https://models.example.com/fraud/model.pkl") {
					t.Errorf("init containers %+v: want one fetching the URL", pod.InitContainers)
				}
			} else if len(pod.InitContainers) != 0 {
				t.Errorf("unexpected init containers %+v", pod.InitContainers)
			}
		})
	}
}

func TestSecureValues(t *testing.T) {
	r, err := helmTemplate(t, helmBinary(t), "-f", filepath.Join(chartDir, "ci", "secure-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	for flag, want := range map[string]string{
		"--api-key-file": "/etc/tide/api-keys/keys", "--management-key-file": "/etc/tide/management-keys/keys",
		"--config": "/etc/tide/config.yaml", "--drain-delay": "0s", "--drain-timeout": "10s", "--grpc-addr": "",
		"--load-memory-budget": "auto", "--load-cpu-share": "auto",
	} {
		if got, ok := arg(c, flag); !ok || got != want {
			t.Errorf("%s=%q (present %v), want %q", flag, got, ok, want)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 3 {
		t.Errorf("preStop %+v: want a 3 s sleep action", c.Lifecycle)
	}
	if *pod.TerminationGracePeriodSeconds != 18 {
		t.Errorf("grace %d, want 3+10+5", *pod.TerminationGracePeriodSeconds)
	}
	secret := decode[corev1.Secret](t, r, "Secret", "fraud-tide-api-keys")
	if !strings.Contains(secret.StringData["keys"], "e2e-inference-key") {
		t.Errorf("api key secret %v", secret.StringData)
	}
	if r.has("Secret", "fraud-tide-management-keys") {
		t.Error("rendered a management key Secret although existingSecret is set")
	}
	vi := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "management-keys" })
	if vi < 0 || pod.Volumes[vi].Secret.SecretName != "tide-admin-keys" {
		t.Errorf("management keys volume %+v", pod.Volumes)
	}
	cm := decode[corev1.ConfigMap](t, r, "ConfigMap", "fraud-tide-config")
	if !strings.Contains(cm.Data["config.yaml"], "max-body-bytes: 1048576") {
		t.Errorf("config %q", cm.Data["config.yaml"])
	}
	np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide")
	if len(np.Spec.Ingress) != 3 {
		t.Fatalf("%d ingress rules, want clients, prometheus and the feedback peers", len(np.Spec.Ingress))
	}
	if peers := np.Spec.Ingress[2]; len(peers.From) != 1 || peers.From[0].PodSelector.MatchLabels["app.kubernetes.io/instance"] != "fraud" ||
		len(peers.Ports) != 1 || peers.Ports[0].Port.String() != "http" {
		t.Errorf("feedback peers rule %+v", peers)
	}
	clients := np.Spec.Ingress[0].From
	if len(clients) != 2 || clients[0].PodSelector.MatchLabels["role"] != "fraud-client" ||
		clients[1].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" {
		t.Errorf("client peers %+v", clients)
	}
	if len(np.Spec.Ingress[0].Ports) != 1 {
		t.Errorf("client ports %+v: gRPC is off, want http only", np.Spec.Ingress[0].Ports)
	}
	if !r.has("ServiceMonitor", "fraud-tide") || !r.has("PrometheusRule", "fraud-tide") {
		t.Error("ServiceMonitor and PrometheusRule forced on but not rendered")
	}
	pdb := decode[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", "fraud-tide")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PDB %+v: want minAvailable 1 only", pdb.Spec)
	}
	checkManagementConfined(t, r, 0)
}

// checkManagementConfined: with the NetworkPolicy and management keys on, model
// control is served on the management port alone, which the Deployment and the
// Service name, and which only the managementClients peers (wantPeers of them)
// may reach; no other rule admits it.
func checkManagementConfined(t *testing.T, r rendered, wantPeers int) {
	t.Helper()
	c := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide").Spec.Template.Spec.Containers[0]
	if got, ok := arg(c, "--management-addr"); !ok || got != ":8082" {
		t.Errorf("--management-addr=%q (present %v), want :8082", got, ok)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "management" && p.ContainerPort == 8082 }) {
		t.Errorf("container ports %+v lack management 8082", c.Ports)
	}
	svc := decode[corev1.Service](t, r, "Service", "fraud-tide")
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		return p.Name == "management" && p.TargetPort.String() == "management"
	}) {
		t.Errorf("service ports %+v lack management", svc.Spec.Ports)
	}
	np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide")
	peers := 0
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.String() == "management" {
				if len(rule.Ports) != 1 {
					t.Errorf("the management port shares a rule with %+v", rule.Ports)
				}
				peers += len(rule.From)
			}
		}
	}
	if peers != wantPeers {
		t.Errorf("%d peers may reach the management port, want %d", peers, wantPeers)
	}
}

func TestManagementClientsReachOnlyTheManagementPort(t *testing.T) {
	r, err := helmTemplate(t, helmBinary(t), "-f", filepath.Join(chartDir, "ci", "secure-values.yaml"),
		"--set", "networkPolicy.managementClients[0].podSelector.matchLabels.role=operator")
	if err != nil {
		t.Fatal(err)
	}
	checkManagementConfined(t, r, 1)
	// Without the NetworkPolicy there is nothing to confine to: no management port.
	r, err = helmTemplate(t, helmBinary(t), "-f", filepath.Join(chartDir, "ci", "secure-values.yaml"), "--set", "networkPolicy.enabled=false")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := arg(decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide").Spec.Template.Spec.Containers[0], "--management-addr"); ok {
		t.Error("--management-addr rendered without the NetworkPolicy")
	}
}

// TestActivatorFrontsScaleToZero: KEDA with minReplicas 0 puts the activator in front
// of Tide. It must never be selected by Tide's own Service (it would receive its own
// forwarded requests), it must target that Service, and the Ingress, HTTPRoute and
// NetworkPolicy must route through it. With minReplicas 1 there is no activator.
func TestActivatorFrontsScaleToZero(t *testing.T) {
	helm := helmBinary(t)
	r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "keda-values.yaml"),
		"--set", "ingress.enabled=true", "--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=public",
		"--set", "networkPolicy.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	act := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide-activator")
	svc := decode[corev1.Service](t, r, "Service", "fraud-tide")
	podLabels := labels.Set(act.Spec.Template.Labels)
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Tide's Service selector %v selects the activator's pods %v", svc.Spec.Selector, podLabels)
	}
	asvc := decode[corev1.Service](t, r, "Service", "fraud-tide-activator")
	if !labels.SelectorFromSet(asvc.Spec.Selector).Matches(podLabels) {
		t.Errorf("activator Service selector %v misses its pods %v", asvc.Spec.Selector, podLabels)
	}
	c := act.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Command, []string{"/usr/local/bin/tide-server", "activator"}) ||
		!slices.Contains(c.Args, "--target=http://fraud-tide.ml.svc:80") {
		t.Errorf("activator runs %v %v: want tide-server activator targeting the Tide Service", c.Command, c.Args)
	}
	if act.Spec.Template.Annotations["prometheus.io/port"] != "9091" {
		t.Errorf("activator pods annotations %v: Prometheus must scrape port 9091", act.Spec.Template.Annotations)
	}
	ing := decode[networkingv1.Ingress](t, r, "Ingress", "fraud-tide")
	if be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service; be.Name != "fraud-tide-activator" {
		t.Errorf("Ingress backend %s, want the activator", be.Name)
	}
	route := decode[map[string]any](t, r, "HTTPRoute", "fraud-tide")
	be := (*route)["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["backendRefs"].([]any)[0].(map[string]any)
	if be["name"] != "fraud-tide-activator" {
		t.Errorf("HTTPRoute backend %v, want the activator", be["name"])
	}
	np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide")
	allowed := false
	for _, rule := range np.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.PodSelector != nil && labels.SelectorFromSet(peer.PodSelector.MatchLabels).Matches(podLabels) {
				allowed = true
			}
		}
	}
	if !allowed {
		t.Error("the NetworkPolicy does not let the activator reach Tide")
	}
	if !r.has("NetworkPolicy", "fraud-tide-activator") {
		t.Error("no NetworkPolicy for the activator's own pods")
	}
	// Every request to a Deployment at zero passes an activator: two, spread over
	// nodes, drained one at a time.
	if n := act.Spec.Replicas; n == nil || *n < 2 {
		t.Errorf("activator replicas %v, want at least 2", n)
	}
	spread := slices.ContainsFunc(act.Spec.Template.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
		return c.TopologyKey == "kubernetes.io/hostname" && c.LabelSelector != nil && labels.SelectorFromSet(c.LabelSelector.MatchLabels).Matches(podLabels)
	})
	if !spread {
		t.Errorf("activator not spread over nodes: %+v", act.Spec.Template.Spec.TopologySpreadConstraints)
	}
	apdb := decode[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", "fraud-tide-activator")
	if apdb.Spec.MaxUnavailable == nil || apdb.Spec.MaxUnavailable.IntValue() != 1 || !labels.SelectorFromSet(apdb.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("activator PDB %+v: want maxUnavailable 1 over the activator's pods", apdb.Spec)
	}
	if tide := decode[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", "fraud-tide"); labels.SelectorFromSet(tide.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Error("Tide's PDB counts the activator's pods")
	}
	one, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "keda-values.yaml"), "--set", "autoscaling.keda.activator.replicas=1")
	if err != nil {
		t.Fatal(err)
	}
	if one.has("PodDisruptionBudget", "fraud-tide-activator") {
		t.Error("a PDB over one activator would block every drain")
	}

	r, err = helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "keda-values.yaml"), "--set", "autoscaling.keda.minReplicas=1")
	if err != nil {
		t.Fatal(err)
	}
	if r.has("Deployment", "fraud-tide-activator") {
		t.Error("activator rendered with minReplicas 1: nothing to wake")
	}
}

func TestIngressAndGateway(t *testing.T) {
	r, err := helmTemplate(t, helmBinary(t), "-f", filepath.Join(chartDir, "ci", "ingress-tls-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ing := decode[networkingv1.Ingress](t, r, "Ingress", "fraud-tide")
	if *ing.Spec.IngressClassName != "nginx" || ing.Spec.Rules[0].Host != "fraud.example.com" ||
		len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "fraud-tls" {
		t.Errorf("ingress %+v: want class nginx, host fraud.example.com, TLS from fraud-tls", ing.Spec)
	}
	if be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service; be.Name != "fraud-tide" || be.Port.Name != "http" {
		t.Errorf("backend %+v", be)
	}
	svc := decode[corev1.Service](t, r, "Service", "fraud-tide")
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !slices.Equal(svc.Spec.LoadBalancerSourceRanges, []string{"10.0.0.0/8"}) {
		t.Errorf("service %+v", svc.Spec)
	}
	route := decode[map[string]any](t, r, "HTTPRoute", "fraud-tide")
	spec := (*route)["spec"].(map[string]any)
	parent := spec["parentRefs"].([]any)[0].(map[string]any)
	if parent["name"] != "public" || spec["hostnames"].([]any)[0] != "fraud.example.com" {
		t.Errorf("HTTPRoute spec %v", spec)
	}
}

// A value given with --set is typed by helm; annotations must still render as strings
// (a rollout triggered with --set podAnnotations.version=2 once failed on this).
func TestPodAnnotationsAreStrings(t *testing.T) {
	r, err := helmTemplate(t, helmBinary(t), "--set", "podAnnotations.tide\\.dev/model-version=2")
	if err != nil {
		t.Fatal(err)
	}
	d := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	if got := d.Spec.Template.Annotations["tide.dev/model-version"]; got != "2" {
		t.Errorf("annotation %q, want \"2\"", got)
	}
}

func TestGPUScheduling(t *testing.T) {
	r, err := helmTemplate(t, helmBinary(t), "-f", filepath.Join(chartDir, "ci", "gpu-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pod := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide").Spec.Template.Spec
	gpus := pod.Containers[0].Resources.Limits["nvidia.com/gpu"]
	if gpus.Value() != 1 {
		t.Errorf("nvidia.com/gpu limit %s, want 1", gpus.String())
	}
	if mem := pod.Containers[0].Resources.Limits.Memory(); mem.String() != "512Mi" {
		t.Errorf("memory limit %s lost when adding the GPU", mem)
	}
	if pod.NodeSelector["cloud.google.com/gke-accelerator"] != "nvidia-l4" || len(pod.Tolerations) != 3 || pod.Tolerations[0].Key != "nvidia.com/gpu" || pod.Affinity == nil || pod.Affinity.NodeAffinity == nil {
		t.Errorf("GPU placement: nodeSelector %v tolerations %v affinity %v", pod.NodeSelector, pod.Tolerations, pod.Affinity)
	}
	if len(pod.TopologySpreadConstraints) != 2 {
		t.Errorf("topology spread %+v: want hostname and zone", pod.TopologySpreadConstraints)
	}
}

// TestNodeFailureTolerations: the server and the activator leave a failed node after
// nodeFailure.tolerationSeconds (not Kubernetes' 300 s), beside the user's own
// tolerations; null leaves the cluster's default.
func TestNodeFailureTolerations(t *testing.T) {
	helm := helmBinary(t)
	pods := func(args ...string) map[string]corev1.PodSpec {
		r, err := helmTemplate(t, helm, append([]string{"--set", "autoscaling.mode=keda"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]corev1.PodSpec{
			"server":    decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide").Spec.Template.Spec,
			"activator": decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide-activator").Spec.Template.Spec,
		}
	}
	seconds := func(p corev1.PodSpec, key string) int64 {
		for _, tol := range p.Tolerations {
			if tol.Key == key && tol.Effect == corev1.TaintEffectNoExecute && tol.Operator == corev1.TolerationOpExists && tol.TolerationSeconds != nil {
				return *tol.TolerationSeconds
			}
		}
		return -1
	}
	for name, p := range pods() {
		for _, key := range []string{"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"} {
			if s := seconds(p, key); s != 30 {
				t.Errorf("%s: %s tolerated for %d s, want the chart's 30", name, key, s)
			}
		}
	}
	for name, p := range pods("--set", "nodeFailure.tolerationSeconds=null", "--set", "tolerations[0].key=dedicated",
		"--set", "tolerations[0].operator=Exists", "--set", "tolerations[0].effect=NoSchedule") {
		if len(p.Tolerations) != 1 || p.Tolerations[0].Key != "dedicated" {
			t.Errorf("%s with tolerationSeconds null: tolerations %+v, want only the user's", name, p.Tolerations)
		}
	}
	for name, p := range pods("--set", "nodeFailure.tolerationSeconds=0") {
		if s := seconds(p, "node.kubernetes.io/unreachable"); s != 0 {
			t.Errorf("%s: tolerationSeconds 0 rendered as %d", name, s)
		}
	}
}

func TestServiceMonitorFollowsCRD(t *testing.T) {
	helm := helmBinary(t)
	without, err := helmTemplate(t, helm)
	if err != nil {
		t.Fatal(err)
	}
	with, err := helmTemplate(t, helm, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
	if err != nil {
		t.Fatal(err)
	}
	if without.has("ServiceMonitor", "fraud-tide") || !with.has("ServiceMonitor", "fraud-tide") || !with.has("PrometheusRule", "fraud-tide") {
		t.Errorf("ServiceMonitor/PrometheusRule rendered without the CRD %v, with it %v", without.kinds(), with.kinds())
	}
}

func TestInvalidValuesFail(t *testing.T) {
	helm := helmBinary(t)
	tests := []struct{ set, message string }{
		{"autoscaling.mode=memory", `autoscaling.mode "memory"`},
		{"model.source=s3", `model.source "s3"`},
		{"model.source=pvc", "model.source pvc needs model.pvc.claimName"},
		{"model.source=url", "model.source url needs model.url.href"},
		{"server.drainMode=never", `server.drainMode "never"`},
		{"apiKeys.enabled=true", "apiKeys.enabled needs apiKeys.existingSecret or apiKeys.keys"},
		{"httpRoute.enabled=true", "httpRoute.enabled needs httpRoute.parentRefs"},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			_, err := helmTemplate(t, helm, "--set", tt.set)
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("--set %s: error %v, want one saying %q", tt.set, err, tt.message)
			}
		})
	}
}

// kubectlBinary finds kubectl for `kubectl kustomize` (no cluster needed).
func kubectlBinary(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("TIDE_E2E_KUBECTL"), "kubectl", clusterCache() + "/bin/kubectl"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("kubectl not found and TIDE_REQUIRE_INTEGRATION=1")
	}
	t.Skip("kubectl not found; set TIDE_E2E_KUBECTL")
	return ""
}

func TestKustomizeOverlays(t *testing.T) {
	kubectl := kubectlBinary(t)
	tests := []struct {
		overlay     string
		serviceType corev1.ServiceType
		image       string
		ingress     bool
		zoneSpread  bool
	}{
		{overlay: "kind", serviceType: corev1.ServiceTypeNodePort, image: "tide.local/tide:dev"},
		{overlay: "minikube", serviceType: corev1.ServiceTypeClusterIP, image: "tide.local/tide:dev", ingress: true},
		{overlay: "eks", serviceType: corev1.ServiceTypeLoadBalancer, image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/tide:dev", zoneSpread: true},
		{overlay: "eks-alb", serviceType: corev1.ServiceTypeClusterIP, image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/tide:dev", ingress: true, zoneSpread: true},
		{overlay: "gke", serviceType: corev1.ServiceTypeClusterIP, image: "us-docker.pkg.dev/my-project/ml/tide:dev", ingress: true, zoneSpread: true},
	}
	for _, tt := range tests {
		t.Run(tt.overlay, func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", filepath.Join("kustomize", "overlays", tt.overlay)).Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v", tt.overlay, err)
			}
			r, err := splitDocs(out)
			if err != nil {
				t.Fatal(err)
			}
			d := decode[appsv1.Deployment](t, r, "Deployment", "tide")
			checkPodHardening(t, &d.Spec.Template.Spec)
			if d.Spec.Replicas != nil {
				t.Errorf("replicas %d set although the HPA owns the count", *d.Spec.Replicas)
			}
			if img := d.Spec.Template.Spec.Containers[0].Image; img != tt.image {
				t.Errorf("image %s, want %s", img, tt.image)
			}
			svc := decode[corev1.Service](t, r, "Service", "tide")
			if svc.Spec.Type != tt.serviceType || !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("service type %s selector %v; want %s selecting %v", svc.Spec.Type, svc.Spec.Selector, tt.serviceType, d.Spec.Template.Labels)
			}
			hpa := decode[autoscalingv2.HorizontalPodAutoscaler](t, r, "HorizontalPodAutoscaler", "tide")
			if hpa.Spec.ScaleTargetRef.Name != "tide" {
				t.Errorf("HPA targets %s", hpa.Spec.ScaleTargetRef.Name)
			}
			pdb := decode[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", "tide")
			if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("PDB selector %v misses the pods", pdb.Spec.Selector)
			}
			if r.has("Ingress", "tide") != tt.ingress {
				t.Errorf("Ingress rendered %v, want %v", r.has("Ingress", "tide"), tt.ingress)
			}
			zone := slices.ContainsFunc(d.Spec.Template.Spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
				return c.TopologyKey == "topology.kubernetes.io/zone"
			})
			if zone != tt.zoneSpread {
				t.Errorf("zone spread %v, want %v", zone, tt.zoneSpread)
			}
		})
	}
}

// clusterCache is where the project's cluster keeps its binaries
// (hack/cluster/lib/common.sh): $TIDE_CLUSTER_CACHE, by default
// /var/cache/tide-cluster.
func clusterCache() string {
	if c := os.Getenv("TIDE_CLUSTER_CACHE"); c != "" {
		return c
	}
	return "/var/cache/tide-cluster"
}

// TestTracingValues: with an OTLP endpoint, the server and the activator get the
// standard OTEL_* environment (each its own service name); restrictEgress lets
// them reach DNS and the named collector pods only (the activator also Tide's
// pods); without collector peers it refuses to render. The default renders none
// of it.
func TestTracingValues(t *testing.T) {
	helm := helmBinary(t)
	r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "tracing-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	envOf := func(d *appsv1.Deployment) map[string]string {
		m := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			m[e.Name] = e.Value
		}
		return m
	}
	server := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	act := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide-activator")
	for d, service := range map[*appsv1.Deployment]string{server: "fraud-tide", act: "fraud-tide-activator"} {
		env := envOf(d)
		if env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "http://otel-collector.observability:4318" || env["OTEL_SERVICE_NAME"] != service ||
			env["OTEL_TRACES_SAMPLER"] != "parentbased_traceidratio" || env["OTEL_TRACES_SAMPLER_ARG"] != "0.05" ||
			!strings.Contains(env["OTEL_RESOURCE_ATTRIBUTES"], "k8s.namespace.name=ml") || !strings.HasSuffix(env["OTEL_RESOURCE_ATTRIBUTES"], ",deployment.environment=ci") {
			t.Errorf("%s: tracing environment %v", d.Name, env)
		}
	}
	if v, ok := arg(server.Spec.Template.Spec.Containers[0], "--access-log-sample"); !ok || v != "0.01" {
		t.Errorf("--access-log-sample %q %v", v, ok)
	}
	for _, name := range []string{"fraud-tide", "fraud-tide-activator"} {
		np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", name)
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Fatalf("%s: egress not restricted: %v", name, np.Spec.PolicyTypes)
		}
		dns, collector, backend := false, false, false
		for _, e := range np.Spec.Egress {
			for _, p := range e.Ports {
				switch {
				case p.Port.IntValue() == 53 && len(e.To) == 0:
					dns = true
				case p.Port.IntValue() == 4318 && len(e.To) == 1 && e.To[0].NamespaceSelector != nil &&
					e.To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "observability":
					collector = true
				case p.Port.IntValue() == 8080 && len(e.To) == 1 && e.To[0].PodSelector != nil &&
					labels.SelectorFromSet(e.To[0].PodSelector.MatchLabels).Matches(labels.Set(server.Spec.Template.Labels)):
					backend = true
				}
			}
		}
		// Both reach Tide's pods: the activator forwards requests, the
		// replicas forward feedback to each other (monitoring.feedbackPeers).
		if !dns || !collector || !backend {
			t.Errorf("%s egress: DNS %v, collector %v, Tide's pods %v: %+v", name, dns, collector, backend, np.Spec.Egress)
		}
	}
	if _, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "tracing-values.yaml"), "--set", "tracing.collector.peers=null"); err == nil ||
		!strings.Contains(err.Error(), "tracing.collector.peers") {
		t.Errorf("restrictEgress with tracing and no collector peers: %v, want a refusal naming tracing.collector.peers", err)
	}
	r, err = helmTemplate(t, helm)
	if err != nil {
		t.Fatal(err)
	}
	if env := envOf(decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")); len(env) != 0 {
		t.Errorf("default values render an environment: %v", env)
	}
}
