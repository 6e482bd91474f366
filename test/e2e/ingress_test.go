//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIngressAndGatewayRouteToTide: the chart's Ingress (class traefik) and
// HTTPRoute (parent: the cluster's shared Gateway traefik/traefik) routed by a
// real controller, Traefik (the harness add-on "traefik"), from outside the
// cluster through its NodePort: each host reaches the model and its answers match
// scikit-learn's; a host neither names is not routed. Then the same two routes
// in front of a Deployment at zero: each first request is held by the activator
// behind the route while KEDA wakes the Deployment, and answered.
func TestIngressAndGatewayRouteToTide(t *testing.T) {
	c := testCluster
	if !c.served(t.Context(), "gateway.networking.k8s.io/v1", "HTTPRoute") {
		t.Skip("gateway.networking.k8s.io/v1 HTTPRoute not served (no Traefik add-on)")
	}
	out, err := c.run(t.Context(), "", "--namespace", "traefik", "get", "service", "traefik", "-o", `jsonpath={.spec.ports[?(@.name=="web")].nodePort}`)
	if err != nil || strings.TrimSpace(out) == "" {
		t.Skipf("no Traefik Service (the harness add-on traefik): %v", err)
	}
	edge := "http://" + hostPort(c.nodeIP(t), strings.TrimSpace(out))
	rows := [][2]float64{{1, 2}, {-1, -1}, {0.5, -2}, {3, 3}, {-2, 1.5}, {0, 0}}
	want := sklearnPredictions(t, rows)

	routes := func(name string) []string {
		return []string{"--set", "ingress.enabled=true", "--set", "ingress.className=traefik",
			"--set", "ingress.host=" + name + "-ingress.test",
			"--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=traefik",
			"--set", "httpRoute.parentRefs[0].namespace=traefik", "--set", "httpRoute.hostnames[0]=" + name + "-gateway.test"}
	}
	// routed waits until the controller has taken the route in (it reads the API
	// asynchronously: until then the host is a 404), then checks every row.
	routed := func(t *testing.T, via, host string) {
		t.Helper()
		eventually(t, via+" to route "+host, time.Minute, time.Second, func() bool {
			_, err := predictAs(t.Context(), edge, host, rows[0][0], rows[0][1])
			return err == nil
		})
		for i, r := range rows {
			got, err := predictAs(t.Context(), edge, host, r[0], r[1])
			if err != nil {
				t.Fatalf("%s (%s): row %v: %v", via, host, r, err)
			}
			if got != want[i] {
				t.Errorf("%s (%s): row %v: prediction %d, sklearn says %d", via, host, r, got, want[i])
			}
		}
		t.Logf("%s: %d rows through Traefik as %s match sklearn", via, len(rows), host)
	}
	routeAccepted := func(t *testing.T, name string) {
		t.Helper()
		eventually(t, "the HTTPRoute accepted by the Gateway with its backend resolved", time.Minute, time.Second, func() bool {
			status := c.jsonpath(t.Context(), "httproute/"+name+"-tide",
				`{.status.parents[0].parentRef.name} {.status.parents[0].conditions[?(@.type=="Accepted")].status} {.status.parents[0].conditions[?(@.type=="ResolvedRefs")].status}`)
			return status == "traefik True True"
		})
	}

	t.Run("Serving", func(t *testing.T) {
		const name = "edge"
		c.installFraud(t, name, routes(name)...)
		routeAccepted(t, name)
		routed(t, "Ingress", name+"-ingress.test")
		routed(t, "HTTPRoute", name+"-gateway.test")
		// Routing is by host: another host reaches nothing.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, edge+"/predict", strings.NewReader(`{"feature1":1,"feature2":2}`))
		req.Host = "elsewhere.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("host elsewhere.test: %s, want 404 (no route)", resp.Status)
		}
	})

	t.Run("AtZeroBehindTheActivator", func(t *testing.T) {
		if !c.served(t.Context(), "keda.sh/v1alpha1", "ScaledObject") {
			t.Skip("keda.sh/v1alpha1 ScaledObject not served (no KEDA)")
		}
		const name = "edgezero"
		c.installFraud(t, name, append([]string{"--set", "autoscaling.mode=keda", "--set", "autoscaling.keda.minReplicas=0",
			"--set", "autoscaling.maxReplicas=2", "--set", "autoscaling.keda.threshold=20",
			"--set", "autoscaling.keda.cooldownPeriod=15", "--set", "autoscaling.keda.pollingInterval=2",
			"--set", "autoscaling.keda.activator.holdTimeoutSeconds=120"}, routes(name)...)...)
		routeAccepted(t, name)
		if backend := c.jsonpath(t.Context(), "httproute/"+name+"-tide", "{.spec.rules[0].backendRefs[0].name}"); backend != name+"-tide-activator" {
			t.Fatalf("the HTTPRoute sends to %q, want the activator", backend)
		}
		for _, r := range []struct{ via, host string }{{"Ingress", name + "-ingress.test"}, {"HTTPRoute", name + "-gateway.test"}} {
			eventually(t, "scale to zero when idle, every pod gone", 4*time.Minute, 2*time.Second, func() bool { return c.servingPods(t, name) == 0 })
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			// Traefik's Ingress provider takes a new Ingress in on its own time
			// (the HTTPRoute's status says when the Gateway side has; an Ingress
			// has no such status here): until then the host is Traefik's own 404,
			// a request that never reached the activator. Ask again; the first
			// request the route carries is the one measured.
			var got, unrouted int
			var err error
			var start time.Time
			for deadline := time.Now().Add(time.Minute); ; {
				start = time.Now()
				got, err = predictAs(ctx, edge, r.host, rows[0][0], rows[0][1])
				if err == nil || !notRoutedByTraefik(err) || time.Now().After(deadline) {
					break
				}
				unrouted++
				time.Sleep(250 * time.Millisecond)
			}
			cancel()
			if unrouted > 0 {
				t.Logf("%s at zero: %d requests before Traefik routed %s (its own 404)", r.via, unrouted, r.host)
			}
			if err != nil {
				t.Fatalf("%s at zero: the first request failed after %s: %v", r.via, time.Since(start).Round(time.Millisecond), err)
			}
			if got != want[0] {
				t.Errorf("%s at zero: prediction %d, sklearn says %d", r.via, got, want[0])
			}
			if n := c.servingPods(t, name); n < 1 {
				t.Errorf("%s at zero: answered, yet %d pods run", r.via, n)
			}
			t.Logf("%s at zero: the first request through Traefik waited %s and was answered", r.via, time.Since(start).Round(time.Millisecond))
			routed(t, r.via, r.host)
		}
	})
}

// notRoutedByTraefik tells Traefik's answer for a host no router matches (Go's
// plain-text "404 page not found") from anything behind the route: the
// activator's and Tide's errors are JSON.
func notRoutedByTraefik(err error) bool {
	return strings.Contains(err.Error(), "404 Not Found: 404 page not found")
}
