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
)

// queueBurst is the burst the queue proof publishes: 20,000 messages in 5 s,
// with the workers at zero.
const (
	queueBurstRate    = 4000
	queueBurstSeconds = 5
	queueBurst        = queueBurstRate * queueBurstSeconds
)

// TestQueueWorkerScalesOnBacklog: the chart's queue mode on the cluster's NATS.
// With the workers at zero, tide load publishes a burst of 20,000 requests;
// KEDA's nats-jetstream scaler wakes the Deployment and scales it out on the
// backlog, the workers drain it, the Deployment returns to zero, and every
// request has exactly one result (the results' stream drops a redelivery's
// second copy by its message id) and none is dead-lettered. tide load records
// the backlog and the replicas second by second and plots them.
//
// Needs KEDA and the harness add-on "nats"; skips without them.
func TestQueueWorkerScalesOnBacklog(t *testing.T) {
	c := testCluster
	ctx := t.Context()
	if !c.served(ctx, "keda.sh/v1alpha1", "ScaledObject") {
		t.Skip("keda.sh/v1alpha1 ScaledObject not served (no KEDA)")
	}
	// (A second --namespace wins over run's: the Service is the add-on's.)
	out, _ := c.run(ctx, "", "get", "service/nats-external", "--namespace", "nats", "-o", `jsonpath={.spec.ports[?(@.name=="client")].nodePort}`)
	natsPort := strings.TrimSpace(out)
	if natsPort == "" {
		t.Skip("no NATS in the cluster (the harness add-on nats)")
	}
	natsURL := "nats://" + hostPort(c.nodeIP(t), natsPort)
	// One stream per run: the names carry the test namespace.
	stream := c.namespace
	subject, results, dead := c.namespace+".requests", c.namespace+".results", c.namespace+".dead"

	c.kubectl(t, "create", "secret", "generic", "queue-broker", "--from-literal=url=nats://nats.nats.svc:4222")
	const name = "queue"
	c.installFraud(t, name, "--set", "autoscaling.mode=queue", "--set", "queue.urlSecret.name=queue-broker",
		"--set", "queue.createStream=true", "--set", "queue.stream="+stream, "--set", "queue.subject="+subject,
		"--set", "queue.results="+results, "--set", "queue.deadLetters="+dead,
		"--set", "autoscaling.maxReplicas=4", "--set", "autoscaling.queue.targetBacklog=1000",
		"--set", "autoscaling.queue.pollingInterval=2", "--set", "autoscaling.queue.cooldownPeriod=20",
		"--set", "server.maxBatchSize=32", "--set", "server.maxQueueDelay=2ms",
		// A worker's share of the node's CPU, as a production pod has: one
		// worker alone would take long enough over the burst that the
		// backlog asks for more (unlimited, one worker drains it in a second).
		"--set", "resources.requests.cpu=100m", "--set", "resources.limits.cpu=200m")
	replicas := func() int {
		n, _ := strconv.Atoi(c.jsonpath(ctx, "deployment/"+name+"-tide", "{.status.replicas}"))
		return n
	}
	start := time.Now()
	eventually(t, "KEDA to report the ScaledObject ready", 2*time.Minute, 2*time.Second, func() bool {
		return c.jsonpath(ctx, "scaledobject/"+name+"-tide", `{.status.conditions[?(@.type=="Ready")].status}`) == "True"
	})
	eventually(t, "the idle workers to go to zero", 4*time.Minute, 2*time.Second, func() bool { return replicas() == 0 })
	t.Logf("idle: the workers went to zero %s after install (the first one created stream %s and consumer tide)", time.Since(start).Round(time.Second), stream)

	report := filepath.Join(reportDir(t), "queue")
	runCtx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	run := runTideLoad(runCtx, tideBinary(t), report,
		"--stages", fmt.Sprintf("%ds:%d,60s:0", queueBurstSeconds, queueBurstRate), "--queue-consumer", "tide",
		"--watch", "deployment/"+name+"-tide", "--namespace", c.namespace, "--kubeconfig", c.kubeconfig,
		"--template", queueMessageTemplate, natsURL+"/"+subject)
	run.expectNoFailures(t, "publishing the burst", queueBurst)
	if run.summary.Sent != queueBurst {
		t.Errorf("published %d, want %d", run.summary.Sent, queueBurst)
	}
	f, err := readQueueFigures(filepath.Join(report, "timeseries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("burst of %d in %d s with the workers at zero: first worker ready at %ds, peak backlog %d at %ds, peak %d replicas at %ds, backlog drained at %ds, back to zero at %ds",
		queueBurst, queueBurstSeconds, f.firstReady, f.peakBacklog, f.peakBacklogAt, f.peakReplicas, f.peakReplicasAt, f.drainedAt, f.zeroAt)
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

	// Every request answered once, none dead-lettered: the streams' own counts.
	nc, err := nats.Connect(natsURL)
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
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(c.namespace+".>"))
	if err != nil {
		t.Fatal(err)
	}
	got := info.State.Subjects
	t.Logf("stream %s: %d requests, %d results, %d dead letters", stream, got[subject], got[results], got[dead])
	if got[subject] != queueBurst || got[results] != queueBurst || got[dead] != 0 {
		t.Errorf("lost or extra messages: %d requests, %d results, %d dead letters; want %d, %d, 0", got[subject], got[results], got[dead], queueBurst, queueBurst)
	}
	for _, p := range []string{"load.png", "load.svg"} {
		if _, err := os.Stat(filepath.Join(report, p)); err != nil {
			t.Errorf("report plot: %v", err)
		}
	}
}

// queueMessageTemplate is each message: ten transactions scored together, as a
// stream consumer would send a micro-batch.
var queueMessageTemplate = "[" + strings.TrimSuffix(strings.Repeat(`{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}},`, 10), ",") + "]"

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
