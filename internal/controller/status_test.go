package controller

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidev1 "github.com/tideserve/tide/api/v1alpha1"
)

func deployment(replicas, updated, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: replicas, UpdatedReplicas: updated, ReadyReplicas: ready},
	}
}

var (
	readyIndex  = []IndexEntry{{Name: "fraud", Version: "1", State: "READY"}}
	failedIndex = []IndexEntry{{Name: "fraud", Version: "1", State: "FAILED", Reason: `refusing to load "posix.system": not an allowed global`}}
)

// TestDecideStatus: the conditions for each situation a Model goes through.
func TestDecideStatus(t *testing.T) {
	zero := model(tidev1.ModelSpec{Autoscaling: tidev1.Autoscaling{Mode: tidev1.AutoscaleRPS, Target: ptr.To[int32](5), ScaleToZero: &tidev1.ScaleToZero{Enabled: true}}})
	cases := []struct {
		name  string
		m     *tidev1.Model
		obs   Observed
		want  map[string]string // condition type → "Status/Reason"
		msg   string            // in Ready's message
		ver   string
		ready int32
	}{
		{name: "creating", obs: Observed{},
			want: map[string]string{"Ready": "Unknown/Creating", "Degraded": "False/AsExpected"}},
		{name: "loading", obs: Observed{Deployment: deployment(1, 1, 0), Pods: []PodReport{{Name: "p1", Current: true}}},
			want: map[string]string{"Ready": "False/Loading", "ModelLoaded": "Unknown/Loading", "Scaled": "False/Scaling"}},
		{name: "serving", obs: Observed{Deployment: deployment(2, 2, 2), Pods: []PodReport{{Name: "p1", Current: true, Ready: true, Index: readyIndex}}},
			want: map[string]string{"Ready": "True/Serving", "ModelLoaded": "True/Loaded", "Scaled": "True/AtDesiredReplicas", "Degraded": "False/AsExpected"},
			msg:  "fraud/1", ver: "fraud/1", ready: 2},
		{name: "malicious first version", obs: Observed{Deployment: deployment(1, 1, 0), Pods: []PodReport{{Name: "p1", Current: true, Index: failedIndex}}},
			want: map[string]string{"Ready": "False/LoadFailed", "ModelLoaded": "False/LoadFailed", "Degraded": "True/LoadFailed"},
			msg:  `refusing to load "posix.system"`},
		{name: "malicious update, old serving", obs: Observed{Deployment: deployment(1, 1, 1), Pods: []PodReport{
			{Name: "old", Ready: true, Index: readyIndex}, {Name: "new", Current: true, Index: failedIndex}}},
			want: map[string]string{"Ready": "False/LoadFailed", "Degraded": "True/PreviousSpecServing"},
			msg:  `refusing to load "posix.system"`, ver: "fraud/1", ready: 1},
		{name: "image cannot be pulled", obs: Observed{Deployment: deployment(1, 1, 0), Pods: []PodReport{{Name: "p1", Current: true, Waiting: "ErrImageNeverPull: not present"}}},
			want: map[string]string{"Ready": "False/PodFailing", "ModelLoaded": "False/PodFailing"}, msg: "ErrImageNeverPull"},
		{name: "rolling out", obs: Observed{Deployment: deployment(2, 1, 2), Pods: []PodReport{{Name: "p1", Ready: true, Index: readyIndex}}},
			want: map[string]string{"Ready": "False/RollingOut", "Scaled": "False/Scaling"}, ver: "fraud/1", ready: 2},
		{name: "scaled to zero", m: zero, obs: Observed{Deployment: deployment(0, 0, 0), Activator: deployment(1, 1, 1)},
			want: map[string]string{"Ready": "True/ScaledToZero", "Scaled": "True/ScaledToZero", "ModelLoaded": "Unknown/ScaledToZero"}},
		{name: "no KEDA", m: zero, obs: Observed{Deployment: deployment(1, 1, 1), AutoscalerMissing: true, Pods: []PodReport{{Name: "p", Current: true, Ready: true, Index: readyIndex}}},
			want: map[string]string{"Scaled": "False/AutoscalerMissing", "Degraded": "True/AutoscalerMissing", "Ready": "True/Serving"},
			ver:  "fraud/1", ready: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			if m == nil {
				m = model(tidev1.ModelSpec{})
			}
			st := DecideStatus(m, c.obs)
			for typ, want := range c.want {
				cond := meta.FindStatusCondition(st.Conditions, typ)
				if cond == nil {
					t.Errorf("%s missing", typ)
					continue
				}
				if got := string(cond.Status) + "/" + cond.Reason; got != want {
					t.Errorf("%s = %s (%s), want %s", typ, got, cond.Message, want)
				}
			}
			ready := meta.FindStatusCondition(st.Conditions, "Ready")
			if !strings.Contains(ready.Message, c.msg) {
				t.Errorf("Ready message %q lacks %q", ready.Message, c.msg)
			}
			if st.ModelVersion != c.ver || st.ReadyReplicas != c.ready || st.ObservedGeneration != 1 {
				t.Errorf("version %q ready %d generation %d", st.ModelVersion, st.ReadyReplicas, st.ObservedGeneration)
			}
			if strings.Contains(ready.Message, "\n") {
				t.Error("multi-line message")
			}
		})
	}
}

// FuzzRenderAndDecide: no spec (decoded as the API server would store it) and no
// pod answer makes rendering or the status decision panic.
func FuzzRenderAndDecide(f *testing.F) {
	f.Add(`{"source":{"configMap":{"name":"m"}}}`, `[{"name":"a","state":"FAILED","reason":"x"}]`)
	f.Add(`{"source":{"url":{"url":"http://x","sha256":"`+strings.Repeat("0", 64)+`"}},"autoscaling":{"mode":"rps","scaleToZero":{"enabled":true}}}`, `[]`)
	f.Add(`{"source":{},"replicas":{"min":0,"max":-4},"autoscaling":{"mode":"cpu"},"placement":{"topologySpreadConstraints":[{}]}}`, `null`)
	f.Add(`{"networkPolicy":{"enabled":true,"allowedClients":[{}]},"podDisruptionBudget":{"enabled":true},"apiKeySecret":{"name":""}}`, `[{}]`)
	f.Add(`{"source":{"configMap":{"name":"m"}},"canary":{"source":{"configMap":{"name":"n"}},"steps":[0,-5,300],"stepInterval":"-1s","analysis":{"maxErrorRatio":"x","minAgreement":"NaN","maxP99":"-1s"},"action":"promote"}}`, `[{"state":"READY"}]`)
	f.Fuzz(func(t *testing.T, specJSON, indexJSON string) {
		var spec tidev1.ModelSpec
		if json.Unmarshal([]byte(specJSON), &spec) != nil {
			return
		}
		var idx []IndexEntry
		_ = json.Unmarshal([]byte(indexJSON), &idx)
		m := &tidev1.Model{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns"}, Spec: spec}
		_ = Deployment(m, testConfig)
		_, _ = Service(m), ServiceAccount(m)
		_, _, _ = HPA(m), PDB(m), NetworkPolicy(m, testConfig)
		_ = ScaledObject(m, testConfig)
		_, _ = Activator(m, testConfig)
		_ = ActivatorPDB(m)
		_ = DecideStatus(m, Observed{Deployment: deployment(1, 0, 0), Pods: []PodReport{{Name: "p", Current: true, Index: idx}, {Name: "q", Ready: true, Index: idx}}})
		if m.Spec.Canary != nil {
			_, _ = CandidateDeployment(m, testConfig), CandidateService(m)
			obs := CanaryObserved{Candidate: deployment(1, 1, 1), Pods: []PodReport{{Name: "c", Current: true, Ready: true, Index: idx}},
				Routers: []RouterState{router(stepRouteID(CandidateHash(m), 1), 30, 3, 30, 20)}}
			now := time.Unix(1_000_000, 0)
			for range 6 { // walk it: every pass's status feeds the next
				p := DecideCanary(m, testConfig, obs, now)
				if p.Status != nil && (p.Status.Weight < 0 || p.Status.Weight > 100) {
					t.Fatalf("weight %d", p.Status.Weight)
				}
				m.Status.Canary = p.Status
				_ = Deployment(m, testConfig)
				now = now.Add(time.Minute)
			}
		}
	})
}
