package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/loadgen"
	"github.com/tideserve/tide/internal/loadgen/watch"
	"gonum.org/v1/plot/plotter"
)

// sampleReport is a 20-second open-loop run whose middle seconds stall, with
// a watched Deployment scaling from 1 to 3.
func sampleReport(watched bool) *Report {
	r := &Report{Summary: loadgen.Summary{
		Mode: "open", URL: "http://127.0.0.1:8080/predict", Protocol: loadgen.ProtocolPredict, Plan: "20s:100",
		Started: time.Unix(0, 0).UTC(), Elapsed: 20, Sent: 2000, Completed: 2000, OK: 1990, Errors: 10, Rate: 100, OKRate: 99.5,
		Latency:    loadgen.LatencySummary{Min: 0.2, Mean: 3, Max: 1000, Pct: map[string]float64{"50": 1.5, "99": 900, "99.9": 990}},
		StatusCode: map[int]int64{200: 1990, 503: 10}, ErrorKinds: map[string]int64{},
	}}
	for i := 1; i <= 20; i++ {
		s := loadgen.Sample{Second: i, Span: 1, Target: 100, Sent: 100, OK: 99, Errors: 1, P50: 1.5, P90: 2, P99: 3, Max: 4, InFlight: 1,
			DesiredReplicas: -1, ReadyReplicas: -1, Backlog: -1}
		if i == 10 {
			s.P99, s.Max = 900, 1000
		}
		if watched {
			s.DesiredReplicas = 1 + min(i/5, 2)
			s.ReadyReplicas = 1 + min(max(i-2, 0)/5, 2)
		}
		r.Samples = append(r.Samples, s)
	}
	if watched {
		r.Cluster = &watch.Timeline{Namespace: "ml", Deployment: "tide",
			Points: []watch.Point{{T: 0, State: watch.State{Desired: 1, Ready: 1}}, {T: 5.2, State: watch.State{Desired: 2, Ready: 1}}},
			Events: []watch.Event{{T: 5.1, Type: "Normal", Object: "HorizontalPodAutoscaler/tide", Reason: "SuccessfulRescale"}}}
	}
	return r
}

func TestWriteDir(t *testing.T) {
	for _, watched := range []bool{false, true} {
		dir := t.TempDir()
		r := sampleReport(watched)
		if err := WriteDir(filepath.Join(dir, "nested", "report"), r); err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(dir, "nested", "report")
		read := func(name string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				t.Fatalf("%s is empty", name)
			}
			return b
		}

		var back Report
		if err := json.Unmarshal(read(JSONFile), &back); err != nil {
			t.Fatalf("summary.json: %v", err)
		}
		if back.Summary.Sent != 2000 || len(back.Samples) != 20 || (back.Cluster != nil) != watched {
			t.Errorf("summary.json round trip: sent %d, %d samples, cluster %v", back.Summary.Sent, len(back.Samples), back.Cluster)
		}

		rows, err := csv.NewReader(bytes.NewReader(read(CSVFile))).ReadAll()
		if err != nil {
			t.Fatalf("timeseries.csv: %v", err)
		}
		if len(rows) != 21 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
			t.Fatalf("timeseries.csv: %d rows, header %v", len(rows), rows[0])
		}
		if rows[10][8] != "900" {
			t.Errorf("second 10's p99 = %q, want 900", rows[10][8])
		}
		wantReplicas := ""
		if watched {
			wantReplicas = "3"
		}
		if got := rows[20][11]; got != wantReplicas {
			t.Errorf("last desired_replicas = %q, want %q", got, wantReplicas)
		}

		pngBytes := read(PNGFile)
		img, err := png.Decode(bytes.NewReader(pngBytes))
		if err != nil {
			t.Fatalf("load.png is not a PNG: %v", err)
		}
		// Three panels when watching, two otherwise, 3 inches each at 96 dpi.
		wantH := 2 * 3 * 96
		if watched {
			wantH = 3 * 3 * 96
		}
		if b := img.Bounds(); b.Dx() != 960 || b.Dy() != wantH {
			t.Errorf("load.png is %dx%d, want 960x%d", b.Dx(), b.Dy(), wantH)
		}
		svg := string(read(SVGFile))
		if !strings.HasPrefix(svg, "<?xml") || !strings.Contains(svg, "<svg") || !strings.HasSuffix(strings.TrimSpace(svg), "</svg>") {
			t.Errorf("load.svg does not look like SVG: %.80q", svg)
		}
		if strings.Contains(svg, "Replicas") != watched {
			t.Errorf("replicas panel present = %v, want %v", !watched, watched)
		}
	}
}

func TestPlotRejectsUnknownFormat(t *testing.T) {
	if err := sampleReport(false).Plot(&bytes.Buffer{}, "gif"); err == nil {
		t.Error("Plot(gif) succeeded")
	}
}

func TestPlotEmptyRun(t *testing.T) {
	// A run cut short before its first second still gets a (blank) plot.
	r := &Report{Summary: loadgen.Summary{Mode: "closed"}}
	var buf bytes.Buffer
	if err := r.Plot(&buf, "png"); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestWriteSummary(t *testing.T) {
	var b bytes.Buffer
	s := sampleReport(false).Summary
	s.ErrorKinds = map[string]int64{"timeout": 3, "connection refused": 7}
	s.Service = &loadgen.LatencySummary{Max: 50, Pct: map[string]float64{"50": 1, "99": 40}}
	if err := WriteSummary(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Requests/sec: 100.00 (99.50 ok)",
		"Slowest: 1.0000 secs",
		"  50% in 0.0015 secs\n  99% in 0.9000 secs\n  99.9% in 0.9900 secs",
		"[200] 1990 responses", "[503] 10 responses",
		"[7] connection refused\n  [3] timeout",
		"50% 0.0010, 99% 0.0400, slowest 0.0500 secs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// TestWriteSummaryGRPC: gRPC calls are listed by code, most frequent first.
func TestWriteSummaryGRPC(t *testing.T) {
	var b bytes.Buffer
	s := sampleReport(false).Summary
	s.Protocol, s.StatusCode = loadgen.ProtocolGRPC, map[int]int64{}
	s.GRPCCodes = map[string]int64{"OK": 1990, "RESOURCE_EXHAUSTED": 8, "NOT_FOUND": 2}
	if err := WriteSummary(&b, s); err != nil {
		t.Fatal(err)
	}
	want := "gRPC status distribution:\n  [OK] 1990 responses\n  [RESOURCE_EXHAUSTED] 8 responses\n  [NOT_FOUND] 2 responses\n"
	if out := b.String(); !strings.Contains(out, want) || strings.Contains(out, "Status code distribution") {
		t.Errorf("summary lacks %q or lists HTTP codes:\n%s", want, out)
	}
}

func TestLive(t *testing.T) {
	s := loadgen.Sample{Second: 3, Target: 50, Sent: 49, OK: 48, Errors: 1, P50: 0.5, P99: 1200, InFlight: 2, DesiredReplicas: 2, ReadyReplicas: 1}
	var plain bytes.Buffer
	l := NewLive(&plain, false, true)
	l.Sample(s)
	l.Sample(s)
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("not a terminal: %d lines, want one per second", len(lines))
	}
	var back loadgen.Sample
	if err := json.Unmarshal([]byte(lines[0]), &back); err != nil || back.Sent != 49 || back.DesiredReplicas != 2 {
		t.Errorf("line %q → %+v, %v", lines[0], back, err)
	}

	var term bytes.Buffer
	l = NewLive(&term, true, true)
	l.Sample(s)
	first := term.String()
	l.Sample(s)
	second := strings.TrimPrefix(term.String(), first)
	if strings.Contains(first, "\x1b[2A") || !strings.HasPrefix(second, "\x1b[2A") {
		t.Errorf("terminal view should redraw in place: %q then %q", first, second)
	}
	for _, want := range []string{"98", "500µs", "1.20s", "1/2"} { // cumulative sent, p50, p99, ready/desired
		if !strings.Contains(second, want) {
			t.Errorf("terminal view lacks %q: %q", want, second)
		}
	}
}

// TestPlotCanaryPanel: a watched Model's canary adds a fourth panel (weight,
// agreement and error ratio), and its absence none.
func TestPlotCanaryPanel(t *testing.T) {
	r := sampleReport(true)
	panels, err := r.panels()
	if err != nil || len(panels) != 3 {
		t.Fatalf("without a canary: %d panels, %v", len(panels), err)
	}
	r.Cluster.Points = append(r.Cluster.Points,
		watch.Point{T: 1, State: watch.State{Desired: 2, Ready: 2, Canary: &watch.CanaryState{Candidate: "old", Phase: "Promoted", Step: 4, Weight: 0, ErrorRatio: 0, Agreement: 1}}},
		watch.Point{T: 6, State: watch.State{Desired: 2, Ready: 2, Canary: &watch.CanaryState{Phase: "Progressing", Step: 1, Weight: 10, ErrorRatio: -1, Agreement: -1}}},
		watch.Point{T: 8, State: watch.State{Desired: 2, Ready: 2, Canary: &watch.CanaryState{Phase: "Progressing", Step: 1, Weight: 10, ErrorRatio: 0, Agreement: 0.62}}},
		watch.Point{T: 9, State: watch.State{Desired: 2, Ready: 2, Canary: &watch.CanaryState{Phase: "RolledBack", Step: 1, Weight: 0, ErrorRatio: 0, Agreement: 0.61}}})
	panels, err = r.panels()
	if err != nil || len(panels) != 4 {
		t.Fatalf("with a canary: %d panels, %v", len(panels), err)
	}
	if title := panels[3].Title.Text; title != "Canary rollout — RolledBack" {
		t.Errorf("panel title %q", title)
	}
	// Only the last rollout is drawn: three lines from t=6 on, none from the earlier one at t=1.
	weight, agreement, errorRatio, _ := r.canarySeries()
	for name, xys := range map[string]plotter.XYs{"weight": weight, "agreement": agreement, "error ratio": errorRatio} {
		if len(xys) == 0 || xys[0].X < 8 && name != "weight" || xys[0].X < 6 || xys[len(xys)-1].X != 20 {
			t.Errorf("%s series %v: want the last rollout only (from t=6, measured from t=8), held to the end", name, xys)
		}
	}
	var buf bytes.Buffer
	if err := r.Plot(&buf, "png"); err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(&buf); err != nil || img.Bounds().Dy() != 4*3*96 {
		t.Fatalf("png: %v %v", img.Bounds(), err)
	}
}

// TestQueueBacklog: a queue run's backlog is a CSV column and a panel of its
// own; a run without one has neither.
func TestQueueBacklog(t *testing.T) {
	r := sampleReport(true)
	if panels, _ := r.panels(); len(panels) != 3 {
		t.Fatalf("without a backlog: %d panels, want 3", len(panels))
	}
	for i := range r.Samples {
		r.Samples[i].Backlog = int64(max(0, 5000-400*i))
	}
	panels, err := r.panels()
	if err != nil || len(panels) != 4 || !strings.Contains(panels[2].Title.Text, "backlog") {
		t.Fatalf("with a backlog: %d panels (%v), want the backlog third", len(panels), err)
	}
	var csvOut strings.Builder
	if err := r.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(csvOut.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if h := rows[0][len(rows[0])-1]; h != "backlog" || rows[1][13] != "5000" || rows[20][13] != "0" {
		t.Errorf("backlog column %q: second 1 = %q, second 20 = %q; want 5000 and 0", h, rows[1][13], rows[20][13])
	}
}
