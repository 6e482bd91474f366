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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/tideserve/tide/internal/servertest"
)

// The queue worker against real brokers: 10,000 requests published, the worker
// killed with SIGKILL part way and replaced, and then every request answered
// (duplicates counted), each answer equal to the HTTP answer for the same body,
// and every poison message in the dead letters with its reason.

const queueMessages = 10000

// queueRequest is the i-th request's body: /predict objects and OIP requests,
// over a few hundred distinct rows so that each answer can be checked against
// HTTP.
func queueRequest(i int) []byte {
	f1 := float64(i%211)/25 - 4
	f2 := float64((i*7)%199)/20 - 5
	if i%3 == 0 {
		return fmt.Appendf(nil, `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[%g,%g]}]}`, f1, f2)
	}
	return fmt.Appendf(nil, `{"feature1": %g, "feature2": %g}`, f1, f2)
}

// poison are messages no delivery can answer, with what their dead-letter
// reason must say.
var poison = []struct {
	id, model, body, reason string
}{
	{"poison-unparsable", "", `{"feature1": `, "400"},
	{"poison-features", "", `{"feature9": 1}`, "feature9"},
	{"poison-shape", "", `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`, "422"},
	{"poison-model", "nope", `{"feature1": 1, "feature2": 2}`, "404"},
	{"poison-empty", "", ``, "400"},
}

type queueResult struct {
	status int
	body   string
}

// queueBroker is one broker kind as the test drives it.
type queueBroker struct {
	url       string
	publish   func(t *testing.T, id, model string, body []byte)
	results   func(t *testing.T) map[string][]queueResult // id → every result published for it
	deadLines func(t *testing.T) map[string]string        // id → reason
	extra     []string                                    // worker flags
}

// startNATS runs a nats-server with JetStream and returns its address and a
// connection to it.
func startNATS(t *testing.T) (string, *nats.Conn) {
	t.Helper()
	bin := natsServerBin(t)
	dir := t.TempDir()
	addr := servertest.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	startLogged(t, dir, "nats-server", exec.Command(bin, "-js", "-sd", filepath.Join(dir, "js"), "-a", "127.0.0.1", "-p", port))
	var nc *nats.Conn
	waitFor(t, 20*time.Second, "nats-server up", func() (bool, string) {
		var err error
		nc, err = nats.Connect("nats://" + addr)
		return err == nil, fmt.Sprint(err)
	})
	t.Cleanup(nc.Close)
	return addr, nc
}

// startNATSWithStream is startNATS with the worker's default stream created,
// capturing the request, result and dead-letter subjects: in production the
// publishers own the stream, so it exists before any worker.
func startNATSWithStream(t *testing.T) (string, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	addr, nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "tide-requests", Subjects: []string{"tide-requests", "tide-results", "tide-dead-letters"}})
	if err != nil {
		t.Fatal(err)
	}
	return addr, js, stream
}

func TestQueueWorkerNATS(t *testing.T) {
	addr, js, stream := startNATSWithStream(t)
	ctx := context.Background()
	read := func(t *testing.T, subject string) []jetstream.Msg {
		c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		want := int(info.State.Subjects[subject])
		var out []jetstream.Msg
		for len(out) < want {
			batch, err := c.Fetch(min(want-len(out), 1000), jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := len(out)
			for m := range batch.Messages() {
				out = append(out, m)
			}
			if len(out) == n {
				t.Fatalf("read %d of %d messages on %s", n, want, subject)
			}
		}
		return out
	}
	b := &queueBroker{
		url: "nats://" + addr,
		publish: func(t *testing.T, id, model string, body []byte) {
			m := nats.NewMsg("tide-requests")
			m.Data = body
			m.Header.Set("Tide-Request-Id", id)
			if model != "" {
				m.Header.Set("Tide-Model", model)
			}
			if _, err := js.PublishMsgAsync(m); err != nil {
				t.Fatal(err)
			}
		},
		results: func(t *testing.T) map[string][]queueResult {
			out := map[string][]queueResult{}
			for _, m := range read(t, "tide-results") {
				status, _ := strconv.Atoi(m.Headers().Get("Tide-Status"))
				id := m.Headers().Get("Tide-Request-Id")
				out[id] = append(out[id], queueResult{status, string(m.Data())})
			}
			return out
		},
		deadLines: func(t *testing.T) map[string]string {
			out := map[string]string{}
			for _, m := range read(t, "tide-dead-letters") {
				out[m.Headers().Get("Tide-Request-Id")] = m.Headers().Get("Tide-Error")
			}
			return out
		},
	}
	runQueueProof(t, b, func() {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			t.Fatal("publishing did not complete")
		}
	})
}

// startRedis runs a redis-server and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	bin := need(t, "redis-server")
	dir := t.TempDir()
	addr := servertest.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	startLogged(t, dir, "redis-server", exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--dir", dir))
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	waitFor(t, 20*time.Second, "redis-server up", func() (bool, string) {
		err := rdb.Ping(context.Background()).Err()
		return err == nil, fmt.Sprint(err)
	})
	return addr
}

func TestQueueWorkerRedis(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	var pipeMu sync.Mutex
	pipe := rdb.Pipeline()
	b := &queueBroker{
		url: "redis://" + addr,
		publish: func(t *testing.T, id, model string, body []byte) {
			pipeMu.Lock()
			defer pipeMu.Unlock()
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: "tide-requests", Values: []any{"id", id, "model", model, "body", body}})
			if pipe.Len() >= 500 {
				if _, err := pipe.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
		},
		results: func(t *testing.T) map[string][]queueResult {
			out := map[string][]queueResult{}
			for _, x := range rdb.XRange(ctx, "tide-results", "-", "+").Val() {
				status, _ := strconv.Atoi(x.Values["status"].(string))
				id := x.Values["id"].(string)
				out[id] = append(out[id], queueResult{status, x.Values["body"].(string)})
			}
			return out
		},
		deadLines: func(t *testing.T) map[string]string {
			out := map[string]string{}
			for _, x := range rdb.XRange(ctx, "tide-dead-letters", "-", "+").Val() {
				out[x.Values["id"].(string)] = x.Values["error"].(string)
			}
			return out
		},
		// Two workers of one group: each needs its own consumer name.
		extra: []string{"--queue-consumer", "worker-1"},
	}
	runQueueProof(t, b, func() {
		pipeMu.Lock()
		defer pipeMu.Unlock()
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func natsServerBin(t *testing.T) string { return cachedBinary(t, "TIDE_NATS_SERVER", "nats-server") }

// runQueueProof publishes, kills the first worker mid-stream and starts a
// second, then checks every answer.
func runQueueProof(t *testing.T, b *queueBroker, flush func()) {
	bin := servertest.Build(t)
	model := "../../internal/server/testdata/fraud_logreg.joblib"
	args := append([]string{"--queue-url", b.url, "--queue-ack-wait", "2s", "--queue-max-deliveries", "3",
		"--max-batch-size", "32", "--max-queue-delay", "2ms"}, b.extra...)

	// The HTTP answers the queue's must equal, from a server with no queue.
	ref := servertest.Serve(t, bin, model)
	want := map[string]string{}
	httpAnswer := func(body []byte) string {
		path := "/predict"
		if strings.Contains(string(body), `"inputs"`) {
			path = "/v2/models/fraud_logreg/infer"
		}
		resp, err := http.Post("http://"+ref.HTTP+path, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("HTTP %s: %d %s", body, resp.StatusCode, out)
		}
		return string(out)
	}

	start := time.Now()
	for _, p := range poison {
		b.publish(t, p.id, p.model, []byte(p.body))
	}
	for i := range queueMessages {
		body := queueRequest(i)
		if _, ok := want[string(body)]; !ok {
			want[string(body)] = httpAnswer(body)
		}
		b.publish(t, "req-"+strconv.Itoa(i), "", body)
	}
	flush()
	t.Logf("published %d requests and %d poison messages in %s", queueMessages, len(poison), time.Since(start).Round(time.Millisecond))

	// The first worker is killed with SIGKILL once it has answered a part:
	// what it held unacked must come back to the second.
	first := servertest.Serve(t, bin, model, args...)
	waitFor(t, 60*time.Second, "the first worker answers 2,000", func() (bool, string) {
		n := metricValue(t, first.HTTP, `tide_queue_messages_total{result="ok"}`)
		return n >= 2000, fmt.Sprintf("%g answered", n)
	})
	first.Cmd.Process.Kill()
	first.Cmd.Wait()
	killedAt := time.Since(start)
	secondArgs := append([]string{}, args...)
	if len(b.extra) > 0 {
		secondArgs = append(secondArgs, "--queue-consumer", "worker-2")
	}
	second := servertest.Serve(t, bin, model, secondArgs...)
	total := len(poison) + queueMessages
	var results map[string][]queueResult
	var dead map[string]string
	waitFor(t, 120*time.Second, "every request answered or dead-lettered", func() (bool, string) {
		results, dead = b.results(t), b.deadLines(t)
		return len(results)+len(dead) >= total, fmt.Sprintf("%d answered, %d dead-lettered of %d", len(results), len(dead), total)
	})
	elapsed := time.Since(start)

	dups := 0
	for i := range queueMessages {
		id := "req-" + strconv.Itoa(i)
		rs := results[id]
		if len(rs) == 0 {
			t.Errorf("%s: no result (dead letter: %q)", id, dead[id])
			continue
		}
		dups += len(rs) - 1
		for _, r := range rs {
			// An OIP answer's "id" is the request id: the correlation id here,
			// a fresh one over HTTP.
			got, w := r.body, want[string(queueRequest(i))]
			if strings.HasPrefix(got, `{"model_name"`) {
				if !strings.Contains(got, `"id":"`+id+`"`) {
					t.Errorf("%s: the OIP answer does not carry the correlation id: %s", id, got)
				}
				got, w = oipID.ReplaceAllString(got, ""), oipID.ReplaceAllString(w, "")
			}
			if r.status != 200 || got != w {
				t.Errorf("%s: result %d %s, want the HTTP answer %s", id, r.status, r.body, w)
			}
		}
		if t.Failed() && i > 50 {
			t.FailNow()
		}
	}
	for _, p := range poison {
		reason, ok := dead[p.id]
		if !ok {
			t.Errorf("poison %s: not dead-lettered (results %v)", p.id, results[p.id])
			continue
		}
		if !strings.Contains(reason, p.reason) || strings.Contains(reason, "\n") {
			t.Errorf("poison %s: reason %q, want one line with %q", p.id, reason, p.reason)
		}
	}
	if len(dead) != len(poison) {
		t.Errorf("%d dead letters, want the %d poison messages: %v", len(dead), len(poison), dead)
	}
	redelivered := metricValue(t, second.HTTP, `tide_queue_messages_total{result="redelivered"}`)
	t.Logf("%d requests answered in %s (worker killed at %s); %d duplicate results (%.2f%%): the killed worker's answers published but not acked; the second worker received %g redeliveries",
		queueMessages, elapsed.Round(time.Millisecond), killedAt.Round(time.Millisecond), dups, 100*float64(dups)/queueMessages, redelivered)
	if dups > 0 && redelivered == 0 {
		t.Errorf("%d duplicates but no redelivery: a duplicate can only come from one", dups)
	}
}

var oipID = regexp.MustCompile(`"id":"[^"]*",`)

// metricValue reads one series from a server's /metrics (0 when absent).
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// TestTideLoadPublishes: tide load's queue targets put a planned rate of
// messages on a NATS subject or a Redis stream, follow the workers' backlog
// each second, and the report has it; the worker answers every message.
func TestTideLoadPublishes(t *testing.T) {
	tide := buildTideCLI(t)
	server := servertest.Build(t)
	t.Run("nats", func(t *testing.T) {
		addr, _ := startNATS(t)
		tideLoadPublishes(t, tide, server, "nats://"+addr, "--queue-create-stream")
	})
	t.Run("redis", func(t *testing.T) {
		tideLoadPublishes(t, tide, server, "redis://"+startRedis(t))
	})
}

func tideLoadPublishes(t *testing.T, tide, server, broker string, workerArgs ...string) {
	worker := servertest.Serve(t, server, "../../internal/server/testdata/fraud_logreg.joblib",
		append([]string{"--queue-url", broker}, workerArgs...)...)
	waitFor(t, 20*time.Second, "the worker's consumer", func() (bool, string) {
		return strings.Contains(worker.Logs(), "queue worker consuming"), "not yet consuming"
	})
	report := filepath.Join(t.TempDir(), "report")
	out, err := exec.Command(tide, "load", "--stages", "2s:250,3s:0", "--queue-consumer", "tide", "--report", report,
		"--template", `{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}`, broker+"/tide-requests").CombinedOutput()
	if err != nil {
		t.Fatalf("tide load: %v\n%s", err, out)
	}
	var rep struct {
		Summary struct{ Sent, OK int64 }
	}
	b, err := os.ReadFile(filepath.Join(report, "summary.json"))
	summary := &rep.Summary
	if err != nil || json.Unmarshal(b, &rep) != nil || summary.Sent != 500 || summary.OK != 500 {
		t.Fatalf("summary %+v (%v): want 500 sent and taken by the broker\n%s", summary, err, out)
	}
	csvText, err := os.ReadFile(filepath.Join(report, "timeseries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csvText)), "\n")
	if !strings.HasSuffix(lines[0], ",backlog") || !strings.HasSuffix(lines[len(lines)-1], ",0") {
		t.Errorf("timeseries.csv: want a backlog column ending at 0 (drained):\n%s", csvText)
	}
	waitFor(t, 20*time.Second, "the worker answers all 500", func() (bool, string) {
		n := metricValue(t, worker.HTTP, `tide_queue_messages_total{result="ok"}`)
		return n == 500, fmt.Sprintf("%g answered", n)
	})
	if _, err := os.Stat(filepath.Join(report, "load.png")); err != nil {
		t.Errorf("no plot: %v", err)
	}
}

// TestQueueWorkerNATSHandsBackOnDrain: a worker that gets SIGTERM while it has
// pulled messages ahead hands them back at once, so another worker answers
// them long before the 30 s ack wait would.
func TestQueueWorkerNATSHandsBackOnDrain(t *testing.T) {
	addr, js, stream := startNATSWithStream(t)
	ctx := context.Background()
	bin := servertest.Build(t)
	model := "../../internal/server/testdata/fraud_logreg.joblib"
	args := []string{"--queue-url", "nats://" + addr, "--queue-ack-wait", "30s", "--max-batch-size", "32", "--max-queue-delay", "2ms"}
	first := servertest.Serve(t, bin, model, args...)
	const n = 5000
	for i := range n {
		m := nats.NewMsg("tide-requests")
		m.Data = queueRequest(i)
		m.Header.Set("Tide-Request-Id", "req-"+strconv.Itoa(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	waitFor(t, 30*time.Second, "the first worker answers some", func() (bool, string) {
		got := metricValue(t, first.HTTP, `tide_queue_messages_total{result="ok"}`)
		return got >= 500, fmt.Sprintf("%g answered", got)
	})
	first.Cmd.Process.Signal(syscall.SIGTERM)
	if err := first.Cmd.Wait(); err != nil {
		t.Fatalf("the drained worker exited with %v:\n%s", err, first.Logs())
	}
	stopped := time.Now()
	servertest.Serve(t, bin, model, args...)
	waitFor(t, 20*time.Second, "every request answered by the second worker", func() (bool, string) {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("tide-results"))
		if err != nil {
			return false, err.Error()
		}
		got := info.State.Subjects["tide-results"]
		return got == n, fmt.Sprintf("%d of %d results", got, n)
	})
	t.Logf("all %d answered %s after the first worker drained (its ack wait is 30 s)", n, time.Since(stopped).Round(time.Millisecond))
}
