//go:build e2e

package e2e

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestTideLoadWatchesTheHPA runs `tide load` with --watch against the fraud chart
// with a CPU HPA: a step load, then the report. The CSV must carry the replicas
// the watcher saw on the load's clock, showing the HPA scaling up, and the plot
// files must be written.
func TestTideLoadWatchesTheHPA(t *testing.T) {
	c := testCluster
	url := c.installFraud(t, "loadw")
	eventually(t, "the HPA to read CPU metrics", 3*time.Minute, 5*time.Second, func() bool {
		return c.jsonpath(t.Context(), "hpa/loadw-tide", "{.status.currentMetrics[0].resource.current.averageUtilization}") != ""
	})

	dir := t.TempDir()
	bin := filepath.Join(dir, "tide")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tideserve/tide/cmd/tide").CombinedOutput(); err != nil {
		t.Fatalf("build tide: %v\n%s", err, out)
	}
	// The report (with its plots) is kept in the artifact folder when there is
	// one, so a CI run leaves the picture of the scaling it proved.
	report := filepath.Join(dir, "report")
	if a := artifactDir(t); a != "" {
		report = a
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "load",
		"--stages", "10s:50,75s:1500,5s:50",
		"--watch", "deployment/loadw-tide", "--namespace", c.namespace, "--kubeconfig", c.kubeconfig,
		"--template", `{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}`,
		"--report", report, url+"/predict")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tide load: %v\n%s", err, tail(out, 3000))
	}

	summary := readLoadSummary(t, report)
	if summary.Sent < 50000 || summary.Errors*100 > summary.Sent {
		t.Fatalf("summary: %+v", summary)
	}

	f, err := os.Open(filepath.Join(report, "timeseries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 60 {
		t.Fatalf("timeseries.csv: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	maxDesired, seen := 0, 0
	for _, r := range rows[1:] {
		if d, err := strconv.Atoi(r[col["desired_replicas"]]); err == nil {
			seen++
			maxDesired = max(maxDesired, d)
		}
	}
	t.Logf("tide load: %+v; %d seconds with replica counts, desired replicas up to %d", summary, seen, maxDesired)
	if seen < len(rows)/2 || maxDesired <= 2 {
		t.Fatalf("the watcher did not record the HPA scaling up: %d samples, max desired %d", seen, maxDesired)
	}
	for _, name := range []string{"load.png", "load.svg"} {
		if fi, err := os.Stat(filepath.Join(report, name)); err != nil || fi.Size() < 1000 {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
