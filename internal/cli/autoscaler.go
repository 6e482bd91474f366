package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/tideserve/tide/internal/autoscaler"
)

type autoscalerFlags struct {
	grpcAddr, metricsAddr string
	pods, activators      string
	scaleDeployment       string
	interval              time.Duration
	logLevel, logFormat   string
	policy                autoscaler.Policy
}

// NewAutoscalerCommand is `autoscaler`, the KEDA external push scaler fed by the
// Tide pods' own counters (see internal/autoscaler).
func NewAutoscalerCommand() *cobra.Command {
	f := autoscalerFlags{policy: autoscaler.DefaultPolicy()}
	cmd := &cobra.Command{
		Use:   "autoscaler --pods NAME:PORT",
		Short: "Scale a Tide Deployment in seconds: a KEDA external push scaler fed by the pods' own counters",
		Long: `Run Tide's fast scaler. Each --interval it scrapes /metrics of every ready Tide pod
(the A records of --pods, a headless Service) and of the activator (--activators),
and decides the replicas from in-flight requests and requests/s against the targets
per pod: over a stable window in quiet times, over a short panic window when demand
outruns the ready pods (and then never lower). KEDA reads the decision over its
external scaler gRPC interface on --grpc-addr (trigger type external-push). With
--scale-deployment it also raises that Deployment's replicas itself, through the
scale subresource, so a burst does not wait for the HPA's next sync.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAutoscaler(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.grpcAddr, "grpc-addr", ":9090", "address KEDA's external scaler calls reach")
	fl.StringVar(&f.metricsAddr, "metrics-addr", ":9091", "address for /metrics and /healthz")
	fl.StringVar(&f.pods, "pods", "", "headless Service NAME:PORT of the Tide pods, e.g. fraud-tide-pods.models.svc:8080 (required)")
	fl.StringVar(&f.activators, "activators", "", "headless Service NAME:PORT of the activator pods (their held requests are demand)")
	fl.StringVar(&f.scaleDeployment, "scale-deployment", "", "raise this Deployment (in the pod's namespace) through its scale subresource; empty: KEDA's HPA alone applies the decisions")
	fl.DurationVar(&f.interval, "interval", time.Second, "how often to scrape and decide")
	fl.Float64Var(&f.policy.TargetConcurrency, "target-concurrency", f.policy.TargetConcurrency, "in-flight requests per pod")
	fl.Float64Var(&f.policy.TargetRate, "target-rate", 0, "requests/s per pod (0: concurrency only)")
	fl.DurationVar(&f.policy.StableWindow, "stable-window", f.policy.StableWindow, "window that decides in quiet times, and how long panic lasts")
	fl.DurationVar(&f.policy.PanicWindow, "panic-window", f.policy.PanicWindow, "window that decides in a burst")
	fl.Float64Var(&f.policy.PanicThreshold, "panic-threshold", f.policy.PanicThreshold, "panic when the panic window asks for this multiple of the ready pods")
	fl.IntVar(&f.policy.MinReplicas, "min-replicas", f.policy.MinReplicas, "fewest replicas asked for (0 allows scale to zero)")
	fl.IntVar(&f.policy.MaxReplicas, "max-replicas", f.policy.MaxReplicas, "most replicas asked for")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

// splitTarget parses NAME:PORT.
func splitTarget(flag, v string) (string, int, error) {
	host, p, err := net.SplitHostPort(v)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || host == "" || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("autoscaler: --%s %q: want NAME:PORT", flag, v)
	}
	return host, port, nil
}

func runAutoscaler(ctx context.Context, f autoscalerFlags) error {
	if f.pods == "" {
		return errors.New("autoscaler: --pods is required")
	}
	if f.interval < 100*time.Millisecond {
		return fmt.Errorf("autoscaler: --interval %s: want at least 100ms", f.interval)
	}
	host, port, err := splitTarget("pods", f.pods)
	if err != nil {
		return err
	}
	var acts autoscaler.Targets
	if f.activators != "" {
		ah, ap, err := splitTarget("activators", f.activators)
		if err != nil {
			return err
		}
		acts = autoscaler.DNSTargets(ah, ap)
	}
	log, err := NewLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	var raise autoscaler.Raiser
	if f.scaleDeployment != "" {
		k, err := autoscaler.InClusterScale(f.scaleDeployment)
		if err != nil {
			return err
		}
		raise = k
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, err := autoscaler.New(f.policy, autoscaler.NewScraper(autoscaler.DNSTargets(host, port), acts), raise, log, reg)
	if err != nil {
		return err
	}

	gl, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return fmt.Errorf("autoscaler: --grpc-addr: %w", err)
	}
	ml, err := net.Listen("tcp", f.metricsAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("autoscaler: --metrics-addr: %w", err)
	}
	g := grpc.NewServer()
	s.Register(g)
	ops := http.NewServeMux()
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	opsSrv := &http.Server{Handler: ops, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- g.Serve(gl) }()
	go func() { errc <- opsSrv.Serve(ml) }()
	go s.Run(ctx, f.interval)
	log.Info("autoscaler listening", "grpc", gl.Addr().String(), "metrics", ml.Addr().String(), "pods", f.pods,
		"activators", f.activators, "scale_deployment", f.scaleDeployment, "target_concurrency", f.policy.TargetConcurrency,
		"target_rate", f.policy.TargetRate, "stable_window", f.policy.StableWindow, "panic_window", f.policy.PanicWindow)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	g.Stop() // KEDA's streams reconnect to the next pod; nothing is held here
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opsSrv.Shutdown(shut)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}
