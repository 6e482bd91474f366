package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

// render.go turns a Model into the objects that serve it. It is pure (no client,
// no clock), so every spec field's effect is tested by rendering alone, and the
// reconciler only decides create, update or delete. The settings mirror the Helm
// chart's (deploy/helm/tide): the same drain, probes, security context and
// zero-downtime rollout, so a Model behaves as a chart release does.

// Ports of the server container; fixed, so a Model's URL never depends on a flag.
const (
	httpPort    = 8080
	grpcPort    = 8081
	metricsPort = 9091 // the activator's metrics and health port
)

// Drain and probe timings, as the chart's defaults: on SIGTERM a pod stays serving
// (reporting unready) for drainDelay so endpoints stop sending, then waits up to
// drainTimeout for in-flight requests.
const (
	drainDelaySeconds   = 5
	drainTimeoutSeconds = 20
	graceExtraSeconds   = 5
	activatorHoldSecs   = 60
)

// Config is what every Model shares, from the operator's flags.
type Config struct {
	// DefaultImage is the Tide server image for Models that name none.
	DefaultImage string
	// PrometheusAddress is where KEDA reads request rates for scale to zero.
	PrometheusAddress string
	// OperatorNamespace is admitted by every Model's NetworkPolicy, so the
	// operator can read its pods' repository index.
	OperatorNamespace string
}

// Labels every object of a Model carries. The selector labels pick the serving
// pods only: the activator's pods have another component.
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "tide-operator"
	// templateHashAnnotation on the pod template is a hash of the rest of the
	// template, so the status can tell the current spec's pods from the previous
	// rollout's. It covers the template only: a change of replicas or autoscaling
	// restarts no pod.
	templateHashAnnotation = "serving.tideserve.io/template-hash"
)

func selectorLabels(m *tidev1.Model) map[string]string {
	return map[string]string{labelName: "tide", labelInstance: m.Name, labelComponent: "server"}
}

func activatorSelectorLabels(m *tidev1.Model) map[string]string {
	return map[string]string{labelName: "tide", labelInstance: m.Name, labelComponent: "activator"}
}

func objectLabels(m *tidev1.Model, selector map[string]string) map[string]string {
	l := map[string]string{labelManagedBy: managedBy}
	for k, v := range selector {
		l[k] = v
	}
	return l
}

func objectMeta(m *tidev1.Model, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: m.Namespace, Labels: labels}
}

// activatorName is the activator's Deployment and Service.
func activatorName(m *tidev1.Model) string { return m.Name + "-activator" }

// scaleToZero reports whether the Model may scale to zero (KEDA and the activator).
func scaleToZero(m *tidev1.Model) bool {
	s := m.Spec.Autoscaling.ScaleToZero
	return s != nil && s.Enabled
}

// hasRouter: the Model runs the activator, which holds requests while a pod
// starts (scale to zero) and routes between the versions of a canary.
func hasRouter(m *tidev1.Model) bool { return scaleToZero(m) || m.Spec.Canary != nil }

// URL is the in-cluster address clients use: the activator's Service when the
// Model has one (scale to zero, a canary), else the Model's.
func URL(m *tidev1.Model) string {
	name := m.Name
	if hasRouter(m) {
		name = activatorName(m)
	}
	return fmt.Sprintf("http://%s.%s.svc:%d", name, m.Namespace, httpPort)
}

// serverImage is the image the serving pods run.
func serverImage(m *tidev1.Model, cfg Config) string {
	switch {
	case m.Spec.Source.Image != nil:
		return m.Spec.Source.Image.Reference
	case m.Spec.Image != "":
		return m.Spec.Image
	}
	return cfg.DefaultImage
}

// modelPath is the path tide-server serves, and the volume behind it.
func modelPath(m *tidev1.Model) string {
	s := m.Spec.Source
	switch {
	case s.Image != nil:
		return orDefault(s.Image.Path, "/models/model.pkl")
	case s.PVC != nil:
		return path.Join("/models", s.PVC.Path)
	case s.ConfigMap != nil:
		return path.Join("/models", s.ConfigMap.Key)
	case s.URL != nil:
		return path.Join("/models", orDefault(s.URL.FileName, "model.pkl"))
	}
	return "/models"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// serverArgs are tide-server serve's flags for the Model.
func serverArgs(m *tidev1.Model) []string {
	args := []string{
		"serve",
		fmt.Sprintf("--http-addr=:%d", httpPort),
		fmt.Sprintf("--grpc-addr=:%d", grpcPort),
		fmt.Sprintf("--drain-delay=%ds", drainDelaySeconds),
		fmt.Sprintf("--drain-timeout=%ds", drainTimeoutSeconds),
		"--log-format=json",
		// A new spec whose model fails must never become ready, so the rollout
		// stops there and the previous pods keep serving.
		"--strict-readiness",
	}
	if f := m.Spec.Format; f != "" && f != "auto" {
		args = append(args, "--format="+f)
	}
	if b := m.Spec.Batching; b != nil {
		args = append(args, "--max-batch-size="+strconv.Itoa(int(b.MaxBatchSize)))
		args = append(args, "--max-queue-delay="+durationOr(b.MaxQueueDelay, 2*time.Millisecond).String())
	}
	if a := m.Spec.Admission; a != nil {
		if a.MaxInflight > 0 {
			args = append(args, "--max-inflight="+strconv.Itoa(int(a.MaxInflight)))
		}
		if a.MaxQueue > 0 {
			args = append(args, "--max-queue="+strconv.Itoa(int(a.MaxQueue)))
		}
	}
	if m.Spec.APIKeySecret != nil {
		args = append(args, "--api-key-file=/etc/tide/api-keys/"+apiKeyKey(m))
	}
	return append(args, modelPath(m))
}

func apiKeyKey(m *tidev1.Model) string { return orDefault(m.Spec.APIKeySecret.Key, "keys") }

func durationOr(d metav1.Duration, def time.Duration) time.Duration {
	if d.Duration == 0 {
		return def
	}
	return d.Duration
}

var restricted = &corev1.SecurityContext{
	AllowPrivilegeEscalation: ptr.To(false),
	ReadOnlyRootFilesystem:   ptr.To(true),
	Privileged:               ptr.To(false),
	Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
}

func probe(path string, port string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(port), Scheme: corev1.URISchemeHTTP}},
		PeriodSeconds:    period,
		FailureThreshold: failures,
		TimeoutSeconds:   2,
		SuccessThreshold: 1,
	}
}

// Deployment renders the serving Deployment. replicas is nil when an autoscaler
// owns the count: the reconciler then leaves .spec.replicas alone, and so never
// fights the HPA, KEDA or a person's `kubectl scale`.
func Deployment(m *tidev1.Model, cfg Config) *appsv1.Deployment {
	return serverDeployment(servingModel(m), cfg, m.Name, selectorLabels(m))
}

// serverDeployment renders a Deployment of serving pods named name, selected by
// sel: the stable version's or the canary candidate's.
func serverDeployment(m *tidev1.Model, cfg Config, name string, sel map[string]string) *appsv1.Deployment {
	image := serverImage(m, cfg)
	pull := orPull(m.Spec.ImagePullPolicy)
	container := corev1.Container{
		Name:            "tide",
		Image:           image,
		ImagePullPolicy: pull,
		Command:         []string{"/usr/local/bin/tide-server"},
		Args:            serverArgs(m),
		Env:             m.Spec.Env,
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP},
			{Name: "grpc", ContainerPort: grpcPort, Protocol: corev1.ProtocolTCP},
		},
		StartupProbe:    probe("/v2/health/ready", "http", 2, 60),
		ReadinessProbe:  probe("/v2/health/ready", "http", 2, 2),
		LivenessProbe:   probe("/v2/health/live", "http", 10, 3),
		Resources:       m.Spec.Resources,
		SecurityContext: restricted.DeepCopy(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))}}}}
	var inits []corev1.Container
	src := m.Spec.Source
	switch {
	case src.PVC != nil:
		volumes = append(volumes, corev1.Volume{Name: "models", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: src.PVC.ClaimName, ReadOnly: true}}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "models", MountPath: "/models", ReadOnly: true})
	case src.ConfigMap != nil:
		volumes = append(volumes, corev1.Volume{Name: "models", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: src.ConfigMap.Name}}}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "models", MountPath: "/models", ReadOnly: true})
	case src.URL != nil:
		// The same image fetches the file (tide-server fetch checks the sha256 and
		// writes atomically), so a URL model needs no other image.
		volumes = append(volumes, corev1.Volume{Name: "models", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "models", MountPath: "/models", ReadOnly: true})
		inits = append(inits, corev1.Container{
			Name:            "fetch-model",
			Image:           image,
			ImagePullPolicy: pull,
			Command:         []string{"/usr/local/bin/tide-server"},
			Args:            []string{"fetch", "--sha256=" + src.URL.SHA256, src.URL.URL, modelPath(m)},
			// The failure's one line becomes the termination message, which the
			// operator shows in the Model's status.
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext:          restricted.DeepCopy(),
			VolumeMounts:             []corev1.VolumeMount{{Name: "models", MountPath: "/models"}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
		})
	}
	if k := m.Spec.APIKeySecret; k != nil {
		volumes = append(volumes, corev1.Volume{Name: "api-keys", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: k.Name}}})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "api-keys", MountPath: "/etc/tide/api-keys", ReadOnly: true})
	}
	spread := make([]corev1.TopologySpreadConstraint, len(m.Spec.Placement.TopologySpreadConstraints))
	for i, c := range m.Spec.Placement.TopologySpreadConstraints {
		c.DeepCopyInto(&spread[i])
		if spread[i].LabelSelector == nil {
			spread[i].LabelSelector = &metav1.LabelSelector{MatchLabels: sel}
		}
	}
	d := &appsv1.Deployment{
		ObjectMeta: objectMeta(m, name, objectLabels(m, sel)),
		Spec: appsv1.DeploymentSpec{
			RevisionHistoryLimit: ptr.To[int32](5),
			Selector:             &metav1.LabelSelector{MatchLabels: sel},
			// Never below the current capacity during a rollout: a new pod must be
			// ready before an old one drains, so a bad version never replaces a good one.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: objectLabels(m, sel),
					Annotations: map[string]string{
						"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(httpPort), "prometheus.io/path": "/metrics",
					},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:            m.Name,
					AutomountServiceAccountToken:  ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](drainDelaySeconds + drainTimeoutSeconds + graceExtraSeconds),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					InitContainers:            inits,
					Containers:                []corev1.Container{container},
					Volumes:                   volumes,
					NodeSelector:              m.Spec.Placement.NodeSelector,
					Tolerations:               m.Spec.Placement.Tolerations,
					Affinity:                  m.Spec.Placement.Affinity,
					TopologySpreadConstraints: spread,
				},
			},
		},
	}
	if len(spread) == 0 {
		d.Spec.Template.Spec.TopologySpreadConstraints = nil
	}
	if m.Spec.Autoscaling.Mode == tidev1.AutoscaleNone || m.Spec.Autoscaling.Mode == "" {
		d.Spec.Replicas = ptr.To(minReplicas(m))
	}
	d.Spec.Template.Annotations[templateHashAnnotation] = TemplateHash(&d.Spec.Template)
	return d
}

// TemplateHash names a pod template by its content (without this annotation).
func TemplateHash(t *corev1.PodTemplateSpec) string {
	c := t.DeepCopy()
	delete(c.Annotations, templateHashAnnotation)
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func minReplicas(m *tidev1.Model) int32 { return max(1, m.Spec.Replicas.Min) }
func maxReplicas(m *tidev1.Model) int32 { return max(minReplicas(m), m.Spec.Replicas.Max) }

// Service renders the serving pods' Service (HTTP and gRPC).
func Service(m *tidev1.Model) *corev1.Service {
	sel := selectorLabels(m)
	return &corev1.Service{
		ObjectMeta: objectMeta(m, m.Name, objectLabels(m, sel)),
		Spec: corev1.ServiceSpec{
			Selector: sel,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: httpPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
				{Name: "grpc", Port: grpcPort, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// ServiceAccount renders the pods' own account; they need no API access, and
// the pods do not mount its token.
func ServiceAccount(m *tidev1.Model) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: objectMeta(m, m.Name, objectLabels(m, selectorLabels(m))), AutomountServiceAccountToken: ptr.To(false)}
}

// behavior is the chart's: fast scale-up, slow and gentle scale-down.
func behavior() *autoscalingv2.HorizontalPodAutoscalerBehavior {
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](0), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}, {Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}},
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](60), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 30}},
		},
	}
}

// Pods metrics prometheus-adapter serves from Tide's /metrics (the chart's rules).
var podsMetric = map[tidev1.AutoscalingMode]string{
	tidev1.AutoscaleRPS:      "tide_requests_per_second",
	tidev1.AutoscaleInflight: "tide_inflight_requests",
}

// HPA renders the HorizontalPodAutoscaler for cpu, rps and inflight, or nil when
// none is wanted (mode none, or scale to zero where KEDA's ScaledObject owns one).
func HPA(m *tidev1.Model) *autoscalingv2.HorizontalPodAutoscaler {
	a := m.Spec.Autoscaling
	if a.Mode == tidev1.AutoscaleNone || a.Mode == "" || scaleToZero(m) {
		return nil
	}
	target := int32(70)
	if a.Target != nil {
		target = *a.Target
	}
	var metric autoscalingv2.MetricSpec
	if a.Mode == tidev1.AutoscaleCPU {
		metric = autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)}}}
	} else {
		metric = autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: podsMetric[a.Mode]},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(int64(target), resource.DecimalSI)}}}
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: objectMeta(m, m.Name, objectLabels(m, selectorLabels(m))),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: m.Name},
			MinReplicas:    ptr.To(minReplicas(m)),
			MaxReplicas:    maxReplicas(m),
			Metrics:        []autoscalingv2.MetricSpec{metric},
			Behavior:       behavior(),
		},
	}
}

// ScaledObject renders KEDA's ScaledObject for scale to zero, or nil. It scales
// on requests/s as the activator counts them (arrivals plus held requests), so
// one request wakes a Model at zero; below that the chart's keda mode is the same.
func ScaledObject(m *tidev1.Model, cfg Config) *unstructured.Unstructured {
	if !scaleToZero(m) {
		return nil
	}
	s := m.Spec.Autoscaling.ScaleToZero
	target := int32(50)
	if t := m.Spec.Autoscaling.Target; t != nil {
		target = *t
	}
	sel := fmt.Sprintf(`namespace="%s",pod=~"%s-.*"`, m.Namespace, activatorName(m))
	query := fmt.Sprintf("(sum(rate(tide_activator_requests_total{%s}[30s])) or vector(0)) + (sum(tide_activator_held_requests{%s}) or vector(0))", sel, sel)
	behaviorMap, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(behavior())
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1",
		"kind":       "ScaledObject",
		"metadata":   map[string]any{"name": m.Name, "namespace": m.Namespace, "labels": stringMap(objectLabels(m, selectorLabels(m)))},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": m.Name},
			"minReplicaCount": int64(0),
			"maxReplicaCount": int64(maxReplicas(m)),
			"pollingInterval": int64(5),
			"cooldownPeriod":  int64(durationOr(s.IdlePeriod, 5*time.Minute).Seconds()),
			"advanced":        map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"behavior": behaviorMap}},
			"triggers": []any{map[string]any{
				"type": "prometheus",
				"metadata": map[string]any{
					"serverAddress":       orDefault(s.PrometheusAddress, cfg.PrometheusAddress),
					"query":               query,
					"threshold":           strconv.Itoa(int(target)),
					"activationThreshold": "0.5",
				},
			}},
		},
	}}
	return u
}

// Activator renders the activator Deployment and Service for scale to zero or a
// canary, or nils. It mounts the router's control token (RouterSecret), with
// which the operator sets its route.
func Activator(m *tidev1.Model, cfg Config) (*appsv1.Deployment, *corev1.Service) {
	if !hasRouter(m) {
		return nil, nil
	}
	sel := activatorSelectorLabels(m)
	d := &appsv1.Deployment{
		ObjectMeta: objectMeta(m, activatorName(m), objectLabels(m, sel)),
		Spec: appsv1.DeploymentSpec{
			// Two, spread over nodes (ActivatorPDB drains them one at a time):
			// every request of a Model at zero or in a canary passes a router, so one
			// replica would make a node's loss an outage. The operator sets each
			// router's route and adds their reports up.
			Replicas:             ptr.To[int32](activatorReplicas),
			RevisionHistoryLimit: ptr.To[int32](5),
			Selector:             &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: objectLabels(m, sel), Annotations: map[string]string{
					"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(metricsPort), "prometheus.io/path": "/metrics"}},
				Spec: corev1.PodSpec{
					ServiceAccountName:            m.Name,
					AutomountServiceAccountToken:  ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](activatorHoldSecs + 10),
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					NodeSelector: m.Spec.Placement.NodeSelector,
					Tolerations:  m.Spec.Placement.Tolerations,
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelHostname,
						WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: sel}}},
					Volumes: []corev1.Volume{{Name: "router-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
						SecretName: routerSecretName(m), DefaultMode: ptr.To[int32](0o444)}}}},
					Containers: []corev1.Container{{
						Name:            "activator",
						Image:           serverImage(m, cfg),
						ImagePullPolicy: orPull(m.Spec.ImagePullPolicy),
						Command:         []string{"/usr/local/bin/tide-server"},
						Args: []string{"activator", fmt.Sprintf("--listen=:%d", httpPort), fmt.Sprintf("--metrics-addr=:%d", metricsPort),
							fmt.Sprintf("--target=http://%s.%s.svc:%d", m.Name, m.Namespace, httpPort),
							fmt.Sprintf("--hold-timeout=%ds", activatorHoldSecs), "--max-held=1000", "--log-format=json",
							"--control-token-file=/etc/tide/router/" + routerTokenKey},
						VolumeMounts:   []corev1.VolumeMount{{Name: "router-token", MountPath: "/etc/tide/router", ReadOnly: true}},
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: probe("/healthz", "metrics", 5, 3),
						LivenessProbe:  probe("/healthz", "metrics", 10, 3),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
						},
						SecurityContext: restricted.DeepCopy(),
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: objectMeta(m, activatorName(m), objectLabels(m, sel)),
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: httpPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}},
	}
	return d, svc
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func orPull(p corev1.PullPolicy) corev1.PullPolicy {
	if p == "" {
		return corev1.PullIfNotPresent
	}
	return p
}

// PDB renders the PodDisruptionBudget, or nil when off or when at most one
// replica may run (a budget on one pod would block every node drain).
func PDB(m *tidev1.Model) *policyv1.PodDisruptionBudget {
	p := m.Spec.PodDisruptionBudget
	if !p.Enabled || maxReplicas(m) < 2 {
		return nil
	}
	mu := intstr.FromInt32(1)
	if p.MaxUnavailable != nil {
		mu = *p.MaxUnavailable
	}
	sel := selectorLabels(m)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: objectMeta(m, m.Name, objectLabels(m, sel)),
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: &metav1.LabelSelector{MatchLabels: sel}},
	}
}

// activatorReplicas is how many routers a Model with one runs.
const activatorReplicas = 2

// ActivatorPDB renders the routers' PodDisruptionBudget (one may be evicted at a
// time), or nil when the Model runs no router.
func ActivatorPDB(m *tidev1.Model) *policyv1.PodDisruptionBudget {
	if !hasRouter(m) {
		return nil
	}
	mu := intstr.FromInt32(1)
	sel := activatorSelectorLabels(m)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: objectMeta(m, activatorName(m), objectLabels(m, sel)),
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: &metav1.LabelSelector{MatchLabels: sel}},
	}
}

// NetworkPolicy renders the serving pods' ingress policy (the stable and the
// canary candidate's), or nil when off. The Model's namespace, the listed
// clients, the activator and the operator's namespace (which reads the
// repository index) may reach the serving ports.
func NetworkPolicy(m *tidev1.Model, cfg Config) *networkingv1.NetworkPolicy {
	if !m.Spec.NetworkPolicy.Enabled {
		return nil
	}
	sel := selectorLabels(m)
	peers := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}} // the Model's namespace
	for _, c := range m.Spec.NetworkPolicy.AllowedClients {
		if c.PodSelector == nil && c.NamespaceSelector == nil {
			continue // the schema refuses it; an empty peer would make the policy invalid
		}
		peers = append(peers, networkingv1.NetworkPolicyPeer{PodSelector: c.PodSelector.DeepCopy(), NamespaceSelector: c.NamespaceSelector.DeepCopy()})
	}
	if cfg.OperatorNamespace != "" && cfg.OperatorNamespace != m.Namespace {
		peers = append(peers, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": cfg.OperatorNamespace}}})
	}
	tcp := corev1.ProtocolTCP
	// The policy covers the canary's candidate pods too; the activator's pods,
	// which clients call, stay open.
	pods := metav1.LabelSelector{
		MatchLabels:      map[string]string{labelName: sel[labelName], labelInstance: sel[labelInstance]},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: labelComponent, Operator: metav1.LabelSelectorOpIn, Values: []string{sel[labelComponent], candidateSelectorLabels(m)[labelComponent]}}},
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: objectMeta(m, m.Name, objectLabels(m, sel)),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: pods,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  peers,
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromString("http"))}, {Protocol: &tcp, Port: ptr.To(intstr.FromString("grpc"))}},
			}},
		},
	}
}

// scaledObjectGVK is KEDA's ScaledObject, handled as unstructured so the
// operator needs no KEDA Go module and runs on clusters without KEDA.
var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}
