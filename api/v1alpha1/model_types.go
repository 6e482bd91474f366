package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The schema carries the rules a bad spec breaks (CEL, enums, patterns), so the API
// server refuses it with a message before the operator ever sees it; the operator
// still treats every admitted spec as untrusted (fuzzed in internal/controller).

// ModelSpec is what to serve and how.
//
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(self.autoscaling.scaleToZero) || !self.autoscaling.scaleToZero.enabled || self.autoscaling.mode == 'rps'",message="autoscaling.scaleToZero needs autoscaling.mode rps: with no pod running only the activator's request count can wake the model"
// +kubebuilder:validation:XValidation:rule="!has(self.source.image) || !has(self.image)",message="image and source.image are exclusive: a baked model image is the server image"
type ModelSpec struct {
	// Format of the model file (tide-server serve --format); auto recognises it as
	// tide serve does: by extension (.pkl/.joblib sklearn, .ubj/.xgb xgboost, .onnx
	// onnx) or by content (an XGBoost JSON document, a LightGBM text model).
	// +kubebuilder:validation:Enum=auto;sklearn;xgboost;lightgbm;onnx
	// +kubebuilder:default=auto
	// +optional
	Format string `json:"format,omitempty"`

	// Source is where the model comes from: exactly one of image, pvc, configMap, url.
	Source ModelSource `json:"source"`

	// Image is the Tide server image the pods run (not used with source.image, whose
	// image is the server). Empty: the operator's default (--default-image).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// ImagePullPolicy of the server (and URL fetch) containers.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +kubebuilder:default=IfNotPresent
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// Replicas bounds the number of serving pods.
	// +kubebuilder:default={min:1,max:3}
	// +optional
	Replicas Replicas `json:"replicas,omitempty"`

	// Autoscaling decides the replica count between replicas.min and replicas.max.
	// +kubebuilder:default={mode:none}
	// +optional
	Autoscaling Autoscaling `json:"autoscaling,omitempty"`

	// Resources of the server container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Batching joins concurrent requests into one model call.
	// +optional
	Batching *Batching `json:"batching,omitempty"`

	// Admission bounds the work a pod accepts; beyond it requests get 429.
	// +optional
	Admission *Admission `json:"admission,omitempty"`

	// APIKeySecret names a Secret in the Model's namespace whose key holds the API
	// keys (one per line); inference then needs one. The operator reads it to query
	// the pods' repository index.
	// +optional
	APIKeySecret *SecretKey `json:"apiKeySecret,omitempty"`

	// Placement of the serving pods.
	// +optional
	Placement Placement `json:"placement,omitempty"`

	// PodDisruptionBudget for the serving pods (on by default when more than one replica may run).
	// +kubebuilder:default={enabled:true,maxUnavailable:1}
	// +optional
	PodDisruptionBudget PodDisruptionBudget `json:"podDisruptionBudget,omitempty"`

	// NetworkPolicy, when enabled, admits traffic to the serving port only from
	// pods and namespaces allowed here (and the activator).
	// +optional
	NetworkPolicy NetworkPolicy `json:"networkPolicy,omitempty"`

	// Env is extra environment for the server container (OTEL_*, TIDE_*).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// Canary rolls a candidate version out in steps through the Model's router,
	// judged on live traffic (errors, latency, agreement with the stable
	// version's predictions), and promotes or rolls it back. Clients use
	// status.url, the router, while a Model has a canary.
	// +optional
	Canary *Canary `json:"canary,omitempty"`
}

// Canary is a judged rollout of a candidate version.
type Canary struct {
	// Source of the candidate model. When it equals spec.source there is nothing
	// to roll out; a new source starts a new rollout.
	Source ModelSource `json:"source"`
	// Batching of the candidate when it differs from spec.batching (promoted with it).
	// +optional
	Batching *Batching `json:"batching,omitempty"`
	// Resources of the candidate when they differ from spec.resources (promoted with it).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// Replicas of the candidate while it is judged.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=1
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// Steps are the candidate's traffic percentages (of mirrored traffic in
	// shadow mode), each held for stepInterval; after the last the candidate is
	// promoted.
	// +kubebuilder:default={5,25,50,100}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +optional
	Steps []int32 `json:"steps,omitempty"`
	// StepInterval each step lasts (at least; a step also waits for analysis.minRequests).
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5s') && duration(self) <= duration('24h')",message="canary.stepInterval must be between 5s and 24h"
	// +optional
	StepInterval metav1.Duration `json:"stepInterval,omitempty"`
	// Shadow answers every request from the stable version and mirrors the
	// step's percentage to the candidate, whose answers are only compared.
	// +optional
	Shadow bool `json:"shadow,omitempty"`
	// Analysis are the thresholds that roll the candidate back; each is checked only when set.
	// +kubebuilder:default={minRequests:20}
	// +optional
	Analysis CanaryAnalysis `json:"analysis,omitempty"`
	// StickyHeader names a request header (e.g. X-Customer-Id) whose value keeps
	// one client on one version; as the weight grows clients only move to the candidate.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-!#$%&'*+.^_|~0-9A-Za-z]*$`
	// +optional
	StickyHeader string `json:"stickyHeader,omitempty"`
	// StickyCookie names a cookie that does the same (the header wins when both are sent).
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-!#$%&'*+.^_|~0-9A-Za-z]*$`
	// +optional
	StickyCookie string `json:"stickyCookie,omitempty"`
	// Action is a person's command: pause (hold the current step), promote (make
	// the candidate the stable version now) or abort (roll it back now). Empty
	// resumes a paused rollout.
	// +kubebuilder:validation:Enum="";pause;promote;abort
	// +optional
	Action string `json:"action,omitempty"`
}

// CanaryAnalysis are a rollout's thresholds. Ratios are decimal strings ("0.01").
type CanaryAnalysis struct {
	// MaxErrorRatio of the candidate's requests that may fail (5xx, timeouts, refused).
	// +kubebuilder:validation:Pattern=`^(0(\.[0-9]{1,6})?|1(\.0*)?)$`
	// +optional
	MaxErrorRatio *string `json:"maxErrorRatio,omitempty"`
	// MaxP99 is the highest p99 latency the candidate may have, as the router measures it.
	// +kubebuilder:validation:Type=string
	// +optional
	MaxP99 *metav1.Duration `json:"maxP99,omitempty"`
	// MaxP99Ratio is the highest p99 latency relative to the stable version's ("2" is twice).
	// +kubebuilder:validation:Pattern=`^[0-9]{1,4}(\.[0-9]{1,4})?$`
	// +optional
	MaxP99Ratio *string `json:"maxP99Ratio,omitempty"`
	// MinAgreement is the least share of compared predictions in which the
	// candidate agrees with the stable version (same label; regressors within tolerance).
	// +kubebuilder:validation:Pattern=`^(0(\.[0-9]{1,6})?|1(\.0*)?)$`
	// +optional
	MinAgreement *string `json:"minAgreement,omitempty"`
	// Tolerance is the relative difference within which a regressor's two values agree.
	// +kubebuilder:validation:Pattern=`^(0(\.[0-9]{1,9})?|1(\.0*)?)$`
	// +optional
	Tolerance *string `json:"tolerance,omitempty"`
	// MinRequests the candidate must answer (and, for agreement, have compared)
	// in a step before it is judged or the step may pass.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	// +kubebuilder:default=20
	// +optional
	MinRequests int64 `json:"minRequests,omitempty"`
}

// ModelSource is where the model file or repository comes from.
//
// +kubebuilder:validation:XValidation:rule="[has(self.image), has(self.pvc), has(self.configMap), has(self.url)].filter(x, x).size() == 1",message="source: set exactly one of image, pvc, configMap, url"
type ModelSource struct {
	// Image is an image with the model baked in (`tide image build --model`); it is
	// also the server image.
	// +optional
	Image *ImageSource `json:"image,omitempty"`
	// PVC serves a file or repository folder from a PersistentVolumeClaim, read-only.
	// +optional
	PVC *PVCSource `json:"pvc,omitempty"`
	// ConfigMap serves a model stored in a ConfigMap (binaryData), read-only.
	// +optional
	ConfigMap *ConfigMapSource `json:"configMap,omitempty"`
	// URL fetches the model over http(s) in an init container running the server
	// image, checked against its sha256 before the server starts.
	// +optional
	URL *URLSource `json:"url,omitempty"`
}

// ImageSource is a model baked into an image.
type ImageSource struct {
	// Reference of the image, e.g. registry.example.com/ml/fraud:v3.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Reference string `json:"reference"`
	// Path of the model inside the image.
	// +kubebuilder:default="/models/model.pkl"
	// +kubebuilder:validation:Pattern=`^/[^\x00]*$`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Path string `json:"path,omitempty"`
}

// PVCSource is a model on a PersistentVolumeClaim.
type PVCSource struct {
	// ClaimName of the PersistentVolumeClaim in the Model's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`
	// Path inside the volume of the model file or repository folder; empty is the volume's root.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(p, p == '..')",message="pvc.path is relative to the volume and may not contain '..'"
	// +optional
	Path string `json:"path,omitempty"`
}

// ConfigMapSource is a model in a ConfigMap.
type ConfigMapSource struct {
	// Name of the ConfigMap in the Model's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key of the model file; empty serves every key as a model repository folder.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]*$`
	// +optional
	Key string `json:"key,omitempty"`
}

// URLSource is a model downloaded at pod start.
type URLSource struct {
	// URL of the model file.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="url.url must be an http:// or https:// URL"
	URL string `json:"url"`
	// SHA256 of the file, 64 lowercase hex digits; a download that does not match is refused.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`
	// FileName the model is saved as; its extension tells the format when format is auto.
	// +kubebuilder:default="model.pkl"
	// +kubebuilder:validation:Pattern=`^[-_a-zA-Z0-9][-._a-zA-Z0-9]*$`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	FileName string `json:"fileName,omitempty"`
}

// Replicas bounds the serving pods.
//
// +kubebuilder:validation:XValidation:rule="self.min <= self.max",message="replicas.min must not exceed replicas.max"
type Replicas struct {
	// Min replicas (the fixed count when autoscaling is none). Scale to zero goes
	// below it while idle.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=1
	// +optional
	Min int32 `json:"min,omitempty"`
	// Max replicas an autoscaler may reach.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:default=3
	// +optional
	Max int32 `json:"max,omitempty"`
}

// AutoscalingMode names what the replica count follows.
// +kubebuilder:validation:Enum=none;cpu;rps;inflight
type AutoscalingMode string

// The autoscaling modes.
const (
	AutoscaleNone     AutoscalingMode = "none"
	AutoscaleCPU      AutoscalingMode = "cpu"
	AutoscaleRPS      AutoscalingMode = "rps"
	AutoscaleInflight AutoscalingMode = "inflight"
)

// Autoscaling is how the replica count is decided.
//
// +kubebuilder:validation:XValidation:rule="self.mode == 'none' || has(self.target)",message="autoscaling.target is required when autoscaling.mode is not none"
// +kubebuilder:validation:XValidation:rule="self.mode != 'cpu' || !has(self.target) || self.target <= 100",message="autoscaling.target is a CPU utilisation percentage (1-100) in mode cpu"
type Autoscaling struct {
	// Mode: none (replicas.min pods), cpu (HPA on CPU utilisation), rps (requests/s
	// per pod, from Prometheus), inflight (in-flight requests per pod, from Prometheus).
	// +kubebuilder:default=none
	// +optional
	Mode AutoscalingMode `json:"mode,omitempty"`
	// Target per pod: CPU utilisation percent (cpu), requests/s (rps), in-flight requests (inflight).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Target *int32 `json:"target,omitempty"`
	// ScaleToZero removes every pod after an idle period; the activator holds the
	// first request while a pod starts. Needs KEDA and mode rps.
	// +optional
	ScaleToZero *ScaleToZero `json:"scaleToZero,omitempty"`
}

// ScaleToZero turns on scaling to zero pods when idle.
type ScaleToZero struct {
	// Enabled turns scale to zero on.
	Enabled bool `json:"enabled"`
	// IdlePeriod with no requests before the last pod goes.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('24h')",message="scaleToZero.idlePeriod must be between 10s and 24h"
	// +optional
	IdlePeriod metav1.Duration `json:"idlePeriod,omitempty"`
	// PrometheusAddress is where KEDA reads the request rate; empty: the operator's
	// default (--prometheus-address).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	PrometheusAddress string `json:"prometheusAddress,omitempty"`
}

// Batching is dynamic batching (--max-batch-size, --max-queue-delay).
type Batching struct {
	// MaxBatchSize rows in one model call; 1 turns batching off.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	MaxBatchSize int32 `json:"maxBatchSize"`
	// MaxQueueDelay a request may wait for others to join its batch.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:default="2ms"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('1s')",message="batching.maxQueueDelay must be between 0s and 1s"
	// +optional
	MaxQueueDelay metav1.Duration `json:"maxQueueDelay,omitempty"`
}

// Admission is admission control (--max-inflight, --max-queue).
type Admission struct {
	// MaxInflight model calls at once per pod.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	MaxInflight int32 `json:"maxInflight,omitempty"`
	// MaxQueue requests waiting per pod before 429.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxQueue int32 `json:"maxQueue,omitempty"`
}

// SecretKey names a key of a Secret in the Model's namespace.
type SecretKey struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret.
	// +kubebuilder:default=keys
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// Placement is where the serving pods may run.
type Placement struct {
	// NodeSelector the serving (and activator) pods' nodes must match.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the serving (and activator) pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity of the serving pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// TopologySpreadConstraints; their labelSelector defaults to this Model's pods.
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
}

// PodDisruptionBudget limits voluntary evictions of serving pods.
type PodDisruptionBudget struct {
	// Enabled renders the PodDisruptionBudget.
	Enabled bool `json:"enabled"`
	// MaxUnavailable pods during voluntary disruptions.
	// +kubebuilder:default=1
	// +kubebuilder:validation:XIntOrString
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// NetworkPolicy restricts who may reach the serving pods.
type NetworkPolicy struct {
	// Enabled renders the NetworkPolicy. The operator's own namespace is always
	// admitted (it reads the pods' repository index).
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// AllowedClients are extra sources admitted to the serving ports (pods in the
	// Model's namespace by default).
	// +kubebuilder:validation:MaxItems=32
	// +optional
	AllowedClients []NetworkPolicyPeer `json:"allowedClients,omitempty"`
}

// NetworkPolicyPeer is one admitted source.
//
// +kubebuilder:validation:XValidation:rule="has(self.podSelector) || has(self.namespaceSelector)",message="networkPolicy.allowedClients: each entry needs a podSelector or a namespaceSelector"
type NetworkPolicyPeer struct {
	// PodSelector picks pods (in the Model's namespace, or in those namespaceSelector picks).
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// NamespaceSelector picks namespaces whose pods (all, or those podSelector picks) are admitted.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// The condition types of a Model's status.
const (
	// ConditionReady: the current spec is rolled out and answering.
	ConditionReady = "Ready"
	// ConditionModelLoaded: the pods of the current spec loaded the model.
	ConditionModelLoaded = "ModelLoaded"
	// ConditionScaled: the replica count the autoscaler (or spec) wants is ready.
	ConditionScaled = "Scaled"
	// ConditionDegraded: something is wrong that does not stop serving (an old
	// version serving while the new one fails, a missing autoscaler).
	ConditionDegraded = "Degraded"
)

// ModelStatus is what the operator observed.
type ModelStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions Ready, ModelLoaded, Scaled and Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// URL is the in-cluster address clients use.
	// +optional
	URL string `json:"url,omitempty"`
	// Replicas is the number of serving pods.
	// +optional
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the number of ready serving pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// ModelVersion the ready pods serve (the repository's version name).
	// +optional
	ModelVersion string `json:"modelVersion,omitempty"`
	// Canary is the state of the canary rollout, when spec.canary is set.
	// +optional
	Canary *CanaryStatus `json:"canary,omitempty"`
}

// CanaryStatus is where a canary rollout is; it is also the operator's memory,
// so a restarted operator resumes from the recorded step.
type CanaryStatus struct {
	// Candidate names the candidate being rolled out (a hash of its spec); a new
	// one starts a new rollout.
	Candidate string `json:"candidate"`
	// Phase: Progressing, Paused, Promoted or RolledBack.
	Phase string `json:"phase,omitempty"`
	// Step is the current step (1-based); 0 while the candidate starts.
	Step int32 `json:"step"`
	// StepStarted is when the current step began.
	// +optional
	StepStarted *metav1.Time `json:"stepStarted,omitempty"`
	// Weight is the candidate's share of traffic now (of mirrored traffic in shadow mode), in percent.
	Weight int32 `json:"weight"`
	// Reason for the last decision.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Steps are the measurements of each step so far.
	// +kubebuilder:validation:MaxItems=20
	// +optional
	Steps []CanaryStep `json:"steps,omitempty"`
}

// CanaryStep is one step's measurement of the candidate.
type CanaryStep struct {
	Step   int32 `json:"step"`
	Weight int32 `json:"weight"`
	// Requests the candidate answered (or was mirrored) and those that failed.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// ErrorRatio of the candidate's requests, a decimal string ("0.0100").
	ErrorRatio string `json:"errorRatio,omitempty"`
	// P99 latency of the candidate and of the stable version, as durations ("12.3ms").
	P99       string `json:"p99,omitempty"`
	StableP99 string `json:"stableP99,omitempty"`
	// Compared predictions and the share that agreed, a decimal string.
	Compared  int64  `json:"compared"`
	Agreement string `json:"agreement,omitempty"`
	// ProbabilityDiff is the mean absolute difference of the two versions' class
	// probabilities over the compared predictions (classifiers that return them).
	// +optional
	ProbabilityDiff string `json:"probabilityDiff,omitempty"`
	// MirrorsDropped because the router's mirror queue was full.
	// +optional
	MirrorsDropped int64 `json:"mirrorsDropped,omitempty"`
}

// Model is one served model: `kubectl apply` it and the operator runs the
// Deployment, Service, autoscaler, PodDisruptionBudget and NetworkPolicy for it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tm,categories=tide
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.format`
// +kubebuilder:printcolumn:name="Canary",type=integer,JSONPath=`.status.canary.weight`
// +kubebuilder:printcolumn:name="Rollout",type=string,JSONPath=`.status.canary.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="metadata.name of a Model must be at most 52 characters (its objects add suffixes)"
type Model struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   ModelSpec   `json:"spec"`
	Status ModelStatus `json:"status,omitempty"`
}

// ModelList is a list of Models.
//
// +kubebuilder:object:root=true
type ModelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Model `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Model{}, &ModelList{})
}
