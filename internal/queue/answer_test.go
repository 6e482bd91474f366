package queue

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestIsOIP(t *testing.T) {
	for body, want := range map[string]bool{
		`{"inputs": []}`: true,
		`{"id": "1", "parameters": {"inputs": 1}, "inputs": [{}]}`: true,
		`{"feature1": 1, "feature2": 2}`:                           false,
		`{"nested": {"inputs": []}}`:                               false,
		`[{"inputs": 1}]`:                                          false,
		`{"inputs"`:                                                true, // the key is enough: the OIP decoder says what is wrong
		`{"a": [1, {"b": "inputs"}], "inputs": null}`:              true,
		``:         false,
		`{`:        false,
		`"inputs"`: false,
	} {
		if got := IsOIP([]byte(body)); got != want {
			t.Errorf("IsOIP(%s) = %v, want %v", body, got, want)
		}
	}
}

// FuzzIsOIP: any body is classified without a panic, and a body that is not a
// JSON object is never OIP.
func FuzzIsOIP(f *testing.F) {
	for _, s := range []string{`{"inputs": []}`, `{"feature1": 1}`, `[1]`, `{"a": {"inputs": 1}}`, `{"inputs"`, "\x00{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if IsOIP(body) && !strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{") {
			t.Errorf("IsOIP(%q) = true for a body that is not an object", body)
		}
	})
}

func TestReasonOf(t *testing.T) {
	long := strings.Repeat("x", 600)
	for _, tt := range []struct {
		status int
		body   string
		want   string
	}{
		{422, `{"error":"input \"x\": want 2 columns\n got 3"}`, `422: input "x": want 2 columns got 3`},
		{503, `not json`, "503 Service Unavailable"},
		{500, `{"error":""}`, "500 Internal Server Error"},
		{400, `{"error":"` + long + `"}`, "400: " + long[:500] + "…"},
	} {
		got := reasonOf(tt.status, []byte(tt.body))
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("reasonOf(%d, %.40s) = %.80q, want %.80q", tt.status, tt.body, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://user:secret@nats.nats.svc:4222": "nats://redacted@nats.nats.svc:4222",
		"redis://:secret@redis:6379/0":          "redis://redacted@redis:6379/0",
		"nats://nats:4222":                      "nats://nats:4222",
		"redis://%zz":                           "(an unparsable URL)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
