// Package watch records what a Kubernetes Deployment and its autoscaler do
// while load runs: desired and ready replicas, the HorizontalPodAutoscaler's
// current and target metrics, and the events of the Deployment, its
// ReplicaSets, its Pods and its HPA, each stamped with the time it was seen so
// that it lines up with the load's own time series. Watching a Model adds its
// canary rollout: phase, weight, and the step's error ratio and agreement.
package watch

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ParseRef reads what --watch names: deployment/NAME (also deploy/NAME,
// deployments/NAME, deployment.apps/NAME), a bare NAME, or model/NAME (also
// models/NAME, tm/NAME, model.serving.tideserve.io/NAME): a Model's serving
// Deployment (it has the Model's name) and the Model's canary rollout.
func ParseRef(ref string) (name string, model bool, err error) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok {
		kind, name = "deployment", ref
	}
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy", "deployment.apps", "deployments.apps":
	case "model", "models", "tm", "model.serving.tideserve.io", "models.serving.tideserve.io":
		model = true
	default:
		return "", false, fmt.Errorf("watch %q: only deployments and Models can be watched (deployment/NAME, model/NAME)", ref)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", false, fmt.Errorf("watch %q: want deployment/NAME or model/NAME", ref)
	}
	return name, model, nil
}

// Metric is one autoscaler metric as kubectl shows it: "cpu" at "85%" against "50%".
type Metric struct {
	Name    string `json:"name"`
	Current string `json:"current"`
	Target  string `json:"target"`
}

// State is the watched Deployment and its HPA at one moment.
type State struct {
	// Desired is the Deployment's spec.replicas, the autoscaler's last decision.
	Desired   int `json:"desired"`
	Updated   int `json:"updated"`
	Ready     int `json:"ready"`
	Available int `json:"available"`
	// HPA is nil when no autoscaler targets the Deployment.
	HPA *HPAState `json:"hpa,omitempty"`
	// Canary is a watched Model's canary rollout, nil when none is running.
	Canary *CanaryState `json:"canary,omitempty"`
}

// CanaryState is a Model's status.canary as the operator last wrote it.
type CanaryState struct {
	// Candidate names the rollout (a new candidate is a new rollout).
	Candidate string `json:"candidate"`
	Phase     string `json:"phase"`
	Step      int    `json:"step"`
	Weight    int    `json:"weight"`
	// ErrorRatio and Agreement are the current step's, so far (-1: not measured yet).
	ErrorRatio float64 `json:"error_ratio"`
	Agreement  float64 `json:"agreement"`
}

// HPAState is an autoscaler's view of its target.
type HPAState struct {
	Name            string   `json:"name"`
	MinReplicas     int32    `json:"min_replicas"`
	MaxReplicas     int32    `json:"max_replicas"`
	CurrentReplicas int32    `json:"current_replicas"`
	DesiredReplicas int32    `json:"desired_replicas"`
	Metrics         []Metric `json:"metrics"`
}

// Point is a State and when it began, in seconds since the load started.
type Point struct {
	T float64 `json:"t"`
	State
}

// Event is a Kubernetes event about the Deployment or what it owns.
type Event struct {
	T       float64 `json:"t"`
	Type    string  `json:"type"` // Normal or Warning
	Object  string  `json:"object"`
	Reason  string  `json:"reason"`
	Message string  `json:"message"`
	Count   int32   `json:"count,omitempty"`
}

// Timeline is everything the watcher saw, aligned with the load.
type Timeline struct {
	Namespace  string  `json:"namespace"`
	Deployment string  `json:"deployment"`
	Points     []Point `json:"points"`
	Events     []Event `json:"events"`
}

// Watcher follows one Deployment through informers: one list, then a watch,
// so the API server is asked once, not once a second.
type Watcher struct {
	client    kubernetes.Interface
	namespace string
	name      string
	origin    time.Time
	now       func() time.Time

	dyn dynamic.Interface // set by WithModel: the Model is watched too

	mu       sync.Mutex
	found    bool
	state    State
	hpas     map[string]*HPAState // by HPA name, only those targeting the Deployment
	points   []Point
	events   []Event
	seenEvts map[string]int32 // event UID → count recorded, so a repeated event is logged when it repeats
}

// New makes a watcher of namespace/name whose times count from origin (the
// load's start; set it again with SetOrigin when the load begins later).
func New(client kubernetes.Interface, namespace, name string) *Watcher {
	return &Watcher{
		client: client, namespace: namespace, name: name,
		origin: time.Now(), now: time.Now,
		hpas: map[string]*HPAState{}, seenEvts: map[string]int32{},
	}
}

// WithModel watches the Model of the Deployment's name too (its canary), through dyn.
func (w *Watcher) WithModel(dyn dynamic.Interface) *Watcher {
	w.dyn = dyn
	return w
}

// ModelGVR is the Model resource.
var ModelGVR = schema.GroupVersionResource{Group: "serving.tideserve.io", Version: "v1alpha1", Resource: "models"}

// SetOrigin sets the time that timeline offsets count from.
func (w *Watcher) SetOrigin(t time.Time) {
	w.mu.Lock()
	w.origin = t
	w.mu.Unlock()
}

// Start runs the informers until ctx ends and waits for their first list, so
// that the first second of load already knows the replicas. It fails when the
// caches cannot sync within timeout (no cluster, no permission) or when the
// Deployment does not exist, so that a typo is caught before the load runs.
func (w *Watcher) Start(ctx context.Context, timeout time.Duration) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.client, 0, informers.WithNamespace(w.namespace))
	deployments := factory.Apps().V1().Deployments().Informer()
	hpas := factory.Autoscaling().V2().HorizontalPodAutoscalers().Informer()
	events := factory.Core().V1().Events().Informer()

	handler := func(onChange func(obj any, deleted bool)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { onChange(obj, false) },
			UpdateFunc: func(_, obj any) { onChange(obj, false) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				onChange(obj, true)
			},
		}
	}
	// Wait on each handler registration, not on the informer: an informer
	// has synced once its store holds the first list, but the handlers
	// receive those objects asynchronously, and the "not found" check below
	// reads what the deployment handler has seen.
	var synced []cache.InformerSynced
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		fn  func(any, bool)
	}{{deployments, w.onDeployment}, {hpas, w.onHPA}, {events, w.onEvent}} {
		r, err := reg.inf.AddEventHandler(handler(reg.fn))
		if err != nil {
			return fmt.Errorf("watch %s/%s: %w", w.namespace, w.name, err)
		}
		synced = append(synced, r.HasSynced)
	}
	factory.Start(ctx.Done())
	if w.dyn != nil {
		models := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.dyn, 0, w.namespace, nil).ForResource(ModelGVR).Informer()
		r, err := models.AddEventHandler(handler(w.onModel))
		if err != nil {
			return fmt.Errorf("watch model %s/%s: %w", w.namespace, w.name, err)
		}
		go models.Run(ctx.Done())
		synced = append(synced, r.HasSynced)
	}

	syncCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		return fmt.Errorf("watch deployment/%s in namespace %s: no answer from the cluster within %s (check --kubeconfig, the context and RBAC)", w.name, w.namespace, timeout)
	}
	w.mu.Lock()
	found := w.found
	w.mu.Unlock()
	if !found {
		return fmt.Errorf("watch: deployment %s not found in namespace %s", w.name, w.namespace)
	}
	return nil
}

// Replicas is the Deployment's desired and ready replicas now (-1, -1 before
// it has been seen). It fits loadgen.Config.Replicas.
func (w *Watcher) Replicas() (desired, ready int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.found {
		return -1, -1
	}
	return w.state.Desired, w.state.Ready
}

// Current is the latest state.
func (w *Watcher) Current() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.copyState()
}

// Timeline returns what was seen so far.
func (w *Watcher) Timeline() Timeline {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Timeline{
		Namespace: w.namespace, Deployment: w.name,
		Points: append([]Point(nil), w.points...),
		Events: append([]Event(nil), w.events...),
	}
}

func (w *Watcher) offset() float64 { return w.now().Sub(w.origin).Seconds() }

func (w *Watcher) onDeployment(obj any, deleted bool) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || d.Name != w.name {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.found = !deleted
	if deleted {
		w.state.Desired, w.state.Updated, w.state.Ready, w.state.Available = 0, 0, 0, 0
	} else {
		desired := 1 // the API's default when spec.replicas is unset
		if d.Spec.Replicas != nil {
			desired = int(*d.Spec.Replicas)
		}
		w.state.Desired = desired
		w.state.Updated = int(d.Status.UpdatedReplicas)
		w.state.Ready = int(d.Status.ReadyReplicas)
		w.state.Available = int(d.Status.AvailableReplicas)
	}
	w.recordLocked()
}

// onModel records the watched Model's canary: phase, step, weight and the
// current step's error ratio and agreement.
func (w *Watcher) onModel(obj any, deleted bool) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetName() != w.name {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state.Canary = nil
	if c, found, _ := unstructured.NestedMap(u.Object, "status", "canary"); found && !deleted {
		w.state.Canary = canaryState(c)
	}
	w.recordLocked()
}

func canaryState(c map[string]any) *CanaryState {
	st := &CanaryState{ErrorRatio: -1, Agreement: -1}
	st.Phase, _, _ = unstructured.NestedString(c, "phase")
	st.Candidate, _, _ = unstructured.NestedString(c, "candidate")
	step, _, _ := unstructured.NestedInt64(c, "step")
	weight, _, _ := unstructured.NestedInt64(c, "weight")
	st.Step, st.Weight = int(step), int(weight)
	steps, _, _ := unstructured.NestedSlice(c, "steps")
	for _, s := range steps {
		m, ok := s.(map[string]any)
		if n, _, _ := unstructured.NestedInt64(m, "step"); !ok || int(n) != st.Step {
			continue
		}
		if v, ok, _ := unstructured.NestedString(m, "errorRatio"); ok {
			st.ErrorRatio, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok, _ := unstructured.NestedString(m, "agreement"); ok {
			st.Agreement, _ = strconv.ParseFloat(v, 64)
		}
	}
	return st
}

func (w *Watcher) onHPA(obj any, deleted bool) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return
	}
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != w.name {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if deleted {
		delete(w.hpas, h.Name)
	} else {
		w.hpas[h.Name] = hpaState(h)
	}
	w.state.HPA = nil
	// Two autoscalers on one Deployment fight; show the first by name and let
	// the events tell the rest.
	names := make([]string, 0, len(w.hpas))
	for n := range w.hpas {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		w.state.HPA = w.hpas[names[0]]
	}
	w.recordLocked()
}

// recordLocked appends the current state when it differs from the last point.
// Nothing is recorded before the Deployment is first seen: an HPA delivered
// first would otherwise log a Deployment of zero replicas that never was.
func (w *Watcher) recordLocked() {
	if !w.found && len(w.points) == 0 {
		return
	}
	st := w.copyState()
	if n := len(w.points); n > 0 && sameState(w.points[n-1].State, st) {
		return
	}
	w.points = append(w.points, Point{T: w.offset(), State: st})
}

func (w *Watcher) copyState() State {
	st := w.state
	if st.HPA != nil {
		h := *st.HPA
		h.Metrics = append([]Metric(nil), h.Metrics...)
		st.HPA = &h
	}
	if st.Canary != nil {
		c := *st.Canary
		st.Canary = &c
	}
	return st
}

func sameState(a, b State) bool {
	if a.Desired != b.Desired || a.Updated != b.Updated || a.Ready != b.Ready || a.Available != b.Available {
		return false
	}
	if (a.Canary == nil) != (b.Canary == nil) || (a.Canary != nil && *a.Canary != *b.Canary) {
		return false
	}
	if (a.HPA == nil) != (b.HPA == nil) {
		return false
	}
	if a.HPA == nil {
		return true
	}
	x, y := *a.HPA, *b.HPA
	if x.Name != y.Name || x.MinReplicas != y.MinReplicas || x.MaxReplicas != y.MaxReplicas ||
		x.CurrentReplicas != y.CurrentReplicas || x.DesiredReplicas != y.DesiredReplicas || len(x.Metrics) != len(y.Metrics) {
		return false
	}
	for i := range x.Metrics {
		if x.Metrics[i] != y.Metrics[i] {
			return false
		}
	}
	return true
}

func (w *Watcher) onEvent(obj any, deleted bool) {
	e, ok := obj.(*corev1.Event)
	if !ok || deleted || !w.concerns(e.InvolvedObject) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Events listed at start that ended before the watcher began are history,
	// not part of this run.
	if last := eventTime(e); !last.IsZero() && last.Before(w.origin.Add(-time.Minute)) {
		return
	}
	count := max(e.Count, 1)
	if prev, seen := w.seenEvts[string(e.UID)]; seen && prev >= count {
		return
	}
	w.seenEvts[string(e.UID)] = count
	w.events = append(w.events, Event{
		T: w.offset(), Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count,
		Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name,
	})
}

// concerns says whether an event is about the Deployment or what it owns.
// ReplicaSets and Pods are matched by the names the Deployment controller
// gives them (NAME-<hash> and NAME-<hash>-<suffix>): owner references are not
// in events, and following them would cost a lookup per event.
func (w *Watcher) concerns(ref corev1.ObjectReference) bool {
	switch ref.Kind {
	case "Deployment":
		return ref.Name == w.name
	case "Model":
		return w.dyn != nil && ref.Name == w.name
	case "HorizontalPodAutoscaler":
		w.mu.Lock()
		_, ok := w.hpas[ref.Name]
		w.mu.Unlock()
		return ok || ref.Name == w.name
	case "ReplicaSet", "Pod":
		return strings.HasPrefix(ref.Name, w.name+"-")
	}
	return false
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	}
	return e.FirstTimestamp.Time
}

func hpaState(h *autoscalingv2.HorizontalPodAutoscaler) *HPAState {
	st := &HPAState{
		Name: h.Name, MaxReplicas: h.Spec.MaxReplicas,
		CurrentReplicas: h.Status.CurrentReplicas, DesiredReplicas: h.Status.DesiredReplicas,
		MinReplicas: 1,
	}
	if h.Spec.MinReplicas != nil {
		st.MinReplicas = *h.Spec.MinReplicas
	}
	for i, spec := range h.Spec.Metrics {
		name, target := describeSpec(spec)
		current := "<unknown>"
		for _, cur := range h.Status.CurrentMetrics {
			if cname, value := describeStatus(cur); cname == name {
				current = value
				break
			}
		}
		if name == "" {
			name = "metric " + strconv.Itoa(i)
		}
		st.Metrics = append(st.Metrics, Metric{Name: name, Current: current, Target: target})
	}
	return st
}

// describeSpec names a metric and writes its target as kubectl does.
func describeSpec(m autoscalingv2.MetricSpec) (name, target string) {
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource != nil {
			return string(m.Resource.Name), targetString(m.Resource.Target)
		}
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource != nil {
			return m.ContainerResource.Container + "/" + string(m.ContainerResource.Name), targetString(m.ContainerResource.Target)
		}
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods != nil {
			return m.Pods.Metric.Name, targetString(m.Pods.Target)
		}
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object != nil {
			return m.Object.Metric.Name, targetString(m.Object.Target)
		}
	case autoscalingv2.ExternalMetricSourceType:
		if m.External != nil {
			return m.External.Metric.Name, targetString(m.External.Target)
		}
	}
	return "", ""
}

func describeStatus(m autoscalingv2.MetricStatus) (name, current string) {
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource != nil {
			return string(m.Resource.Name), valueString(m.Resource.Current)
		}
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource != nil {
			return m.ContainerResource.Container + "/" + string(m.ContainerResource.Name), valueString(m.ContainerResource.Current)
		}
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods != nil {
			return m.Pods.Metric.Name, valueString(m.Pods.Current)
		}
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object != nil {
			return m.Object.Metric.Name, valueString(m.Object.Current)
		}
	case autoscalingv2.ExternalMetricSourceType:
		if m.External != nil {
			return m.External.Metric.Name, valueString(m.External.Current)
		}
	}
	return "", ""
}

func targetString(t autoscalingv2.MetricTarget) string {
	switch {
	case t.AverageUtilization != nil:
		return strconv.Itoa(int(*t.AverageUtilization)) + "%"
	case t.AverageValue != nil:
		return t.AverageValue.String()
	case t.Value != nil:
		return t.Value.String()
	}
	return ""
}

func valueString(v autoscalingv2.MetricValueStatus) string {
	switch {
	case v.AverageUtilization != nil:
		return strconv.Itoa(int(*v.AverageUtilization)) + "%"
	case v.AverageValue != nil:
		return v.AverageValue.String()
	case v.Value != nil:
		return v.Value.String()
	}
	return "<unknown>"
}
