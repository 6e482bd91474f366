//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestTideKEDAScalesToZeroAndWakes: the chart's KEDA mode with minReplicas 0 on a
// Prometheus query. Idle, the Deployment goes to zero; the first request then arrives
// at the activator, which holds it while KEDA wakes the Deployment and answers it
// once the pod is ready. The test measures how long that first request waited and
// checks that nothing failed; under load KEDA scales past one replica.
//
// Needs KEDA and Prometheus scraping pod annotations (the harness add-ons
// "prometheus keda"); skips without the ScaledObject API.
func TestTideKEDAScalesToZeroAndWakes(t *testing.T) {
	c := testCluster
	if !c.served(t.Context(), "keda.sh/v1alpha1", "ScaledObject") {
		t.Skip("keda.sh/v1alpha1 ScaledObject not served (no KEDA)")
	}
	const name = "zero"
	c.installFraud(t, name, "--set", "autoscaling.mode=keda", "--set", "autoscaling.keda.minReplicas=0",
		"--set", "autoscaling.maxReplicas=3", "--set", "autoscaling.keda.threshold=20",
		"--set", "autoscaling.keda.cooldownPeriod=20", "--set", "autoscaling.keda.pollingInterval=2",
		"--set", "autoscaling.keda.activator.holdTimeoutSeconds=120")
	port := c.jsonpath(t.Context(), "service/"+name+"-tide-activator", `{.spec.ports[?(@.name=="http")].nodePort}`)
	if port == "" {
		t.Fatal("no activator NodePort")
	}
	url := "http://" + hostPort(c.nodeIP(t), port)
	replicas := func() int {
		n, _ := strconv.Atoi(c.jsonpath(t.Context(), "deployment/"+name+"-tide", "{.status.replicas}"))
		return n
	}
	start := time.Now()
	eventually(t, "KEDA to report the ScaledObject ready", 2*time.Minute, 2*time.Second, func() bool {
		return c.jsonpath(t.Context(), "scaledobject/"+name+"-tide", `{.status.conditions[?(@.type=="Ready")].status}`) == "True"
	})
	eventually(t, "scale to zero when idle, every pod gone", 4*time.Minute, 2*time.Second, func() bool { return c.servingPods(t, name) == 0 })
	toZero := time.Since(start)
	t.Logf("idle: scaled to zero %s after install", toZero.Round(time.Second))

	// The first request after idle: held by the activator until a pod is ready.
	rows := [][2]float64{{1, 2}, {-1, -1}, {3, 3}}
	want := sklearnPredictions(t, rows)
	wake := time.Now()
	got, err := predict(t.Context(), url, rows[0][0], rows[0][1])
	firstWait := time.Since(wake)
	if err != nil {
		t.Fatalf("first request after scale to zero failed after %s: %v", firstWait.Round(time.Millisecond), err)
	}
	if got != want[0] {
		t.Errorf("first request: prediction %d, sklearn says %d", got, want[0])
	}
	if n := replicas(); n < 1 {
		t.Errorf("answered, yet the Deployment has %d replicas", n)
	}
	for i, r := range rows[1:] {
		s := time.Now()
		got, err := predict(t.Context(), url, r[0], r[1])
		if err != nil || got != want[i+1] {
			t.Errorf("request after wake-up: %d, %v; sklearn says %d", got, err, want[i+1])
		}
		t.Logf("request %d after wake-up: %s", i+2, time.Since(s).Round(time.Millisecond))
	}
	t.Logf("scale from zero: the first request waited %s in the activator and was answered (200)", firstWait.Round(time.Millisecond))

	// Under load KEDA scales on the activator's request rate (threshold 20/s per replica).
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	load := drive(ctx, url, 8)
	peak := 1
	eventually(t, "KEDA to scale past 1 replica under load", 3*time.Minute, 3*time.Second, func() bool {
		peak = max(peak, replicas())
		return peak > 1
	})
	cancel()
	t.Logf("KEDA under 8-client load: 1 -> %d replicas; %d ok, %d failed, p99 %s; first errors: %v",
		peak, load.ok.Load(), load.failed.Load(), load.p99(), load.errors)
	if load.failed.Load() != 0 {
		t.Errorf("%d requests failed while KEDA scaled up", load.failed.Load())
	}

	// Idle again: back to zero, and a request sent meanwhile is still answered.
	idle := time.Now()
	eventually(t, "scale back to zero after the load", 4*time.Minute, 3*time.Second, func() bool { return replicas() == 0 })
	t.Logf("back to zero %s after the load stopped", time.Since(idle).Round(time.Second))
}
