package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/tracing"
)

// traceWith turns tracing on for one test, sampling everything, and returns the
// spans recorded so far on each call.
func traceWith(t *testing.T, sampler string) func() tracetest.SpanStubs {
	t.Helper()
	cfg, err := tracing.FromEnv(func(k string) string {
		return map[string]string{"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	t.Cleanup(tracing.Use(exp, cfg, true))
	return func() tracetest.SpanStubs { s := exp.GetSpans(); exp.Reset(); return s }
}

func spanNamed(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

// TestSpansOfAFailedRequest: a request the model refuses (422) still makes its
// trace, with the failure on the span where it happened; one that could not be
// parsed (400) fails in decode and never reaches infer.
func TestSpansOfAFailedRequest(t *testing.T) {
	spans := traceWith(t, "always_on")
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	for _, c := range []struct {
		body       string
		status     int
		failedSpan string
		noSpan     string
	}{
		{`{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`, 200, "", ""},
		{`{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP64","data":[1,0,2]}]}`, 422, "infer", ""},
		{`{"inputs":[`, 400, "decode", "infer"},
	} {
		req := httptest.NewRequest("POST", "/v2/models/fraud/infer", strings.NewReader(c.body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Fatalf("%s: %d, want %d", c.body, rec.Code, c.status)
		}
		got := spans()
		root := spanNamed(got, "POST /v2/models/{name}/infer")
		if root == nil {
			t.Fatalf("%s: no server span in %d spans", c.body, len(got))
		}
		for _, sp := range got {
			if sp.SpanContext.TraceID() != root.SpanContext.TraceID() {
				t.Fatalf("%s: span %s in another trace", c.body, sp.Name)
			}
		}
		if c.failedSpan != "" {
			sp := spanNamed(got, c.failedSpan)
			if sp == nil || sp.Status.Code != codes.Error {
				t.Fatalf("%s: span %s not marked failed: %+v", c.body, c.failedSpan, sp)
			}
		}
		if c.noSpan != "" && spanNamed(got, c.noSpan) != nil {
			t.Fatalf("%s: a %s span for a request that failed before it", c.body, c.noSpan)
		}
		if c.status == 200 && len(got) != 7 {
			t.Fatalf("a served request made %d spans, want 7 (server, decode, infer, queue, batch, model, encode)", len(got))
		}
	}
	// Probes and scrapes make no spans.
	for _, p := range []string{"/v2/health/ready", "/v2/health/live", "/metrics"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	if got := spans(); len(got) != 0 {
		t.Fatalf("probes and scrapes made %d spans", len(got))
	}
}

// TestRatioZeroTracesOnlyWhatClientsSampled: at ratio 0 a request without a
// trace context makes no span at all; one whose client sampled its trace is
// traced, under the client's span; one whose client did not is not.
func TestRatioZeroTracesOnlyWhatClientsSampled(t *testing.T) {
	spans := traceWith(t, "parentbased_traceidratio")
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	send := func(traceparent string) {
		req := httptest.NewRequest("POST", "/predict", strings.NewReader(`{"feature1": 1, "feature2": 0}`))
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	for i := 0; i < 20; i++ {
		send("")
	}
	send("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	if got := spans(); len(got) != 0 {
		t.Fatalf("ratio 0: %d spans from requests that did not ask", len(got))
	}
	send("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	got := spans()
	root := spanNamed(got, "POST /predict")
	if root == nil || root.Parent.SpanID().String() != "00f067aa0ba902b7" || root.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("the client's sampled trace was not continued: %+v", root)
	}
}
