package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tideserve/tide/internal/loadgen"
	"github.com/tideserve/tide/internal/loadgen/report"
	"github.com/tideserve/tide/internal/loadgen/watch"
)

type loadFlags struct {
	concurrency int
	rate        float64
	mode        string
	duration    time.Duration
	requests    int64
	stages      string
	timeout     time.Duration
	http2       bool
	grpcConns   int
	grpcRaw     bool
	insecure    bool
	method      string
	headers     []string
	bodyFile    string
	template    string
	model       string
	rows        int
	maxInFlight int
	seed        uint64
	reportDir   string
	watchRef    string
	namespace   string
	kubeconfig  string
}

func newLoadCommand() *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load [flags] URL",
		Short: "Drive load at a model server and report throughput, latency and scaling",
		Long: `Drive HTTP or gRPC load at a model and measure it.

Closed loop (-c N) keeps N requests in flight. Open loop (-r RATE) sends RATE
requests per second whatever the server does, and measures each latency from the
request's intended send time, so a stalled server cannot hide its tail.
--stages runs a plan of steps and ramps (30s:10,60s:200,30s:10 or 60s:10-200).

The URL's path picks the protocol: /predict (the tutorial's JSON),
/v2/models/{m}/infer (Open Inference Protocol v2), /v1/models/{m}:predict
(KServe v1). Unless --body-file or --template says otherwise, bodies are random
rows generated from the model's metadata (GET /v2/models/{m}).

A grpc:// URL speaks Open Inference Protocol v2 over gRPC, grpcs:// with TLS:
grpc://HOST:PORT/models/NAME or grpc://HOST:PORT/models/NAME/versions/VERSION.
Each request is a ModelInfer call, built from an OIP JSON body (--body-file,
--template, or generated from the ModelMetadata RPC), on --grpc-conns shared
HTTP/2 connections, with --timeout as its deadline. Calls are counted by gRPC
status code (OK, RESOURCE_EXHAUSTED, ...) as HTTP responses are by status.

With --watch deployment/NAME it follows the Deployment's replicas, its
HorizontalPodAutoscaler and their events while the load runs. --report DIR
writes summary.json, timeseries.csv, load.png and load.svg.

On a terminal it shows a live table; otherwise it writes one JSON line per
second and a final {"summary": ...} line to stdout, and the text summary to stderr.`,
		Example: `  tide load -c 10 -d 30s http://127.0.0.1:8080/predict
  tide load -r 200 -d 1m --report out/ http://127.0.0.1:8080/v2/models/fraud/infer
  tide load -c 32 -d 30s --grpc-conns 2 grpc://127.0.0.1:8081/models/fraud
  tide load --stages 30s:10,60s:200,30s:10 --watch deployment/fraud --namespace ml --report out/ http://fraud.example/predict
  tide load -c 4 -n 1000 --template '{"feature1": {{rand -3 3}}, "feature2": {{rand 0 1}}}' http://127.0.0.1:8080/predict`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("load takes one URL, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.concurrency, "concurrency", "c", 0, "closed loop: keep this many requests in flight (default 10 when neither -c, -r nor --stages is given)")
	fl.Float64VarP(&f.rate, "rate", "r", 0, "open loop: send this many requests per second")
	fl.StringVar(&f.mode, "mode", "open", "with --stages: open (targets are requests/s) or closed (targets are concurrent requests)")
	fl.DurationVarP(&f.duration, "duration", "d", 0, "how long to run (default 10s unless -n is given)")
	fl.Int64VarP(&f.requests, "requests", "n", 0, "stop after this many requests")
	fl.StringVar(&f.stages, "stages", "", "plan of DURATION:TARGET steps and DURATION:FROM-TO ramps, or @FILE")
	fl.DurationVar(&f.timeout, "timeout", 20*time.Second, "per-request timeout (for gRPC, each call's deadline)")
	fl.BoolVar(&f.http2, "h2", false, "speak HTTP/2 (h2c for http:// URLs)")
	fl.IntVar(&f.grpcConns, "grpc-conns", loadgen.DefaultGRPCConns, "gRPC: connections the calls share")
	fl.BoolVar(&f.grpcRaw, "grpc-raw", false, "gRPC: send tensor data in raw_input_contents instead of typed contents")
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "skip TLS certificate verification")
	fl.StringVarP(&f.method, "method", "m", "", "HTTP method (default POST with a body, GET without)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, `extra header "Name: value" (repeatable; gRPC metadata for grpc:// URLs)`)
	fl.StringVar(&f.bodyFile, "body-file", "", "send this file as every request's body (for gRPC, an OIP JSON request)")
	fl.StringVar(&f.template, "template", "", "body template with {{rand LO HI}}, {{randint LO HI}}, {{normal M SD}}, {{choice A B}}, {{seq}}, or @FILE")
	fl.StringVar(&f.model, "model", "", "model whose metadata shapes generated /predict bodies (default: the server's only model)")
	fl.IntVar(&f.rows, "rows", 1, "rows per generated request")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 10000, "open loop: most requests in flight at once")
	fl.Uint64Var(&f.seed, "seed", 0, "seed for random bodies (0: from the clock)")
	fl.StringVar(&f.reportDir, "report", "", "write summary.json, timeseries.csv, load.png and load.svg to this folder")
	fl.StringVar(&f.watchRef, "watch", "", "follow deployment/NAME's replicas, HPA and events during the run")
	fl.StringVar(&f.namespace, "namespace", "", "namespace of the watched deployment (default: the kubeconfig context's)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --watch (default: $KUBECONFIG or ~/.kube/config)")
	return cmd
}

func runLoad(cmd *cobra.Command, f loadFlags, rawURL string) error {
	target, err := loadgen.ParseTarget(rawURL)
	if err != nil {
		return err
	}
	mode, plan, err := f.plan()
	if err != nil {
		return err
	}
	header, err := parseHeaders(f.headers)
	if err != nil {
		return err
	}
	if err := f.checkProtocolFlags(cmd, target); err != nil {
		return err
	}

	// The first Ctrl-C stops sending and lets the requests in flight finish,
	// so the summary still comes; a second one ends the process at once.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()

	var client *http.Client
	var grpcClient *loadgen.GRPCClient
	var metadata func(context.Context) (*loadgen.ModelMetadata, error)
	if target.Protocol == loadgen.ProtocolGRPC {
		grpcClient, err = loadgen.NewGRPCClient(target, loadgen.GRPCOptions{
			Timeout: f.timeout, Conns: f.grpcConns, Insecure: f.insecure, Raw: f.grpcRaw, Header: header})
		if err != nil {
			return err
		}
		defer grpcClient.Close()
		header = nil // sent as the calls' metadata
		metadata = func(ctx context.Context) (*loadgen.ModelMetadata, error) { return grpcClient.Metadata(ctx, target) }
	} else {
		client = loadgen.NewClient(loadgen.ClientOptions{Timeout: f.timeout, HTTP2: f.http2, Insecure: f.insecure})
		metadata = func(ctx context.Context) (*loadgen.ModelMetadata, error) {
			return loadgen.FetchMetadata(ctx, client, target, f.model)
		}
	}

	body, bodyDesc, err := f.body(ctx, metadata, target)
	if err != nil {
		return err
	}

	var watcher *watch.Watcher
	if f.watchRef != "" {
		if watcher, err = startWatcher(ctx, f); err != nil {
			return err
		}
	}

	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	terminal := isTerminal(stdout)
	live := report.NewLive(stdout, terminal, watcher != nil)
	fmt.Fprintf(stderr, "tide load: %s loop, stages %s, %s; %s\n", mode, plan, target.URL, bodyDesc)

	cfg := loadgen.Config{
		Target: target, Method: f.method, Header: header, Body: body, Mode: mode, Plan: plan,
		MaxRequests: f.requests, MaxInFlight: f.maxInFlight, Client: client, GRPC: grpcClient, Seed: f.seed,
		OnSample: live.Sample,
	}
	if watcher != nil {
		cfg.Replicas = watcher.Replicas
		watcher.SetOrigin(time.Now())
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}

	rep := &report.Report{Summary: res.Summary, Samples: res.Samples}
	if watcher != nil {
		tl := watcher.Timeline()
		rep.Cluster = &tl
	}
	if terminal {
		err = report.WriteSummary(stdout, res.Summary)
	} else {
		err = writeSummaryLine(stdout, res.Summary)
		if err == nil {
			err = report.WriteSummary(stderr, res.Summary)
		}
	}
	if err != nil {
		return err
	}
	if f.reportDir != "" {
		if err := report.WriteDir(f.reportDir, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "report written to %s\n", f.reportDir)
	}
	if res.Summary.Completed > 0 && res.Summary.OK == 0 {
		return fmt.Errorf("no request succeeded (%d sent; see the status and error breakdown)", res.Summary.Sent)
	}
	return nil
}

// plan turns -c, -r, -d, -n, --stages and --mode into a mode and a schedule.
func (f loadFlags) plan() (loadgen.Mode, loadgen.Plan, error) {
	spec := loadgen.LoadSpec{
		Concurrency: f.concurrency, Rate: f.rate, Duration: f.duration, Requests: f.requests,
		Stages: f.stages, StagesMode: loadgen.Mode(f.mode),
	}
	if path, ok := strings.CutPrefix(f.stages, "@"); ok {
		file, err := os.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("stages: %w", err)
		}
		defer file.Close()
		spec.StagesFile = file
	}
	return spec.Resolve()
}

// checkProtocolFlags refuses flags that mean nothing for the target's protocol,
// so a mistaken command says so instead of quietly doing something else.
func (f loadFlags) checkProtocolFlags(cmd *cobra.Command, t loadgen.Target) error {
	changed := cmd.Flags().Changed
	if t.Protocol == loadgen.ProtocolGRPC {
		for _, name := range []string{"h2", "method", "model"} {
			if changed(name) {
				return fmt.Errorf("--%s does not apply to a grpc:// URL (gRPC is HTTP/2, each request a ModelInfer call, the URL names the model)", name)
			}
		}
		if f.grpcConns < 1 {
			return fmt.Errorf("--grpc-conns %d: want at least 1", f.grpcConns)
		}
		return nil
	}
	for _, name := range []string{"grpc-conns", "grpc-raw"} {
		if changed(name) {
			return fmt.Errorf("--%s applies to grpc:// URLs only", name)
		}
	}
	return nil
}

// body picks the request body: a file, a template, or one generated from
// the model's metadata. The second result says which, for the header line.
func (f loadFlags) body(ctx context.Context, metadata func(context.Context) (*loadgen.ModelMetadata, error), t loadgen.Target) (loadgen.BodySource, string, error) {
	if f.bodyFile != "" && f.template != "" {
		return nil, "", errors.New("--body-file and --template exclude each other")
	}
	if f.bodyFile != "" {
		b, err := os.ReadFile(f.bodyFile)
		if err != nil {
			return nil, "", fmt.Errorf("body: %w", err)
		}
		return loadgen.StaticBody(b), "body from " + f.bodyFile, nil
	}
	if f.template != "" {
		src, desc := f.template, "body from a template"
		if path, ok := strings.CutPrefix(src, "@"); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("template: %w", err)
			}
			src, desc = string(b), "body from template "+path
		}
		tpl, err := loadgen.ParseTemplate(src)
		if err != nil {
			return nil, "", err
		}
		return tpl, desc, nil
	}
	if t.Protocol == loadgen.ProtocolRaw {
		return nil, "no body", nil
	}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := metadata(mctx)
	if err != nil {
		return nil, "", fmt.Errorf("generate bodies (or give --body-file or --template): %w", err)
	}
	src, err := loadgen.TemplateFor(t.Protocol, md, f.rows)
	if err != nil {
		return nil, "", err
	}
	tpl, err := loadgen.ParseTemplate(src)
	if err != nil {
		return nil, "", fmt.Errorf("generated template: %w", err)
	}
	return tpl, fmt.Sprintf("random %d-row bodies from model %s's metadata", f.rows, md.Name), nil
}

func parseHeaders(lines []string) (http.Header, error) {
	h := http.Header{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("header %q: want \"Name: value\"", l)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h, nil
}

func startWatcher(ctx context.Context, f loadFlags) (*watch.Watcher, error) {
	name, err := watch.ParseRef(f.watchRef)
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: f.namespace}})
	ns, _, err := kc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("watch: kubeconfig: %w", err)
	}
	rc, err := kc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("watch: kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := watch.New(client, ns, name)
	if err := w.Start(ctx, 15*time.Second); err != nil {
		return nil, err
	}
	return w, nil
}

func writeSummaryLine(w io.Writer, s loadgen.Summary) error {
	b, err := json.Marshal(struct {
		Summary loadgen.Summary `json:"summary"`
	}{s})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
