//go:build e2e

package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// tide load on the cluster: the tests run the CLI built from this tree, and the
// operator's CPU autoscaling test (operator_test.go) proves --watch and the
// report with checkWatchedScaling.

// loadReport is the part of tide load's summary.json the tests check.
type loadReport struct {
	Sent, OK, Errors int
}

// tideLoadRun is one tide load run: its summary, its report folder, its output.
type tideLoadRun struct {
	summary loadReport
	report  string
	out     []byte
	err     error
}

// tideBinary builds the tide CLI from this tree (in the test's goroutine: it may fail the test).
func tideBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tide")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tideserve/tide/cmd/tide").CombinedOutput(); err != nil {
		t.Fatalf("build tide: %v\n%s", err, out)
	}
	return bin
}

// reportDir is where a run's report goes: the test's artifact folder when there
// is one (a CI run keeps the plots), else a scratch folder.
func reportDir(t *testing.T) string {
	if a := artifactDir(t); a != "" {
		return a
	}
	return filepath.Join(t.TempDir(), "report")
}

// runTideLoad runs `tide load --report report args...`. It never fails the test
// itself, so it may run in a goroutine beside the test's own checks.
func runTideLoad(ctx context.Context, bin, report string, args ...string) tideLoadRun {
	r := tideLoadRun{report: report}
	r.out, r.err = exec.CommandContext(ctx, bin, append([]string{"load", "--report", report}, args...)...).CombinedOutput()
	if r.err == nil {
		r.summary, r.err = readLoadSummary(report)
	}
	return r
}

// startTideLoad runs tide load (runTideLoad) in the background, its report in
// the test's folder, for at most limit; wait gives the run once it has ended.
func startTideLoad(t *testing.T, bin string, limit time.Duration, args ...string) (wait func() tideLoadRun) {
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	done := make(chan tideLoadRun, 1)
	report := reportDir(t)
	go func() { done <- runTideLoad(ctx, bin, report, args...) }()
	return func() tideLoadRun { defer cancel(); return <-done }
}

// expectNoFailures fails the test unless the run ended well, sent at least
// minSent requests and none failed; what says which run it was.
func (r tideLoadRun) expectNoFailures(t *testing.T, what string, minSent int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("tide load %s: %v\n%s", what, r.err, tail(r.out, 3000))
	}
	t.Logf("tide load %s: %+v", what, r.summary)
	if r.summary.Errors != 0 || r.summary.Sent < minSent {
		t.Errorf("tide load %s: %+v (want 0 errors of at least %d)\n%s", what, r.summary, minSent, tail(r.out, 2000))
	}
}

func readLoadSummary(report string) (loadReport, error) {
	var s loadReport
	b, err := os.ReadFile(filepath.Join(report, "summary.json"))
	if err != nil {
		return s, err
	}
	var doc struct{ Summary json.RawMessage }
	if json.Unmarshal(b, &doc) != nil || json.Unmarshal(doc.Summary, &s) != nil {
		if err := json.Unmarshal(b, &s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// checkWatchedScaling checks a `tide load --watch deployment/...` report: the CSV
// carries the replicas the watcher saw on the load's clock for most seconds, the
// desired count rose above `above`, and both plot files were written.
func checkWatchedScaling(t *testing.T, report string, above int) {
	t.Helper()
	rows := timeseries(t, report)
	if len(rows) < 59 {
		t.Fatalf("timeseries.csv: %d seconds", len(rows))
	}
	maxDesired, seen := 0, 0
	for _, r := range rows {
		if d, err := strconv.Atoi(r["desired_replicas"]); err == nil {
			seen++
			maxDesired = max(maxDesired, d)
		}
	}
	t.Logf("tide load --watch: %d seconds with replica counts, desired replicas up to %d", seen, maxDesired)
	if seen < (len(rows)+1)/2 || maxDesired <= above {
		t.Fatalf("the watcher did not record the scaling: %d samples of %d, max desired %d", seen, len(rows), maxDesired)
	}
	for _, name := range []string{"load.png", "load.svg"} {
		if fi, err := os.Stat(filepath.Join(report, name)); err != nil || fi.Size() < 1000 {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// timeseries reads a tide load report's timeseries.csv as rows by column name.
func timeseries(t *testing.T, report string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(report, "timeseries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("timeseries.csv: %d rows, %v", len(rows), err)
	}
	out := make([]map[string]string, 0, len(rows)-1)
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
