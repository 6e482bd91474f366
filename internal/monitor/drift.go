package monitor

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// Window is how much recent traffic drift is measured over: the last Rows rows,
// or the rows of the last Span. It is kept as windowSlots slots that rotate, so
// memory is fixed (bins × slots per column) and old traffic leaves a slot at a
// time: a count window holds between 9/10 and all of Rows, a time window
// between 9/10 and all of Span.
type Window struct {
	Rows int
	Span time.Duration
}

const windowSlots = 10

func (w Window) String() string {
	if w.Span > 0 {
		return w.Span.String()
	}
	return strconv.Itoa(w.Rows) + " rows"
}

// ParseWindow reads "1000" (rows) or "10m" (a duration).
func ParseWindow(s string) (Window, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < windowSlots {
			return Window{}, fmt.Errorf("window %q: at least %d rows", s, windowSlots)
		}
		return Window{Rows: n}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < windowSlots*time.Millisecond {
		return Window{}, fmt.Errorf("window %q: want a number of rows (1000) or a duration (10m)", s)
	}
	return Window{Span: d}, nil
}

// Drift measures one model version's live traffic against its profile: per
// feature and for the prediction, counts per reference bin over the window.
// Observe is on the request path and only counts; the statistics are computed
// when read (Report), at scrape or query time.
type Drift struct {
	window  Window
	minRows int64
	now     func() time.Time

	mu        sync.Mutex
	features  []*liveColumn
	class     *liveColumn // the predicted class (classifiers)
	score     *liveColumn // a binary classifier's score or a regressor's value
	outcome   *Outcome
	slot      int
	slotRows  int64
	slotStart time.Time
	rows      [windowSlots]int64
	scratch   []float64
}

// liveColumn is one monitored column: its reference and its counts per slot.
// counts[s] holds one count per bin, then the missing values, then the odd ones
// (out of the reference's range, or a category it never saw).
type liveColumn struct {
	name   string
	kind   string
	edges  []float64
	ref    []float64 // reference shares per bin (a categorical's last bin: other)
	cats   map[string]int
	min    float64
	max    float64
	input  int // the input tensor, and the column and stride inside it
	col    int
	stride int
	counts [windowSlots][]float64
}

// NewDrift builds the counters for a profile already validated against md.
// minRows is how many rows the window must hold before its statistics are
// reported (fewer are noise).
func NewDrift(p *Profile, md model.Metadata, w Window, minRows int) *Drift {
	d := &Drift{window: w, minRows: int64(minRows), now: time.Now}
	d.slotStart = d.now()
	perColumnInputs := len(md.Inputs) == len(md.Features) && len(md.Inputs) > 1
	index := map[string]int{}
	for i, f := range md.Features {
		index[f] = i
	}
	for i := range p.Features {
		c := newLiveColumn(&p.Features[i])
		fi := index[c.name]
		if perColumnInputs {
			c.input, c.col, c.stride = fi, 0, 1
		} else {
			c.input, c.col, c.stride = 0, fi, len(md.Features)
		}
		d.features = append(d.features, c)
	}
	if o := p.Predict; o != nil {
		d.outcome = o
		for i := range md.Outputs {
			if md.Outputs[i].Name == o.Output {
				d.setOutcomeColumns(o, i)
			}
		}
	}
	return d
}

func (d *Drift) setOutcomeColumns(o *Outcome, output int) {
	if len(o.Classes) > 0 {
		c := newLiveColumn(&Column{Name: "class", Kind: Categorical, Categories: o.Classes, Shares: o.Shares})
		c.input = output
		d.class = c
	}
	if o.Score != nil {
		sc := *o.Score
		sc.Name = "score"
		c := newLiveColumn(&sc)
		c.input = output
		d.score = c
	}
}

func newLiveColumn(c *Column) *liveColumn {
	lc := &liveColumn{name: c.Name, kind: c.Kind, edges: c.Edges, min: math.Inf(-1), max: math.Inf(1)}
	if c.Min != nil {
		lc.min = *c.Min
	}
	if c.Max != nil {
		lc.max = *c.Max
	}
	bins := len(c.Edges) + 1
	lc.ref = c.Shares
	if c.Kind == Categorical {
		bins = len(c.Categories) + 1
		lc.ref = append(append([]float64(nil), c.Shares...), c.Other)
		lc.cats = make(map[string]int, len(c.Categories))
		for i, n := range c.Categories {
			lc.cats[n] = i
		}
	}
	for s := range lc.counts {
		lc.counts[s] = make([]float64, bins+2)
	}
	return lc
}

// Observe counts one request's rows: inputs as the model received them (in its
// input order) and the outputs it answered with. A request whose tensors do
// not have the shapes the profile expects is skipped: monitoring never fails a
// request.
func (d *Drift) Observe(inputs, outputs []*tensor.Tensor) {
	if len(inputs) == 0 || len(inputs[0].Shape) == 0 {
		return
	}
	n := int(inputs[0].Shape[0])
	if n <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.window.Span > 0 { // a count window needs no clock
		d.advance(d.now())
	}
	for _, c := range d.features {
		if c.input < len(inputs) {
			d.count(c, inputs[c.input], n)
		}
	}
	d.observeOutcome(outputs, n)
	d.rows[d.slot] += int64(n)
	d.slotRows += int64(n)
	if d.window.Rows > 0 && d.slotRows*windowSlots >= int64(d.window.Rows) {
		d.rotate(1)
	}
}

func (d *Drift) observeOutcome(outputs []*tensor.Tensor, n int) {
	o := d.outcome
	if o == nil {
		return
	}
	for _, c := range []*liveColumn{d.class, d.score} {
		if c == nil || c.input >= len(outputs) {
			continue
		}
		t := outputs[c.input]
		switch {
		case c == d.score && o.Kind == Probabilities:
			c.col, c.stride = 1, 2 // the positive class's column
			d.count(c, t, n)
		case c == d.score:
			c.col, c.stride = 0, 1
			if len(t.Shape) == 2 {
				c.stride = int(t.Shape[1])
			}
			d.count(c, t, n)
		case o.Kind == Probabilities:
			d.countArgmax(c, t, n)
		default:
			d.countLabels(c, t, n)
		}
	}
}

// count adds column c of t's n rows to the current slot.
func (d *Drift) count(c *liveColumn, t *tensor.Tensor, n int) {
	counts := c.counts[d.slot]
	bins := len(counts) - 2
	if c.kind == Categorical {
		rows, ok := t.Data.([][]byte)
		if !ok || len(rows) < (n-1)*c.stride+c.col+1 {
			return
		}
		for r := 0; r < n; r++ {
			v := rows[r*c.stride+c.col]
			if v == nil {
				counts[bins]++
				continue
			}
			if i, known := c.cats[string(v)]; known {
				counts[i]++
				continue
			}
			counts[bins-1]++ // other
			counts[bins+1]++
		}
		return
	}
	vals := gather(t, c.col, c.stride, n, d.scratch[:0])
	if vals == nil {
		return
	}
	d.scratch = vals
	for _, x := range vals {
		if math.IsNaN(x) {
			counts[bins]++
			continue
		}
		counts[Bin(c.edges, x)]++
		if x < c.min || x > c.max {
			counts[bins+1]++
		}
	}
}

// countArgmax counts the most probable class of each row of [n, classes].
func (d *Drift) countArgmax(c *liveColumn, t *tensor.Tensor, n int) {
	counts := c.counts[d.slot]
	k := len(counts) - 3
	if len(t.Shape) != 2 || int(t.Shape[1]) != k {
		return
	}
	vals := gather(t, 0, 1, n*k, d.scratch[:0])
	if vals == nil {
		return
	}
	d.scratch = vals
	for r := 0; r < n; r++ {
		counts[argmax(vals[r*k:(r+1)*k])]++
	}
}

func argmax(row []float64) int {
	best := 0
	for i, p := range row {
		if p > row[best] { // the first of equals, as numpy.argmax
			best = i
		}
	}
	return best
}

// countLabels counts a labels output's classes.
func (d *Drift) countLabels(c *liveColumn, t *tensor.Tensor, n int) {
	counts := c.counts[d.slot]
	other := len(counts) - 3
	d.scratch, _ = d.outcome.labelIndex().eachClass(t, n, d.scratch, func(_, class int) {
		if class >= 0 {
			counts[class]++
			return
		}
		counts[other]++
		counts[other+2]++
	})
}

// gather appends n values of t as float64: element col, col+stride, … It
// returns nil if t is not numeric or too short.
func gather(t *tensor.Tensor, col, stride, n int, dst []float64) []float64 {
	need := (n-1)*stride + col + 1
	if t.Len() < need {
		return nil
	}
	switch v := t.Data.(type) {
	case []float64:
		for r := 0; r < n; r++ {
			dst = append(dst, v[r*stride+col])
		}
	case []float32:
		for r := 0; r < n; r++ {
			dst = append(dst, float64(v[r*stride+col]))
		}
	case []int64:
		for r := 0; r < n; r++ {
			dst = append(dst, float64(v[r*stride+col]))
		}
	case []int32:
		for r := 0; r < n; r++ {
			dst = append(dst, float64(v[r*stride+col]))
		}
	default:
		all, err := t.Float64s()
		if err != nil {
			return nil
		}
		for r := 0; r < n; r++ {
			dst = append(dst, all[r*stride+col])
		}
	}
	return dst
}

// advance rotates a time window's slots up to now.
func (d *Drift) advance(now time.Time) {
	if d.window.Span <= 0 {
		return
	}
	per := d.window.Span / windowSlots
	if gone := now.Sub(d.slotStart); gone >= per {
		k := int(gone / per)
		d.rotate(k)
		d.slotStart = d.slotStart.Add(time.Duration(k) * per)
	}
}

// rotate moves on k slots, emptying each it enters.
func (d *Drift) rotate(k int) {
	if k > windowSlots {
		k = windowSlots
	}
	for ; k > 0; k-- {
		d.slot = (d.slot + 1) % windowSlots
		d.rows[d.slot] = 0
		for _, c := range d.allColumns() {
			clear(c.counts[d.slot])
		}
	}
	d.slotRows = 0
}

func (d *Drift) allColumns() []*liveColumn {
	cols := d.features
	if d.class != nil {
		cols = append(cols[:len(cols):len(cols)], d.class)
	}
	if d.score != nil {
		cols = append(cols[:len(cols):len(cols)], d.score)
	}
	return cols
}

// DriftReport is the window's statistics, as GET /v2/models/{m}/monitoring
// shows them and the tide_feature_drift series carry them.
type DriftReport struct {
	Window     string         `json:"window"`
	Rows       int64          `json:"rows"`
	MinRows    int64          `json:"min_rows"`
	Ready      bool           `json:"ready"`
	Features   []ColumnReport `json:"features"`
	Prediction []ColumnReport `json:"prediction,omitempty"`
}

// ColumnReport is one column's statistics over the window. Absent (null) while
// the window holds fewer than MinRows rows, or where a statistic does not apply
// (KS for categories, unseen for numbers).
type ColumnReport struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Rows       int64     `json:"rows"`
	PSI        *float64  `json:"psi,omitempty"`
	JS         *float64  `json:"js,omitempty"`
	KS         *float64  `json:"ks,omitempty"`
	KSBound    *float64  `json:"ks_bound,omitempty"`
	Missing    *float64  `json:"missing,omitempty"`
	OutOfRange *float64  `json:"out_of_range,omitempty"`
	Unseen     *float64  `json:"unseen,omitempty"`
	Shares     []float64 `json:"shares,omitempty"`
}

// Report computes the statistics of the current window.
func (d *Drift) Report() DriftReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advance(d.now())
	rep := DriftReport{Window: d.window.String(), MinRows: d.minRows, Features: []ColumnReport{}}
	for _, r := range d.rows {
		rep.Rows += r
	}
	rep.Ready = rep.Rows >= d.minRows && rep.Rows > 0
	for _, c := range d.features {
		rep.Features = append(rep.Features, c.report(rep.Ready))
	}
	for _, c := range []*liveColumn{d.class, d.score} {
		if c != nil {
			rep.Prediction = append(rep.Prediction, c.report(rep.Ready))
		}
	}
	return rep
}

func (c *liveColumn) report(ready bool) ColumnReport {
	bins := len(c.counts[0]) - 2
	total := make([]float64, bins+2)
	for s := range c.counts {
		for i, x := range c.counts[s] {
			total[i] += x
		}
	}
	present := sum(total[:bins])
	cr := ColumnReport{Name: c.name, Kind: c.kind, Rows: int64(present + total[bins])}
	if !ready || cr.Rows == 0 {
		return cr
	}
	cr.Missing = num(total[bins] / float64(cr.Rows))
	if present == 0 {
		return cr
	}
	live := Shares(total[:bins])
	cr.Shares = live
	cr.PSI = num(PSI(c.ref, live))
	cr.JS = num(JSDistance(c.ref, live))
	odd := num(total[bins+1] / present)
	if c.kind == Numeric {
		cr.KS = num(BinnedKS(c.ref, live))
		cr.KSBound = num(KSBound(c.ref, live))
		cr.OutOfRange = odd
	} else {
		cr.Unseen = odd
	}
	return cr
}

func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}
