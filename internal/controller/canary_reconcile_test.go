package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tideserve/tide/internal/rollout"
)

// TestHTTPRouter: the operator's side of the route document, against a router
// stand-in that parses the route as the router does and keeps it.
func TestHTTPRouter(t *testing.T) {
	var current rollout.Route
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != rollout.RoutePath {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodPut {
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error":"a valid control token is required to set the route"}` + "\n"))
				return
			}
			rt, _, err := rollout.ParseRoute(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
			current = rt
		}
		json.NewEncoder(w).Encode(rollout.Report{Route: current})
	}))
	defer srv.Close()
	h := HTTPRouter{Addr: func(*corev1.Pod) string { return strings.TrimPrefix(srv.URL, "http://") }}
	pod := &corev1.Pod{}
	want := rollout.Route{ID: "canary-abc-step-2", Candidate: "http://fraud-canary.ml.svc:8080", Weight: 25, StickyHeader: "X-Customer-Id", Tolerance: 1e-3}
	if err := h.SetRoute(context.Background(), pod, "tok", want); err != nil {
		t.Fatal(err)
	}
	rep, err := h.Report(context.Background(), pod)
	if err != nil || rep.Route != want {
		t.Fatalf("report %+v, %v", rep.Route, err)
	}
	err = h.SetRoute(context.Background(), pod, "wrong", want)
	if err == nil || !strings.Contains(err.Error(), "router: 401 Unauthorized: {\"error\":\"a valid control token") {
		t.Errorf("wrong token: %v", err)
	}
}
