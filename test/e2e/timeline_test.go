//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hpaTimeline logs an HPA's state at each step of a scaling test and keeps
// the most replicas it saw, so that the summary states the peak and where
// the Deployment ended rather than the first step up it waited for. The
// lines also go to <artifacts>/<test>/timeline.txt.
type hpaTimeline struct {
	t                 *testing.T
	c                 *cluster
	hpa, deployment   string
	start             time.Time
	metric            func() string // the HPA metric's value, as the line shows it
	peak, peakDesired int
	lines             []string
}

func newHPATimeline(t *testing.T, c *cluster, hpa, deployment string, metric func() string) *hpaTimeline {
	return &hpaTimeline{t: t, c: c, hpa: hpa, deployment: deployment, start: time.Now(), metric: metric}
}

func (h *hpaTimeline) atoi(object, path string) int {
	n, _ := strconv.Atoi(h.c.jsonpath(h.t.Context(), object, path))
	return n
}

// log records one step: the HPA's current and desired replicas, the ready
// replicas and the metric.
func (h *hpaTimeline) log(what string) {
	cur := h.atoi(h.hpa, "{.status.currentReplicas}")
	desired := h.atoi(h.hpa, "{.status.desiredReplicas}")
	ready := h.atoi(h.deployment, "{.status.readyReplicas}")
	h.peak = max(h.peak, cur, ready)
	h.peakDesired = max(h.peakDesired, desired)
	line := fmt.Sprintf("+%3.0fs %s: replicas=%d ready=%d desired=%d %s", time.Since(h.start).Seconds(), what, cur, ready, desired, h.metric())
	h.lines = append(h.lines, line)
	h.t.Log(line)
}

// ready is the Deployment's ready replicas now, also counted in the peak.
func (h *hpaTimeline) ready() int {
	n := h.atoi(h.deployment, "{.status.readyReplicas}")
	h.peak = max(h.peak, n)
	return n
}

// summary is "FROM -> peak P (desired up to D) -> FINAL replicas in T", and
// the timeline is written to the test's artifact folder.
func (h *hpaTimeline) summary(from int) string {
	final := h.atoi(h.deployment, "{.status.replicas}")
	s := fmt.Sprintf("%d -> peak %d (desired up to %d) -> %d replicas in %s", from, h.peak, h.peakDesired, final, time.Since(h.start).Round(time.Second))
	if dir := artifactDir(h.t); dir != "" {
		os.WriteFile(filepath.Join(dir, "timeline.txt"), []byte(strings.Join(append(h.lines, s), "\n")+"\n"), 0o644)
	}
	return s
}

// artifactDir is the folder this test keeps its reports and timelines in:
// $TIDE_E2E_ARTIFACTS/<test name>, created on first use. Empty (and
// nothing kept) when TIDE_E2E_ARTIFACTS is unset; hack/ci-e2e.sh sets it.
func artifactDir(t *testing.T) string {
	root := os.Getenv("TIDE_E2E_ARTIFACTS")
	if root == "" {
		return ""
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("artifacts: %v", err)
		return ""
	}
	return dir
}
