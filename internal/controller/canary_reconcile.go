package controller

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
	"github.com/tideserve/tide/internal/rollout"
)

// canary_reconcile.go is the canary's I/O: what DecideCanary is given (the
// candidate, the stable Deployment, the routers' reports) and what its plan
// asks of the routers (their route).

// canaryRequeue is how often a rollout in progress is looked at: the routers'
// measurements change no Kubernetes object, so no event would wake the pass.
const canaryRequeue = 2 * time.Second

// canaryBusy: a rollout is in progress, or its candidate is still being removed.
func canaryBusy(p CanaryPlan) bool {
	if p.Candidate {
		return true
	}
	if p.Status == nil {
		return false
	}
	ph := rollout.Phase(p.Status.Phase)
	return ph == rollout.Progressing || ph == rollout.Paused
}

// observeCanary gathers a pass's view of the canary; a Model that never had one
// costs nothing.
func (r *ModelReconciler) observeCanary(ctx context.Context, m *tidev1.Model) (CanaryObserved, error) {
	var obs CanaryObserved
	cand := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: candidateName(m)}, cand)
	switch {
	case err == nil:
		obs.Candidate = cand
	case !apierrors.IsNotFound(err):
		return obs, err
	}
	if m.Spec.Canary == nil && m.Status.Canary == nil && obs.Candidate == nil {
		return obs, nil
	}
	stable := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: m.Name}, stable); err == nil {
		obs.Stable = stable
	} else if !apierrors.IsNotFound(err) {
		return obs, err
	}
	if m.Spec.Canary != nil {
		hash := CandidateDeployment(m, r.Config).Spec.Template.Annotations[templateHashAnnotation]
		if obs.Pods, err = r.observePods(ctx, m, candidateSelectorLabels(m), hash); err != nil {
			return obs, err
		}
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(m.Namespace), client.MatchingLabels(activatorSelectorLabels(m))); err != nil {
		return obs, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !p.DeletionTimestamp.IsZero() || p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		rs := RouterState{Pod: p}
		rep, err := r.Router.Report(ctx, p)
		if err != nil {
			rs.Err = err.Error()
			log.FromContext(ctx).V(1).Info("router not reached", "pod", p.Name, "error", rs.Err)
		} else {
			rs.Report = &rep
		}
		obs.Routers = append(obs.Routers, rs)
	}
	return obs, nil
}

// setRoutes gives every router the plan's route, where it carries another one.
// A failure is logged and retried on the next pass: the plan only moves on
// once every router reports the route.
func (r *ModelReconciler) setRoutes(ctx context.Context, want rollout.Route, routers []RouterState, token string) {
	if want.ID == "" {
		return
	}
	for _, rs := range routers {
		if rs.Report == nil || rs.Report.Route == want {
			continue
		}
		if want.Candidate == "" && rs.Report.Route.Candidate == "" {
			continue // both send everything to the stable version
		}
		if token == "" {
			continue
		}
		if err := r.Router.SetRoute(ctx, rs.Pod, token, want); err != nil {
			log.FromContext(ctx).Info("router route not set", "pod", rs.Pod.Name, "route", want.ID, "error", err.Error())
		}
	}
}

// routerToken is the router's control token, from its Secret, which is created
// with a random token the first time.
func (r *ModelReconciler) routerToken(ctx context.Context, m *tidev1.Model) (string, error) {
	var s corev1.Secret
	key := types.NamespacedName{Namespace: m.Namespace, Name: routerSecretName(m)}
	err := r.APIReader.Get(ctx, key, &s)
	if err == nil {
		if !metav1.IsControlledBy(&s, m) {
			return "", fmt.Errorf("Secret %s: %w", key.Name, errNotOurs)
		}
		return strings.TrimSpace(string(s.Data[routerTokenKey])), nil
	}
	if !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("Secret %s: %w", key.Name, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	secret := RouterSecret(m, token)
	if err := controllerutil.SetControllerReference(m, secret, r.Scheme); err != nil {
		return "", err
	}
	if err := r.Client.Create(ctx, secret); err != nil {
		return "", fmt.Errorf("Secret %s: %w", key.Name, err)
	}
	return token, nil
}

// RouterClient reads and sets a router pod's route.
type RouterClient interface {
	Report(ctx context.Context, pod *corev1.Pod) (rollout.Report, error)
	SetRoute(ctx context.Context, pod *corev1.Pod, token string, rt rollout.Route) error
}

// HTTPRouter speaks to a router pod's ops port (rollout.RoutePath).
type HTTPRouter struct {
	Client *http.Client
	// Addr maps a pod to HOST:PORT; nil is the pod IP and the router's ops port.
	Addr func(*corev1.Pod) string
}

func (h HTTPRouter) url(pod *corev1.Pod) string {
	addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(metricsPort))
	if h.Addr != nil {
		addr = h.Addr(pod)
	}
	return "http://" + addr + rollout.RoutePath
}

// Report implements RouterClient.
func (h HTTPRouter) Report(ctx context.Context, pod *corev1.Pod) (rollout.Report, error) {
	req, err := http.NewRequest(http.MethodGet, h.url(pod), nil)
	if err != nil {
		return rollout.Report{}, err
	}
	body, err := askPod(ctx, h.Client, req, "router")
	if err != nil {
		return rollout.Report{}, err
	}
	var rep rollout.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return rollout.Report{}, errors.New("router: the report is not JSON")
	}
	return rep, nil
}

// SetRoute implements RouterClient.
func (h HTTPRouter) SetRoute(ctx context.Context, pod *corev1.Pod, token string, rt rollout.Route) error {
	b, _ := json.Marshal(rt)
	req, err := http.NewRequest(http.MethodPut, h.url(pod), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	_, err = askPod(ctx, h.Client, req, "router")
	return err
}
