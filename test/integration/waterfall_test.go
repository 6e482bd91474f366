package integration

import (
	"image/color"
	"sort"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writeWaterfall draws a trace as the waterfall a tracing UI shows: one bar per
// span, from the trace's start, in start order, labelled "service: span". It is
// the picture in docs/observability.md (TIDE_TRACE_WATERFALL=PATH.png).
func writeWaterfall(t *testing.T, path string, spans []jaegerSpan) {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no spans to draw")
	}
	sort.Slice(spans, func(a, b int) bool {
		if spans[a].StartTime != spans[b].StartTime {
			return spans[a].StartTime < spans[b].StartTime
		}
		return spans[a].Duration > spans[b].Duration // a parent before the child that starts with it
	})
	t0 := spans[0].StartTime
	p := plot.New()
	p.Title.Text = "One request through the activator into tide-server (Jaeger)"
	p.X.Label.Text = "milliseconds since the trace started"
	labels := make([]string, len(spans))
	colors := map[string]color.Color{"tide-activator": color.RGBA{R: 230, G: 140, B: 40, A: 255}, "tide-server": color.RGBA{R: 40, G: 110, B: 200, A: 255}}
	for i, s := range spans {
		y := float64(len(spans) - 1 - i)
		labels[len(spans)-1-i] = s.Service + ": " + s.OperationName
		x0 := float64(s.StartTime-t0) / 1000
		x1 := x0 + max(float64(s.Duration)/1000, 0.002) // a zero-length span still shows
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: y - 0.35}, {X: x1, Y: y - 0.35}, {X: x1, Y: y + 0.35}, {X: x0, Y: y + 0.35}})
		if err != nil {
			t.Fatal(err)
		}
		c, ok := colors[s.Service]
		if !ok {
			c = color.Gray{Y: 120}
		}
		poly.Color, poly.LineStyle.Width = c, 0
		p.Add(poly)
	}
	p.NominalY(labels...)
	p.Y.Padding = 0
	p.Add(plotter.NewGrid())
	if err := p.Save(8*vg.Inch, vg.Length(1.2+0.4*float64(len(spans)))*vg.Inch, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
