package deploy

import (
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestFastScalerChart: autoscaling.mode fast renders Tide's scaler behind a KEDA
// external-push trigger. The scaler finds the pods through a headless Service that
// selects Tide's pods only, may touch nothing but this Deployment's scale, and the
// HPA KEDA makes may not slow or undo it; the NetworkPolicies let KEDA reach it and
// it reach what it scrapes.
func TestFastScalerChart(t *testing.T) {
	helm := helmBinary(t)
	r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "fast-values.yaml"), "--set", "networkPolicy.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	if r.has("HorizontalPodAutoscaler", "fraud-tide") {
		t.Error("an HPA rendered besides the ScaledObject")
	}
	so := decode[map[string]any](t, r, "ScaledObject", "fraud-tide")
	spec := (*so)["spec"].(map[string]any)
	trig := spec["triggers"].([]any)[0].(map[string]any)
	if trig["type"] != "external-push" || trig["metadata"].(map[string]any)["scalerAddress"] != "fraud-tide-autoscaler.ml.svc:9090" {
		t.Errorf("trigger %v: want external-push at the scaler's Service", trig)
	}
	if spec["minReplicaCount"].(float64) != 0 || spec["maxReplicaCount"].(float64) != 6 {
		t.Errorf("replica bounds %v..%v; want 0..6", spec["minReplicaCount"], spec["maxReplicaCount"])
	}
	if _, ok := spec["fallback"]; ok {
		t.Error("a fallback is set: KEDA must keep the last count while the scaler is away")
	}
	behavior := spec["advanced"].(map[string]any)["horizontalPodAutoscalerConfig"].(map[string]any)["behavior"].(map[string]any)
	down := behavior["scaleDown"].(map[string]any)
	up := behavior["scaleUp"].(map[string]any)
	if down["stabilizationWindowSeconds"].(float64) != 0 || up["stabilizationWindowSeconds"].(float64) != 0 {
		t.Errorf("HPA behavior %v: the scaler's windows smooth; the HPA must not hold its decisions back", behavior)
	}

	dep := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide-autoscaler")
	c := dep.Spec.Template.Spec.Containers[0]
	for _, want := range []string{"--pods=fraud-tide-pods.ml.svc:8080", "--activators=fraud-tide-activator-pods.ml.svc:9091",
		"--scale-deployment=fraud-tide", "--target-rate=350", "--target-concurrency=4", "--max-replicas=6", "--min-replicas=0"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("scaler args %v lack %s", c.Args, want)
		}
	}
	if !slices.Equal(c.Command, []string{"/usr/local/bin/tide-server", "autoscaler"}) {
		t.Errorf("scaler runs %v", c.Command)
	}
	tide := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide")
	act := decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide-activator")
	headless := decode[corev1.Service](t, r, "Service", "fraud-tide-pods")
	sel := labels.SelectorFromSet(headless.Spec.Selector)
	if headless.Spec.ClusterIP != "None" || !sel.Matches(labels.Set(tide.Spec.Template.Labels)) || sel.Matches(labels.Set(act.Spec.Template.Labels)) ||
		sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("headless Service %v (clusterIP %q) must select Tide's pods only", headless.Spec.Selector, headless.Spec.ClusterIP)
	}
	svc := decode[corev1.Service](t, r, "Service", "fraud-tide-autoscaler")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) || svc.Spec.ClusterIP != "None" {
		t.Errorf("scaler Service %v (clusterIP %q): want a headless Service selecting its pods, so KEDA's gRPC connection goes to a pod, never to a ClusterIP kube-proxy has not programmed yet",
			svc.Spec.Selector, svc.Spec.ClusterIP)
	}

	sa := decode[corev1.ServiceAccount](t, r, "ServiceAccount", "fraud-tide-autoscaler")
	if dep.Spec.Template.Spec.ServiceAccountName != sa.Name || sa.AutomountServiceAccountToken == nil || !*sa.AutomountServiceAccountToken {
		t.Errorf("the scaler needs its own service account with a token to raise the replicas")
	}
	role := decode[rbacv1.Role](t, r, "Role", "fraud-tide-autoscaler")
	want := []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, ResourceNames: []string{"fraud-tide"}, Verbs: []string{"get", "patch"}}}
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Verbs, want[0].Verbs) || !slices.Equal(role.Rules[0].Resources, want[0].Resources) ||
		!slices.Equal(role.Rules[0].ResourceNames, want[0].ResourceNames) {
		t.Errorf("Role rules %+v; want exactly %+v", role.Rules, want)
	}
	decode[rbacv1.RoleBinding](t, r, "RoleBinding", "fraud-tide-autoscaler")

	// NetworkPolicy: the scaler may scrape Tide's HTTP port, and KEDA reach its gRPC port.
	np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide")
	if !allowsFrom(np, dep.Spec.Template.Labels, "http") {
		t.Error("Tide's NetworkPolicy does not let the scaler scrape /metrics")
	}
	anp := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide-activator")
	if !allowsFrom(anp, dep.Spec.Template.Labels, "metrics") {
		t.Error("the activator's NetworkPolicy does not let the scaler read the held requests")
	}
	snp := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "fraud-tide-autoscaler")
	keda := false
	for _, rule := range snp.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "keda" && rule.Ports[0].Port.String() == "grpc" {
				keda = true
			}
		}
	}
	if !keda {
		t.Errorf("the scaler's NetworkPolicy does not admit KEDA on gRPC: %+v", snp.Spec.Ingress)
	}

	// Without raise: no Role, no token, no flag; with minReplicas 1: no activator.
	r, err = helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "fast-values.yaml"),
		"--set", "autoscaling.fast.raise=false", "--set", "autoscaling.fast.minReplicas=1")
	if err != nil {
		t.Fatal(err)
	}
	if r.has("Role", "fraud-tide-autoscaler") || r.has("RoleBinding", "fraud-tide-autoscaler") || r.has("Deployment", "fraud-tide-activator") {
		t.Error("raise off or minReplicas 1 still renders the Role or the activator")
	}
	sa = decode[corev1.ServiceAccount](t, r, "ServiceAccount", "fraud-tide-autoscaler")
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("raise off: the scaler needs no API token")
	}
	c = decode[appsv1.Deployment](t, r, "Deployment", "fraud-tide-autoscaler").Spec.Template.Spec.Containers[0]
	if slices.ContainsFunc(c.Args, func(a string) bool {
		return a == "--scale-deployment=fraud-tide" || a == "--activators=fraud-tide-activator-pods.ml.svc:9091"
	}) {
		t.Errorf("raise off, minReplicas 1: args %v", c.Args)
	}
}

// allowsFrom says whether a policy admits pods with these labels on the named port.
func allowsFrom(np *networkingv1.NetworkPolicy, podLabels map[string]string, port string) bool {
	for _, rule := range np.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.PodSelector == nil || !labels.SelectorFromSet(peer.PodSelector.MatchLabels).Matches(labels.Set(podLabels)) {
				continue
			}
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.String() == port {
					return true
				}
			}
		}
	}
	return false
}
