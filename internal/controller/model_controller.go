package controller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

// The operator's permissions, generated into its chart's ClusterRole. Secrets are
// never listed or watched: read for a Model that names its API keys, and read or
// created (once, never updated) for a router's control token.
//
// +kubebuilder:rbac:groups=serving.tideserve.io,resources=models,verbs=get;list;watch
// +kubebuilder:rbac:groups=serving.tideserve.io,resources=models/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch;create;update;patch;delete

// ModelReconciler makes a Model's objects match its spec and reports its status.
// It is level-based: every pass renders the whole desired state and converges to
// it, so a pass after a crash, a lost event or a manual edit does the same thing.
type ModelReconciler struct {
	Client client.Client
	// APIReader reads Secrets directly, so the cache never holds (or watches) them.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  record.EventRecorder
	Config    Config
	// Indexer asks a pod for its repository index.
	Indexer Indexer
	// KEDA reports whether the cluster serves the ScaledObject kind.
	KEDA bool
	// Router reads and sets the route of the Model's router pods.
	Router RouterClient
}

// How often a Model is looked at again without an event: soon while it is not
// Ready (a pod's load failure changes no Kubernetes object), rarely once it is.
const (
	requeueNotReady = 2 * time.Second
	requeueReady    = 30 * time.Second
)

// Reconcile is one pass for one Model.
func (r *ModelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var m tidev1.Model
	if err := r.Client.Get(ctx, req.NamespacedName, &m); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !m.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // owner references let the garbage collector remove the rest
	}
	before := m.Status.DeepCopy()
	cobs, err := r.observeCanary(ctx, &m)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := DecideCanary(&m, r.Config, cobs, time.Now())
	m.Status.Canary = plan.Status // the stable Deployment renders from it (a promotion)
	obs, token, err := r.converge(ctx, &m, plan)
	if err != nil {
		r.reportFailure(ctx, &m, err)
		return ctrl.Result{}, err // retried with backoff
	}
	r.setRoutes(ctx, plan.Route, cobs.Routers, token)
	obs.Pods, err = r.observePods(ctx, &m, selectorLabels(&m), obs.Deployment.Spec.Template.Annotations[templateHashAnnotation])
	if err != nil {
		return ctrl.Result{}, err
	}
	m.Status = DecideStatus(&m, obs)
	if !equality.Semantic.DeepEqual(before, &m.Status) {
		if err := r.Client.Status().Update(ctx, &m); err != nil {
			if apierrors.IsConflict(err) {
				// The cache was behind (a spec edit or our own last write): look again.
				return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
			}
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		r.recordTransitions(&m, before) // once written, so a retried pass does not repeat it
		if e := plan.Event; e != nil && r.Recorder != nil {
			r.Recorder.Event(&m, e.Type, e.Reason, e.Message)
		}
	}
	if canaryBusy(plan) {
		return ctrl.Result{RequeueAfter: canaryRequeue}, nil
	}
	if meta.IsStatusConditionTrue(m.Status.Conditions, tidev1.ConditionReady) {
		return ctrl.Result{RequeueAfter: requeueReady}, nil
	}
	return ctrl.Result{RequeueAfter: requeueNotReady}, nil
}

// converge creates, updates or deletes every object of the Model. Observed
// carries the live Deployments (with their status) the passes wrote.
func (r *ModelReconciler) converge(ctx context.Context, m *tidev1.Model, plan CanaryPlan) (obs Observed, routerToken string, err error) {
	cfg := r.Config
	if _, err := r.apply(ctx, m, ServiceAccount(m), func(have, want client.Object) {
		have.(*corev1.ServiceAccount).AutomountServiceAccountToken = want.(*corev1.ServiceAccount).AutomountServiceAccountToken
	}); err != nil {
		return obs, "", err
	}
	live, err := r.apply(ctx, m, Deployment(m, cfg), mutateDeployment(minReplicas(m)))
	if err != nil {
		return obs, "", err
	}
	obs.Deployment = live.(*appsv1.Deployment)
	if _, err := r.apply(ctx, m, Service(m), mutateService); err != nil {
		return obs, "", err
	}
	if _, err := r.applyOrRemove(ctx, m, HPA(m), named(&autoscalingv2.HorizontalPodAutoscaler{}, m.Name), func(have, want client.Object) {
		h, w := have.(*autoscalingv2.HorizontalPodAutoscaler), want.(*autoscalingv2.HorizontalPodAutoscaler)
		replaceUnlessDerived(&h.Spec, w.Spec)
	}); err != nil {
		return obs, "", err
	}
	if _, err := r.applyOrRemove(ctx, m, PDB(m), named(&policyv1.PodDisruptionBudget{}, m.Name), func(have, want client.Object) {
		h, w := have.(*policyv1.PodDisruptionBudget), want.(*policyv1.PodDisruptionBudget)
		replaceUnlessDerived(&h.Spec, w.Spec)
	}); err != nil {
		return obs, "", err
	}
	if _, err := r.applyOrRemove(ctx, m, NetworkPolicy(m, cfg), named(&networkingv1.NetworkPolicy{}, m.Name), func(have, want client.Object) {
		h, w := have.(*networkingv1.NetworkPolicy), want.(*networkingv1.NetworkPolicy)
		replaceUnlessDerived(&h.Spec, w.Spec)
	}); err != nil {
		return obs, "", err
	}
	var candDeploy *appsv1.Deployment
	var candSvc *corev1.Service
	if plan.Candidate && m.Spec.Canary != nil {
		candDeploy, candSvc = CandidateDeployment(m, cfg), CandidateService(m)
	}
	if _, err := r.applyOrRemove(ctx, m, candDeploy, named(&appsv1.Deployment{}, candidateName(m)), mutateDeployment(1)); err != nil {
		return obs, "", err
	}
	if _, err := r.applyOrRemove(ctx, m, candSvc, named(&corev1.Service{}, candidateName(m)), mutateService); err != nil {
		return obs, "", err
	}
	actDeploy, actSvc := Activator(m, cfg)
	if actDeploy != nil && scaleToZero(m) && !r.KEDA {
		if m.Spec.Canary == nil {
			actDeploy, actSvc = nil, nil // nothing would wake the model: leave scale to zero off
		}
		obs.AutoscalerMissing = true
	}
	if actDeploy != nil {
		if routerToken, err = r.routerToken(ctx, m); err != nil {
			return obs, "", err
		}
	}
	if live, err = r.applyOrRemove(ctx, m, actDeploy, named(&appsv1.Deployment{}, activatorName(m)), mutateDeployment(1)); err != nil {
		return obs, "", err
	}
	if live != nil {
		obs.Activator = live.(*appsv1.Deployment)
	}
	if _, err := r.applyOrRemove(ctx, m, actSvc, named(&corev1.Service{}, activatorName(m)), mutateService); err != nil {
		return obs, "", err
	}
	var actPDB *policyv1.PodDisruptionBudget
	if actDeploy != nil {
		actPDB = ActivatorPDB(m)
	}
	if _, err := r.applyOrRemove(ctx, m, actPDB, named(&policyv1.PodDisruptionBudget{}, activatorName(m)), func(have, want client.Object) {
		h, w := have.(*policyv1.PodDisruptionBudget), want.(*policyv1.PodDisruptionBudget)
		replaceUnlessDerived(&h.Spec, w.Spec)
	}); err != nil {
		return obs, "", err
	}
	if r.KEDA {
		absent := &unstructured.Unstructured{}
		absent.SetGroupVersionKind(scaledObjectGVK)
		if _, err := r.applyOrRemove(ctx, m, ScaledObject(m, cfg), named(absent, m.Name), func(have, want client.Object) {
			h, w := have.(*unstructured.Unstructured), want.(*unstructured.Unstructured)
			spec, _ := h.Object["spec"].(map[string]any) // nil on create
			replaceUnlessDerived(&spec, w.Object["spec"].(map[string]any))
			h.Object["spec"] = spec
		}); err != nil {
			return obs, "", err
		}
	}
	return obs, routerToken, nil
}

// named sets an object's name (its namespace comes with the Model).
func named[T client.Object](o T, name string) T {
	o.SetName(name)
	return o
}

// mutate copies the fields the operator owns from want onto have (the live object).
type mutate func(have, want client.Object)

// apply creates want, or updates the live object's owned fields, with the Model
// as its controller, and returns the live object (with its status). Labels are
// merged, so others' labels survive.
func (r *ModelReconciler) apply(ctx context.Context, m *tidev1.Model, want client.Object, mut mutate) (client.Object, error) {
	have := want.DeepCopyObject().(client.Object)
	if u, ok := have.(*unstructured.Unstructured); ok {
		// Start from an empty object of the same kind; CreateOrUpdate fills it.
		fresh := &unstructured.Unstructured{}
		fresh.SetGroupVersionKind(u.GroupVersionKind())
		fresh.SetName(u.GetName())
		fresh.SetNamespace(u.GetNamespace())
		have = fresh
	}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, have, func() error {
		if created := have.GetCreationTimestamp(); !created.IsZero() && !metav1.IsControlledBy(have, m) {
			// Someone else's object of the same name: never adopt or overwrite it.
			return errNotOurs
		}
		labels := have.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range want.GetLabels() {
			labels[k] = v
		}
		have.SetLabels(labels)
		mut(have, want)
		return controllerutil.SetControllerReference(m, have, r.Scheme)
	})
	if apierrors.IsAlreadyExists(err) {
		// The cache holds only the operator's own objects, so an object of this name
		// without its label reads as absent and the create collides with it.
		live := want.DeepCopyObject().(client.Object)
		if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), live); getErr == nil && !metav1.IsControlledBy(live, m) {
			err = errNotOurs
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kindOf(want), want.GetName(), err)
	}
	return have, nil
}

// errNotOurs refuses to take over an object the Model does not control.
var errNotOurs = errors.New("exists and is not controlled by this Model; delete or rename it, or rename the Model")

// ReasonReconcileFailed: an object of the Model could not be created or updated.
const ReasonReconcileFailed = "ReconcileFailed"

// reportFailure puts a failed pass's one-line reason in the Model's Ready and
// Degraded conditions (and a Warning Event when the reason is new), so that
// `kubectl get models` shows it instead of a status that never appears.
func (r *ModelReconciler) reportFailure(ctx context.Context, m *tidev1.Model, cause error) {
	msg := oneLine(cause.Error())
	was := meta.FindStatusCondition(m.Status.Conditions, tidev1.ConditionReady)
	for _, typ := range []string{tidev1.ConditionReady, tidev1.ConditionDegraded} {
		status := metav1.ConditionFalse
		if typ == tidev1.ConditionDegraded {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: ReasonReconcileFailed, Message: msg, ObservedGeneration: m.Generation})
	}
	m.Status.ObservedGeneration = m.Generation
	m.Status.URL = URL(m)
	if err := r.Client.Status().Update(ctx, m); err != nil {
		return // the next pass tries again
	}
	if r.Recorder != nil && (was == nil || was.Message != msg) {
		r.Recorder.Event(m, corev1.EventTypeWarning, ReasonReconcileFailed, msg)
	}
}

// applyOrRemove applies want and returns the live object or, when want is a
// nil pointer (the spec asks for none), deletes absent (an empty object of the
// kind, named) if the Model controls it, and returns nil: a mode change removes
// the old autoscaler.
func (r *ModelReconciler) applyOrRemove(ctx context.Context, m *tidev1.Model, want, absent client.Object, mut mutate) (client.Object, error) {
	if !reflect.ValueOf(want).IsNil() {
		return r.apply(ctx, m, want, mut)
	}
	absent.SetNamespace(m.Namespace)
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(absent), absent); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	if !metav1.IsControlledBy(absent, m) {
		return nil, nil // not ours: leave it
	}
	if err := r.Client.Delete(ctx, absent, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("delete %s %s: %w", kindOf(absent), absent.GetName(), err)
	}
	return nil, nil
}

func kindOf(o client.Object) string {
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	t := fmt.Sprintf("%T", o) // *v1.Service
	return t[strings.LastIndex(t, ".")+1:]
}

// mutateDeployment owns the template, strategy and (when no autoscaler owns
// it) the replica count; the selector is set once, as the API server requires.
// The template is replaced only when it differs from what the API server holds
// (which carries defaults the rendering leaves out), so an unchanged spec is no write.
func mutateDeployment(startReplicas int32) mutate {
	return func(have, want client.Object) {
		h, w := have.(*appsv1.Deployment), want.(*appsv1.Deployment)
		if h.CreationTimestamp.IsZero() {
			h.Spec.Selector = w.Spec.Selector
			if w.Spec.Replicas == nil {
				// An autoscaler takes it from here; start at its minimum.
				h.Spec.Replicas = &startReplicas
			}
		}
		if w.Spec.Replicas != nil {
			h.Spec.Replicas = w.Spec.Replicas
		}
		h.Spec.Strategy = w.Spec.Strategy
		h.Spec.RevisionHistoryLimit = w.Spec.RevisionHistoryLimit
		replaceUnlessDerived(&h.Spec.Template, w.Spec.Template)
	}
}

// replaceUnlessDerived sets *live to want unless live already holds every field
// want sets (the API server adds defaults the rendering leaves out): an unchanged
// spec then makes no write at all, and a changed one replaces the field whole.
func replaceUnlessDerived[T any](live *T, want T) {
	if !equality.Semantic.DeepDerivative(want, *live) {
		*live = want
	}
}

// mutateService owns the selector and ports; the cluster IP stays the API server's.
func mutateService(have, want client.Object) {
	h, w := have.(*corev1.Service), want.(*corev1.Service)
	h.Spec.Selector = w.Spec.Selector
	replaceUnlessDerived(&h.Spec.Ports, w.Spec.Ports)
}

// observePods reports the Model's serving pods. The index is asked of the
// current spec's pods that are not ready (why not?) and of one ready pod (what
// version serves?), at most maxIndexQueries per pass, so a large Model costs a
// pass no more than a few short requests.
const maxIndexQueries = 3

func (r *ModelReconciler) observePods(ctx context.Context, m *tidev1.Model, sel map[string]string, hash string) ([]PodReport, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(m.Namespace), client.MatchingLabels(sel)); err != nil {
		return nil, err
	}
	key := ""
	if m.Spec.APIKeySecret != nil {
		key = r.apiKey(ctx, m)
	}
	var reports []PodReport
	asked, askedReady := 0, false
	for i := range pods.Items {
		p := &pods.Items[i]
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		rep := PodReport{Name: p.Name, Current: hash != "" && p.Annotations[templateHashAnnotation] == hash, Waiting: waitingReason(p)}
		rep.Ready, rep.ReadySince = podReady(p)
		ask := p.Status.PodIP != "" && asked < maxIndexQueries && runningServer(p) &&
			((rep.Current && !rep.Ready) || (rep.Ready && !askedReady))
		if ask {
			asked++
			askedReady = askedReady || rep.Ready
			idx, err := r.Indexer.Index(ctx, p, key)
			if err != nil {
				rep.IndexErr = err.Error()
				log.FromContext(ctx).V(1).Info("repository index not reached", "pod", p.Name, "error", err.Error())
			}
			rep.Index = idx
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

// podReady reports whether the pod is ready, and since when.
func podReady(p *corev1.Pod) (bool, time.Time) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true, c.LastTransitionTime.Time
		}
	}
	return false, time.Time{}
}

// runningServer: the server container has started, so it may answer the index.
func runningServer(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "tide" && cs.State.Running != nil {
			return true
		}
	}
	return false
}

// apiKey reads the first key of the Model's API-key Secret ("" when unreadable:
// the index then answers 401 and the status says so).
func (r *ModelReconciler) apiKey(ctx context.Context, m *tidev1.Model) string {
	var s corev1.Secret
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.APIKeySecret.Name}, &s); err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(s.Data[apiKeyKey(m)]))
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			return k
		}
	}
	return ""
}

// recordTransitions emits an Event when the model fails to load (with Tide's
// reason) and when the Model becomes Ready.
func (r *ModelReconciler) recordTransitions(m *tidev1.Model, before *tidev1.ModelStatus) {
	if r.Recorder == nil {
		return
	}
	now := meta.FindStatusCondition(m.Status.Conditions, tidev1.ConditionModelLoaded)
	was := meta.FindStatusCondition(before.Conditions, tidev1.ConditionModelLoaded)
	if now != nil && now.Status == metav1.ConditionFalse && (was == nil || was.Status != now.Status || was.Message != now.Message) {
		r.Recorder.Event(m, corev1.EventTypeWarning, now.Reason, now.Message)
	}
	rNow := meta.FindStatusCondition(m.Status.Conditions, tidev1.ConditionReady)
	rWas := meta.FindStatusCondition(before.Conditions, tidev1.ConditionReady)
	if rNow != nil && rNow.Status == metav1.ConditionTrue && (rWas == nil || rWas.Status != metav1.ConditionTrue) {
		r.Recorder.Event(m, corev1.EventTypeNormal, "Ready", rNow.Message)
	}
}

// Indexer asks a serving pod for its repository index.
type Indexer interface {
	Index(ctx context.Context, pod *corev1.Pod, apiKey string) ([]IndexEntry, error)
}

// HTTPIndexer asks POST /v2/repository/index on the pod's HTTP port.
type HTTPIndexer struct {
	Client *http.Client
	// Addr maps a pod to HOST:PORT; nil is the pod IP and the serving port.
	Addr func(*corev1.Pod) string
}

// Index implements Indexer.
func (h HTTPIndexer) Index(ctx context.Context, pod *corev1.Pod, apiKey string) ([]IndexEntry, error) {
	addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(httpPort))
	if h.Addr != nil {
		addr = h.Addr(pod)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v2/repository/index", strings.NewReader("{}"))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	body, err := askPod(ctx, h.Client, req, "repository index")
	if err != nil {
		return nil, err
	}
	var idx []IndexEntry
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, errors.New("repository index: not a JSON list")
	}
	return idx, nil
}

// askPod sends req to a pod with c (nil: the default client) within a second
// and returns the answer's body, read up to 1 MiB: a pod is asked in every pass,
// so a slow or oversized answer must not hold one up. An answer other than 200
// is an error naming what was asked, with its status and first line.
func askPod(ctx context.Context, c *http.Client, req *http.Request, what string) ([]byte, error) {
	if c == nil {
		c = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if line := oneLine(string(body)); line != "" {
			return nil, fmt.Errorf("%s: %s: %.200s", what, resp.Status, line)
		}
		return nil, fmt.Errorf("%s: %s", what, resp.Status)
	}
	return body, nil
}
