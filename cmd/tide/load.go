package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/loadgen"
	"github.com/tideserve/tide/internal/loadgen/session"
)

func newLoadCommand() *cobra.Command {
	var f session.Options
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

A nats:// or redis:// URL publishes each request for queue workers (tide serve
--queue-url) to answer: nats://HOST:PORT/SUBJECT to a JetStream subject,
redis://[:PASS@]HOST:PORT/STREAM to a Redis stream. A request's latency is the
broker's ack; --queue-consumer NAME follows the workers' consumer (group) backlog
(waiting + unacked) each second, in the live view, the CSV and the plot. A rate-0
stage after the burst keeps the run, its backlog and --watch going while the
workers drain it (--stages 10s:2000,120s:0).

With --watch deployment/NAME it follows the Deployment's replicas, its
HorizontalPodAutoscaler and their events while the load runs; --watch model/NAME
also follows the Model's canary rollout (weight, error ratio, agreement), which
the report plots in a panel of its own. --report DIR writes summary.json,
timeseries.csv, load.png and load.svg.

On a terminal it shows a live table; otherwise it writes one JSON line per
second and a final {"summary": ...} line to stdout, and the text summary to stderr.`,
		Example: `  tide load -c 10 -d 30s http://127.0.0.1:8080/predict
  tide load -r 200 -d 1m --report out/ http://127.0.0.1:8080/v2/models/fraud/infer
  tide load -c 32 -d 30s --grpc-conns 2 grpc://127.0.0.1:8081/models/fraud
  tide load --stages 30s:10,60s:200,30s:10 --watch deployment/fraud --namespace ml --report out/ http://fraud.example/predict
  tide load --stages 10s:2000,120s:0 --queue-consumer tide --watch deployment/fraud-tide --report out/ \
      --template '{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}' nats://127.0.0.1:4222/tide-requests
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
	fl.IntVarP(&f.Concurrency, "concurrency", "c", 0, "closed loop: keep this many requests in flight (default 10 when neither -c, -r nor --stages is given)")
	fl.Float64VarP(&f.Rate, "rate", "r", 0, "open loop: send this many requests per second")
	fl.StringVar(&f.StagesMode, "mode", "open", "with --stages: open (targets are requests/s) or closed (targets are concurrent requests)")
	fl.DurationVarP(&f.Duration, "duration", "d", 0, "how long to run (default 10s unless -n is given)")
	fl.Int64VarP(&f.Requests, "requests", "n", 0, "stop after this many requests")
	fl.StringVar(&f.Stages, "stages", "", "plan of DURATION:TARGET steps and DURATION:FROM-TO ramps, or @FILE")
	fl.DurationVar(&f.Timeout, "timeout", 20*time.Second, "per-request timeout (for gRPC, each call's deadline)")
	fl.BoolVar(&f.HTTP2, "h2", false, "speak HTTP/2 (h2c for http:// URLs)")
	fl.IntVar(&f.GRPCConns, "grpc-conns", loadgen.DefaultGRPCConns, "gRPC: connections the calls share")
	fl.BoolVar(&f.GRPCRaw, "grpc-raw", false, "gRPC: send tensor data in raw_input_contents instead of typed contents")
	fl.BoolVarP(&f.Insecure, "insecure", "k", false, "skip TLS certificate verification")
	fl.StringVarP(&f.Method, "method", "m", "", "HTTP method (default POST with a body, GET without)")
	fl.StringArrayVarP(&f.Headers, "header", "H", nil, `extra header "Name: value" (repeatable; gRPC metadata for grpc:// URLs)`)
	fl.StringVar(&f.BodyFile, "body-file", "", "send this file as every request's body (for gRPC, an OIP JSON request)")
	fl.StringVar(&f.Template, "template", "", "body template with {{rand LO HI}}, {{randint LO HI}}, {{normal M SD}}, {{choice A B}}, {{seq}}, or @FILE")
	fl.StringVar(&f.Model, "model", "", "model whose metadata shapes generated /predict bodies (default: the server's only model)")
	fl.IntVar(&f.Rows, "rows", 1, "rows per generated request")
	fl.IntVar(&f.MaxInFlight, "max-in-flight", 10000, "open loop: most requests in flight at once")
	fl.Uint64Var(&f.Seed, "seed", 0, "seed for random bodies (0: from the clock)")
	fl.Float64Var(&f.TraceSample, "trace-sample", 0, "share of requests (0 to 1) that start a sampled W3C trace (a traceparent header or gRPC metadata), which a traced server continues")
	fl.StringVar(&f.ReportDir, "report", "", "write summary.json, timeseries.csv, load.png and load.svg to this folder")
	fl.StringVar(&f.WatchRef, "watch", "", "follow deployment/NAME's replicas, HPA and events during the run; model/NAME adds the Model's canary rollout (weight, error ratio, agreement)")
	fl.StringVar(&f.Namespace, "namespace", "", "namespace of the watched deployment (default: the kubeconfig context's)")
	fl.StringVar(&f.Consumer, "queue-consumer", "", "nats:// and redis:// targets: follow this consumer's (group's) backlog, the workers' --queue-group")
	fl.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig for --watch (default: $KUBECONFIG or ~/.kube/config)")
	return cmd
}

// runLoad wires the flags to a session: the first Ctrl-C stops sending and lets the
// requests in flight finish, so the summary still comes; a second one ends the
// process at once.
func runLoad(cmd *cobra.Command, o session.Options, rawURL string) error {
	target, err := loadgen.ParseTarget(rawURL)
	if err != nil {
		return err
	}
	if err := checkProtocolFlags(cmd, target); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	return session.Run(ctx, o, rawURL, cmd.OutOrStdout(), cmd.ErrOrStderr())
}

// checkProtocolFlags refuses flags that mean nothing for the target's protocol,
// so a mistaken command says so instead of quietly doing something else.
func checkProtocolFlags(cmd *cobra.Command, t loadgen.Target) error {
	changed := cmd.Flags().Changed
	if t.Protocol == loadgen.ProtocolGRPC {
		for _, name := range []string{"h2", "method", "model"} {
			if changed(name) {
				return fmt.Errorf("--%s does not apply to a grpc:// URL (gRPC is HTTP/2, each request a ModelInfer call, the URL names the model)", name)
			}
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
