package controller

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
	"github.com/tideserve/tide/internal/rollout"
)

// canary.go decides a canary rollout's next move from what a pass observed:
// the candidate's Deployment and pods, the stable Deployment, and each router
// pod's route and measurement. It is pure (the clock is an argument): the
// judgement itself is rollout.Decide, and this file maps the Model's spec and
// status onto it and its answer back onto the status, the route and the
// candidate's objects. The status is the memory: a restarted operator reads the
// recorded step and its start time and carries on.

// RouterState is one router pod as a pass saw it.
type RouterState struct {
	Pod    *corev1.Pod
	Report *rollout.Report // nil when it could not be read
	Err    string
}

// CanaryObserved is what a pass saw of a canary.
type CanaryObserved struct {
	Stable    *appsv1.Deployment // nil before it exists
	Candidate *appsv1.Deployment // nil when absent
	// Pods are the candidate's pods (Current: made from the current candidate's template).
	Pods    []PodReport
	Routers []RouterState
}

// CanaryPlan is DecideCanary's answer.
type CanaryPlan struct {
	// Status is the Model's new status.canary (nil without a canary).
	Status *tidev1.CanaryStatus
	// Candidate keeps the candidate's Deployment and Service; false removes them.
	Candidate bool
	// Route is what every router pod should carry (ID "" when there is nothing to set).
	Route rollout.Route
	// Event is a transition worth telling (nil: none).
	Event *CanaryEvent
}

// CanaryEvent is a Kubernetes Event on the Model.
type CanaryEvent struct{ Type, Reason, Message string }

// stableRoute sends everything to the stable version.
func stableRoute(id string) rollout.Route { return rollout.Route{ID: id} }

// DecideCanary is one pass's decision for m's canary at time now.
func DecideCanary(m *tidev1.Model, cfg Config, obs CanaryObserved, now time.Time) CanaryPlan {
	c := m.Spec.Canary
	if c == nil {
		// No canary (or no longer): every router back to the stable version, and
		// the candidate kept only until no router sends it anything.
		return CanaryPlan{Candidate: !routersClear(obs.Routers), Route: stableRoute("stable")}
	}
	hash := CandidateHash(m)
	st := m.Status.Canary.DeepCopy()
	if st == nil || st.Candidate != hash {
		st = &tidev1.CanaryStatus{Candidate: hash} // a new candidate: a new rollout
	}
	if !canaryPending(m) {
		if st.Phase == "" {
			st.Reason = "the candidate is the stable version: nothing to roll out"
		}
		return CanaryPlan{Status: st, Candidate: !routersClear(obs.Routers), Route: stableRoute("stable-" + hash)}
	}
	if finished(st) {
		return afterRollout(m, cfg, st, obs)
	}

	plan := rollout.Plan{Steps: c.Steps, StepInterval: durationOr(c.StepInterval, time.Minute), Shadow: c.Shadow}
	if len(plan.Steps) == 0 {
		plan.Steps = []int32{5, 25, 50, 100}
	}
	cmd := manualCommand(c.Action, st.Phase)
	_, failure, _, _ := loadState(obs.Pods)
	meas := rollout.Measurement{CandidateFailure: failure}
	var state rollout.State
	started := st.StepStarted != nil
	switch {
	case started:
		state = rollout.State{Phase: rollout.Phase(st.Phase), Step: int(st.Step) - 1, StepStarted: st.StepStarted.Time}
		if reports, ok := routerReports(obs.Routers, stepRouteID(hash, st.Step)); ok {
			meas = measurementOf(reports, failure)
			recordStep(st, meas, reports)
		}
	case failure != "" || cmd == rollout.Abort || cmd == rollout.Promote:
		// Judged before its first step: a candidate that cannot serve never gets traffic.
		state = rollout.State{Phase: rollout.Progressing, StepStarted: now}
	case !candidateReady(obs, now):
		st.Phase, st.Weight, st.Reason = string(rollout.Progressing), 0, "waiting for the candidate to load"
		return CanaryPlan{Status: st, Candidate: true, Route: stableRoute("waiting-" + hash)}
	}
	th := thresholds(c.Analysis)
	d := rollout.Decide(plan, th, state, meas, cmd, now)
	st.Phase, st.Weight, st.Reason = string(d.State.Phase), d.Weight, d.Reason
	var out CanaryPlan
	if finished(st) {
		out = afterRollout(m, cfg, st, obs)
	} else {
		st.Step = int32(d.State.Step + 1)
		st.StepStarted = &metav1.Time{Time: d.State.StepStarted}
		out = CanaryPlan{Status: st, Candidate: true, Route: candidateRoute(m, stepRouteID(hash, st.Step), d.Weight, c.Shadow)}
	}
	if d.Changed {
		out.Event = &CanaryEvent{Type: corev1.EventTypeNormal, Reason: "Canary" + string(d.State.Phase), Message: d.Reason}
		switch d.State.Phase {
		case rollout.RolledBack:
			out.Event.Type = corev1.EventTypeWarning
		case rollout.Progressing:
			out.Event.Reason = "CanaryStep"
		}
	}
	return out
}

func finished(st *tidev1.CanaryStatus) bool {
	return st.Phase == string(rollout.Promoted) || st.Phase == string(rollout.RolledBack)
}

// afterRollout is the plan once a rollout has ended. Promoted: the stable
// Deployment rolls to the candidate's version while the candidate answers
// everything, then the routers go back to the stable version. Rolled back: the
// routers go back at once. Either way the candidate goes only once every router
// carries that route.
func afterRollout(m *tidev1.Model, cfg Config, st *tidev1.CanaryStatus, obs CanaryObserved) CanaryPlan {
	id := "rolledback-" + st.Candidate
	if st.Phase == string(rollout.Promoted) {
		serving := m.DeepCopy()
		serving.Status.Canary = st
		if !stableAt(obs.Stable, Deployment(serving, cfg)) {
			return CanaryPlan{Status: st, Candidate: true, Route: candidateRoute(m, "promoting-"+st.Candidate, 100, false)}
		}
		id = "promoted-" + st.Candidate
	}
	st.Weight = 0
	return CanaryPlan{Status: st, Candidate: !routersOn(obs.Routers, id), Route: stableRoute(id)}
}

// stepRouteID names step n (1-based) of candidate hash; the router measures a
// route from the moment its ID changes, so each step is measured on its own.
func stepRouteID(hash string, n int32) string { return fmt.Sprintf("canary-%s-step-%d", hash, n) }

func candidateRoute(m *tidev1.Model, id string, weight int32, shadow bool) rollout.Route {
	c := m.Spec.Canary
	rt := rollout.Route{ID: id, Candidate: CandidateURL(m), Weight: weight, Shadow: shadow,
		StickyHeader: c.StickyHeader, StickyCookie: c.StickyCookie, Tolerance: 1e-3}
	if t := ratio(c.Analysis.Tolerance); t != nil {
		rt.Tolerance = *t
	}
	return rt
}

// manualCommand maps spec.canary.action onto the judgement's commands; an
// empty action resumes a paused rollout.
func manualCommand(action, phase string) rollout.Manual {
	switch action {
	case "pause":
		return rollout.Pause
	case "promote":
		return rollout.Promote
	case "abort":
		return rollout.Abort
	}
	if phase == string(rollout.Paused) {
		return rollout.Resume
	}
	return rollout.NoCommand
}

func thresholds(a tidev1.CanaryAnalysis) rollout.Thresholds {
	th := rollout.Thresholds{MaxErrorRatio: ratio(a.MaxErrorRatio), MaxP99Ratio: ratio(a.MaxP99Ratio),
		MinAgreement: ratio(a.MinAgreement), MinRequests: max(a.MinRequests, 1)}
	if a.MaxP99 != nil {
		d := a.MaxP99.Duration
		th.MaxP99 = &d
	}
	return th
}

// ratio reads a decimal string (the schema checks its form); nil when unset or unreadable.
func ratio(s *string) *float64 {
	if s == nil {
		return nil
	}
	f, err := strconv.ParseFloat(*s, 64)
	if err != nil {
		return nil
	}
	return &f
}

// candidateSettle is how long every candidate pod must have been ready before it
// gets traffic: a pod's readiness reaches the nodes' Service rules a moment
// later, and a request sent before that is refused and held (measured on the
// project's cluster: a step-1 p99 of 220 ms without it, from held requests).
const candidateSettle = 3 * time.Second

// candidateReady: every candidate replica is ready, has been for
// candidateSettle, and one reports its model loaded.
func candidateReady(obs CanaryObserved, now time.Time) bool {
	d := obs.Candidate
	if d == nil || d.Spec.Replicas == nil || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, p := range obs.Pods {
		if p.Current && p.Ready && now.Sub(p.ReadySince) < candidateSettle {
			return false
		}
	}
	loaded, _, _, _ := loadState(obs.Pods)
	return loaded != "" && d.Status.ReadyReplicas >= *d.Spec.Replicas && d.Status.UpdatedReplicas >= *d.Spec.Replicas
}

// stableAt: the live stable Deployment runs want's template everywhere and is ready.
func stableAt(live, want *appsv1.Deployment) bool {
	if live == nil || live.Spec.Template.Annotations[templateHashAnnotation] != want.Spec.Template.Annotations[templateHashAnnotation] {
		return false
	}
	desired := int32(1)
	if live.Spec.Replicas != nil {
		desired = *live.Spec.Replicas
	}
	s := live.Status
	return s.ObservedGeneration >= live.Generation && s.UpdatedReplicas == s.Replicas && s.Replicas == desired && s.ReadyReplicas >= desired
}

// routersOn: at least one router, and every one carries route id.
func routersOn(rs []RouterState, id string) bool {
	_, ok := routerReports(rs, id)
	return ok
}

// routersClear: no router sends anything to a candidate (none is running, or
// each carries no candidate).
func routersClear(rs []RouterState) bool {
	for _, r := range rs {
		if r.Report == nil || r.Report.Route.Candidate != "" {
			return false
		}
	}
	return true
}

// routerReports are the routers' reports when every router carries route id.
func routerReports(rs []RouterState, id string) ([]rollout.Report, bool) {
	if len(rs) == 0 {
		return nil, false
	}
	out := make([]rollout.Report, 0, len(rs))
	for _, r := range rs {
		if r.Report == nil || r.Report.Route.ID != id {
			return nil, false
		}
		out = append(out, *r.Report)
	}
	return out, true
}

// measurementOf adds the routers' reports up (latency: the worst router's).
func measurementOf(reports []rollout.Report, failure string) rollout.Measurement {
	m := rollout.Measurement{CandidateFailure: failure}
	for _, r := range reports {
		m.Requests += r.Candidate.Requests
		m.Errors += r.Candidate.Errors
		m.P99 = max(m.P99, seconds(r.Candidate.P99))
		m.StableP99 = max(m.StableP99, seconds(r.Stable.P99))
		m.Compared += r.Agreement.Compared
		m.Agreed += r.Agreement.Agreed
	}
	return m
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// recordStep writes the current step's measurement into the status.
func recordStep(st *tidev1.CanaryStatus, m rollout.Measurement, reports []rollout.Report) {
	step := tidev1.CanaryStep{Step: st.Step, Weight: st.Weight, Requests: m.Requests, Errors: m.Errors, Compared: m.Compared}
	if m.Requests > 0 {
		step.ErrorRatio = strconv.FormatFloat(float64(m.Errors)/float64(m.Requests), 'f', 4, 64)
		step.P99 = m.P99.Round(100 * time.Microsecond).String()
	}
	if m.StableP99 > 0 {
		step.StableP99 = m.StableP99.Round(100 * time.Microsecond).String()
	}
	if m.Compared > 0 {
		step.Agreement = strconv.FormatFloat(float64(m.Agreed)/float64(m.Compared), 'f', 4, 64)
	}
	var diffSum float64
	var diffN int64
	for _, r := range reports {
		step.MirrorsDropped += r.Mirrors.Dropped
		diffSum += r.Agreement.MeanProbabilityDiff * float64(r.Agreement.Compared)
		diffN += r.Agreement.Compared
	}
	if diffN > 0 && diffSum > 0 {
		step.ProbabilityDiff = strconv.FormatFloat(diffSum/float64(diffN), 'f', 4, 64)
	}
	for i := range st.Steps {
		if st.Steps[i].Step == step.Step {
			st.Steps[i] = step
			return
		}
	}
	if len(st.Steps) < 20 {
		st.Steps = append(st.Steps, step)
	}
}
