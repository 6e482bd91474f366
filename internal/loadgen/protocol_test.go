package loadgen

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		url                  string
		protocol             Protocol
		model, version, host string
		err                  string
	}{
		{url: "http://h:8080/predict", protocol: ProtocolPredict, host: "h:8080"},
		{url: "http://h/v2/models/fraud/infer", protocol: ProtocolOIP, model: "fraud", host: "h"},
		{url: "https://h/x/v2/models/fraud/versions/3/infer", protocol: ProtocolOIP, model: "fraud", version: "3", host: "h"},
		{url: "http://h/v1/models/fraud:predict", protocol: ProtocolKServeV1, model: "fraud", host: "h"},
		{url: "http://h/anything", protocol: ProtocolRaw, host: "h"},
		{url: "grpc://127.0.0.1:8081/models/fraud", protocol: ProtocolGRPC, model: "fraud", host: "127.0.0.1:8081"},
		{url: "grpc://h:8081/models/fraud/", protocol: ProtocolGRPC, model: "fraud", host: "h:8081"},
		{url: "grpc://[::1]:8081/models/fraud/versions/2", protocol: ProtocolGRPC, model: "fraud", version: "2", host: "[::1]:8081"},
		{url: "grpcs://fraud.example/models/fraud", protocol: ProtocolGRPC, model: "fraud", host: "fraud.example:443"},
		{url: "grpcs://fraud.example:9443/models/fraud", protocol: ProtocolGRPC, model: "fraud", host: "fraud.example:9443"},
		{url: "grpc://h/models/fraud", err: "no port"},
		{url: "grpc://h:8081", err: "the path must name the model"},
		{url: "grpc://h:8081/models/", err: "the path must name the model"},
		{url: "grpc://h:8081/models/a/versions/", err: "the path must name the model"},
		{url: "grpc://h:8081/models/a/b", err: "the path must name the model"},
		{url: "grpc://h:8081/v2/models/a/infer", err: "the path must name the model"},
		{url: "grpc://h:x/models/a", err: "invalid port"},
		{url: "grpc://h:70000/models/a", err: "is not HOST:PORT"},
		{url: "grpc://:8081/models/a", err: "is not HOST:PORT"},
		{url: "grpc://u:p@h:8081/models/a", err: "user info"},
		{url: "grpc://h:8081/models/a?x=1", err: "no query"},
		{url: "grpc:h:8081/models/a", err: "no host"},
		{url: "nats://nats.nats.svc:4222/tide-requests", protocol: ProtocolNATS, host: "nats.nats.svc:4222"},
		{url: "nats://u:p@h:4222/a.b", protocol: ProtocolNATS, host: "h:4222"},
		{url: "nats://h:4222", err: "the path must be one subject"},
		{url: "nats://h:4222/a.*", err: "no wildcards"},
		{url: "nats://h:4222/a/b", err: "the path must be one subject"},
		{url: "nats://h:4222/a?x=1", err: "no query"},
		{url: "redis://:pw@redis.redis.svc:6379/tide-requests", protocol: ProtocolRedis, host: "redis.redis.svc:6379"},
		{url: "redis://h:6379", err: "the path must be one stream key"},
		{url: "redis://h:6379/a/b", err: "the path must be one stream key"},
		{url: "redis://:secret@h:6379/", err: "redacted"},
		{url: "nats:///a", err: "no host"},
		{url: "nats://user:secret@h:4222/a.*", err: "redacted"},
		{url: "ftp://h/x", err: "scheme must be http, https, grpc, grpcs, nats or redis"},
		{url: "http:///predict", err: "no host"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.url)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTarget(%q) error = %v, want %q", tt.url, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseTarget(%q) error shows the password: %v", tt.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.url, err)
			continue
		}
		if got.Protocol != tt.protocol || got.Model != tt.model || got.Version != tt.version || got.URL.Host != tt.host {
			t.Errorf("ParseTarget(%q) = %s model %q version %q host %q; want %s %q %q %q",
				tt.url, got.Protocol, got.Model, got.Version, got.URL.Host, tt.protocol, tt.model, tt.version, tt.host)
		}
	}
}

// FuzzParseTarget: any string either parses or is refused in one line; a gRPC
// target always has a model and a dialable HOST:PORT.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"grpc://127.0.0.1:8081/models/fraud", "grpcs://h/models/m/versions/1",
		"http://h/v2/models/m/infer", "grpc://h:1/models/%2F", "grpc://[::1]:1/models/x", "grpc://h:/models/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := ParseTarget(raw)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n") && !strings.ContainsAny(raw, "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		if tg.Protocol == ProtocolGRPC && (tg.Model == "" || tg.URL.Port() == "" || tg.URL.Hostname() == "") {
			t.Fatalf("gRPC target %q: model %q, host %q", raw, tg.Model, tg.URL.Host)
		}
	})
}
