package controller

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

// status.go decides a Model's status from what was observed: its Deployment, its
// pods, and what those pods' own repository index says (the model's state and,
// when it failed, the reason Tide gives). It is pure, so every transition is a
// table test; the reconciler gathers the observations.

// IndexEntry is one row of a pod's POST /v2/repository/index answer.
type IndexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
}

// PodReport is one serving pod as the reconciler saw it.
type PodReport struct {
	Name    string
	Current bool // made from the Model's current spec (its spec-hash annotation)
	Ready   bool
	// ReadySince is when the pod last became ready (zero when not ready).
	ReadySince time.Time
	// Waiting is a container's or the fetch step's failure the kubelet reports
	// (ImagePullBackOff, CrashLoopBackOff, a fetch that exited with its message).
	Waiting string
	// Index is the pod's repository index, nil when it was not asked or not reached.
	Index    []IndexEntry
	IndexErr string
}

// Observed is everything the status is decided from.
type Observed struct {
	Deployment *appsv1.Deployment // nil: not created yet
	Activator  *appsv1.Deployment // nil unless the Model scales to zero
	Pods       []PodReport
	// AutoscalerMissing is set when the Model asks for scale to zero and the
	// cluster has no KEDA (no ScaledObject kind).
	AutoscalerMissing bool
}

// Condition reasons.
const (
	ReasonLoaded            = "Loaded"
	ReasonLoading           = "Loading"
	ReasonLoadFailed        = "LoadFailed"
	ReasonPodFailing        = "PodFailing"
	ReasonScaledToZero      = "ScaledToZero"
	ReasonAtDesired         = "AtDesiredReplicas"
	ReasonScaling           = "Scaling"
	ReasonRollingOut        = "RollingOut"
	ReasonCreating          = "Creating"
	ReasonServing           = "Serving"
	ReasonPreviousServing   = "PreviousSpecServing"
	ReasonAutoscalerMissing = "AutoscalerMissing"
	ReasonAsExpected        = "AsExpected"
	ReasonCanaryRolledBack  = "CanaryRolledBack"
)

// DecideStatus fills the status for generation gen of m from obs.
func DecideStatus(m *tidev1.Model, obs Observed) tidev1.ModelStatus {
	st := tidev1.ModelStatus{ObservedGeneration: m.Generation, URL: URL(m), Conditions: m.Status.Conditions, Canary: m.Status.Canary}
	set := func(typ string, ok metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: ok, Reason: reason, Message: oneLine(msg), ObservedGeneration: m.Generation})
	}
	d := obs.Deployment
	if d == nil {
		for _, c := range []string{tidev1.ConditionReady, tidev1.ConditionModelLoaded, tidev1.ConditionScaled} {
			set(c, metav1.ConditionUnknown, ReasonCreating, "the Deployment is being created")
		}
		set(tidev1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected, "")
		return st
	}
	st.Replicas, st.ReadyReplicas = d.Status.Replicas, d.Status.ReadyReplicas
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	atZero := desired == 0 && scaleToZero(m)
	activatorReady := obs.Activator != nil && obs.Activator.Status.ReadyReplicas > 0

	// ModelLoaded: from the current spec's pods' own index.
	loaded, failure, failReason, oldServing := loadState(obs.Pods)
	st.ModelVersion = servingVersion(obs.Pods)
	switch {
	case failure != "":
		set(tidev1.ConditionModelLoaded, metav1.ConditionFalse, failReason, failure)
	case loaded != "":
		set(tidev1.ConditionModelLoaded, metav1.ConditionTrue, ReasonLoaded, loaded)
	case atZero:
		set(tidev1.ConditionModelLoaded, metav1.ConditionUnknown, ReasonScaledToZero, "no pod is running; the next request starts one")
	default:
		set(tidev1.ConditionModelLoaded, metav1.ConditionUnknown, ReasonLoading, "waiting for a pod of the current spec to load the model")
	}

	// Scaled: the replica count the spec or the autoscaler wants is ready.
	rolledOut := d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == desired && d.Status.Replicas == desired
	switch {
	case obs.AutoscalerMissing:
		set(tidev1.ConditionScaled, metav1.ConditionFalse, ReasonAutoscalerMissing, "scale to zero needs KEDA (the keda.sh ScaledObject kind), which this cluster does not have")
	case atZero:
		set(tidev1.ConditionScaled, metav1.ConditionTrue, ReasonScaledToZero, "scaled to zero while idle")
	case rolledOut && d.Status.ReadyReplicas >= desired:
		set(tidev1.ConditionScaled, metav1.ConditionTrue, ReasonAtDesired, fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, desired))
	default:
		set(tidev1.ConditionScaled, metav1.ConditionFalse, ReasonScaling, fmt.Sprintf("%d of %d replicas ready, %d updated", d.Status.ReadyReplicas, desired, d.Status.UpdatedReplicas))
	}

	// Ready: the current spec is rolled out and answering (or idle at zero with
	// the activator ready to wake it).
	modelOK := meta.IsStatusConditionTrue(st.Conditions, tidev1.ConditionModelLoaded)
	switch {
	case failure != "":
		set(tidev1.ConditionReady, metav1.ConditionFalse, failReason, failure)
	case atZero && activatorReady:
		set(tidev1.ConditionReady, metav1.ConditionTrue, ReasonScaledToZero, "idle at zero replicas; the activator holds the next request while a pod starts")
	case rolledOut && d.Status.ReadyReplicas > 0 && modelOK:
		set(tidev1.ConditionReady, metav1.ConditionTrue, ReasonServing, fmt.Sprintf("serving %s on %d ready replica(s)", orDefault(st.ModelVersion, "the model"), d.Status.ReadyReplicas))
	case !rolledOut:
		set(tidev1.ConditionReady, metav1.ConditionFalse, ReasonRollingOut, fmt.Sprintf("rolling out: %d of %d replicas updated, %d ready", d.Status.UpdatedReplicas, desired, d.Status.ReadyReplicas))
	default:
		set(tidev1.ConditionReady, metav1.ConditionFalse, ReasonLoading, "no replica of the current spec is ready yet")
	}

	// Degraded: serving, but not as asked.
	switch {
	case failure != "" && oldServing > 0:
		set(tidev1.ConditionDegraded, metav1.ConditionTrue, ReasonPreviousServing,
			fmt.Sprintf("the current spec fails (%s); %d ready pod(s) of the previous spec keep serving", failure, oldServing))
	case obs.AutoscalerMissing:
		set(tidev1.ConditionDegraded, metav1.ConditionTrue, ReasonAutoscalerMissing, "scale to zero is off: this cluster has no KEDA")
	case failure != "":
		set(tidev1.ConditionDegraded, metav1.ConditionTrue, failReason, failure)
	case st.Canary != nil && st.Canary.Phase == "RolledBack":
		set(tidev1.ConditionDegraded, metav1.ConditionTrue, ReasonCanaryRolledBack,
			"the canary was rolled back; the stable version serves: "+st.Canary.Reason)
	default:
		set(tidev1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected, "")
	}
	return st
}

// loadState reads the current spec's pods: a "loaded" message when one of them
// serves its models, the first failure (the model's own reason, or the
// kubelet's) with its condition reason (LoadFailed when a model itself failed,
// else PodFailing), and how many ready pods of an earlier spec are serving meanwhile.
func loadState(pods []PodReport) (loaded, failure, reason string, oldServing int) {
	reason = ReasonPodFailing
	for _, p := range pods {
		if !p.Current {
			if p.Ready {
				oldServing++
			}
			continue
		}
		for _, e := range p.Index {
			if indexFailed(e) {
				reason = ReasonLoadFailed
				if failure == "" {
					failure = fmt.Sprintf("pod %s: model %s version %s failed to load: %s", p.Name, e.Name, orDefault(e.Version, "-"), e.Reason)
				}
			}
		}
		if failure == "" && p.Waiting != "" {
			failure = fmt.Sprintf("pod %s: %s", p.Name, p.Waiting)
		}
		if served := versions(p.Index); p.Ready && loaded == "" && served != "" {
			loaded = fmt.Sprintf("pod %s loaded %s", p.Name, served)
		}
	}
	return loaded, failure, reason, oldServing
}

// indexFailed: the entry is a model version that failed to load, or is
// unavailable for a reason other than having been unloaded.
func indexFailed(e IndexEntry) bool {
	return e.State == "FAILED" || (e.State == "UNAVAILABLE" && e.Reason != "" && e.Reason != "unloaded")
}

// versions names what an index serves: "fraud/1", or several comma-separated.
func versions(idx []IndexEntry) string {
	var out []string
	for _, e := range idx {
		if e.State == "READY" {
			out = append(out, e.Name+"/"+e.Version)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// servingVersion is what a ready pod of the current spec serves, else any ready pod.
func servingVersion(pods []PodReport) string {
	for _, current := range []bool{true, false} {
		for _, p := range pods {
			if p.Ready && p.Current == current {
				if v := versions(p.Index); v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// waitingReason is a pod's failure as the kubelet reports it, or "".
func waitingReason(pod *corev1.Pod) string {
	for _, cs := range pod.Status.InitContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("init step %s failed: %s", cs.Name, orDefault(strings.TrimSpace(t.Message), t.Reason))
		}
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" && cs.LastTerminationState.Terminated != nil {
			t := cs.LastTerminationState.Terminated
			return fmt.Sprintf("init step %s failed: %s", cs.Name, orDefault(strings.TrimSpace(t.Message), t.Reason))
		}
		if w := cs.State.Waiting; w != nil && badWaiting[w.Reason] {
			return fmt.Sprintf("init step %s: %s: %s", cs.Name, w.Reason, w.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && badWaiting[w.Reason] {
			return fmt.Sprintf("%s: %s", w.Reason, w.Message)
		}
	}
	return ""
}

// badWaiting are waiting reasons that will not pass by themselves.
var badWaiting = map[string]bool{
	"CrashLoopBackOff": true, "ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true,
	"InvalidImageName": true, "CreateContainerConfigError": true, "CreateContainerError": true,
}

// oneLine keeps a condition message to one bounded line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1024 {
		s = s[:1021] + "..."
	}
	return s
}
