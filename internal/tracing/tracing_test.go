package tracing

import (
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	cases := []struct {
		name     string
		env      func(string) string
		enabled  bool
		protocol string
		sampler  string
		err      string
	}{
		{"nothing set: off", env(), false, "http/protobuf", "parentbased_always_on", ""},
		{"an endpoint turns it on", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), true, "http/protobuf", "parentbased_always_on", ""},
		{"a traces endpoint does too", env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces"), true, "http/protobuf", "parentbased_always_on", ""},
		{"exporter otlp without endpoint: on, SDK default address", env("OTEL_TRACES_EXPORTER", "otlp"), true, "http/protobuf", "parentbased_always_on", ""},
		{"exporter none wins over an endpoint", env("OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"), false, "http/protobuf", "parentbased_always_on", ""},
		{"SDK disabled wins", env("OTEL_SDK_DISABLED", "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"), false, "http/protobuf", "parentbased_always_on", ""},
		{"grpc protocol", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), true, "grpc", "parentbased_always_on", ""},
		{"the traces protocol wins over the general one", env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), false, "grpc", "parentbased_always_on", ""},
		{"ratio sampler", env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.01"), false, "http/protobuf", "parentbased_traceidratio 0.01", ""},
		{"http/json is refused", env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), false, "", "", "want grpc or http/protobuf"},
		{"a zipkin exporter is refused", env("OTEL_TRACES_EXPORTER", "zipkin"), false, "", "", "OTLP only"},
		{"a ratio above 1 is refused", env("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "5"), false, "", "", "ratio from 0 to 1"},
		{"an unknown sampler is refused", env("OTEL_TRACES_SAMPLER", "jaeger_remote"), false, "", "", "OTEL_TRACES_SAMPLER"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := FromEnv(c.env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Enabled != c.enabled || cfg.Protocol != c.protocol || cfg.SamplerName != c.sampler {
				t.Fatalf("got enabled %v protocol %q sampler %q; want %v %q %q", cfg.Enabled, cfg.Protocol, cfg.SamplerName, c.enabled, c.protocol, c.sampler)
			}
		})
	}
}
