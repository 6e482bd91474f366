package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/activator"
)

type activatorFlags struct {
	listen, metricsAddr, target string
	controlTokenFile            string
	logLevel, logFormat         string
	cfg                         activator.Config
}

// NewActivatorCommand is `activator`, the proxy in front of a Deployment that KEDA
// may scale to zero (see internal/activator).
func NewActivatorCommand() *cobra.Command {
	var f activatorFlags
	cmd := &cobra.Command{
		Use:   "activator --target URL",
		Short: "Hold requests while a scaled-to-zero model starts, and count them for KEDA",
		Long: `Run the always-on proxy in front of a Tide Deployment that KEDA may scale to zero.
It forwards every request to --target (the Deployment's Service). While no backend
accepts connections it holds the request, retrying, for up to --hold-timeout, so the
first requests after idle wait for a pod instead of failing. It exports
tide_activator_requests_total and tide_activator_held_requests on --metrics-addr:
KEDA's Prometheus trigger reads them to wake the Deployment.

It is also the router of a canary rollout: a route set on the metrics port
(PUT /v1/route, allowed only with the token in --control-token-file) sends a share
of requests to a candidate version, or mirrors them to it in shadow mode, compares
the two versions' answers and measures each (GET /v1/route).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runActivator(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", ":8080", "address the proxy listens on")
	fl.StringVar(&f.metricsAddr, "metrics-addr", ":9091", "address for /metrics and /healthz")
	fl.StringVar(&f.target, "target", "", "backend base URL, e.g. http://fraud-tide.models.svc:80 (required)")
	fl.DurationVar(&f.cfg.HoldTimeout, "hold-timeout", 60*time.Second, "how long a request waits for a backend")
	fl.DurationVar(&f.cfg.RetryInterval, "retry-interval", 200*time.Millisecond, "pause between connection attempts while no backend answers")
	fl.Int64Var(&f.cfg.MaxBodyBytes, "max-body-bytes", 16<<20, "largest request body accepted (kept in memory to resend)")
	fl.IntVar(&f.cfg.MaxHeld, "max-held", 1000, "most requests held at once; more get 503")
	fl.StringVar(&f.controlTokenFile, "control-token-file", "", "file holding the token that may set the route (PUT /v1/route); empty: the route cannot be changed")
	fl.IntVar(&f.cfg.MirrorQueue, "mirror-queue", 256, "mirrored requests waiting to be sent; more are dropped and counted")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

func runActivator(ctx context.Context, f activatorFlags) error {
	if f.target == "" {
		return errors.New("activator: --target is required")
	}
	u, err := url.Parse(f.target)
	if err != nil {
		return fmt.Errorf("activator: --target: %w", err)
	}
	log, err := NewLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	f.cfg.Target = u
	if f.controlTokenFile != "" {
		b, err := os.ReadFile(f.controlTokenFile)
		if err != nil {
			return fmt.Errorf("activator: --control-token-file: %w", errors.Unwrap(err))
		}
		if f.cfg.ControlToken = strings.TrimSpace(string(b)); len(f.cfg.ControlToken) < 16 {
			return errors.New("activator: --control-token-file holds no token of at least 16 characters")
		}
	}
	stopTracing, err := startTracing(ctx, log, "tide-activator", "")
	if err != nil {
		return err
	}
	defer stopTracing()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return activator.Run(ctx, activator.Addrs{Proxy: f.listen, Ops: f.metricsAddr}, f.cfg, log, nil)
}
