package server

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tideserve/tide/internal/tracing"
)

// BenchmarkTracing is POST /predict through the handler with tracing off, and on
// at 1% and 100% sampling (spans batched to an exporter that drops them): the
// in-process share of bench/tracing.sh's figures.
func BenchmarkTracing(b *testing.B) {
	s := benchServer(b, "fraud_logreg.joblib")
	body := `{"feature1": 0.5, "feature2": -1.2}`
	b.Run("off", func(b *testing.B) { benchHandler(b, s, "/predict", body) })
	for _, c := range []struct {
		name  string
		ratio float64
	}{{"on-1pct", 0.01}, {"on-100pct", 1}} {
		b.Run(c.name, func(b *testing.B) {
			cfg, err := tracing.FromEnv(func(k string) string {
				return map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": fmt.Sprint(c.ratio)}[k]
			})
			if err != nil {
				b.Fatal(err)
			}
			defer tracing.Use(tracetest.NewNoopExporter(), cfg, false)()
			benchHandler(b, s, "/predict", body)
		})
	}
}
