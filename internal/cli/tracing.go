package cli

import (
	"context"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/tideserve/tide/internal/tracing"
)

// startTracing turns on OpenTelemetry tracing when the standard OTEL_*
// environment asks for it, and logs the one line that says so. The returned stop
// flushes buffered spans (at most 5 s) and is safe to call when tracing is off.
func startTracing(ctx context.Context, log *slog.Logger, service, version string) (stop func(), err error) {
	cfg, err := tracing.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	if !cfg.Enabled {
		return func() {}, nil
	}
	// The SDK reports export failures through its own handler; route them to our
	// log, once per failure, so that a wrong collector address is seen, not silent.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("trace export failed", "error", err) }))
	shutdown, err := tracing.Start(ctx, cfg, service, version)
	if err != nil {
		return nil, err
	}
	log.Info("tracing on", "protocol", cfg.Protocol, "sampler", cfg.SamplerName)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("flushing traces on exit failed", "error", err)
		}
	}, nil
}
