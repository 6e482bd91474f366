// Package report turns a load run into what people read: a hey-style text
// summary, a live view while it runs, and a report folder with JSON, a CSV
// time series and PNG/SVG plots.
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tideserve/tide/internal/loadgen"
	"github.com/tideserve/tide/internal/loadgen/watch"
)

// Report is one run: the summary, its seconds, and the cluster's timeline
// when a Deployment was watched.
type Report struct {
	Summary loadgen.Summary  `json:"summary"`
	Samples []loadgen.Sample `json:"samples"`
	Cluster *watch.Timeline  `json:"cluster,omitempty"`
}

// Files a report folder holds.
const (
	JSONFile = "summary.json"
	CSVFile  = "timeseries.csv"
	PNGFile  = "load.png"
	SVGFile  = "load.svg"
)

// WriteDir writes every file of the report into dir, creating it.
func WriteDir(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	writers := []struct {
		name  string
		write func(io.Writer) error
	}{
		{JSONFile, r.WriteJSON},
		{CSVFile, r.WriteCSV},
		{PNGFile, func(w io.Writer) error { return r.Plot(w, "png") }},
		{SVGFile, func(w io.Writer) error { return r.Plot(w, "svg") }},
	}
	for _, wr := range writers {
		if err := writeFile(filepath.Join(dir, wr.name), wr.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteJSON writes the whole report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// CSVHeader is the time series' columns. Replica columns are empty when no
// Deployment was watched, backlog when the target is not a queue.
var CSVHeader = []string{"second", "span_s", "target", "sent", "ok", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms", "in_flight", "desired_replicas", "ready_replicas", "backlog"}

func unknownEmpty(v int64) string {
	if v < 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

// WriteCSV writes one row per second of the run.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	replicas := func(v int) string {
		if v < 0 {
			return ""
		}
		return strconv.Itoa(v)
	}
	for _, s := range r.Samples {
		row := []string{
			strconv.Itoa(s.Second), f(s.Span), f(s.Target), i(s.Sent), i(s.OK), i(s.Errors),
			f(s.P50), f(s.P90), f(s.P99), f(s.Max), i(s.InFlight),
			replicas(s.DesiredReplicas), replicas(s.ReadyReplicas), unknownEmpty(s.Backlog),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
