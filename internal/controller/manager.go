package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

// Options configure the operator's manager (the tide-operator command's flags).
type Options struct {
	Config
	MetricsAddr    string // Prometheus metrics (controller-runtime's and the reconciler's)
	ProbeAddr      string // /healthz and /readyz
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease; empty: the namespace the pod runs in.
	LeaderElectionNamespace string
	// Concurrency is how many Models reconcile at once.
	Concurrency int
	// Indexer overrides how pods are asked for their index (tests).
	Indexer Indexer
	// Router overrides how router pods are read and set (tests).
	Router RouterClient
}

// NewScheme knows Kubernetes' built-in kinds and Model.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := tidev1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// managedSelector limits the cache to the operator's own objects: pods and
// Deployments of other workloads are neither listed nor watched, which keeps the
// operator's memory proportional to the Models, not to the cluster.
var managedSelector = labels.SelectorFromSet(labels.Set{labelManagedBy: managedBy})

// NewManager builds the manager with the Model controller registered.
func NewManager(restConfig *rest.Config, o Options, log *slog.Logger) (ctrl.Manager, error) {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	owned := cache.ByObject{Label: managedSelector}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              "tide-operator.serving.tideserve.io",
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: owned, &appsv1.Deployment{}: owned, &corev1.Service{}: owned, &corev1.ServiceAccount{}: owned,
			&autoscalingv2.HorizontalPodAutoscaler{}: owned, &policyv1.PodDisruptionBudget{}: owned, &networkingv1.NetworkPolicy{}: owned,
		}},
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	keda, err := servesScaledObjects(mgr)
	if err != nil {
		return nil, err
	}
	if !keda {
		log.Warn("this cluster serves no keda.sh ScaledObject: Models that ask for scale to zero serve at their minimum and say so in their status")
	}
	indexer := o.Indexer
	if indexer == nil {
		indexer = HTTPIndexer{Client: &http.Client{Timeout: time.Second}}
	}
	router := o.Router
	if router == nil {
		router = HTTPRouter{Client: &http.Client{Timeout: time.Second}}
	}
	r := &ModelReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorderFor("tide-operator"),
		Config:    o.Config,
		Indexer:   indexer,
		KEDA:      keda,
		Router:    router,
	}
	return mgr, r.SetupWithManager(mgr, max(1, o.Concurrency))
}

// servesScaledObjects asks the API server's discovery for KEDA's ScaledObject.
func servesScaledObjects(mgr ctrl.Manager) (bool, error) {
	_, err := mgr.GetRESTMapper().RESTMapping(scaledObjectGVK.GroupKind(), scaledObjectGVK.Version)
	if err == nil {
		return true, nil
	}
	if meta.IsNoMatchError(err) { // KEDA not installed
		return false, nil
	}
	return false, fmt.Errorf("discover keda.sh ScaledObject: %w", err)
}

// SetupWithManager watches Models, the kinds they own, and their pods (a pod's
// readiness or failure changes the Model's status).
func (r *ModelReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tidev1.Model{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToModel)).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency})
	if r.KEDA {
		so := &unstructured.Unstructured{}
		so.SetGroupVersionKind(scaledObjectGVK)
		b = b.Owns(so)
	}
	return b.Complete(r)
}

// podToModel maps a serving pod to its Model by the instance label.
func podToModel(_ context.Context, o client.Object) []ctrl.Request {
	name := o.GetLabels()[labelInstance]
	if name == "" || o.GetLabels()[labelComponent] != "server" {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}
