package controller

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

var testConfig = Config{DefaultImage: "tide.local/tide:test", PrometheusAddress: "http://prom:9090", OperatorNamespace: "tide-system"}

func model(spec tidev1.ModelSpec) *tidev1.Model {
	m := &tidev1.Model{ObjectMeta: metav1.ObjectMeta{Name: "fraud", Namespace: "ml", Generation: 1}, Spec: spec}
	if m.Spec.Source == (tidev1.ModelSource{}) {
		m.Spec.Source.ConfigMap = &tidev1.ConfigMapSource{Name: "fraud-model", Key: "model.pkl"}
	}
	if m.Spec.Replicas == (tidev1.Replicas{}) {
		m.Spec.Replicas = tidev1.Replicas{Min: 1, Max: 3}
	}
	return m
}

// TestRenderSources: each model source becomes its volume, mount, path and (for
// a URL) the fetch step running the same image.
func TestRenderSources(t *testing.T) {
	cases := []struct {
		name      string
		src       tidev1.ModelSource
		image     string
		path      string
		volume    func(corev1.Volume) bool
		initStep  bool
		noVolumes bool
	}{
		{name: "image", src: tidev1.ModelSource{Image: &tidev1.ImageSource{Reference: "reg/fraud:v3", Path: "/models/model.pkl"}},
			image: "reg/fraud:v3", path: "/models/model.pkl", noVolumes: true},
		{name: "pvc", src: tidev1.ModelSource{PVC: &tidev1.PVCSource{ClaimName: "models", Path: "repo"}},
			image: testConfig.DefaultImage, path: "/models/repo",
			volume: func(v corev1.Volume) bool {
				return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "models" && v.PersistentVolumeClaim.ReadOnly
			}},
		{name: "configMap", src: tidev1.ModelSource{ConfigMap: &tidev1.ConfigMapSource{Name: "cm", Key: "model.pkl"}},
			image: testConfig.DefaultImage, path: "/models/model.pkl",
			volume: func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == "cm" }},
		{name: "configMap repository", src: tidev1.ModelSource{ConfigMap: &tidev1.ConfigMapSource{Name: "cm"}},
			image: testConfig.DefaultImage, path: "/models",
			volume: func(v corev1.Volume) bool { return v.ConfigMap != nil }},
		{name: "url", src: tidev1.ModelSource{URL: &tidev1.URLSource{URL: "https://x/m.onnx", SHA256: strings.Repeat("a", 64), FileName: "m.onnx"}},
			image: testConfig.DefaultImage, path: "/models/m.onnx", initStep: true,
			volume: func(v corev1.Volume) bool { return v.EmptyDir != nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Deployment(model(tidev1.ModelSpec{Source: c.src}), testConfig)
			pod := d.Spec.Template.Spec
			ctr := pod.Containers[0]
			if ctr.Image != c.image {
				t.Errorf("image %q, want %q", ctr.Image, c.image)
			}
			if got := ctr.Args[len(ctr.Args)-1]; got != c.path {
				t.Errorf("served path %q, want %q", got, c.path)
			}
			models := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "models" })
			if c.noVolumes != (models < 0) {
				t.Fatalf("models volume present=%v, want %v", models >= 0, !c.noVolumes)
			}
			if models >= 0 && !c.volume(pod.Volumes[models]) {
				t.Errorf("models volume %+v", pod.Volumes[models].VolumeSource)
			}
			if c.initStep != (len(pod.InitContainers) == 1) {
				t.Fatalf("init containers %d", len(pod.InitContainers))
			}
			if c.initStep {
				ic := pod.InitContainers[0]
				want := []string{"fetch", "--sha256=" + strings.Repeat("a", 64), "https://x/m.onnx", "/models/m.onnx"}
				if ic.Image != c.image || !slices.Equal(ic.Args, want) || ic.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
					t.Errorf("fetch step %s %v %s", ic.Image, ic.Args, ic.TerminationMessagePolicy)
				}
			}
		})
	}
}

// TestRenderServerSettings: format, batching, admission, API keys, env,
// resources and placement reach the pod; the rollout never drops capacity.
func TestRenderServerSettings(t *testing.T) {
	spec := tidev1.ModelSpec{
		Format:          "xgboost",
		ImagePullPolicy: corev1.PullNever,
		Batching:        &tidev1.Batching{MaxBatchSize: 64, MaxQueueDelay: metav1.Duration{Duration: 3 * time.Millisecond}},
		Admission:       &tidev1.Admission{MaxInflight: 8, MaxQueue: 100},
		APIKeySecret:    &tidev1.SecretKey{Name: "keys", Key: "list"},
		Env:             []corev1.EnvVar{{Name: "OTEL_SERVICE_NAME", Value: "fraud"}},
		Resources:       corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
		Placement: tidev1.Placement{
			NodeSelector:              map[string]string{"pool": "cpu"},
			Tolerations:               []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
			Affinity:                  &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway}},
		},
	}
	m := model(spec)
	d := Deployment(m, testConfig)
	pod := d.Spec.Template.Spec
	ctr := pod.Containers[0]
	for _, want := range []string{"serve", "--format=xgboost", "--max-batch-size=64", "--max-queue-delay=3ms", "--max-inflight=8", "--max-queue=100",
		"--api-key-file=/etc/tide/api-keys/list", "--strict-readiness", "--http-addr=:8080", "--grpc-addr=:8081"} {
		if !slices.Contains(ctr.Args, want) {
			t.Errorf("args %v lack %s", ctr.Args, want)
		}
	}
	if ctr.ImagePullPolicy != corev1.PullNever || ctr.Env[0].Value != "fraud" || !ctr.Resources.Requests.Cpu().Equal(resource.MustParse("500m")) {
		t.Errorf("container %+v", ctr)
	}
	if pod.NodeSelector["pool"] != "cpu" || pod.Tolerations[0].Key != "dedicated" || pod.Affinity.NodeAffinity == nil {
		t.Errorf("placement %+v", pod)
	}
	if sel := pod.TopologySpreadConstraints[0].LabelSelector; sel == nil || sel.MatchLabels[labelInstance] != "fraud" {
		t.Errorf("topology spread selector defaults to the Model's pods: %+v", sel)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("rollout %+v", ru)
	}
	if *pod.TerminationGracePeriodSeconds != 30 || *pod.AutomountServiceAccountToken || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("pod settings %+v", pod)
	}
	if d.Spec.Template.Annotations[templateHashAnnotation] != TemplateHash(&d.Spec.Template) || *d.Spec.Replicas != 1 {
		t.Errorf("template annotations %v, replicas %v", d.Spec.Template.Annotations, d.Spec.Replicas)
	}
	if v := pod.Volumes[slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "api-keys" })]; v.Secret.SecretName != "keys" {
		t.Errorf("api-keys volume %+v", v)
	}
}

// TestRenderAutoscaling: each mode's autoscaler, and who owns the replica count.
func TestRenderAutoscaling(t *testing.T) {
	for _, c := range []struct {
		mode       tidev1.AutoscalingMode
		toZero     bool
		hpaMetric  string // "" = no HPA
		scaled     bool   // a ScaledObject and the activator
		fixedCount bool
	}{
		{mode: tidev1.AutoscaleNone, fixedCount: true},
		{mode: tidev1.AutoscaleCPU, hpaMetric: "cpu"},
		{mode: tidev1.AutoscaleRPS, hpaMetric: "tide_requests_per_second"},
		{mode: tidev1.AutoscaleInflight, hpaMetric: "tide_inflight_requests"},
		{mode: tidev1.AutoscaleRPS, toZero: true, scaled: true},
	} {
		t.Run(string(c.mode)+map[bool]string{true: "+zero"}[c.toZero], func(t *testing.T) {
			spec := tidev1.ModelSpec{Autoscaling: tidev1.Autoscaling{Mode: c.mode, Target: ptr.To[int32](40)}, Replicas: tidev1.Replicas{Min: 2, Max: 7}}
			if c.toZero {
				spec.Autoscaling.ScaleToZero = &tidev1.ScaleToZero{Enabled: true, IdlePeriod: metav1.Duration{Duration: 90 * time.Second}}
			}
			m := model(spec)
			d := Deployment(m, testConfig)
			if c.fixedCount != (d.Spec.Replicas != nil) {
				t.Errorf("replicas %v: the count is the spec's only without an autoscaler", d.Spec.Replicas)
			}
			hpa := HPA(m)
			switch {
			case c.hpaMetric == "" && hpa != nil:
				t.Errorf("unexpected HPA %+v", hpa.Spec)
			case c.hpaMetric == "cpu":
				if r := hpa.Spec.Metrics[0].Resource; r == nil || *r.Target.AverageUtilization != 40 {
					t.Errorf("cpu metric %+v", hpa.Spec.Metrics)
				}
			case c.hpaMetric != "":
				if p := hpa.Spec.Metrics[0].Pods; p == nil || p.Metric.Name != c.hpaMetric || p.Target.AverageValue.Value() != 40 {
					t.Errorf("pods metric %+v", hpa.Spec.Metrics)
				}
			}
			if hpa != nil && (*hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 7 || hpa.Spec.Behavior.ScaleUp == nil) {
				t.Errorf("hpa bounds %+v", hpa.Spec)
			}
			so := ScaledObject(m, testConfig)
			act, actSvc := Activator(m, testConfig)
			if c.scaled != (so != nil) || c.scaled != (act != nil) || c.scaled != (actSvc != nil) {
				t.Fatalf("scaled object %v, activator %v", so != nil, act != nil)
			}
			if c.scaled {
				spec := so.Object["spec"].(map[string]any)
				trig := spec["triggers"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
				if spec["minReplicaCount"] != int64(0) || spec["maxReplicaCount"] != int64(7) || spec["cooldownPeriod"] != int64(90) ||
					trig["threshold"] != "40" || trig["serverAddress"] != "http://prom:9090" || !strings.Contains(trig["query"].(string), `pod=~"fraud-activator-.*"`) {
					t.Errorf("scaled object %+v", spec)
				}
				if _, err := json.Marshal(so.Object); err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(act.Spec.Template.Spec.Containers[0].Args, "--target=http://fraud.ml.svc:8080") {
					t.Errorf("activator args %v", act.Spec.Template.Spec.Containers[0].Args)
				}
				// Two routers spread over nodes, evicted one at a time.
				podLabels := act.Spec.Template.Labels
				if *act.Spec.Replicas != 2 || len(act.Spec.Template.Spec.TopologySpreadConstraints) != 1 ||
					act.Spec.Template.Spec.TopologySpreadConstraints[0].TopologyKey != corev1.LabelHostname ||
					!maps.Equal(act.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels, act.Spec.Selector.MatchLabels) {
					t.Errorf("activator replicas %d, spread %+v", *act.Spec.Replicas, act.Spec.Template.Spec.TopologySpreadConstraints)
				}
				pdb := ActivatorPDB(m)
				if pdb == nil || pdb.Name != act.Name || pdb.Spec.MaxUnavailable.IntValue() != 1 ||
					!labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(labels.Set(podLabels)) {
					t.Errorf("activator PDB %+v", pdb)
				}
				if p := PDB(m); p != nil && labels.SelectorFromSet(p.Spec.Selector.MatchLabels).Matches(labels.Set(podLabels)) {
					t.Error("the serving pods' PDB counts the routers")
				}
				if URL(m) != "http://fraud-activator.ml.svc:8080" {
					t.Errorf("URL %s: clients go through the activator", URL(m))
				}
			} else if URL(m) != "http://fraud.ml.svc:8080" {
				t.Errorf("URL %s", URL(m))
			} else if ActivatorPDB(m) != nil {
				t.Error("a router PDB without routers")
			}
		})
	}
}

// TestRenderPDBAndNetworkPolicy: on, off, and no budget for a single pod.
func TestRenderPDBAndNetworkPolicy(t *testing.T) {
	on := model(tidev1.ModelSpec{PodDisruptionBudget: tidev1.PodDisruptionBudget{Enabled: true, MaxUnavailable: ptr.To(intstr.FromString("50%"))}})
	if p := PDB(on); p == nil || p.Spec.MaxUnavailable.String() != "50%" || p.Spec.Selector.MatchLabels[labelComponent] != "server" {
		t.Errorf("pdb %+v", p)
	}
	single := model(tidev1.ModelSpec{Replicas: tidev1.Replicas{Min: 1, Max: 1}, PodDisruptionBudget: tidev1.PodDisruptionBudget{Enabled: true}})
	if PDB(single) != nil {
		t.Error("a budget over one pod would block every node drain")
	}
	if PDB(model(tidev1.ModelSpec{})) != nil {
		t.Error("pdb rendered while disabled")
	}
	if NetworkPolicy(model(tidev1.ModelSpec{}), testConfig) != nil {
		t.Error("network policy rendered while disabled")
	}
	np := NetworkPolicy(model(tidev1.ModelSpec{NetworkPolicy: tidev1.NetworkPolicy{Enabled: true, AllowedClients: []tidev1.NetworkPolicyPeer{
		{}, // refused by the schema; skipped here, as an empty peer makes the policy invalid
		{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}}}}), testConfig)
	from := np.Spec.Ingress[0].From
	if len(from) != 3 || from[1].NamespaceSelector.MatchLabels["team"] != "payments" ||
		from[2].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "tide-system" {
		t.Errorf("peers %+v", from)
	}
	// It covers the stable and the canary candidate's pods, not the activator's.
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	for comp, want := range map[string]bool{"server": true, "canary": true, "activator": false} {
		if got := sel.Matches(labels.Set{labelName: "tide", labelInstance: "fraud", labelComponent: comp}); got != want {
			t.Errorf("policy covers component %s: %v", comp, got)
		}
	}
}

// TestTemplateHashFollowsThePodTemplateOnly: a new image or source restarts pods
// (a new hash); replica bounds, autoscaling, PDB and NetworkPolicy do not.
func TestTemplateHashFollowsThePodTemplateOnly(t *testing.T) {
	base := model(tidev1.ModelSpec{})
	hash := func(edit func(*tidev1.Model)) string {
		m := base.DeepCopy()
		edit(m)
		return Deployment(m, testConfig).Spec.Template.Annotations[templateHashAnnotation]
	}
	same := hash(func(*tidev1.Model) {})
	for name, edit := range map[string]func(*tidev1.Model){
		"replicas": func(m *tidev1.Model) { m.Spec.Replicas.Max = 9 },
		"autoscaling": func(m *tidev1.Model) {
			m.Spec.Autoscaling = tidev1.Autoscaling{Mode: tidev1.AutoscaleCPU, Target: ptr.To[int32](50)}
		},
		"pdb":           func(m *tidev1.Model) { m.Spec.PodDisruptionBudget.Enabled = true },
		"networkPolicy": func(m *tidev1.Model) { m.Spec.NetworkPolicy.Enabled = true },
	} {
		if h := hash(edit); h != same {
			t.Errorf("%s changed the template hash: pods would restart", name)
		}
	}
	for name, edit := range map[string]func(*tidev1.Model){
		"source": func(m *tidev1.Model) { m.Spec.Source.ConfigMap.Name = "v2" },
		"image":  func(m *tidev1.Model) { m.Spec.Image = "other" },
		"env":    func(m *tidev1.Model) { m.Spec.Env = []corev1.EnvVar{{Name: "A", Value: "1"}} },
	} {
		if h := hash(edit); h == same {
			t.Errorf("%s kept the template hash", name)
		}
	}
}
