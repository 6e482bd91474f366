package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/formats/onnx"
	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/loadpace"
	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/server"
)

type serveFlags struct {
	onnxLib           string
	onnxThreads       int
	onnxProvider      string
	httpAddr          string
	managementKeyFile string
	apiKeyFile        string
	configFile        string
	logLevel          string
	logFormat         string
	loadMemoryBudget  string
	loadCPUShare      string
	payloadLog        string
	payloadLogSample  float64
	monitoringWindow  string
	feedbackTTL       time.Duration
	repo              repository.Options
	opts              server.Options
	queue             queueFlags
}

// NewServeCommand is `serve`, the same in tide-server (what pods run) and the tide CLI.
// version is the binary's build version, reported in /v2 and tide_build_info.
func NewServeCommand(version string) *cobra.Command {
	f := serveFlags{opts: server.DefaultOptions()}
	f.opts.Version = version
	cmd := &cobra.Command{
		Use:   "serve [flags] PATH",
		Short: "Serve a model file or a model repository folder",
		Long: `Serve a model file (model.pkl is served as the model "model") or a repository folder
(<name>/[<version>/]<model file>, with an optional <name>/config.yaml).

Every flag can also be set in the environment as TIDE_<FLAG> (TIDE_HTTP_ADDR=:9000)
or in a YAML config file (--config, or TIDE_CONFIG) as "http-addr: :9000".
Flags win over the environment, which wins over the file.`,
		Example: `  tide serve model.pkl
  tide serve --http-addr 127.0.0.1:9000 ./models
  tide serve --grpc-addr "" model.pkl        # HTTP only
  tide serve --tls-cert tls.crt --tls-key tls.key ./models`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("serve takes one PATH (a model file or a repository folder), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnvAndFile(cmd.Flags(), f.configFile); err != nil {
				return err
			}
			return runServe(cmd.Context(), f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.httpAddr, "http-addr", ":8080", "address to serve HTTP on (HOST:PORT)")
	fl.StringVar(&f.configFile, "config", "", "YAML config file with flag values (env TIDE_CONFIG)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.Int64Var(&f.opts.MaxBodyBytes, "max-body-bytes", f.opts.MaxBodyBytes, "largest request body accepted; larger ones get 413")
	fl.DurationVar(&f.opts.ReadHeaderTimeout, "read-header-timeout", f.opts.ReadHeaderTimeout, "time allowed to read request headers")
	fl.DurationVar(&f.opts.ReadTimeout, "read-timeout", f.opts.ReadTimeout, "time allowed to read a whole request")
	fl.DurationVar(&f.opts.WriteTimeout, "write-timeout", f.opts.WriteTimeout, "time allowed to write a response")
	fl.DurationVar(&f.opts.IdleTimeout, "idle-timeout", f.opts.IdleTimeout, "how long an idle keep-alive connection stays open")
	fl.DurationVar(&f.opts.DrainDelay, "drain-delay", 0, "on SIGTERM, keep serving (unready) this long so load balancers stop sending")
	fl.DurationVar(&f.opts.DrainQuiet, "drain-quiet", time.Second, "after --drain-delay, keep serving until clients have stopped arriving for this long (at most half of --drain-timeout; 0: close at once)")
	fl.DurationVar(&f.opts.DrainTimeout, "drain-timeout", f.opts.DrainTimeout, "on SIGTERM, how long in-flight requests may take to finish")
	fl.BoolVar(&f.opts.StrictReadiness, "strict-readiness", false, "report unready while any model failed to load")
	fl.StringVar(&f.opts.DefaultModel, "default-model", "", "model that POST /predict serves when there are several")
	fl.StringVar(&f.opts.GRPCAddr, "grpc-addr", ":8081", `address to serve OIP v2 gRPC on (HOST:PORT); "" turns gRPC off`)
	fl.StringVar(&f.opts.TLSCertFile, "tls-cert", "", "PEM certificate file: serve HTTP and gRPC over TLS (needs --tls-key)")
	fl.StringVar(&f.opts.TLSKeyFile, "tls-key", "", "PEM private key file for --tls-cert")
	fl.StringVar(&f.apiKeyFile, "api-key-file", "", "file of API keys (one per line) required on inference and model metadata, REST and gRPC; also "+server.APIKeysEnv+" (comma-separated)")
	fl.StringVar(&f.onnxLib, "onnxruntime-lib", "", "path to libonnxruntime.so for ONNX models (env TIDE_ONNXRUNTIME_LIB wins; default: the usual places)")
	fl.IntVar(&f.onnxThreads, "onnx-intra-op-threads", 0, "threads inside one ONNX operator (0: ONNX Runtime decides; 1 is often best under many concurrent requests)")
	fl.StringVar(&f.onnxProvider, "onnx-provider", "cpu", "ONNX execution provider: cpu or cuda (needs ONNX Runtime's GPU build)")
	fl.BoolVar(&f.opts.WatchRepository, "watch", true, "reload models when their files change (new versions switch in once ready)")
	fl.DurationVar(&f.opts.WatchPoll, "watch-poll", 0, "also rescan the repository this often (for filesystems without change notifications)")
	fl.BoolVar(&f.opts.DisableRepositoryAPI, "disable-repository-api", false, "turn off POST /v2/repository/... (index, load, unload)")
	fl.StringVar(&f.managementKeyFile, "management-key-file", "", "file of API keys (one per line) required on the repository API, whose holders may load and unload models; also TIDE_MANAGEMENT_KEYS (comma-separated)")
	fl.StringVar(&f.opts.ManagementAddr, "management-addr", "", "serve model load and unload on this address (HOST:PORT) only, not on the HTTP and gRPC ports, so that a network policy can confine them; the index stays on both")
	fl.BoolVar(&f.opts.ModelControl, "model-control", false, "allow load and unload through the repository API without management keys (to whoever may call inference); off by default")
	fl.StringVar(&f.loadMemoryBudget, "load-memory-budget", "auto", `memory one model load may take (the file, what it decompresses to, what is decoded); a larger file fails to load with the reason. "auto": 3/4 of the container's memory limit (1/2 of the machine's outside one), shared by --load-concurrency; 0: unlimited; or a size such as 512Mi, 2Gi`)
	fl.IntVar(&f.repo.LoadConcurrency, "load-concurrency", 1, "models loaded at once (each at a lower CPU priority than serving, with its own --load-memory-budget)")
	fl.StringVar(&f.loadCPUShare, "load-cpu-share", "auto", `share of one CPU a model load may keep busy: it works in 2 ms slices and sleeps in between, so that serving keeps its latency (loads take 1/share as long). "auto": a quarter of the CPUs the server may use, at most 1 (0.5 on 2 CPUs, unpaced from 4); or a share such as 0.5, 50%, 1 (unpaced)`)
	fl.StringVar(&f.repo.Format, "format", "", `runtime of models whose config names no format (sklearn, xgboost, lightgbm, onnx); "" or "auto" picks it by file extension`)
	fl.BoolVar(&f.repo.FollowSymlinksOutside, "follow-symlinks-outside", false, "serve model folders and files that are symlinks to paths outside the repository (skipped with a warning by default)")
	fl.IntVar(&f.opts.Admission.MaxInFlight, "max-inflight", 0, "model runs at once, per model (0: unlimited); a model's config.yaml may override")
	fl.IntVar(&f.opts.Admission.MaxQueue, "max-queue", 0, "requests that may wait for a run slot or batch, per model; one more gets 429")
	fl.IntVar(&f.opts.Admission.MaxBatchSize, "max-batch-size", 0, "join requests into model runs of up to this many rows (0 or 1: no dynamic batching)")
	fl.DurationVar(&f.opts.Admission.MaxQueueDelay, "max-queue-delay", 0, "how long a request may wait for a batch to fill")
	fl.Float64Var(&f.opts.AccessLogSample, "access-log-sample", 0, "share of requests (0 to 1) logged as one structured access line each: request id, route, status, duration, sizes, trace id; never bodies (0: none)")
	fl.BoolVar(&f.opts.DisableDocs, "disable-docs", false, "turn off GET /openapi.json and the GET /docs page")
	fl.StringVar(&f.payloadLog, "payload-log", "", "send monitored models' sampled requests and answers, as CloudEvents, to this JSON Lines file or http(s):// URL (KServe logger format; a bounded queue, drops counted)")
	fl.Float64Var(&f.payloadLogSample, "payload-log-sample", 0, "share of a monitored model's requests (0 to 1) sent to --payload-log unless its config's monitoring.payload_log_sample says otherwise")
	fl.StringVar(&f.monitoringWindow, "monitoring-window", "1000", "drift window of monitored models unless their config says: a number of rows (1000) or a duration (10m)")
	fl.StringVar(&f.opts.FeedbackPeers, "feedback-peers", "", "forward feedback this replica did not make the prediction for to these replicas: HOST:PORT of a headless Service (resolved at each use) or a comma-separated list")
	fl.DurationVar(&f.feedbackTTL, "feedback-ttl", monitor.DefaultFeedback.TTL, "how long a monitored model's predictions wait for ground truth (POST /v2/models/NAME/feedback) unless its config says")
	f.queue.register(fl)
	return cmd
}

func runServe(ctx context.Context, f serveFlags, path string) error {
	log, err := NewLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	budgetWhy := ""
	if f.repo.Format == "auto" {
		f.repo.Format = ""
	}
	if _, ok := formats.Lookup(f.repo.Format); f.repo.Format != "" && !ok {
		return fmt.Errorf("--format %q: unknown format (known: %s)", f.repo.Format, strings.Join(formats.Names(), ", "))
	}
	if f.repo.LoadMemoryBudget, budgetWhy, err = loadBudget(f.loadMemoryBudget, f.repo.LoadConcurrency); err != nil {
		return err
	}
	if f.repo.LoadCPUShare, err = loadCPUShare(f.loadCPUShare); err != nil {
		return err
	}
	if err := f.monitoring(); err != nil {
		return err
	}
	setGoMemoryLimit(log)
	repo, err := repository.Open(path, f.repo, log)
	if err != nil {
		return err
	}
	if f.opts.DefaultModel != "" {
		if _, ok := repo.Entry(f.opts.DefaultModel); !ok {
			return fmt.Errorf("--default-model %q is not in the repository (models: %s)", f.opts.DefaultModel, strings.Join(repo.Names(), ", "))
		}
	}
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.httpAddr, err)
	}
	// Logged once start-up cannot fail on a flag or path any more, so that such a
	// failure stays the one line on stderr.
	logLoadBudget(log, f.repo.LoadMemoryBudget, budgetWhy, f.repo.LoadConcurrency, f.repo.LoadCPUShare)
	onnx.SetLibraryPath(f.onnxLib)
	if err := onnx.SetOptions(onnx.Options{IntraOpThreads: f.onnxThreads, Provider: onnx.Provider(f.onnxProvider)}); err != nil {
		return err
	}
	if f.opts.APIKeys, err = server.LoadAPIKeys(f.apiKeyFile, server.APIKeysEnv, os.Getenv(server.APIKeysEnv)); err != nil {
		return fmt.Errorf("--api-key-file: %w", err)
	}
	if f.opts.ManagementKeys, err = server.LoadAPIKeys(f.managementKeyFile, server.ManagementKeysEnv, os.Getenv(server.ManagementKeysEnv)); err != nil {
		return fmt.Errorf("--management-key-file: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if f.opts.AccessLogSample < 0 || f.opts.AccessLogSample > 1 {
		return fmt.Errorf("--access-log-sample %g: want a share from 0 to 1", f.opts.AccessLogSample)
	}
	stopTracing, err := startTracing(ctx, log, "tide-server", f.opts.Version)
	if err != nil {
		return err
	}
	defer stopTracing()
	srv := server.New(repo, f.opts, log)
	closeQueue, err := f.queue.start(ctx, srv, f.opts.Admission.MaxBatchSize, log)
	if err != nil {
		return err
	}
	defer closeQueue()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Serve(ctx, ln)
}

// monitoring applies the monitoring flags: the models' defaults and the
// payload log, opened now so that a bad path stops the server at start.
func (f *serveFlags) monitoring() error {
	d := monitor.DefaultSettings
	w, err := monitor.ParseWindow(f.monitoringWindow)
	if err != nil {
		return fmt.Errorf("--monitoring-window: %w", err)
	}
	d.Window = w
	if f.feedbackTTL <= 0 {
		return fmt.Errorf("--feedback-ttl %s: want a positive duration", f.feedbackTTL)
	}
	d.Feedback.TTL = f.feedbackTTL
	if !(f.payloadLogSample >= 0 && f.payloadLogSample <= 1) {
		return fmt.Errorf("--payload-log-sample %g: want a share from 0 to 1", f.payloadLogSample)
	}
	d.PayloadSample = f.payloadLogSample
	f.repo.Monitoring = &d
	if f.payloadLog != "" {
		if f.opts.PayloadLog, err = monitor.NewPayloadLogger(f.payloadLog, monitor.PayloadHooks{}); err != nil {
			return fmt.Errorf("--payload-log: %w", err)
		}
	}
	return nil
}

// loadBudget turns --load-memory-budget into bytes per load and, for "auto",
// where they came from.
func loadBudget(flag string, concurrency int) (int64, string, error) {
	if strings.TrimSpace(flag) == "auto" {
		n, why := loadmem.Default(concurrency)
		return n, why, nil
	}
	n, err := loadmem.ParseSize(flag)
	if err != nil {
		return 0, "", fmt.Errorf("--load-memory-budget: %w", err)
	}
	return n, "--load-memory-budget", nil
}

// loadCPUShare turns --load-cpu-share into a share of one CPU.
func loadCPUShare(flag string) (float64, error) {
	if strings.TrimSpace(flag) == "auto" {
		return loadpace.Default(), nil
	}
	share, err := loadpace.ParseShare(flag)
	if err != nil {
		return 0, fmt.Errorf("--load-cpu-share: %w", err)
	}
	return share, nil
}

// logLoadBudget states what one model load may take at startup: its memory
// budget (none is a warning) and its share of a CPU.
func logLoadBudget(log *slog.Logger, n int64, why string, concurrency int, cpuShare float64) {
	if n == 0 {
		log.Warn("model loads have no memory budget: a compressed file can expand past the container's memory limit", "from", why)
	} else {
		log.Info("model load memory budget", "bytes", n, "size", loadmem.Size(n), "from", why, "concurrent_loads", max(concurrency, 1))
	}
	log.Info("model load CPU share", "share_of_one_cpu", cpuShare)
}

// setGoMemoryLimit tells the Go runtime the container's memory limit (90% of
// it), unless GOMEMLIMIT says otherwise: without it the collector paces itself by
// heap growth alone and, after a large load, lets garbage stand until the kernel
// OOM-kills the pod.
func setGoMemoryLimit(log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit, _, ok := loadmem.ContainerLimit(); ok {
		debug.SetMemoryLimit(limit / 10 * 9)
		log.Debug("Go memory limit set from the container's", "bytes", limit/10*9)
	}
}
