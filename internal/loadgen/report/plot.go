package report

import (
	"fmt"
	"image/color"
	"io"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/tideserve/tide/internal/loadgen"
)

// Colours that stay apart for the colour-blind (Okabe–Ito).
var (
	blue      = color.RGBA{0, 114, 178, 255}
	orange    = color.RGBA{230, 159, 0, 255}
	green     = color.RGBA{0, 158, 115, 255}
	red       = color.RGBA{213, 94, 0, 255}
	lightGrey = color.RGBA{200, 200, 200, 255}
	purple    = color.RGBA{204, 121, 167, 255}
)

// Plot draws the run as one figure, panels stacked on a shared time axis:
// throughput, latency percentiles, and replicas when a Deployment was
// watched. format is "png" or "svg".
func (r *Report) Plot(w io.Writer, format string) error {
	panels, err := r.panels()
	if err != nil {
		return err
	}
	width := 10 * vg.Inch
	height := vg.Length(len(panels)) * 3 * vg.Inch
	var canvas interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))}
	case "svg":
		canvas = vgsvg.New(width, height)
	default:
		return fmt.Errorf("plot format %q: want png or svg", format)
	}
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	areas := plot.Align(grid, tiles, draw.New(canvas))
	for i, p := range panels {
		p.Draw(areas[i][0])
	}
	_, err = canvas.WriteTo(w)
	return err
}

func (r *Report) panels() ([]*plot.Plot, error) {
	s := r.Summary
	var sent, ok, errs, target, p50, p90, p99, desired, ready, backlog plotter.XYs
	for _, sm := range r.Samples {
		// The last sample covers only the tail of the run, often a few
		// milliseconds of requests draining; as a rate it would be noise.
		if sm.Span < 0.5 {
			continue
		}
		// Rates and latencies belong to the second they were measured over:
		// draw them at its middle. Replica counts are steps, drawn at its end.
		x := float64(sm.Second) - sm.Span/2
		sent = append(sent, plotter.XY{X: x, Y: float64(sm.Sent) / sm.Span})
		ok = append(ok, plotter.XY{X: x, Y: float64(sm.OK) / sm.Span})
		errs = append(errs, plotter.XY{X: x, Y: float64(sm.Errors) / sm.Span})
		target = append(target, plotter.XY{X: x, Y: sm.Target})
		// A second in which nothing completed has no latency, not a latency
		// of zero: leave it out rather than draw a dive to the axis.
		if sm.Max > 0 {
			p50 = append(p50, plotter.XY{X: x, Y: sm.P50})
			p90 = append(p90, plotter.XY{X: x, Y: sm.P90})
			p99 = append(p99, plotter.XY{X: x, Y: sm.P99})
		}
		if sm.DesiredReplicas >= 0 {
			end := float64(sm.Second)
			desired = append(desired, plotter.XY{X: end, Y: float64(sm.DesiredReplicas)})
			ready = append(ready, plotter.XY{X: end, Y: float64(sm.ReadyReplicas)})
		}
		if sm.Backlog >= 0 {
			backlog = append(backlog, plotter.XY{X: float64(sm.Second), Y: float64(sm.Backlog)})
		}
	}

	throughput := newPanel(fmt.Sprintf("Throughput — %s loop, %s", s.Mode, s.URL), "requests / s")
	if s.Mode == string(loadgen.Open) {
		if err := addLine(throughput, "target rate", target, lightGrey, wide); err != nil {
			return nil, err
		}
	}
	for _, l := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{{"sent", sent, blue}, {"ok", ok, green}, {"errors", errs, red}} {
		if err := addLine(throughput, l.name, l.xys, l.c, 0); err != nil {
			return nil, err
		}
	}

	latency := newPanel(fmt.Sprintf("Latency (p99 over the run %.1f ms)", s.Latency.Pct["99"]), "ms")
	for _, l := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{{"p50", p50, green}, {"p90", p90, orange}, {"p99", p99, red}} {
		if err := addLine(latency, l.name, l.xys, l.c, 0); err != nil {
			return nil, err
		}
	}
	panels := []*plot.Plot{throughput, latency}

	if len(backlog) > 0 {
		queue := newPanel("Queue backlog (the workers' consumer: waiting + unacked)", "messages")
		if err := addLine(queue, "backlog", backlog, orange, 0); err != nil {
			return nil, err
		}
		panels = append(panels, queue)
	}

	if len(desired) > 0 {
		replicas := newPanel("Replicas", "pods")
		if err := addLine(replicas, "desired", desired, purple, dashed|step); err != nil {
			return nil, err
		}
		if err := addLine(replicas, "ready", ready, blue, step); err != nil {
			return nil, err
		}
		replicas.Y.Tick.Marker = integerTicks{}
		panels = append(panels, replicas)
	}
	if canary, err := r.canaryPanel(); err != nil {
		return nil, err
	} else if canary != nil {
		panels = append(panels, canary)
	}
	// One time axis for every panel, and a label only on the last.
	for i, p := range panels {
		p.X.Min, p.X.Max = 0, max(float64(len(r.Samples)), 1)
		if i == len(panels)-1 {
			p.X.Label.Text = "seconds since start"
		}
		p.Y.Min = 0
		p.X.Tick.Marker = plainTicks{}
		if _, ok := p.Y.Tick.Marker.(integerTicks); !ok {
			p.Y.Tick.Marker = plainTicks{}
		}
		// Headroom above the data for the legend, which sits top left.
		p.Y.Max = max(p.Y.Max*1.3, 1)
	}
	return panels, nil
}

// canarySeries are the canary panel's lines (percent over seconds), each held
// to the end of the run, and the rollout's last phase.
func (r *Report) canarySeries() (weight, agreement, errorRatio plotter.XYs, phase string) {
	if r.Cluster == nil {
		return nil, nil, nil, ""
	}
	last := ""
	for _, pt := range r.Cluster.Points {
		if pt.Canary != nil {
			last = pt.Canary.Candidate
		}
	}
	for _, pt := range r.Cluster.Points {
		c := pt.Canary
		if c == nil || c.Candidate != last {
			continue
		}
		weight = append(weight, plotter.XY{X: pt.T, Y: float64(c.Weight)})
		if c.Agreement >= 0 {
			agreement = append(agreement, plotter.XY{X: pt.T, Y: 100 * c.Agreement})
		}
		if c.ErrorRatio >= 0 {
			errorRatio = append(errorRatio, plotter.XY{X: pt.T, Y: 100 * c.ErrorRatio})
		}
		phase = c.Phase
	}
	// Hold the last values to the end of the run: the status changes in steps.
	end := float64(len(r.Samples))
	for _, xys := range []*plotter.XYs{&weight, &agreement, &errorRatio} {
		if n := len(*xys); n > 0 && (*xys)[n-1].X < end {
			*xys = append(*xys, plotter.XY{X: end, Y: (*xys)[n-1].Y})
		}
	}
	return weight, agreement, errorRatio, phase
}

// canaryPanel draws a watched Model's canary rollout: the candidate's weight,
// and the current step's agreement and error ratio, as the operator recorded
// them; nil when no canary was seen. It draws the run's last rollout only: the
// status at the start may still describe an earlier one.
func (r *Report) canaryPanel() (*plot.Plot, error) {
	weight, agreement, errorRatio, phase := r.canarySeries()
	if len(weight) == 0 {
		return nil, nil
	}
	p := newPanel("Canary rollout — "+phase, "%")
	for _, l := range []struct {
		name  string
		xys   plotter.XYs
		c     color.Color
		style lineStyle
	}{{"candidate weight", weight, purple, postStep}, {"agreement (step)", agreement, green, postStep}, {"error ratio (step)", errorRatio, red, postStep}} {
		if err := addLine(p, l.name, l.xys, l.c, l.style); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func newPanel(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

type lineStyle uint8

const (
	dashed   lineStyle = 1 << iota
	step               // hold each value over the second before it
	postStep           // hold each value from its time on (a state seen then)
	wide               // a broad band under the other lines: a target they should cover
)

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, style lineStyle) error {
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if style&dashed != 0 {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	if style&wide != 0 {
		l.Width = vg.Points(6)
	}
	if style&step != 0 {
		l.StepStyle = plotter.PreStep
	}
	if style&postStep != 0 {
		l.StepStyle = plotter.PostStep
	}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// plainTicks are gonum's default ticks labelled without trailing zeros
// ("2500", not "2500.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(ticks[i].Value, 'f', 3, 64), "0"), ".")
		}
	}
	return ticks
}

// integerTicks labels whole numbers only: half a pod means nothing.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	step := 1.0
	for (max-min)/step > 10 {
		step *= 2
	}
	var ticks []plot.Tick
	for v := 0.0; v <= max; v += step {
		if v >= min {
			ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
		}
	}
	return ticks
}
