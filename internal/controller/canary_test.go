package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
	"github.com/tideserve/tide/internal/rollout"
)

func canaryModel(mut func(*tidev1.Canary)) *tidev1.Model {
	m := model(tidev1.ModelSpec{})
	m.Spec.Canary = &tidev1.Canary{
		Source:       tidev1.ModelSource{ConfigMap: &tidev1.ConfigMapSource{Name: "fraud-v2", Key: "model.pkl"}},
		Steps:        []int32{10, 50, 100},
		StepInterval: metav1.Duration{Duration: 10 * time.Second},
		Replicas:     1,
		Analysis:     tidev1.CanaryAnalysis{MaxErrorRatio: ptr.To("0.05"), MinAgreement: ptr.To("0.99"), MinRequests: 20},
	}
	if mut != nil {
		mut(m.Spec.Canary)
	}
	return m
}

// readyCandidate is the observation of a candidate whose one pod loaded its model.
func readyCandidate() CanaryObserved {
	return CanaryObserved{Candidate: deployment(1, 1, 1), Pods: []PodReport{{Name: "c1", Current: true, Ready: true, Index: readyIndex}}}
}

func router(id string, requests, errors, compared, agreed int64) RouterState {
	return RouterState{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r1"}}, Report: &rollout.Report{
		Route:     rollout.Route{ID: id},
		Candidate: rollout.BackendReport{Requests: requests, Errors: errors, P99: 0.004},
		Stable:    rollout.BackendReport{Requests: 4 * requests, P99: 0.003},
		Agreement: rollout.AgreementReport{Compared: compared, Agreed: agreed, MeanProbabilityDiff: 0.0125},
	}}
}

// TestDecideCanaryWalksTheSteps: a good candidate goes through every step, each
// measured on its own route, and is promoted; the stable Deployment then takes
// its version, and the candidate goes once the routers no longer send it anything.
func TestDecideCanaryWalksTheSteps(t *testing.T) {
	m := canaryModel(nil)
	hash := CandidateHash(m)
	t0 := time.Unix(1_000_000, 0)

	// The candidate is starting: no traffic yet.
	p := DecideCanary(m, testConfig, CanaryObserved{Candidate: deployment(1, 1, 0)}, t0)
	if !p.Candidate || p.Route.Candidate != "" || p.Status.Weight != 0 || p.Status.Reason != "waiting for the candidate to load" {
		t.Fatalf("waiting: %+v %+v", p.Route, p.Status)
	}
	m.Status.Canary = p.Status

	// Ready only a moment ago: the nodes' Service rules may not know the pod yet.
	fresh := readyCandidate()
	fresh.Pods[0].ReadySince = t0.Add(-time.Second)
	if p = DecideCanary(m, testConfig, fresh, t0); p.Status.Step != 0 || p.Route.Candidate != "" {
		t.Fatalf("routed to a candidate ready for 1s: %+v", p.Status)
	}
	fresh.Pods[0].ReadySince = t0.Add(-candidateSettle)
	if p = DecideCanary(m, testConfig, fresh, t0); p.Status.Step != 1 {
		t.Fatalf("a settled candidate did not start: %+v", p.Status)
	}

	// Ready: step 1 at 10%.
	p = DecideCanary(m, testConfig, readyCandidate(), t0)
	if p.Status.Step != 1 || p.Status.Weight != 10 || p.Route.ID != stepRouteID(hash, 1) || p.Route.Weight != 10 || p.Route.Candidate != CandidateURL(m) || p.Event == nil {
		t.Fatalf("start: %+v %+v %+v", p.Route, p.Status, p.Event)
	}
	m.Status.Canary = p.Status

	// The router does not carry the step's route yet: nothing is judged.
	obs := readyCandidate()
	obs.Routers = []RouterState{router("other", 500, 500, 0, 0)}
	p = DecideCanary(m, testConfig, obs, t0.Add(20*time.Second))
	if p.Status.Phase != "Progressing" || p.Status.Step != 1 {
		t.Fatalf("a stale router's numbers were judged: %+v", p.Status)
	}

	// Step 1 measured, interval passed: step 2, with step 1's figures recorded.
	obs.Routers = []RouterState{router(stepRouteID(hash, 1), 100, 1, 100, 100)}
	p = DecideCanary(m, testConfig, obs, t0.Add(11*time.Second))
	if p.Status.Step != 2 || p.Status.Weight != 50 || p.Route.ID != stepRouteID(hash, 2) || len(p.Status.Steps) != 1 {
		t.Fatalf("step 2: %+v", p.Status)
	}
	if s := p.Status.Steps[0]; s.Requests != 100 || s.Errors != 1 || s.ErrorRatio != "0.0100" || s.Agreement != "1.0000" || s.P99 != "4ms" || s.StableP99 != "3ms" || s.ProbabilityDiff != "0.0125" {
		t.Errorf("step 1 recorded as %+v", s)
	}
	m.Status.Canary = p.Status

	// A restarted operator has only the status: it carries on at step 2.
	restarted := m.DeepCopy()
	obs.Routers = []RouterState{router(stepRouteID(hash, 2), 100, 0, 100, 100)}
	p = DecideCanary(restarted, testConfig, obs, t0.Add(15*time.Second))
	if p.Status.Step != 2 || p.Route.ID != stepRouteID(hash, 2) {
		t.Fatalf("restart did not resume at step 2: %+v", p.Status)
	}
	p = DecideCanary(restarted, testConfig, obs, t0.Add(22*time.Second))
	m.Status.Canary = p.Status
	obs.Routers = []RouterState{router(stepRouteID(hash, 3), 100, 0, 100, 100)}
	p = DecideCanary(m, testConfig, obs, t0.Add(33*time.Second))
	if p.Status.Phase != "Promoted" || p.Route.Weight != 100 || !p.Candidate || p.Event == nil || p.Event.Reason != "CanaryPromoted" {
		t.Fatalf("promotion: %+v %+v", p.Status, p.Route)
	}
	m.Status.Canary = p.Status

	// Promoted: the stable Deployment renders the candidate's ConfigMap.
	d := Deployment(m, testConfig)
	if cm := d.Spec.Template.Spec.Volumes[1].ConfigMap.Name; cm != "fraud-v2" {
		t.Fatalf("promoted stable serves %s", cm)
	}
	// While the stable Deployment rolls, the candidate answers everything.
	obs.Stable = deployment(1, 1, 1) // still the old template
	if p = DecideCanary(m, testConfig, obs, t0.Add(40*time.Second)); !p.Candidate || p.Route.Weight != 100 {
		t.Fatalf("promoting: %+v", p.Route)
	}
	rolled := Deployment(m, testConfig)
	rolled.Generation, rolled.Status = 2, deployment(1, 1, 1).Status
	obs.Stable = rolled
	p = DecideCanary(m, testConfig, obs, t0.Add(50*time.Second))
	if p.Route.Candidate != "" || !p.Candidate {
		t.Fatalf("the stable route must be set before the candidate goes: %+v candidate=%v", p.Route, p.Candidate)
	}
	obs.Routers = []RouterState{router(p.Route.ID, 0, 0, 0, 0)}
	if p = DecideCanary(m, testConfig, obs, t0.Add(52*time.Second)); p.Candidate {
		t.Fatal("the candidate stays after every router left it")
	}
	// spec.source moved to the promoted version: nothing to roll out, nothing restarts.
	m.Spec.Source = m.Spec.Canary.Source
	if got := Deployment(m, testConfig).Spec.Template.Annotations[templateHashAnnotation]; got != rolled.Spec.Template.Annotations[templateHashAnnotation] {
		t.Error("moving spec.source to the promoted version changed the pod template")
	}
}

func TestDecideCanaryRollsBack(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	started := func(m *tidev1.Model) {
		m.Status.Canary = &tidev1.CanaryStatus{Candidate: CandidateHash(m), Phase: "Progressing", Step: 1, Weight: 10, StepStarted: &metav1.Time{Time: t0}}
	}
	for _, tc := range []struct {
		name   string
		mut    func(*tidev1.Canary)
		obs    func(hash string) CanaryObserved
		start  bool
		reason string
	}{
		{name: "fails to load, never routed", obs: func(string) CanaryObserved {
			return CanaryObserved{Candidate: deployment(1, 1, 0), Pods: []PodReport{{Name: "c1", Current: true, Index: failedIndex}}}
		}, reason: "posix.system"},
		{name: "errors", start: true, obs: func(h string) CanaryObserved {
			o := readyCandidate()
			o.Routers = []RouterState{router(stepRouteID(h, 1), 40, 10, 40, 40)}
			return o
		}, reason: "error ratio 0.2500 over 0.0500"},
		{name: "disagrees in shadow", start: true, mut: func(c *tidev1.Canary) { c.Shadow = true }, obs: func(h string) CanaryObserved {
			o := readyCandidate()
			o.Routers = []RouterState{router(stepRouteID(h, 1), 100, 0, 100, 60)}
			return o
		}, reason: "agreement 0.6000 under 0.9900"},
		{name: "slow against stable", start: true, mut: func(c *tidev1.Canary) { c.Analysis.MaxP99Ratio = ptr.To("1.2") }, obs: func(h string) CanaryObserved {
			o := readyCandidate()
			o.Routers = []RouterState{router(stepRouteID(h, 1), 100, 0, 100, 100)}
			return o
		}, reason: "over 1.20× the stable version's"},
		{name: "aborted by hand", start: true, mut: func(c *tidev1.Canary) { c.Action = "abort" }, obs: func(string) CanaryObserved { return readyCandidate() }, reason: "aborted by hand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := canaryModel(tc.mut)
			if tc.start {
				started(m)
			}
			p := DecideCanary(m, testConfig, tc.obs(CandidateHash(m)), t0.Add(time.Second))
			if p.Status.Phase != "RolledBack" || p.Status.Weight != 0 || p.Route.Candidate != "" || !strings.Contains(p.Status.Reason, tc.reason) {
				t.Fatalf("%+v route %+v", p.Status, p.Route)
			}
			if p.Event == nil || p.Event.Type != corev1.EventTypeWarning || p.Event.Reason != "CanaryRolledBack" {
				t.Errorf("event %+v", p.Event)
			}
			m.Status.Canary = p.Status
			// The stable version keeps serving its own version; Degraded says why.
			if cm := Deployment(m, testConfig).Spec.Template.Spec.Volumes[1].ConfigMap.Name; cm != "fraud-model" {
				t.Errorf("rolled back, stable serves %s", cm)
			}
			st := DecideStatus(m, Observed{Deployment: deployment(1, 1, 1), Pods: []PodReport{{Name: "s", Current: true, Ready: true, Index: readyIndex}}})
			if c := meta.FindStatusCondition(st.Conditions, "Degraded"); c == nil || c.Reason != ReasonCanaryRolledBack {
				t.Errorf("Degraded %+v", c)
			}
			// Once every router is back on the stable version the candidate goes.
			obs := readyCandidate()
			obs.Routers = []RouterState{router(p.Route.ID, 0, 0, 0, 0)}
			if p = DecideCanary(m, testConfig, obs, t0.Add(2*time.Second)); p.Candidate || p.Status.Phase != "RolledBack" {
				t.Errorf("after the routers left it: candidate=%v %+v", p.Candidate, p.Status)
			}
		})
	}
}

func TestDecideCanaryPauseAndManualPromote(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	m := canaryModel(func(c *tidev1.Canary) { c.Action = "pause" })
	m.Status.Canary = &tidev1.CanaryStatus{Candidate: CandidateHash(m), Phase: "Progressing", Step: 1, Weight: 10, StepStarted: &metav1.Time{Time: t0}}
	obs := readyCandidate()
	obs.Routers = []RouterState{router(stepRouteID(CandidateHash(m), 1), 100, 0, 100, 100)}
	p := DecideCanary(m, testConfig, obs, t0.Add(time.Hour))
	if p.Status.Phase != "Paused" || p.Status.Step != 1 || p.Route.Weight != 10 {
		t.Fatalf("pause: %+v", p.Status)
	}
	m.Status.Canary = p.Status
	m.Spec.Canary.Action = ""
	if p = DecideCanary(m, testConfig, obs, t0.Add(time.Hour)); p.Status.Phase != "Progressing" || p.Status.Step != 1 {
		t.Fatalf("resume: %+v", p.Status)
	}
	m.Status.Canary = p.Status
	m.Spec.Canary.Action = "promote"
	if p = DecideCanary(m, testConfig, obs, t0.Add(time.Hour)); p.Status.Phase != "Promoted" {
		t.Fatalf("promote: %+v", p.Status)
	}
}

func TestDecideCanaryNothingToRollOut(t *testing.T) {
	m := canaryModel(nil)
	m.Spec.Canary.Source = m.Spec.Source
	p := DecideCanary(m, testConfig, CanaryObserved{}, time.Now())
	if p.Candidate || p.Route.Candidate != "" || !strings.Contains(p.Status.Reason, "nothing to roll out") {
		t.Fatalf("%+v %+v", p.Status, p.Route)
	}
	// A Model without a canary keeps none, once no router sends to one.
	m.Spec.Canary = nil
	if p = DecideCanary(m, testConfig, CanaryObserved{}, time.Now()); p.Candidate || p.Status != nil {
		t.Fatalf("%+v", p)
	}
}

// TestRenderCanary: the candidate runs the stable pod template with its own
// version and selector; the router gets its token and becomes the Model's URL.
func TestRenderCanary(t *testing.T) {
	m := canaryModel(func(c *tidev1.Canary) { c.Batching = &tidev1.Batching{MaxBatchSize: 64} })
	d := CandidateDeployment(m, testConfig)
	if d.Name != "fraud-canary" || d.Spec.Selector.MatchLabels[labelComponent] != "canary" || *d.Spec.Replicas != 1 {
		t.Fatalf("candidate %s %v", d.Name, d.Spec.Selector.MatchLabels)
	}
	args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--max-batch-size=64") || d.Spec.Template.Spec.Volumes[1].ConfigMap.Name != "fraud-v2" {
		t.Errorf("candidate args %s volumes %+v", args, d.Spec.Template.Spec.Volumes)
	}
	if strings.Contains(strings.Join(Deployment(m, testConfig).Spec.Template.Spec.Containers[0].Args, " "), "--max-batch-size") {
		t.Error("the candidate's batching leaked into the stable version")
	}
	if URL(m) != "http://fraud-activator.ml.svc:8080" {
		t.Errorf("url %s", URL(m))
	}
	act, _ := Activator(m, testConfig)
	if act == nil || !strings.Contains(strings.Join(act.Spec.Template.Spec.Containers[0].Args, " "), "--control-token-file=/etc/tide/router/token") ||
		act.Spec.Template.Spec.Volumes[0].Secret.SecretName != "fraud-router" {
		t.Fatalf("router %+v", act)
	}
	if s := RouterSecret(m, "t"); s.Name != "fraud-router" || string(s.Data["token"]) != "t" || !*s.Immutable {
		t.Errorf("secret %+v", s)
	}
}
