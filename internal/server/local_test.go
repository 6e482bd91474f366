package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/formats/formatstest"
)

// TestLocal: the in-process handler asks no API key and lets Tide-Model pick
// /predict's model; over the network neither holds.
func TestLocal(t *testing.T) {
	models := map[string]formatstest.Spec{"a": fraud, "b": {Weights: []float64{-1, 1}}}
	s := newTestServer(t, Options{APIKeys: []string{"k1"}}, models)
	ask := func(h http.Handler, model string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/predict", strings.NewReader(`{"feature1": 1, "feature2": 0}`))
		if model != "" {
			req.Header.Set("Tide-Model", model)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := ask(s.Local(), "a"); code != 200 || body != `{"prediction":[1]}` {
		t.Errorf("local, model a: %d %s", code, body)
	}
	if code, body := ask(s.Local(), "b"); code != 200 || body != `{"prediction":[0]}` {
		t.Errorf("local, model b: %d %s", code, body)
	}
	if code, body := ask(s.Local(), "nope"); code != 404 || strings.Contains(body, "\n") {
		t.Errorf("local, unknown model: %d %s, want 404 in one line", code, body)
	}
	if code, body := ask(s.Local(), ""); code != 404 || !strings.Contains(body, "--default-model") {
		t.Errorf("local, no model among several: %d %s, want 404 naming --default-model", code, body)
	}
	if code, _ := ask(s, "a"); code != 401 {
		t.Errorf("over the network without a key: %d, want 401", code)
	}

	open := newTestServer(t, Options{}, models)
	if code, body := ask(open, "b"); code != 404 || !strings.Contains(body, "--default-model") {
		t.Errorf("over the network, Tide-Model must not pick the model: %d %s", code, body)
	}
	if open.DefaultModel() != "" || newTestServer(t, Options{DefaultModel: "b"}, models).DefaultModel() != "b" ||
		newTestServer(t, Options{}, map[string]formatstest.Spec{"only": fraud}).DefaultModel() != "only" {
		t.Error("DefaultModel: want \"\" among several, the configured one, or the only one")
	}
}

// TestBackgroundDrainsBeforeTheModelsClose: a Background consumer's ctx ends
// when the drain starts, and Serve waits for it before closing the models.
func TestBackgroundDrainsBeforeTheModelsClose(t *testing.T) {
	s := newTestServer(t, Options{GRPCAddr: ""}, map[string]formatstest.Spec{"fraud": fraud})
	stopped, finish := make(chan struct{}), make(chan struct{})
	var answered int
	s.Background(func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		<-finish
		// The models are still there: the drain has not closed them.
		req := httptest.NewRequest(http.MethodPost, "/predict", strings.NewReader(`{"feature1": 1, "feature2": 0}`))
		rec := httptest.NewRecorder()
		s.Local().ServeHTTP(rec, req)
		answered = rec.Code
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	cancel()
	<-stopped
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a consumer still held work", err)
	default:
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if answered != 200 {
		t.Errorf("the consumer's last request got %d during the drain, want 200", answered)
	}
}
