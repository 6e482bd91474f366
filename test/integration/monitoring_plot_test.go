package integration

import (
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// timelinePoint is one sample of the alert test's timeline.
type timelinePoint struct {
	at, psi, accuracy float64
	driftFiring       bool
	accuracyFiring    bool
}

// plotTimeline draws the alert test's timeline (docs/images/monitoring-alerts.png):
// feature1's PSI with the alert threshold, and the rolling accuracy with its
// floor, each with the span its alert was firing in Prometheus shaded.
func plotTimeline(points []timelinePoint, psiThreshold, accuracyFloor float64, path string) error {
	var psi, acc, driftOn, accOn plotter.XYs
	for _, p := range points {
		if p.psi >= 0 {
			psi = append(psi, plotter.XY{X: p.at, Y: p.psi})
		}
		if p.accuracy >= 0 {
			acc = append(acc, plotter.XY{X: p.at, Y: p.accuracy})
		}
		driftOn = append(driftOn, plotter.XY{X: p.at, Y: b2f(p.driftFiring)})
		accOn = append(accOn, plotter.XY{X: p.at, Y: b2f(p.accuracyFiring)})
	}
	last := points[len(points)-1].at
	red := color.RGBA{R: 200, G: 40, B: 40, A: 255}
	blue := color.RGBA{R: 30, G: 90, B: 200, A: 255}
	shade := color.RGBA{R: 255, G: 215, B: 215, A: 255}
	panel := func(title, ylabel string, ymax float64, line plotter.XYs, limit float64, firing plotter.XYs, c color.Color) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "seconds"
		p.Y.Label.Text = ylabel
		p.Y.Min, p.Y.Max, p.X.Min, p.X.Max = 0, ymax, 0, last
		p.Add(plotter.NewGrid())
		// The firing span as a filled step area scaled to the panel's height.
		area := make(plotter.XYs, len(firing))
		for i, f := range firing {
			area[i] = plotter.XY{X: f.X, Y: f.Y * ymax}
		}
		fill, err := plotter.NewLine(area)
		if err != nil {
			return nil, err
		}
		fill.StepStyle, fill.FillColor, fill.Color = plotter.PreStep, shade, color.Transparent
		l, err := plotter.NewLine(line)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = c, vg.Points(2)
		th, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: limit}, {X: last, Y: limit}})
		th.Color, th.Dashes = color.Gray{Y: 90}, []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(fill, l, th)
		p.Legend.Add("alert firing (Prometheus)", fill)
		p.Legend.Add(ylabel, l)
		p.Legend.Add("alert threshold", th)
		p.Legend.Top = true
		return p, nil
	}
	top, err := panel("feature1 drift: in distribution, shifted, back", "PSI", 4.5, psi, psiThreshold, driftOn, red)
	if err != nil {
		return err
	}
	bottom, err := panel("rolling accuracy: true labels, then 30% flipped", "accuracy", 1.1, acc, accuracyFloor, accOn, blue)
	if err != nil {
		return err
	}
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(10*vg.Inch, 6*vg.Inch), vgimg.UseDPI(110))}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(10)}
	areas := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, draw.New(c))
	top.Draw(areas[0][0])
	bottom.Draw(areas[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = c.WriteTo(f)
	return err
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
