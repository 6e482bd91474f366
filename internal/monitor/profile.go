package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/tensor"
)

// ProfileFormat names the profile file's layout; a reader refuses others.
const ProfileFormat = "tide-profile/v1"

// Limits a profile must keep to: it is read on every model load, and each bin
// becomes counters in every window slot.
const (
	MaxFeatures   = 1000 // columns profiled (tide_feature_drift series stay within MaxMonitored)
	MaxBins       = 64   // numeric bins per column
	MaxCategories = 1000 // categories kept per column; rarer ones count as other
	MaxClasses    = 1000
	maxProfileLen = 16 << 20
)

// Profile is the reference a model's live traffic is compared with: what each
// feature and the prediction looked like on the training or validation data.
// `tide profile` writes it; the server reads it beside the model
// (<name>/[<version>/]profile.json).
type Profile struct {
	Format   string   `json:"format"`
	Model    string   `json:"model,omitempty"`
	Rows     int64    `json:"rows"`
	Created  string   `json:"created,omitempty"`
	Source   string   `json:"source,omitempty"`
	Features []Column `json:"features"`
	Predict  *Outcome `json:"prediction,omitempty"`
}

// Kinds of profiled column.
const (
	Numeric     = "numeric"
	Categorical = "categorical"
)

// Column is one feature's reference distribution.
//
// Numeric: Edges are the inner bin edges (ascending, distinct), cut at the
// reference's quantiles, so bin i holds values in (Edges[i-1], Edges[i]] and the
// outer bins are open-ended; Shares are the reference's shares of its present
// values per bin (len(Edges)+1 of them); Min and Max its range.
//
// Categorical: Categories and their Shares, most frequent first; Other is the
// share of reference values not kept (rarer than the kept ones).
//
// Missing is the reference's share of missing values (NaN, null) among all rows.
type Column struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Edges      []float64 `json:"edges,omitempty"`
	Min        *float64  `json:"min,omitempty"`
	Max        *float64  `json:"max,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Other      float64   `json:"other,omitempty"`
	Shares     []float64 `json:"shares"`
	Missing    float64   `json:"missing"`
}

// Kinds of prediction output.
const (
	Probabilities = "probabilities" // [n, classes] class probabilities (predict_proba)
	Labels        = "labels"        // [n] class labels (predict)
	Values        = "values"        // [n] or [n, 1] numbers (a regressor)
)

// Outcome is the reference distribution of the model's predictions on the
// profiled data: the class shares (of the most probable class, or the label),
// and for a binary classifier or a regressor the score or value in quantile
// bins (Score, a numeric Column).
type Outcome struct {
	Output  string    `json:"output"`
	Kind    string    `json:"kind"`
	Classes []string  `json:"classes,omitempty"`
	Shares  []float64 `json:"shares,omitempty"`
	Score   *Column   `json:"score,omitempty"`

	labelsOnce sync.Once
	labels     labelIndex // a labels output's answers → classes, made once
}

// labelIndex maps a labels output's answers to class indices: text answers by
// their bytes, numeric ones by value (the class "1" is the answer 1, 1.0 or
// int64 1). Drift and feedback both read labels through it.
type labelIndex struct {
	text map[string]int
	num  map[float64]int
}

func (o *Outcome) labelIndex() *labelIndex {
	o.labelsOnce.Do(func() {
		o.labels = labelIndex{text: map[string]int{}, num: map[float64]int{}}
		for i, name := range o.Classes {
			o.labels.text[name] = i
			if f, err := strconv.ParseFloat(name, 64); err == nil {
				o.labels.num[f] = i
			}
		}
	})
	return &o.labels
}

// eachClass calls fn with the class index of each of t's first n answers (-1:
// not a class). scratch is reused for numeric answers and returned (nil with
// false when t is too short or not labels).
func (x *labelIndex) eachClass(t *tensor.Tensor, n int, scratch []float64, fn func(r, class int)) ([]float64, bool) {
	if rows, ok := t.Data.([][]byte); ok {
		if len(rows) < n {
			return scratch, false
		}
		for r := 0; r < n; r++ {
			class, known := x.text[string(rows[r])]
			if !known {
				class = -1
			}
			fn(r, class)
		}
		return scratch, true
	}
	vals := gather(t, 0, 1, n, scratch[:0])
	if vals == nil {
		return scratch, false
	}
	for r, v := range vals {
		class, known := x.num[v]
		if !known {
			class = -1
		}
		fn(r, class)
	}
	return vals, true
}

// ParseProfile reads a profile file's bytes and checks that it is internally
// sound: known format and kinds, edges ascending, shares that sum to 1, limits
// kept. Errors are one line naming the first problem.
func ParseProfile(data []byte) (*Profile, error) {
	if len(data) > maxProfileLen {
		return nil, fmt.Errorf("profile is %d bytes; at most %d are read", len(data), maxProfileLen)
	}
	var p Profile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile is not valid JSON of the profile layout: %s", oneLine(err))
	}
	if dec.More() {
		return nil, errors.New("profile has data after its JSON object")
	}
	if p.Format != ProfileFormat {
		return nil, fmt.Errorf("profile format %q is not %q", short(p.Format), ProfileFormat)
	}
	if len(p.Features) == 0 && p.Predict == nil {
		return nil, errors.New("profile has no features and no prediction")
	}
	if len(p.Features) > MaxFeatures {
		return nil, fmt.Errorf("profile has %d features; at most %d are monitored", len(p.Features), MaxFeatures)
	}
	seen := map[string]bool{}
	for i := range p.Features {
		c := &p.Features[i]
		if seen[c.Name] {
			return nil, fmt.Errorf("profile names feature %q twice", short(c.Name))
		}
		seen[c.Name] = true
		if err := c.check(); err != nil {
			return nil, fmt.Errorf("profile feature %q: %w", short(c.Name), err)
		}
	}
	if o := p.Predict; o != nil {
		if err := o.check(); err != nil {
			return nil, fmt.Errorf("profile prediction: %w", err)
		}
	}
	return &p, nil
}

func (c *Column) check() error {
	if c.Name == "" {
		return errors.New("no name")
	}
	if bad(c.Missing) {
		return fmt.Errorf("missing share %v is not between 0 and 1", c.Missing)
	}
	switch c.Kind {
	case Numeric:
		if len(c.Edges) >= MaxBins {
			return fmt.Errorf("%d edges; at most %d bins", len(c.Edges), MaxBins)
		}
		for i, e := range c.Edges {
			if math.IsNaN(e) || math.IsInf(e, 0) || (i > 0 && e <= c.Edges[i-1]) {
				return errors.New("edges must be finite and strictly ascending")
			}
		}
		if len(c.Shares) != len(c.Edges)+1 {
			return fmt.Errorf("%d shares for %d bins", len(c.Shares), len(c.Edges)+1)
		}
		if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
			return errors.New("min is above max")
		}
		return checkShares(c.Shares, 0)
	case Categorical:
		if len(c.Categories) > MaxCategories {
			return fmt.Errorf("%d categories; at most %d", len(c.Categories), MaxCategories)
		}
		if len(c.Shares) != len(c.Categories) {
			return fmt.Errorf("%d shares for %d categories", len(c.Shares), len(c.Categories))
		}
		names := map[string]bool{}
		for _, n := range c.Categories {
			if names[n] {
				return fmt.Errorf("category %q twice", short(n))
			}
			names[n] = true
		}
		if bad(c.Other) {
			return fmt.Errorf("other share %v is not between 0 and 1", c.Other)
		}
		return checkShares(c.Shares, c.Other)
	}
	return fmt.Errorf("kind %q is neither %q nor %q", short(c.Kind), Numeric, Categorical)
}

func (o *Outcome) check() error {
	if o.Output == "" {
		return errors.New("no output named")
	}
	switch o.Kind {
	case Probabilities, Labels:
		if len(o.Classes) == 0 || len(o.Classes) > MaxClasses {
			return fmt.Errorf("%d classes; want 1 to %d", len(o.Classes), MaxClasses)
		}
		if len(o.Shares) != len(o.Classes) {
			return fmt.Errorf("%d shares for %d classes", len(o.Shares), len(o.Classes))
		}
		if err := checkShares(o.Shares, 0); err != nil {
			return err
		}
	case Values:
		if o.Score == nil {
			return errors.New("a regressor's profile needs its value bins (score)")
		}
	default:
		return fmt.Errorf("kind %q is not %q, %q or %q", short(o.Kind), Probabilities, Labels, Values)
	}
	if o.Score != nil {
		if o.Score.Kind != Numeric {
			return errors.New("score bins must be numeric")
		}
		if err := o.Score.check(); err != nil {
			return fmt.Errorf("score: %w", err)
		}
	}
	return nil
}

func bad(share float64) bool { return !(share >= 0 && share <= 1) }

// checkShares: each share in [0,1], and with extra they sum to 1 (to 1e-6: the
// file holds decimal text).
func checkShares(shares []float64, extra float64) error {
	s := extra
	for _, x := range shares {
		if bad(x) {
			return fmt.Errorf("share %v is not between 0 and 1", x)
		}
		s += x
	}
	if math.Abs(s-1) > 1e-6 {
		return fmt.Errorf("shares sum to %.9g, not 1", s)
	}
	return nil
}

// Validate checks the profile against the model it is to monitor: every
// profiled feature is one of the model's features, of a kind its input can
// carry, and the prediction's output exists with a fitting shape.
func (p *Profile) Validate(md model.Metadata) error {
	index := map[string]int{}
	for i, f := range md.Features {
		index[f] = i
	}
	for _, c := range p.Features {
		i, ok := index[c.Name]
		if !ok {
			if len(md.Features) == 0 {
				return fmt.Errorf("profile feature %q: the model names no features", short(c.Name))
			}
			return fmt.Errorf("profile feature %q is not a feature of the model (features: %s)", short(c.Name), list(md.Features))
		}
		if c.Kind == Categorical {
			continue // a number column can be profiled by its values as categories
		}
		if len(md.Inputs) == len(md.Features) && md.Inputs[i].Datatype == tensor.Bytes {
			return fmt.Errorf("profile feature %q is numeric but the model takes it as strings", short(c.Name))
		}
	}
	if o := p.Predict; o != nil {
		var spec *model.TensorSpec
		for i := range md.Outputs {
			if md.Outputs[i].Name == o.Output {
				spec = &md.Outputs[i]
			}
		}
		if spec == nil {
			return fmt.Errorf("profile prediction output %q is not an output of the model (outputs: %s)", short(o.Output), specList(md.Outputs))
		}
		if o.Kind == Probabilities {
			if len(spec.Shape) != 2 || (spec.Shape[1] > 0 && spec.Shape[1] != int64(len(o.Classes))) {
				return fmt.Errorf("profile prediction output %q: %d classes, but the output's shape is %v", o.Output, len(o.Classes), spec.Shape)
			}
		}
	}
	return nil
}

func list(names []string) string {
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

func specList(specs []model.TensorSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return list(names)
}

func short(s string) string { return model.ShortName(s) }

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// QuantileEdges cuts sorted values (no NaN) into at most bins bins of about
// equal counts: the inner edges are the values at the quantiles k/bins (numpy's
// default, linear interpolation), with repeats dropped, so a column with few
// distinct values gets fewer bins.
func QuantileEdges(sorted []float64, bins int) []float64 {
	n := len(sorted)
	if n == 0 || bins < 2 {
		return nil
	}
	var edges []float64
	for k := 1; k < bins; k++ {
		e := quantile(sorted, float64(k)/float64(bins))
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	// An edge at the maximum would leave the top bin empty in the reference.
	for len(edges) > 0 && edges[len(edges)-1] >= sorted[n-1] {
		edges = edges[:len(edges)-1]
	}
	return edges
}

// quantile is numpy.quantile(sorted, q) with method="linear".
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := math.Floor(pos)
	i := int(lo)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-lo)*(sorted[i+1]-sorted[i])
}

// Bin is the bin of x among inner edges: the number of edges below x, so that
// bin i holds (edges[i-1], edges[i]] (numpy.searchsorted(edges, x, "left")).
func Bin(edges []float64, x float64) int {
	return sort.SearchFloat64s(edges, x)
}
