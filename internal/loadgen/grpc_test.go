package loadgen

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestRunRejectsBadGRPCConfig(t *testing.T) {
	tg := mustTarget(t, "grpc://127.0.0.1:1/models/m")
	client, err := NewGRPCClient(tg, GRPCOptions{Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	plan := Plan{{time.Second, 1, 1}}
	body := StaticBody(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`)
	for want, c := range map[string]Config{
		"needs a GRPCClient":    {Target: tg, Mode: Open, Plan: plan, Body: body},
		"no HTTP method":        {Target: tg, Mode: Open, Plan: plan, Body: body, GRPC: client, Method: "POST"},
		"GRPCOptions.Header":    {Target: tg, Mode: Open, Plan: plan, Body: body, GRPC: client, Header: http.Header{"A": {"b"}}},
		"needs a request":       {Target: tg, Mode: Open, Plan: plan, GRPC: client},
		"request from the body": {Target: tg, Mode: Open, Plan: plan, GRPC: client, Body: StaticBody("{}")},
	} {
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line containing %q", err, want)
		}
	}
	for _, o := range []GRPCOptions{{Conns: -1}, {Conns: 5000}, {Header: http.Header{"Grpc-Timeout": {"1S"}}}} {
		if _, err := NewGRPCClient(tg, o); err == nil {
			t.Errorf("NewGRPCClient(%+v): no error", o)
		}
	}
	if _, err := NewGRPCClient(mustTarget(t, "http://h/predict"), GRPCOptions{}); err == nil {
		t.Error("NewGRPCClient on an http target: no error")
	}
}

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "OK", codes.Canceled: "CANCELLED",
		codes.ResourceExhausted: "RESOURCE_EXHAUSTED", codes.Unauthenticated: "UNAUTHENTICATED", 99: "CODE_99"} {
		if got := CodeName(c); got != want {
			t.Errorf("CodeName(%d) = %s, want %s", c, got, want)
		}
	}
}
