//go:build e2e

package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// queueBurst is the burst the queue proof publishes: 20,000 messages in 5 s,
// with the workers at zero.
const (
	queueBurstRate    = 4000
	queueBurstSeconds = 5
	queueBurst        = queueBurstRate * queueBurstSeconds
)

// TestQueueWorkerScalesOnBacklog: the chart's queue mode on the cluster's NATS
// and Redis. With the workers at zero, tide load publishes a burst of 20,000
// requests; KEDA's nats-jetstream or redis-streams scaler wakes the Deployment
// and scales it out on the backlog, the workers drain it, the Deployment
// returns to zero, and every request has a result and none is dead-lettered
// (NATS: exactly one each, the results' stream dropping a redelivery's second
// copy by its message id; Redis: duplicates counted). tide load records the
// backlog and the replicas second by second and plots them.
//
// Needs KEDA and the harness add-ons "nats" and "redis"; a broker whose add-on
// is missing is skipped.
func TestQueueWorkerScalesOnBacklog(t *testing.T) {
	c := testCluster
	if !c.served(t.Context(), "keda.sh/v1alpha1", "ScaledObject") {
		t.Skip("keda.sh/v1alpha1 ScaledObject not served (no KEDA)")
	}
	bin := tideBinary(t)
	for _, broker := range []string{"nats", "redis"} {
		t.Run(broker, func(t *testing.T) { c.queueBurst(t, bin, broker) })
	}
}

// queueBroker is how the test reaches one broker kind and reads its results.
type queueBroker struct {
	inCluster string            // the URL the workers use
	outside   string            // the URL tide load uses (a NodePort)
	set       []string          // the chart's broker values
	publishTo string            // what tide load publishes to
	counts    func() queueCount // requests, results by correlation id, dead letters
}

type queueCount struct {
	requests, results, distinct, dead int
}

func (c *cluster) queueBroker(t *testing.T, kind string) *queueBroker {
	ctx := t.Context()
	service := map[string]string{"nats": "nats-external", "redis": "redis-external"}[kind]
	// (A second --namespace wins over run's: the Service is the add-on's.)
	out, _ := c.run(ctx, "", "get", "service/"+service, "--namespace", kind, "-o", `jsonpath={.spec.ports[?(@.name=="client")].nodePort}`)
	port := strings.TrimSpace(out)
	if port == "" {
		t.Skipf("no %s in the cluster (the harness add-on %s)", kind, kind)
	}
	outside := kind + "://" + hostPort(c.nodeIP(t), port)
	// One stream per run: the names carry the test namespace.
	stream := c.namespace
	requests, results, dead := stream+".requests", stream+".results", stream+".dead"
	b := &queueBroker{outside: outside}
	switch kind {
	case "nats":
		b.inCluster = "nats://nats.nats.svc:4222"
		b.publishTo = outside + "/" + requests
		b.set = []string{"queue.broker=nats", "queue.createStream=true", "queue.stream=" + stream, "queue.subject=" + requests,
			"queue.results=" + results, "queue.deadLetters=" + dead}
		b.counts = func() queueCount {
			nc, err := nats.Connect(outside)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			st, err := js.Stream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx, jetstream.WithSubjectFilter(stream+".>"))
			if err != nil {
				t.Fatal(err)
			}
			n := info.State.Subjects
			// The stream keeps one result per message id: distinct by construction.
			return queueCount{requests: int(n[requests]), results: int(n[results]), distinct: int(n[results]), dead: int(n[dead])}
		}
	case "redis":
		b.inCluster = "redis://redis.redis.svc:6379"
		b.publishTo = outside + "/" + requests
		b.set = []string{"queue.broker=redis", "queue.redis.address=redis.redis.svc:6379", "queue.stream=" + requests,
			"queue.results=" + results, "queue.deadLetters=" + dead}
		b.counts = func() queueCount {
			opts, err := redis.ParseURL(outside)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opts)
			defer rdb.Close()
			var n queueCount
			n.requests = int(rdb.XLen(ctx, requests).Val())
			n.dead = int(rdb.XLen(ctx, dead).Val())
			ids := map[string]bool{}
			for _, x := range rdb.XRange(ctx, results, "-", "+").Val() {
				n.results++
				ids[fmt.Sprint(x.Values["id"])] = true
			}
			n.distinct = len(ids)
			return n
		}
	}
	return b
}

// queueBurst installs queue workers on one broker, lets them go to zero,
// publishes the burst with tide load and checks what became of it.
func (c *cluster) queueBurst(t *testing.T, bin, kind string) {
	ctx := t.Context()
	b := c.queueBroker(t, kind)
	secret := "queue-" + kind
	c.kubectl(t, "create", "secret", "generic", secret, "--from-literal=url="+b.inCluster)
	name := "queue-" + kind
	args := []string{"--set", "autoscaling.mode=queue", "--set", "queue.urlSecret.name=" + secret,
		"--set", "autoscaling.maxReplicas=4", "--set", "autoscaling.queue.targetBacklog=1000",
		"--set", "autoscaling.queue.pollingInterval=2", "--set", "autoscaling.queue.cooldownPeriod=20",
		"--set", "server.maxBatchSize=32", "--set", "server.maxQueueDelay=2ms",
		// A worker's share of the node's CPU, as a production pod has (see
		// queueMessageTemplate).
		"--set", "resources.requests.cpu=50m", "--set", "resources.limits.cpu=100m"}
	for _, s := range b.set {
		args = append(args, "--set", s)
	}
	c.installFraud(t, name, args...)
	replicas := func() int {
		n, _ := strconv.Atoi(c.jsonpath(ctx, "deployment/"+name+"-tide", "{.status.replicas}"))
		return n
	}
	start := time.Now()
	eventually(t, "KEDA to report the ScaledObject ready", 2*time.Minute, 2*time.Second, func() bool {
		return c.jsonpath(ctx, "scaledobject/"+name+"-tide", `{.status.conditions[?(@.type=="Ready")].status}`) == "True"
	})
	eventually(t, "the idle workers to go to zero", 4*time.Minute, 2*time.Second, func() bool { return replicas() == 0 })
	t.Logf("%s: the idle workers were at zero %s after install (the first one created the consumer group)", kind, time.Since(start).Round(time.Second))

	report := filepath.Join(reportDir(t), "queue")
	runCtx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	run := runTideLoad(runCtx, bin, report,
		"--stages", fmt.Sprintf("%ds:%d,90s:0", queueBurstSeconds, queueBurstRate), "--queue-consumer", "tide",
		"--watch", "deployment/"+name+"-tide", "--namespace", c.namespace, "--kubeconfig", c.kubeconfig,
		"--template", queueMessageTemplate, b.publishTo)
	run.expectNoFailures(t, "publishing the burst", queueBurst)
	if run.summary.Sent != queueBurst {
		t.Errorf("published %d, want %d", run.summary.Sent, queueBurst)
	}
	f, err := readQueueFigures(filepath.Join(report, "timeseries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: burst of %d in %d s with the workers at zero: first worker ready at %ds, peak backlog %d at %ds, peak %d replicas at %ds, backlog drained at %ds, back to zero at %ds",
		kind, queueBurst, queueBurstSeconds, f.firstReady, f.peakBacklog, f.peakBacklogAt, f.peakReplicas, f.peakReplicasAt, f.drainedAt, f.zeroAt)
	if f.firstReady < 0 || f.peakReplicas < 2 {
		t.Errorf("KEDA did not wake and scale out the workers on the backlog: %+v", f)
	}
	if f.drainedAt < 0 {
		t.Errorf("the backlog did not drain within the run: %+v", f)
	}
	if f.zeroAt < 0 {
		eventually(t, "the workers back to zero after the drain", 3*time.Minute, 2*time.Second, func() bool { return replicas() == 0 })
		t.Logf("back to zero %s after the run ended", time.Since(start).Round(time.Second))
	}

	n := b.counts()
	t.Logf("%s: %d requests, %d results for %d distinct requests (%d duplicates), %d dead letters", kind, n.requests, n.results, n.distinct, n.results-n.distinct, n.dead)
	if n.requests != queueBurst || n.distinct != queueBurst || n.dead != 0 {
		t.Errorf("lost or refused messages: %+v; want %d requests, each with a result, and no dead letter", n, queueBurst)
	}
	if kind == "nats" && n.results != queueBurst {
		t.Errorf("%d results for %d requests: the results' stream must keep one per request", n.results, queueBurst)
	}
	for _, p := range []string{"load.png", "load.svg"} {
		if _, err := os.Stat(filepath.Join(report, p)); err != nil {
			t.Errorf("report plot: %v", err)
		}
	}
}

// queueMessageTemplate is each message: 40 transactions scored together, as a
// stream consumer would send a micro-batch. With the workers' 100m of CPU one
// worker alone needs most of a minute for the burst, so the backlog lasts past
// the HPA's first look and asks for more workers (with 10-row messages and no
// limit, one worker drained it in a second or two and KEDA never needed a second).
var queueMessageTemplate = "[" + strings.TrimSuffix(strings.Repeat(`{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}},`, 40), ",") + "]"

// queueFigures are read from tide load's timeseries.csv: seconds since the
// burst began, -1 for what never happened.
type queueFigures struct {
	firstReady                   int
	peakBacklog, peakBacklogAt   int
	peakReplicas, peakReplicasAt int
	drainedAt, zeroAt            int
}

func readQueueFigures(path string) (queueFigures, error) {
	f := queueFigures{firstReady: -1, drainedAt: -1, zeroAt: -1}
	file, err := os.Open(path)
	if err != nil {
		return f, err
	}
	defer file.Close()
	rows, err := csv.NewReader(file).ReadAll()
	if err != nil || len(rows) < 10 {
		return f, fmt.Errorf("timeseries.csv: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	num := func(row []string, name string) int {
		n, err := strconv.Atoi(strings.TrimSpace(row[col[name]]))
		if err != nil {
			return -1
		}
		return n
	}
	for _, row := range rows[1:] {
		sec, ready, desired, backlog := num(row, "second"), num(row, "ready_replicas"), num(row, "desired_replicas"), num(row, "backlog")
		if ready > 0 && f.firstReady < 0 {
			f.firstReady = sec
		}
		if backlog > f.peakBacklog {
			f.peakBacklog, f.peakBacklogAt = backlog, sec
		}
		if desired > f.peakReplicas {
			f.peakReplicas, f.peakReplicasAt = desired, sec
		}
		if backlog == 0 && sec > queueBurstSeconds && f.peakBacklog > 0 && f.drainedAt < 0 {
			f.drainedAt = sec
		}
		if f.drainedAt >= 0 && desired == 0 && ready == 0 && f.zeroAt < 0 {
			f.zeroAt = sec
		}
	}
	return f, nil
}
