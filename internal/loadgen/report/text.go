package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tideserve/tide/internal/loadgen"
)

// WriteSummary prints the run the way hey does: totals, rate, a latency
// distribution and the status-code (HTTP or gRPC) and error breakdown.
func WriteSummary(w io.Writer, s loadgen.Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary (%s loop, %s, stages %s):\n", s.Mode, s.Protocol, s.Plan)
	fmt.Fprintf(&b, "  Total:\t%.4f secs\n", s.Elapsed)
	fmt.Fprintf(&b, "  Requests:\t%d sent, %d completed, %d ok, %d errors\n", s.Sent, s.Completed, s.OK, s.Errors)
	fmt.Fprintf(&b, "  Requests/sec:\t%.2f (%.2f ok)\n", s.Rate, s.OKRate)
	if s.Latency.Max > 0 {
		fmt.Fprintf(&b, "  Fastest:\t%.4f secs\n", s.Latency.Min/1000)
		fmt.Fprintf(&b, "  Average:\t%.4f secs\n", s.Latency.Mean/1000)
		fmt.Fprintf(&b, "  Slowest:\t%.4f secs\n", s.Latency.Max/1000)
	}
	if s.Completed > 0 {
		fmt.Fprintf(&b, "  Size/request:\t%d bytes\n", s.BytesIn/max(s.Completed, 1))
	}
	if s.Late > 0 {
		fmt.Fprintf(&b, "  Sent late:\t%d requests left over 1 ms after their time (generator-bound; their latency counts from the intended time)\n", s.Late)
	}
	if keys := s.Latency.SortedPercentiles(); len(keys) > 0 && s.Latency.Max > 0 {
		b.WriteString("\nLatency distribution:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s%% in %.4f secs\n", k, s.Latency.Pct[k]/1000)
		}
	}
	if sv := s.Service; sv != nil && sv.Max > 0 {
		fmt.Fprintf(&b, "\nService time (from actual send, leaving out waits for a turn): 50%% %.4f, 99%% %.4f, slowest %.4f secs\n",
			sv.Pct["50"]/1000, sv.Pct["99"]/1000, sv.Max/1000)
	}
	if len(s.StatusCode) > 0 {
		b.WriteString("\nStatus code distribution:\n")
		codes := make([]int, 0, len(s.StatusCode))
		for c := range s.StatusCode {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			fmt.Fprintf(&b, "  [%d]\t%d responses\n", c, s.StatusCode[c])
		}
	}
	if len(s.GRPCCodes) > 0 {
		b.WriteString("\ngRPC status distribution:\n")
		names := make([]string, 0, len(s.GRPCCodes))
		for n := range s.GRPCCodes {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			if s.GRPCCodes[names[i]] != s.GRPCCodes[names[j]] {
				return s.GRPCCodes[names[i]] > s.GRPCCodes[names[j]]
			}
			return names[i] < names[j]
		})
		for _, n := range names {
			fmt.Fprintf(&b, "  [%s]\t%d responses\n", n, s.GRPCCodes[n])
		}
	}
	if len(s.ErrorKinds) > 0 {
		b.WriteString("\nError distribution:\n")
		kinds := make([]string, 0, len(s.ErrorKinds))
		for k := range s.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return s.ErrorKinds[kinds[i]] > s.ErrorKinds[kinds[j]] })
		for _, k := range kinds {
			fmt.Fprintf(&b, "  [%d]\t%s\n", s.ErrorKinds[k], k)
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, strings.ReplaceAll(b.String(), "\t", " "))
	return err
}

// Live shows a run as it happens. On a terminal it redraws a small table in
// place each second; elsewhere it writes one JSON line per second, which a
// script or a CI log can read.
type Live struct {
	w        io.Writer
	terminal bool
	start    time.Time
	sent     int64
	errs     int64
	lines    int // lines drawn last time, to move the cursor back over
	watching bool
}

// NewLive writes to w; terminal says whether w is one.
func NewLive(w io.Writer, terminal, watching bool) *Live {
	return &Live{w: w, terminal: terminal, watching: watching, start: time.Now()}
}

// Sample shows one second. It is called from one goroutine at a time.
func (l *Live) Sample(s loadgen.Sample) {
	l.sent += s.Sent
	l.errs += s.Errors
	if !l.terminal {
		fmt.Fprintf(l.w, `{"t":%d,"target":%g,"sent":%d,"ok":%d,"errors":%d,"p50_ms":%g,"p90_ms":%g,"p99_ms":%g,"in_flight":%d,"desired_replicas":%d,"ready_replicas":%d,"backlog":%d}`+"\n",
			s.Second, s.Target, s.Sent, s.OK, s.Errors, s.P50, s.P90, s.P99, s.InFlight, s.DesiredReplicas, s.ReadyReplicas, s.Backlog)
		return
	}
	var b strings.Builder
	if l.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", l.lines) // back to the table's first line
	}
	head := fmt.Sprintf("%8s %10s %9s %9s %9s %8s %10s %10s", "elapsed", "sent", "rate/s", "target", "in-flight", "errors", "p50", "p99")
	row := fmt.Sprintf("%8s %10d %9d %9g %9d %8d %10s %10s",
		(time.Duration(s.Second) * time.Second).String(), l.sent, s.Sent, round1(s.Target), s.InFlight, l.errs, fmtMS(s.P50), fmtMS(s.P99))
	if l.watching {
		head += fmt.Sprintf(" %9s", "replicas")
		rep := "?"
		if s.DesiredReplicas >= 0 {
			rep = fmt.Sprintf("%d/%d", s.ReadyReplicas, s.DesiredReplicas)
		}
		row += fmt.Sprintf(" %9s", rep)
	}
	if s.Backlog >= 0 {
		head += fmt.Sprintf(" %9s", "backlog")
		row += fmt.Sprintf(" %9d", s.Backlog)
	}
	b.WriteString("\x1b[2K" + head + "\n\x1b[2K" + row + "\n")
	l.lines = 2
	io.WriteString(l.w, b.String())
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func fmtMS(ms float64) string {
	switch {
	case ms == 0:
		return "-"
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 1000:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.2fs", ms/1000)
}
