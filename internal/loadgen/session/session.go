// Package session is one `tide load` run from start to finish: it resolves the
// load plan, picks the request bodies, opens the HTTP or gRPC client, follows the
// Deployment when asked, drives the engine (package loadgen) with the live view,
// and writes the summary and the report. cmd/tide only turns flags into Options.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tideserve/tide/internal/loadgen"
	"github.com/tideserve/tide/internal/loadgen/report"
	"github.com/tideserve/tide/internal/loadgen/watch"
)

// Options is everything a run is told; each field is one `tide load` flag.
type Options struct {
	Concurrency int           // -c: closed loop, requests kept in flight
	Rate        float64       // -r: open loop, requests per second
	StagesMode  string        // --mode: what --stages targets mean (open or closed)
	Duration    time.Duration // -d
	Requests    int64         // -n
	Stages      string        // --stages, or @FILE
	Timeout     time.Duration // per request (gRPC: the call's deadline)
	HTTP2       bool          // --h2
	GRPCConns   int           // --grpc-conns
	GRPCRaw     bool          // --grpc-raw
	Insecure    bool          // -k
	Method      string        // -m
	Headers     []string      // -H "Name: value"
	BodyFile    string        // --body-file
	Template    string        // --template, or @FILE
	Model       string        // --model: whose metadata shapes generated /predict bodies
	Rows        int           // --rows per generated request
	MaxInFlight int           // --max-in-flight (open loop)
	Seed        uint64        // --seed
	TraceSample float64       // --trace-sample: share of requests that start a sampled trace
	ReportDir   string        // --report
	WatchRef    string        // --watch deployment/NAME
	Namespace   string        // --namespace of the watched Deployment
	Kubeconfig  string        // --kubeconfig
	Consumer    string        // --queue-consumer: whose backlog a nats:// or redis:// run follows
}

// Run drives the load at rawURL until the plan ends or ctx is cancelled (the
// requests in flight then finish, so the summary still comes). On a terminal
// stdout shows a live table; otherwise it gets one JSON line per second and a
// final {"summary": ...} line, and stderr the text summary.
func Run(ctx context.Context, o Options, rawURL string, stdout, stderr io.Writer) error {
	target, err := loadgen.ParseTarget(rawURL)
	if err != nil {
		return err
	}
	mode, plan, err := o.plan()
	if err != nil {
		return err
	}
	header, err := ParseHeaders(o.Headers)
	if err != nil {
		return err
	}

	var client *http.Client
	var grpcClient *loadgen.GRPCClient
	useHTTP1 := false // plain http:// over HTTP/1.1: tide load's own client
	var publisher loadgen.QueuePublisher
	var metadata func(context.Context) (*loadgen.ModelMetadata, error)
	switch target.Protocol {
	case loadgen.ProtocolNATS, loadgen.ProtocolRedis:
		if o.BodyFile == "" && o.Template == "" {
			return errors.New("a queue target needs each message's body: give --template or --body-file (the worker's model is not asked for its metadata)")
		}
		if publisher, err = loadgen.NewQueuePublisher(ctx, target); err != nil {
			return err
		}
		defer publisher.Close()
		if o.Consumer != "" {
			followCtx, stopFollowing := context.WithCancel(ctx)
			defer stopFollowing()
			go publisher.FollowBacklog(followCtx, o.Consumer)
		}
	case loadgen.ProtocolGRPC:
		if o.GRPCConns < 1 {
			return fmt.Errorf("--grpc-conns %d: want at least 1", o.GRPCConns)
		}
		grpcClient, err = loadgen.NewGRPCClient(target, loadgen.GRPCOptions{
			Timeout: o.Timeout, Conns: o.GRPCConns, Insecure: o.Insecure, Raw: o.GRPCRaw, Header: header})
		if err != nil {
			return err
		}
		defer grpcClient.Close()
		header = nil // sent as the calls' metadata
		metadata = func(ctx context.Context) (*loadgen.ModelMetadata, error) { return grpcClient.Metadata(ctx, target) }
	default:
		client = loadgen.NewClient(loadgen.ClientOptions{Timeout: o.Timeout, HTTP2: o.HTTP2, Insecure: o.Insecure})
		useHTTP1 = target.URL.Scheme == "http" && !o.HTTP2
		metadata = func(ctx context.Context) (*loadgen.ModelMetadata, error) {
			return loadgen.FetchMetadata(ctx, client, target, o.Model)
		}
	}

	body, bodyDesc, err := o.body(ctx, metadata, target)
	if err != nil {
		return err
	}

	var watcher *watch.Watcher
	if o.WatchRef != "" {
		if watcher, err = startWatcher(ctx, o); err != nil {
			return err
		}
	}

	terminal := isTerminal(stdout)
	live := report.NewLive(stdout, terminal, watcher != nil)
	fmt.Fprintf(stderr, "tide load: %s loop, stages %s, %s; %s\n", mode, plan, target.URL, bodyDesc)

	cfg := loadgen.Config{
		Target: target, Method: o.Method, Header: header, Body: body, Mode: mode, Plan: plan,
		MaxRequests: o.Requests, MaxInFlight: o.MaxInFlight, Client: client, GRPC: grpcClient, Seed: o.Seed,
		TraceSample: o.TraceSample,
		OnSample:    live.Sample,
	}
	if useHTTP1 {
		h1, err := loadgen.NewHTTP1Client(cfg, o.Timeout, o.MaxInFlight)
		if err != nil {
			return err
		}
		defer h1.Close()
		cfg.HTTP1 = h1
		// A closed loop runs on the generator's own event loops (Linux): the
		// same measurements for less of the generator's CPU.
		cfg.EventLoop = true
	}
	if publisher != nil {
		cfg.Publisher = publisher
		if o.Consumer != "" {
			cfg.Backlog = publisher.Backlog
		}
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
	if o.ReportDir != "" {
		if err := report.WriteDir(o.ReportDir, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "report written to %s\n", o.ReportDir)
	}
	if res.Summary.Completed > 0 && res.Summary.OK == 0 {
		return fmt.Errorf("no request succeeded (%d sent; see the status and error breakdown)", res.Summary.Sent)
	}
	return nil
}

// plan turns -c, -r, -d, -n, --stages and --mode into a mode and a schedule.
func (o Options) plan() (loadgen.Mode, loadgen.Plan, error) {
	spec := loadgen.LoadSpec{
		Concurrency: o.Concurrency, Rate: o.Rate, Duration: o.Duration, Requests: o.Requests,
		Stages: o.Stages, StagesMode: loadgen.Mode(o.StagesMode),
	}
	if path, ok := strings.CutPrefix(o.Stages, "@"); ok {
		file, err := os.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("stages: %w", err)
		}
		defer file.Close()
		spec.StagesFile = file
	}
	return spec.Resolve()
}

// body picks the request body: a file, a template, or one generated from
// the model's metadata. The second result says which, for the header line.
func (o Options) body(ctx context.Context, metadata func(context.Context) (*loadgen.ModelMetadata, error), t loadgen.Target) (loadgen.BodySource, string, error) {
	if o.BodyFile != "" && o.Template != "" {
		return nil, "", errors.New("--body-file and --template exclude each other")
	}
	if o.BodyFile != "" {
		b, err := os.ReadFile(o.BodyFile)
		if err != nil {
			return nil, "", fmt.Errorf("body: %w", err)
		}
		return loadgen.StaticBody(b), "body from " + o.BodyFile, nil
	}
	if o.Template != "" {
		src, desc := o.Template, "body from a template"
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
	src, err := loadgen.TemplateFor(t.Protocol, md, o.Rows)
	if err != nil {
		return nil, "", err
	}
	tpl, err := loadgen.ParseTemplate(src)
	if err != nil {
		return nil, "", fmt.Errorf("generated template: %w", err)
	}
	return tpl, fmt.Sprintf("random %d-row bodies from model %s's metadata", o.Rows, md.Name), nil
}

// ParseHeaders reads -H "Name: value" lines.
func ParseHeaders(lines []string) (http.Header, error) {
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

func startWatcher(ctx context.Context, o Options) (*watch.Watcher, error) {
	name, model, err := watch.ParseRef(o.WatchRef)
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: o.Namespace}})
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
	if model {
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		w.WithModel(dyn)
	}
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
