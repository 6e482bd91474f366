package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/servertest"
)

// jaegerBin finds the Jaeger binary hack/install-test-deps.sh builds (TIDE_JAEGER
// overrides), skipping or failing as need does.
func jaegerBin(t *testing.T) string { return cachedBinary(t, "TIDE_JAEGER", "jaeger") }

// cachedBinary finds a tool hack/install-test-deps.sh builds into the cluster
// cache's bin folder ($env overrides the path), skipping the test without it,
// or failing it with TIDE_REQUIRE_INTEGRATION=1.
func cachedBinary(t *testing.T, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		cache := os.Getenv("TIDE_CLUSTER_CACHE")
		if cache == "" {
			cache = "/var/cache/tide-cluster"
		}
		p = filepath.Join(cache, "bin", name)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is not built at %s (hack/install-test-deps.sh builds it) and TIDE_REQUIRE_INTEGRATION=1", name, p)
		}
		t.Skipf("%s not built at %s (hack/install-test-deps.sh builds it)", name, p)
	}
	return p
}

// jaeger is a running Jaeger all-in-one: OTLP in, memory storage, query API out.
type jaeger struct {
	otlpGRPC, otlpHTTP, query string
}

func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := jaegerBin(t)
	j := &jaeger{otlpGRPC: servertest.FreeAddr(t), otlpHTTP: servertest.FreeAddr(t), query: servertest.FreeAddr(t)}
	health := servertest.FreeAddr(t)
	cfg := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %q
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %q
    grpc:
      endpoint: %q
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, health, j.query, servertest.FreeAddr(t), j.otlpGRPC, j.otlpHTTP)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jaeger.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startLogged(t, dir, "jaeger", exec.Command(bin, "--config", "file:"+filepath.Join(dir, "jaeger.yaml")))
	waitFor(t, 60*time.Second, "jaeger healthy", func() (bool, string) {
		resp, err := http.Get("http://" + health + "/status")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return false, resp.Status
		}
		resp, err = http.Get("http://" + j.query + "/api/services")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, "query API: " + resp.Status
	})
	return j
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// jaegerSpan is a span as Jaeger's query API (/api/traces/ID) returns it.
type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64 `json:"startTime"` // µs since the epoch
	Duration  int64 `json:"duration"`  // µs
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
	Service   string `json:"-"`
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s jaegerSpan) tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// trace reads one trace back, or nil if Jaeger has none with that id.
func (j *jaeger) trace(t *testing.T, traceID string) []jaegerSpan {
	t.Helper()
	resp, err := http.Get("http://" + j.query + "/api/traces/" + traceID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var out struct {
		Data []struct {
			Spans     []jaegerSpan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("jaeger trace %s: %v", traceID, err)
	}
	var spans []jaegerSpan
	for _, d := range out.Data {
		for _, s := range d.Spans {
			s.Service = d.Processes[s.ProcessID].ServiceName
			spans = append(spans, s)
		}
	}
	return spans
}

// waitTrace polls until the trace has at least want spans (exports are batched).
func (j *jaeger) waitTrace(t *testing.T, traceID string, want int) []jaegerSpan {
	t.Helper()
	var spans []jaegerSpan
	waitFor(t, 20*time.Second, fmt.Sprintf("trace %s with %d spans in jaeger", traceID, want), func() (bool, string) {
		spans = j.trace(t, traceID)
		return len(spans) >= want, fmt.Sprintf("%d spans", len(spans))
	})
	time.Sleep(500 * time.Millisecond) // a late span would make the count wrong: read again
	return j.trace(t, traceID)
}

func (j *jaeger) services(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get("http://" + j.query + "/api/services")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []string `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Data
}

// byName indexes spans by operation name, failing on a name seen twice.
func byName(t *testing.T, spans []jaegerSpan) map[string]jaegerSpan {
	t.Helper()
	m := map[string]jaegerSpan{}
	for _, s := range spans {
		if _, dup := m[s.OperationName]; dup {
			t.Fatalf("span %q twice in one trace: %+v", s.OperationName, spans)
		}
		m[s.OperationName] = s
	}
	return m
}

func checkParent(t *testing.T, spans map[string]jaegerSpan, child, parent string) {
	t.Helper()
	c, ok := spans[child]
	if !ok {
		t.Fatalf("no %q span; spans: %v", child, names(spans))
	}
	p, ok := spans[parent]
	if !ok {
		t.Fatalf("no %q span; spans: %v", parent, names(spans))
	}
	if c.parent() != p.SpanID {
		t.Fatalf("%q's parent is %s, want %q (%s)", child, c.parent(), parent, p.SpanID)
	}
	if c.StartTime < p.StartTime || c.StartTime+c.Duration > p.StartTime+p.Duration+1 {
		t.Fatalf("%q [%d +%d µs] is not inside its parent %q [%d +%d µs]", child, c.StartTime, c.Duration, parent, p.StartTime, p.Duration)
	}
}

func names(spans map[string]jaegerSpan) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

func wantTag(t *testing.T, s jaegerSpan, key string, want any) {
	t.Helper()
	got, ok := s.tag(key)
	if !ok {
		t.Fatalf("span %q has no %s attribute; tags: %+v", s.OperationName, key, s.Tags)
	}
	if want != nil && fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("span %q: %s = %v, want %v", s.OperationName, key, got, want)
	}
}

const fraudModel = "../../internal/server/testdata/fraud_logreg.joblib"

// TestTracesReachJaeger: a request through the activator into tide-server, with
// dynamic batching on, is one trace in a real Jaeger, continuing the client's
// trace: client → activator → server span → decode, infer (→ queue, batch →
// model), encode, with Tide's attributes; gRPC calls trace the same way; the
// latency histogram carries the trace id as an exemplar.
func TestTracesReachJaeger(t *testing.T) {
	j := startJaeger(t)
	bin := servertest.Build(t)

	// The server exports over OTLP/HTTP, the activator over OTLP/gRPC: both
	// protocols meet a real receiver.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.otlpHTTP)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	grpcAddr := servertest.FreeAddr(t)
	srv := servertest.Serve(t, bin, fraudModel, "--grpc-addr", grpcAddr, "--max-batch-size", "8", "--max-queue-delay", "1ms",
		"--access-log-sample", "1", "--log-format", "json")

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.otlpGRPC)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	actAddr, actOps := servertest.FreeAddr(t), servertest.FreeAddr(t)
	act := exec.Command(bin, "activator", "--listen", actAddr, "--metrics-addr", actOps, "--target", "http://"+srv.HTTP)
	var actLog strings.Builder
	act.Stderr = &actLog
	if err := act.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { act.Process.Kill(); act.Wait() })
	waitFor(t, 10*time.Second, "activator up", func() (bool, string) {
		resp, err := http.Get("http://" + actOps + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})

	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", "http://"+actAddr+"/v2/models/fraud_logreg/infer",
		strings.NewReader(`{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[1,0,0,1]}]}`))
	req.Header.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	req.Header.Set("X-Request-Id", "trace-me-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"trace-me-1"`) {
		t.Fatalf("through the activator: %d %s", resp.StatusCode, body)
	}

	spans := byName(t, j.waitTrace(t, traceID, 8))
	if len(spans) != 8 {
		t.Fatalf("%d spans, want 8 (activator, server, decode, infer, queue, batch, model, encode): %v", len(spans), names(spans))
	}
	root := "POST /v2/models/{name}/infer"
	if p := spans["activator"].parent(); p != clientSpan {
		t.Fatalf("the activator's span continues %q, want the client's span %s: the client's trace was replaced", p, clientSpan)
	}
	checkParent(t, spans, root, "activator")
	for _, c := range []string{"decode", "infer", "encode"} {
		checkParent(t, spans, c, root)
	}
	checkParent(t, spans, "queue", "infer")
	checkParent(t, spans, "batch", "infer")
	checkParent(t, spans, "model", "batch")
	if s := spans["activator"].Service; s != "tide-activator" {
		t.Fatalf("activator span from service %q", s)
	}
	if s := spans[root].Service; s != "tide-server" {
		t.Fatalf("server span from service %q", s)
	}
	wantTag(t, spans[root], "tide.request_id", "trace-me-1")
	wantTag(t, spans[root], "tide.protocol", "oip-rest")
	wantTag(t, spans[root], "tide.model", "fraud_logreg")
	wantTag(t, spans[root], "http.response.status_code", 200)
	wantTag(t, spans["infer"], "tide.model", "fraud_logreg")
	wantTag(t, spans["infer"], "tide.model.version", "1")
	wantTag(t, spans["infer"], "tide.request.rows", 2)
	wantTag(t, spans["batch"], "tide.batch.rows", 2)
	wantTag(t, spans["batch"], "tide.batch.requests", 1)
	wantTag(t, spans["queue"], "tide.queue.seconds", nil)

	// The server's access log names the request and its trace, and nothing of its body.
	waitFor(t, 5*time.Second, "access log line", func() (bool, string) {
		return strings.Contains(srv.Logs(), `"msg":"access log"`), "none yet"
	})
	line := regexp.MustCompile(`.*"msg":"access log".*`).FindString(srv.Logs())
	for _, want := range []string{`"request_id":"trace-me-1"`, `"trace_id":"` + traceID + `"`, `"route":"/v2/models/{name}/infer"`, `"status":200`} {
		if !strings.Contains(line, want) {
			t.Fatalf("access log line %s lacks %s", line, want)
		}
	}
	if strings.Contains(line, `"data"`) || strings.Contains(line, "[1,0,0,1]") {
		t.Fatalf("access log line carries the body: %s", line)
	}

	// gRPC: the client's trace context in metadata, the RPC span from otelgrpc.
	const grpcTraceID = "0af7651916cd43dd8448eb211c80319c"
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+grpcTraceID+"-b7ad6b7169203331-01")
	if _, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "fraud_logreg",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP64", Shape: []int64{1, 2},
			Contents: &pb.InferTensorContents{Fp64Contents: []float64{1, 0}}}}}); err != nil {
		t.Fatal(err)
	}
	gspans := byName(t, j.waitTrace(t, grpcTraceID, 7))
	rpc := "inference.GRPCInferenceService/ModelInfer"
	if p := gspans[rpc].parent(); p != "b7ad6b7169203331" {
		t.Fatalf("gRPC span's parent %q, want the client's span; spans %v", p, names(gspans))
	}
	for _, c := range []string{"decode", "infer", "encode"} {
		checkParent(t, gspans, c, rpc)
	}
	checkParent(t, gspans, "model", "batch")
	wantTag(t, gspans[rpc], "tide.request_id", nil)
	wantTag(t, gspans[rpc], "tide.protocol", "oip-grpc")

	// Exemplars: an OpenMetrics scrape shows a trace id on the latency histogram.
	mreq, _ := http.NewRequest("GET", "http://"+srv.HTTP+"/metrics", nil)
	mreq.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	mresp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !regexp.MustCompile(`tide_request_duration_seconds_bucket\{[^}]*protocol="oip-rest"[^}]*\} \d+ # \{trace_id="` + traceID + `"\}`).Match(metricsText) {
		t.Fatalf("no exemplar with trace %s on tide_request_duration_seconds in the OpenMetrics scrape:\n%s", traceID,
			grepLines(string(metricsText), "tide_request_duration_seconds_bucket"))
	}

	if os.Getenv("TIDE_TRACE_WATERFALL") != "" {
		writeWaterfall(t, os.Getenv("TIDE_TRACE_WATERFALL"), j.trace(t, traceID))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSamplingAtZeroExportsNothing: with the ratio at 0, neither requests that
// start a trace nor ones whose client did not sample reach the backend; a
// client's sampled trace is still honoured (parent-based).
func TestSamplingAtZeroExportsNothing(t *testing.T) {
	j := startJaeger(t)
	bin := servertest.Build(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.otlpHTTP)
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0")
	t.Setenv("OTEL_SERVICE_NAME", "tide-unsampled")
	srv := servertest.Serve(t, bin, fraudModel)
	const notSampled = "5bf92f3577b34da6a3ce929d0e0e4736"
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest("POST", "http://"+srv.HTTP+"/predict", strings.NewReader(`{"feature1": 1, "feature2": 0}`))
		if i%2 == 0 {
			req.Header.Set("traceparent", "00-"+notSampled+"-00f067aa0ba902b7-00") // the client chose not to sample
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// A SIGTERM makes the server flush what it buffered before exiting: after it,
	// anything exported is in Jaeger.
	srv.Cmd.Process.Signal(syscall.SIGTERM)
	srv.Cmd.Wait()
	time.Sleep(time.Second) // Jaeger's own batch
	for _, s := range j.services(t) {
		if s == "tide-unsampled" {
			t.Fatalf("a server sampling at 0 exported spans (services: %v)", j.services(t))
		}
	}
	if spans := j.trace(t, notSampled); len(spans) != 0 {
		t.Fatalf("an unsampled client trace was exported: %d spans", len(spans))
	}

	// The control: the same setup with a sampled client trace is exported, so the
	// absence above is the sampler's doing, not a broken exporter.
	srv2 := servertest.Serve(t, bin, fraudModel)
	const sampled = "6bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", "http://"+srv2.HTTP+"/predict", strings.NewReader(`{"feature1": 1, "feature2": 0}`))
	req.Header.Set("traceparent", "00-"+sampled+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	j.waitTrace(t, sampled, 5)
}
