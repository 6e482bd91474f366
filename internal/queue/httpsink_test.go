package queue

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTPResults: results are POSTed with their headers and count as
// published only on a 2xx; dead letters stay with the broker.
func TestHTTPResults(t *testing.T) {
	var got []string
	status := http.StatusNoContent
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 64)
		n, _ := r.Body.Read(b)
		got = append(got, r.Method+" "+r.Header.Get(HeaderID)+" "+r.Header.Get(HeaderStatus)+" "+r.Header.Get(HeaderModel)+" "+string(b[:n]))
		w.WriteHeader(status)
	}))
	defer sink.Close()
	inner := &memBroker{}
	h, err := NewHTTPResults(inner, sink.URL+"/scores")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Publish(ctx, Results, Outgoing{ID: "r1", Model: "fraud", Status: 200, Body: []byte(`{"prediction":[1]}`)}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != `POST r1 200 fraud {"prediction":[1]}` {
		t.Errorf("sink saw %q", got)
	}
	status = http.StatusServiceUnavailable
	if err := h.Publish(ctx, Results, Outgoing{ID: "r2", Status: 200}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a 503 from the sink: %v, want an error (the request must not be acked)", err)
	}
	if err := h.Publish(ctx, DeadLetters, Outgoing{ID: "d1", Reason: "422: bad"}); err != nil || len(inner.log()) != 1 {
		t.Errorf("a dead letter went to the sink, not the broker: %v %v", err, inner.log())
	}
	for _, bad := range []string{"ftp://x/y", "http://", "nats://h:4222"} {
		if _, err := NewHTTPResults(inner, bad); err == nil {
			t.Errorf("NewHTTPResults(%q): no error", bad)
		}
	}
}
