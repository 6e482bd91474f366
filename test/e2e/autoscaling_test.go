//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The same 20x step (100 -> 2,000 requests/s) against every autoscaling path, one
// after the other in one run, with the same model, pod resources (100m CPU
// requested) and replica bounds (2..8). Each path aims at the same capacity where
// its metric allows: 350 requests/s per pod, so "enough" is 6 replicas. The CPU
// path targets 50 % of the request, its usual setting. docs/autoscaling.md has the
// table this prints and a plot per path (the reports in the test's artifacts).
const (
	stepBase, stepPeak  = 100, 2000
	stepAt              = 20  // seconds of base load before the step
	stepHold            = 120 // seconds at the peak: the flapping window
	stepPerPod          = "350"
	stepNeed            = 6 // ceil(2000 / 350)
	stepMin, stepMax    = 2, 8
	fastDesiredDeadline = 5 * time.Second
	fastReadyDeadline   = 15 * time.Second
)

// stepPath is one autoscaling path's chart settings.
type stepPath struct {
	name string // also the release name
	set  []string
	// needs says which API the path needs served, else it is skipped.
	needs func(c *cluster, t *testing.T) string
}

func stepPaths() []stepPath {
	keda := func(c *cluster, t *testing.T) string {
		if !c.served(t.Context(), "keda.sh/v1alpha1", "ScaledObject") {
			return "keda.sh/v1alpha1 ScaledObject not served (no KEDA)"
		}
		return ""
	}
	return []stepPath{
		{name: "step-cpu", set: []string{"autoscaling.mode=cpu"}},
		{name: "step-rps", set: []string{"autoscaling.mode=rps", "autoscaling.rps.targetPerPod=" + stepPerPod},
			needs: func(c *cluster, t *testing.T) string {
				if _, err := c.run(t.Context(), "", "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta1"); err != nil {
					return "custom.metrics.k8s.io not served (no prometheus-adapter)"
				}
				return ""
			}},
		{name: "step-keda", set: []string{"autoscaling.mode=keda", "autoscaling.keda.minReplicas=" + strconv.Itoa(stepMin),
			"autoscaling.keda.threshold=" + stepPerPod}, needs: keda},
		{name: "step-fast", set: []string{"autoscaling.mode=fast", "autoscaling.fast.minReplicas=" + strconv.Itoa(stepMin),
			"autoscaling.fast.targetRate=" + stepPerPod}, needs: keda},
	}
}

// stepFigures are what docs/autoscaling.md compares.
type stepFigures struct {
	Path             string
	DesiredS, ReadyS float64 // from the step to desired >= need, and to ready >= need (-1: never)
	// The same to the path's own peak decision, for a path whose metric settles below
	// the need (CPU at its usual target).
	PeakDesiredS, PeakReadyS float64
	Failed, Sent             int
	P99TransitionMS          float64 // the worst per-second p99 from the step until enough were ready
	P99AfterMS               float64 // the median per-second p99 after that, while the peak lasted
	PeakDesired              int
	Overshoot                int // peak desired above the need
	Reversals                int // desired turning from up to down or back, in the window
	ScaledDownUnderLoad      bool
}

// TestAutoscalingPathsStep runs the step on every path, then the push scaler's
// faults: its loss leaves the count alone, and from zero the first request waits
// little more than the pod's own start.
func TestAutoscalingPathsStep(t *testing.T) {
	c := testCluster
	bin := tideBinary(t)
	var all []stepFigures
	for _, p := range stepPaths() {
		t.Run(p.name, func(t *testing.T) {
			if p.needs != nil {
				if why := p.needs(c, t); why != "" {
					t.Skip(why)
				}
			}
			args := []string{"--set", "autoscaling.minReplicas=" + strconv.Itoa(stepMin), "--set", "autoscaling.maxReplicas=" + strconv.Itoa(stepMax)}
			for _, s := range p.set {
				args = append(args, "--set", s)
			}
			url := c.installFraud(t, p.name, args...)
			c.waitScalerReady(t, p.name, url)
			f := c.runStep(t, bin, p.name, url)
			all = append(all, f)
			if f.Failed != 0 {
				t.Errorf("%s: %d of %d requests failed during the step", p.name, f.Failed, f.Sent)
			}
			if p.name == "step-fast" {
				if f.DesiredS < 0 || f.DesiredS > fastDesiredDeadline.Seconds() || f.ReadyS < 0 || f.ReadyS > fastReadyDeadline.Seconds() {
					t.Errorf("push scaler: desired %vs, ready %vs; want within %s and %s", f.DesiredS, f.ReadyS, fastDesiredDeadline, fastReadyDeadline)
				}
				if f.Reversals != 0 || f.ScaledDownUnderLoad {
					t.Errorf("push scaler flapped: %d reversals, scaled down under load %v", f.Reversals, f.ScaledDownUnderLoad)
				}
				c.scalerLossKeepsTheCount(t, p.name)
			}
		})
	}
	table := stepTable(all)
	t.Logf("the 20x step on each autoscaling path:\n%s", table)
	if dir := artifactDir(t); dir != "" {
		os.WriteFile(filepath.Join(dir, "step-table.md"), []byte(table), 0o644)
		b, _ := json.MarshalIndent(all, "", "  ")
		os.WriteFile(filepath.Join(dir, "step-figures.json"), b, 0o644)
	}
	t.Run("fast-from-zero", func(t *testing.T) {
		if why := stepPaths()[3].needs(c, t); why != "" {
			t.Skip(why)
		}
		c.fastWakesFromZero(t)
	})
}

// waitScalerReady waits until the path's autoscaler reads its metric: an HPA with
// a current metric, or a ScaledObject that is Ready. A trickle of requests meanwhile
// makes the request counters exist (a series is born with its first request, and
// the adapter serves no rate before it).
func (c *cluster) waitScalerReady(t *testing.T, name, url string) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			predict(ctx, url, 1, 2)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	hpa := "hpa/" + name + "-tide"
	if c.jsonpath(t.Context(), "scaledobject/"+name+"-tide", "{.metadata.name}") != "" {
		hpa = "hpa/keda-hpa-" + name + "-tide"
		eventually(t, "the ScaledObject to be ready", 2*time.Minute, 2*time.Second, func() bool {
			return c.jsonpath(t.Context(), "scaledobject/"+name+"-tide", `{.status.conditions[?(@.type=="Ready")].status}`) == "True"
		})
	}
	eventually(t, "the HPA to read its metric", 3*time.Minute, 2*time.Second, func() bool {
		return c.jsonpath(t.Context(), hpa, `{.status.conditions[?(@.type=="ScalingActive")].status}`) == "True" &&
			c.jsonpath(t.Context(), hpa, "{.status.currentMetrics[0]}") != ""
	})
}

// runStep drives the step with tide load watching the Deployment and reads the
// figures from its per-second series.
func (c *cluster) runStep(t *testing.T, bin, name, url string) stepFigures {
	report := filepath.Join(reportDir(t), "report")
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	run := runTideLoad(ctx, bin, report, "--stages", fmt.Sprintf("%ds:%d,%ds:%d", stepAt, stepBase, stepHold, stepPeak),
		"--watch", "deployment/"+name+"-tide", "--namespace", c.namespace, "--kubeconfig", c.kubeconfig,
		"--template", `{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}`, url+"/predict")
	if run.err != nil {
		t.Fatalf("tide load: %v\n%s", run.err, tail(run.out, 3000))
	}
	f, err := readStepFigures(filepath.Join(report, "timeseries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f.Path, f.Sent, f.Failed = strings.TrimPrefix(name, "step-"), run.summary.Sent, run.summary.Errors
	t.Logf("%s: %+v", name, f)
	return f
}

// readStepFigures reads a tide load timeseries.csv (one row per second of the
// load's clock) around the step.
func readStepFigures(path string) (stepFigures, error) {
	var f stepFigures
	file, err := os.Open(path)
	if err != nil {
		return f, err
	}
	defer file.Close()
	rows, err := csv.NewReader(file).ReadAll()
	if err != nil || len(rows) < stepAt+30 {
		return f, fmt.Errorf("timeseries.csv: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	num := func(r []string, name string) (float64, bool) {
		v, err := strconv.ParseFloat(r[col[name]], 64)
		return v, err == nil
	}
	f.DesiredS, f.ReadyS = -1, -1
	var after []float64
	lastDesired, rising := -1, true
	for _, r := range rows[1:] {
		sec, _ := num(r, "second")
		since := sec - stepAt // the step starts at the end of second stepAt
		if since <= 0 {
			if d, ok := num(r, "desired_replicas"); ok {
				lastDesired = int(d)
			}
			continue
		}
		desired, okD := num(r, "desired_replicas")
		ready, okR := num(r, "ready_replicas")
		if okD {
			if f.DesiredS < 0 && desired >= stepNeed {
				f.DesiredS = since
			}
			f.PeakDesired = max(f.PeakDesired, int(desired))
			if since <= stepHold && lastDesired >= 0 && int(desired) != lastDesired {
				up := int(desired) > lastDesired
				if !up {
					f.ScaledDownUnderLoad = true
				}
				if up != rising {
					f.Reversals++
					rising = up
				}
			}
			lastDesired = int(desired)
		}
		if okR && f.ReadyS < 0 && ready >= stepNeed {
			f.ReadyS = since
		}
	}
	f.Overshoot = max(0, f.PeakDesired-stepNeed)
	// Second pass: when the path first asked for, and first had ready, its own peak.
	f.PeakDesiredS, f.PeakReadyS = -1, -1
	for _, r := range rows[1:] {
		sec, _ := num(r, "second")
		since := sec - stepAt
		if since <= 0 {
			continue
		}
		if d, ok := num(r, "desired_replicas"); ok && f.PeakDesiredS < 0 && int(d) >= f.PeakDesired {
			f.PeakDesiredS = since
		}
		if rd, ok := num(r, "ready_replicas"); ok && f.PeakReadyS < 0 && int(rd) >= f.PeakDesired {
			f.PeakReadyS = since
		}
	}
	// p99 while the replicas were coming (until enough were ready, or the path's own
	// peak when it never asked for enough) and after, while the peak load lasted.
	settled := f.ReadyS
	if settled < 0 {
		settled = f.PeakReadyS
	}
	for _, r := range rows[1:] {
		sec, _ := num(r, "second")
		since := sec - stepAt
		p99, ok := num(r, "p99_ms")
		if since <= 0 || since > stepHold || !ok {
			continue
		}
		if settled < 0 || since <= settled {
			f.P99TransitionMS = math.Max(f.P99TransitionMS, p99)
		} else {
			after = append(after, p99)
		}
	}
	if len(after) > 0 {
		slices.Sort(after)
		f.P99AfterMS = after[len(after)/2]
	}
	return f, nil
}

func stepTable(all []stepFigures) string {
	var b strings.Builder
	b.WriteString("| path | desired >= 6 | ready >= 6 | peak desired (reached, ready) | failed / sent | p99 in transition | p99 after (median s) | overshoot | reversals |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	secs := func(v float64) string {
		if v < 0 {
			return "never"
		}
		return fmt.Sprintf("%.0f s", v)
	}
	for _, f := range all {
		fmt.Fprintf(&b, "| %s | %s | %s | %d (%s, %s) | %d / %d | %.0f ms | %.1f ms | %d | %d |\n", f.Path, secs(f.DesiredS), secs(f.ReadyS),
			f.PeakDesired, secs(f.PeakDesiredS), secs(f.PeakReadyS), f.Failed, f.Sent, f.P99TransitionMS, f.P99AfterMS, f.Overshoot, f.Reversals)
	}
	return b.String()
}

// scalerLossKeepsTheCount: with the scaler gone (its Deployment at zero) KEDA's HPA
// cannot read the metric and keeps the count it has, with no fallback to drop to;
// once the scaler is back, the count follows its decisions again (down, with no load).
func (c *cluster) scalerLossKeepsTheCount(t *testing.T, name string) {
	dep := "deployment/" + name + "-tide"
	replicas := func() int { n, _ := strconv.Atoi(c.jsonpath(t.Context(), dep, "{.spec.replicas}")); return n }
	before := replicas()
	c.kubectl(t, "scale", "deployment/"+name+"-tide-autoscaler", "--replicas=0")
	eventually(t, "the scaler's pod to go", time.Minute, time.Second, func() bool {
		out, _ := c.run(t.Context(), "", "get", "pods", "-l", "app.kubernetes.io/name=tide-autoscaler,app.kubernetes.io/instance="+name, "-o", "name")
		return strings.TrimSpace(out) == ""
	})
	// Longer than the stable window the scaler would have used to scale down.
	lowest := before
	for end := time.Now().Add(75 * time.Second); time.Now().Before(end); time.Sleep(3 * time.Second) {
		lowest = min(lowest, replicas())
	}
	hpaActive := c.jsonpath(t.Context(), "hpa/keda-hpa-"+name+"-tide", `{.status.conditions[?(@.type=="ScalingActive")].status}`)
	t.Logf("scaler gone for 75 s with no load: replicas %d -> lowest %d; the HPA's ScalingActive is %q", before, lowest, hpaActive)
	if lowest != before {
		t.Errorf("the count fell from %d to %d while the scaler was gone", before, lowest)
	}
	c.kubectl(t, "scale", "deployment/"+name+"-tide-autoscaler", "--replicas=1")
	start := time.Now()
	eventually(t, "the scaler, back, to bring the idle Deployment down to its minimum", 3*time.Minute, 3*time.Second, func() bool {
		return replicas() == stepMin
	})
	t.Logf("scaler back: down to %d replicas %s later", stepMin, time.Since(start).Round(time.Second))
}

// fastWakesFromZero: the push scaler at zero behind the activator. The first
// request waits for KEDA's wake-up and the pod's start. A pod watch, timed on the
// test's own clock (the API's timestamps have one-second resolution), splits the
// wait: request -> pod created (the scaler's tick, its push, KEDA, the ReplicaSet),
// created -> Ready (the pod's start, readiness probe included), Ready -> answered
// (endpoints and the activator's retry). The target is the pod's start plus 2 s;
// the test logs the figure against it and fails beyond 3 s.
func (c *cluster) fastWakesFromZero(t *testing.T) {
	const name = "fast0"
	c.installFraud(t, name, "--set", "autoscaling.mode=fast", "--set", "autoscaling.fast.minReplicas=0",
		"--set", "autoscaling.maxReplicas=3", "--set", "autoscaling.fast.cooldownPeriod=15",
		"--set", "autoscaling.fast.stableWindow=10s", "--set", "autoscaling.keda.activator.holdTimeoutSeconds=60")
	port := c.jsonpath(t.Context(), "service/"+name+"-tide-activator", `{.spec.ports[?(@.name=="http")].nodePort}`)
	if port == "" {
		t.Fatal("no activator NodePort")
	}
	url := "http://" + hostPort(c.nodeIP(t), port)
	dep := "deployment/" + name + "-tide"
	selector := "app.kubernetes.io/instance=" + name + ",app.kubernetes.io/name=tide"
	eventually(t, "scale to zero when idle", 4*time.Minute, 2*time.Second, func() bool {
		out, _ := c.run(t.Context(), "", "get", "pods", "-l", selector, "-o", "name")
		return c.jsonpath(t.Context(), dep, "{.spec.replicas}") == "0" && strings.TrimSpace(out) == ""
	})
	rows := [][2]float64{{1, 2}}
	want := sklearnPredictions(t, rows)

	created, ready := c.watchPodStart(t, selector)
	time.Sleep(time.Second) // the watch is open before the request
	sent := time.Now()
	got, err := predict(t.Context(), url, rows[0][0], rows[0][1])
	answered := time.Now()
	if err != nil || got != want[0] {
		t.Fatalf("first request after zero: %d, %v after %s; sklearn says %d", got, err, answered.Sub(sent).Round(time.Millisecond), want[0])
	}
	var tc, tr time.Time
	select {
	case tc = <-created:
	case <-time.After(5 * time.Second):
		t.Fatal("the pod watch saw no pod created")
	}
	select {
	case tr = <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("the pod watch saw no pod Ready")
	}
	wait, podStart := answered.Sub(sent), tr.Sub(tc)
	t.Logf("from zero: the first request waited %s: %s until the pod was created (tick, push, KEDA, ReplicaSet), %s for the pod to start and pass its readiness probe, %s from Ready to the answer (endpoints, activator)",
		wait.Round(time.Millisecond), tc.Sub(sent).Round(time.Millisecond), podStart.Round(time.Millisecond), answered.Sub(tr).Round(time.Millisecond))
	// The target is the pod's start + 2 s (measured: + 1.6 s and + 1.0 s, docs/autoscaling.md);
	// the assertion leaves one more second for this shared two-core node, where
	// kube-proxy's endpoint sync alone has been seen to take most of a second.
	if wait > podStart+3*time.Second {
		t.Errorf("first request waited %s, the pod's start %s: want at most the pod's start + 2 s (+1 s for this node's noise)", wait, podStart)
	}
}

// watchPodStart watches the selector's pods and reports, on the test's clock, when
// the first pod appeared and when the first was Ready.
func (c *cluster) watchPodStart(t *testing.T, selector string) (created, ready <-chan time.Time) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, c.kubectlBin, "--kubeconfig", c.kubeconfig, "--namespace", c.namespace, "get", "pods", "-l", selector,
		"--watch", "-o", `jsonpath={.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cr, rd := make(chan time.Time, 1), make(chan time.Time, 1)
	go func() {
		defer cmd.Wait()
		sc := bufio.NewScanner(out)
		seen, isReady := false, false
		for sc.Scan() {
			now := time.Now()
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			if !seen {
				seen = true
				cr <- now
			}
			if !isReady && len(f) > 1 && f[1] == "True" {
				isReady = true
				rd <- now
			}
		}
	}()
	return cr, rd
}
