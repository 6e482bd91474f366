package watch

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
		model             bool
	}{
		{in: "deployment/tide", want: "tide"},
		{in: "deploy/tide", want: "tide"},
		{in: "deployments.apps/tide", want: "tide"},
		{in: "Deployment/tide", want: "tide"},
		{in: "tide", want: "tide"},
		{in: "model/fraud", want: "fraud", model: true},
		{in: "tm/fraud", want: "fraud", model: true},
		{in: "statefulset/tide", wantErr: "only deployments"},
		{in: "deployment/", wantErr: "want deployment/NAME"},
		{in: "deployment/a/b", wantErr: "want deployment/NAME"},
	}
	for _, tt := range tests {
		got, model, err := ParseRef(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRef(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || model != tt.model {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func deployment(name string, desired, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(desired)},
		Status:     appsv1.DeploymentStatus{ReadyReplicas: ready, AvailableReplicas: ready, UpdatedReplicas: desired},
	}
}

func hpa(target string, current, desired int32, cpuNow int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: target + "-hpa", Namespace: "ml"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: target, APIVersion: "apps/v1"},
			MinReplicas:    ptr(int32(1)), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(50))}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "tide_inflight_requests"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("8"))}}},
			},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			CurrentReplicas: current, DesiredReplicas: desired,
			CurrentMetrics: []autoscalingv2.MetricStatus{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
					Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(cpuNow)}}},
			},
		},
	}
}

func event(uid, kind, name, reason string, count int32) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: uid, Namespace: "ml", UID: types.UID(uid)},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name, Namespace: "ml"},
		Reason:         reason, Message: reason + " happened", Type: "Normal", Count: count,
		LastTimestamp: metav1.Now(),
	}
}

// eventually polls cond for up to 5 s: informers deliver asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatcherFollowsScaling(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		deployment("tide", 1, 1),
		deployment("other", 7, 7), // a neighbour whose changes must be ignored
		hpa("tide", 1, 1, 20),
		event("old", "Deployment", "tide", "Old", 1),
	)
	w := New(client, "ml", "tide")
	if err := w.Start(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, r := w.Replicas(); d != 1 || r != 1 {
		t.Fatalf("Replicas() = %d, %d after sync, want 1, 1", d, r)
	}
	st := w.Current()
	if st.HPA == nil || st.HPA.Name != "tide-hpa" || st.HPA.MaxReplicas != 10 {
		t.Fatalf("HPA state %+v", st.HPA)
	}
	wantMetrics := []Metric{{"cpu", "20%", "50%"}, {"tide_inflight_requests", "<unknown>", "8"}}
	for i, m := range wantMetrics {
		if st.HPA.Metrics[i] != m {
			t.Errorf("metric %d = %+v, want %+v", i, st.HPA.Metrics[i], m)
		}
	}

	apps := client.AppsV1().Deployments("ml")
	hpas := client.AutoscalingV2().HorizontalPodAutoscalers("ml")
	events := client.CoreV1().Events("ml")
	steps := []func() error{
		func() error { _, err := hpas.Update(ctx, hpa("tide", 1, 4, 180), metav1.UpdateOptions{}); return err },
		func() error { _, err := apps.Update(ctx, deployment("tide", 4, 1), metav1.UpdateOptions{}); return err },
		func() error {
			_, err := apps.Update(ctx, deployment("other", 9, 9), metav1.UpdateOptions{})
			return err
		},
		func() error {
			_, err := events.Create(ctx, event("e1", "HorizontalPodAutoscaler", "tide-hpa", "SuccessfulRescale", 1), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := events.Create(ctx, event("e2", "Pod", "tide-5d8f-abcde", "Scheduled", 1), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := events.Create(ctx, event("e3", "Pod", "other-77-xyz", "Scheduled", 1), metav1.CreateOptions{})
			return err
		},
		func() error { _, err := apps.Update(ctx, deployment("tide", 4, 4), metav1.UpdateOptions{}); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	eventually(t, "4 ready replicas", func() bool { _, r := w.Replicas(); return r == 4 })
	eventually(t, "two events", func() bool { return len(w.Timeline().Events) >= 2 })

	tl := w.Timeline()
	var desired, ready []int
	for _, p := range tl.Points {
		desired = append(desired, p.Desired)
		ready = append(ready, p.Ready)
		if p.T < 0 {
			t.Errorf("point at %v s, before the origin", p.T)
		}
	}
	// The timeline holds each distinct state once, in order; "other" never appears.
	if got := desired[len(desired)-1]; got != 4 || ready[len(ready)-1] != 4 || ready[0] != 1 {
		t.Errorf("desired %v ready %v", desired, ready)
	}
	for _, d := range desired {
		if d == 7 || d == 9 {
			t.Errorf("another deployment leaked into the timeline: desired %v", desired)
		}
	}
	var sawDecision bool
	for _, p := range tl.Points {
		if p.HPA != nil && p.HPA.DesiredReplicas == 4 && p.HPA.Metrics[0].Current == "180%" {
			sawDecision = true
		}
	}
	if !sawDecision {
		t.Errorf("the HPA's decision (4 replicas at 180%% CPU) is not in the timeline: %+v", tl.Points)
	}
	var objects []string
	for _, e := range tl.Events {
		objects = append(objects, e.Object+" "+e.Reason)
	}
	want := []string{"Deployment/tide Old", "HorizontalPodAutoscaler/tide-hpa SuccessfulRescale", "Pod/tide-5d8f-abcde Scheduled"}
	if strings.Join(objects, "; ") != strings.Join(want, "; ") {
		t.Errorf("events %q, want %q", objects, want)
	}

	// A repeated event is logged again when its count grows, not on every resync.
	ev := event("e1", "HorizontalPodAutoscaler", "tide-hpa", "SuccessfulRescale", 2)
	if _, err := events.Update(ctx, ev, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the repeat", func() bool { return len(w.Timeline().Events) == 4 })
}

func TestWatcherMissingDeployment(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(fake.NewClientset(deployment("other", 1, 1)), "ml", "tide")
	err := w.Start(ctx, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "deployment tide not found in namespace ml") {
		t.Fatalf("Start error = %v", err)
	}
	if d, r := w.Replicas(); d != -1 || r != -1 {
		t.Errorf("Replicas() = %d, %d for an unseen deployment, want -1, -1", d, r)
	}
}

func TestWatcherIgnoresOldEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := event("old", "Pod", "tide-1-a", "Killing", 1)
	old.LastTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
	w := New(fake.NewClientset(deployment("tide", 1, 1), old), "ml", "tide")
	if err := w.Start(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if evs := w.Timeline().Events; len(evs) != 0 {
		t.Errorf("an hour-old event was recorded: %+v", evs)
	}
}

// TestTimelineStartsWithTheDeployment: informers deliver kinds in any order;
// an HPA seen before its Deployment must not log a Deployment of 0 replicas.
func TestTimelineStartsWithTheDeployment(t *testing.T) {
	w := New(fake.NewClientset(), "ml", "tide")
	w.onHPA(hpa("tide", 2, 2, 40), false)
	w.onDeployment(deployment("tide", 2, 2), false)
	w.onDeployment(deployment("tide", 2, 2), false) // a resync: no new point
	w.onDeployment(deployment("tide", 2, 2), true)  // deleted: recorded as zero
	pts := w.Timeline().Points
	if len(pts) != 2 || pts[0].Desired != 2 || pts[0].HPA == nil || pts[0].HPA.DesiredReplicas != 2 || pts[1].Desired != 0 {
		t.Errorf("points %+v", pts)
	}
	if d, r := w.Replicas(); d != -1 || r != -1 {
		t.Errorf("after deletion Replicas() = %d, %d, want -1, -1", d, r)
	}
}

func canaryModel(weight, step int64, phase, agreement string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.tideserve.io/v1alpha1", "kind": "Model",
		"metadata": map[string]any{"name": "tide", "namespace": "ml"},
		"status": map[string]any{"canary": map[string]any{"phase": phase, "step": step, "weight": weight,
			"steps": []any{map[string]any{"step": int64(1), "errorRatio": "0.0100", "agreement": "0.9000"},
				map[string]any{"step": step, "errorRatio": "0.0000", "agreement": agreement}}}},
	}}
}

// TestWatcherFollowsAModelsCanary: watching a Model records its canary's phase,
// weight and the current step's error ratio and agreement as they change.
func TestWatcherFollowsAModelsCanary(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{ModelGVR: "ModelList"},
		canaryModel(25, 2, "Progressing", "0.9990"))
	w := New(fake.NewClientset(deployment("tide", 2, 2)), "ml", "tide").WithModel(dyn)
	if err := w.Start(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the canary", func() bool { return w.Current().Canary != nil })
	if c := *w.Current().Canary; c != (CanaryState{Phase: "Progressing", Step: 2, Weight: 25, ErrorRatio: 0, Agreement: 0.999}) {
		t.Fatalf("canary %+v", c)
	}
	if _, err := dyn.Resource(ModelGVR).Namespace("ml").Update(ctx, canaryModel(0, 2, "RolledBack", "0.6000"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rollback", func() bool { c := w.Current().Canary; return c != nil && c.Phase == "RolledBack" })
	pts := w.Timeline().Points
	if last := pts[len(pts)-1].Canary; last.Weight != 0 || last.Agreement != 0.6 {
		t.Errorf("last point %+v", last)
	}
}
