package session

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestParseHeaders(t *testing.T) {
	h, err := ParseHeaders([]string{"Authorization: Bearer k", " X-A :b ", "X-A: c"})
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Authorization": {"Bearer k"}, "X-A": {"b", "c"}}
	if len(h) != len(want) || h.Get("Authorization") != "Bearer k" || strings.Join(h.Values("X-A"), ",") != "b,c" {
		t.Errorf("headers %v, want %v", h, want)
	}
	for _, bad := range []string{"no colon", ": no name"} {
		if _, err := ParseHeaders([]string{bad}); err == nil || !strings.Contains(err.Error(), "want \"Name: value\"") {
			t.Errorf("header %q: %v, want a one-line refusal", bad, err)
		}
	}
}

// TestRunRefusesBeforeSending: option mistakes are one-line errors, found before any
// request is sent (nothing listens at the target).
func TestRunRefusesBeforeSending(t *testing.T) {
	const target = "http://127.0.0.1:1/predict"
	for _, c := range []struct {
		o    Options
		url  string
		want string
	}{
		{Options{Requests: 1}, "ftp://x/predict", "scheme"},
		{Options{Requests: 1, BodyFile: "a", Template: "b"}, target, "--body-file and --template exclude each other"},
		{Options{Requests: 1, BodyFile: "/nonexistent/body.json"}, target, "body:"},
		{Options{Requests: 1, Headers: []string{"bad"}}, target, "header"},
		{Options{Requests: 1, Stages: "@/nonexistent/stages"}, target, "stages:"},
		{Options{Requests: 1, GRPCConns: 0}, "grpc://127.0.0.1:1/models/m", "--grpc-conns 0"},
	} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), c.o, c.url, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v %s: %v, want one line containing %q", c.o, c.url, err, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%+v: wrote %q before refusing", c.o, out.String())
		}
	}
}
