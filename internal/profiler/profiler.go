// Package profiler writes a model's reference profile (`tide profile`): each
// feature's distribution on the training or validation data, in quantile bins
// or category shares, and the model's predictions on that data, which the
// server's monitoring compares live traffic with (package monitor).
package profiler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tensor"
)

// Options are one profile's inputs.
type Options struct {
	Model   string // a model file or a model folder, as tide serve takes it
	Data    string // CSV (with a header row) or Parquet
	Bins    int    // numeric bins, 10–20 (default 10)
	MaxRows int    // rows read at most (default 1,000,000)
	// Progress, when set, hears what is happening (rows read, predicted).
	Progress func(msg string)
}

// batchRows is how many rows one prediction call takes.
const batchRows = 4096

// Build loads the model, reads the data and returns the profile.
func Build(ctx context.Context, o Options) (*monitor.Profile, error) {
	if o.Bins == 0 {
		o.Bins = 10
	}
	if o.Bins < 2 || o.Bins > 20 {
		return nil, fmt.Errorf("--bins %d: want 2 to 20 (10–20 keeps each bin's share measurable in a window of a few thousand rows)", o.Bins)
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 1_000_000
	}
	say := o.Progress
	if say == nil {
		say = func(string) {}
	}
	name, rt, md, closeModel, err := loadModel(ctx, o.Model)
	if err != nil {
		return nil, err
	}
	defer closeModel()
	if len(md.Features) == 0 {
		return nil, fmt.Errorf("model %s names no features: a profile describes a tabular model's columns (name them in its config's features)", name)
	}
	say(fmt.Sprintf("model %s: %d features, outputs %s", name, len(md.Features), outputNames(md)))
	start := time.Now()
	t, err := readTable(o.Data, md.Features, o.MaxRows, func(n int) { say(fmt.Sprintf("read %d rows…", n)) })
	if err != nil {
		return nil, err
	}
	if t.rows == 0 {
		return nil, fmt.Errorf("%s has no rows", filepath.Base(o.Data))
	}
	say(fmt.Sprintf("read %d rows in %s", t.rows, time.Since(start).Round(time.Millisecond)))
	p := &monitor.Profile{Format: monitor.ProfileFormat, Model: name, Rows: int64(t.rows),
		Created: time.Now().UTC().Format(time.RFC3339), Source: filepath.Base(o.Data)}
	kinds := columnKinds(md)
	for i, f := range md.Features {
		if kinds[i] == kindUnused {
			continue
		}
		text, missing, _ := t.column(f)
		var c monitor.Column
		if kinds[i] == kindText {
			c = categorical(f, text, missing)
		} else {
			vals, err := numbers(f, text, missing)
			if err != nil {
				return nil, err
			}
			c = numeric(f, vals, o.Bins)
		}
		p.Features = append(p.Features, c)
	}
	outcome, err := predictAll(ctx, rt, md, t, kinds, o.Bins, say)
	if err != nil {
		return nil, err
	}
	p.Predict = outcome
	if err := p.Validate(md); err != nil {
		return nil, fmt.Errorf("internal error: the profile does not fit its model: %w", err)
	}
	return p, nil
}

func outputNames(md model.Metadata) string {
	s := ""
	for i, o := range md.Outputs {
		if i > 0 {
			s += ", "
		}
		s += o.Name
	}
	return s
}

// loadModel loads the one model at path as the server would: a model file, a
// model folder (<name>/[<version>/]<file>), or a repository folder holding one
// model.
func loadModel(ctx context.Context, path string) (string, model.Model, model.Metadata, func(), error) {
	fail := func(err error) (string, model.Model, model.Metadata, func(), error) {
		return "", nil, model.Metadata{}, nil, err
	}
	repo, err := repository.Open(path, repository.Options{}, discardLogger())
	var name string
	if err == nil {
		names := repo.Names()
		if len(names) != 1 {
			repo.Close()
			return fail(fmt.Errorf("--model %s holds %d models (%s): give one model's file or folder", path, len(names), strings.Join(names, ", ")))
		}
		name = names[0]
		repo.LoadAll(ctx)
	} else if fi, statErr := os.Stat(path); statErr == nil && fi.IsDir() {
		// A model folder: open its parent as the repository, load this one.
		repo, err = repository.Open(filepath.Dir(filepath.Clean(path)), repository.Options{}, discardLogger())
		if err != nil {
			return fail(err)
		}
		name = filepath.Base(filepath.Clean(path))
		if _, ok := repo.Entry(name); !ok {
			repo.Close()
			return fail(fmt.Errorf("--model %s: not a model folder (expected <name>/[<version>/]<model file>)", path))
		}
		if err := repo.LoadModel(ctx, name); err != nil {
			repo.Close()
			return fail(err)
		}
	} else {
		return fail(err)
	}
	v, err := repo.Get(name, "")
	if err != nil {
		repo.Close()
		return fail(err)
	}
	rt, md, err := v.Model()
	if err != nil {
		repo.Close()
		return fail(err)
	}
	return name, rt, md, repo.Close, nil
}

type columnKind uint8

const (
	kindNumber columnKind = iota
	kindText
	kindUnused
)

// columnKinds says how the model takes each feature: a model with string
// columns takes one input per feature (BYTES for text); a numeric model one
// matrix.
func columnKinds(md model.Metadata) []columnKind {
	k := make([]columnKind, len(md.Features))
	if len(md.Inputs) == len(md.Features) && len(md.Inputs) > 1 {
		for i, in := range md.Inputs {
			switch {
			case in.Unused:
				k[i] = kindUnused
			case in.Datatype == tensor.Bytes:
				k[i] = kindText
			}
		}
	}
	return k
}

func numbers(name string, text []string, missing []bool) ([]float64, error) {
	out := make([]float64, len(text))
	for r, s := range text {
		if missing[r] {
			out[r] = math.NaN()
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("column %q, row %d: %q is not a number (the model takes this feature as numbers)", name, r+1, model.ShortName(s))
		}
		out[r] = x
	}
	return out, nil
}

// numeric profiles a number column: inner edges at its quantiles, each bin's
// share of the present values, the range and the missing share.
func numeric(name string, vals []float64, bins int) monitor.Column {
	present := make([]float64, 0, len(vals))
	for _, x := range vals {
		if !math.IsNaN(x) {
			present = append(present, x)
		}
	}
	c := monitor.Column{Name: name, Kind: monitor.Numeric, Missing: float64(len(vals)-len(present)) / float64(len(vals))}
	sort.Float64s(present)
	c.Edges = monitor.QuantileEdges(present, bins)
	counts := make([]float64, len(c.Edges)+1)
	for _, x := range present {
		counts[monitor.Bin(c.Edges, x)]++
	}
	c.Shares = monitor.Shares(counts)
	if len(present) > 0 {
		lo, hi := present[0], present[len(present)-1]
		c.Min, c.Max = &lo, &hi
	} else {
		c.Shares = make([]float64, len(c.Edges)+1)
		c.Shares[0] = 1 // no values: one bin, so that the shares still sum to 1
	}
	if c.Edges == nil {
		c.Edges = []float64{}
	}
	return c
}

// categorical profiles a text column: each category's share of the present
// values, most frequent first, the rarest beyond MaxCategories as other.
func categorical(name string, text []string, missing []bool) monitor.Column {
	counts := map[string]int{}
	present := 0
	for r, s := range text {
		if !missing[r] {
			counts[s]++
			present++
		}
	}
	c := monitor.Column{Name: name, Kind: monitor.Categorical, Missing: float64(len(text)-present) / float64(len(text))}
	cats := make([]string, 0, len(counts))
	for k := range counts {
		cats = append(cats, k)
	}
	sort.Slice(cats, func(i, j int) bool {
		if counts[cats[i]] != counts[cats[j]] {
			return counts[cats[i]] > counts[cats[j]]
		}
		return cats[i] < cats[j]
	})
	kept := 0
	for i, k := range cats {
		if i >= monitor.MaxCategories {
			break
		}
		c.Categories = append(c.Categories, k)
		c.Shares = append(c.Shares, float64(counts[k])/float64(present))
		kept += counts[k]
	}
	if present > 0 {
		c.Other = float64(present-kept) / float64(present)
	}
	if present == 0 {
		c.Other = 1
	}
	return c
}

// predictAll runs the model over the data in batches and profiles its
// predictions.
func predictAll(ctx context.Context, rt model.Model, md model.Metadata, t *table, kinds []columnKind, bins int, say func(string)) (*monitor.Outcome, error) {
	probaAt, labelAt := -1, -1
	for i, o := range md.Outputs {
		switch {
		case o.Name == "predict_proba" && len(o.Shape) == 2:
			probaAt = i
		case o.Name == "predict" && labelAt < 0:
			labelAt = i
		}
	}
	if labelAt < 0 && len(md.Outputs) > 0 && probaAt != 0 {
		labelAt = 0
	}
	var probs []float64
	var width int
	var labels []string
	var values []float64
	start := time.Now()
	for lo := 0; lo < t.rows; lo += batchRows {
		hi := min(lo+batchRows, t.rows)
		inputs, err := batchInputs(md, t, kinds, lo, hi)
		if err != nil {
			return nil, err
		}
		outs, err := rt.Predict(ctx, inputs)
		if err != nil {
			return nil, fmt.Errorf("predicting rows %d–%d: %w", lo+1, hi, err)
		}
		if probaAt >= 0 {
			p, err := outs[probaAt].Float64s()
			if err != nil {
				return nil, err
			}
			width = int(outs[probaAt].Shape[1])
			probs = append(probs, p...)
		}
		if labelAt >= 0 {
			out := outs[labelAt]
			if rows, ok := out.Data.([][]byte); ok {
				for _, b := range rows {
					labels = append(labels, string(b))
				}
			} else if out.Datatype == tensor.FP32 || out.Datatype == tensor.FP64 {
				v, _ := out.Float64s()
				stride := 1
				if len(out.Shape) == 2 {
					stride = int(out.Shape[1])
				}
				for r := 0; r*stride < len(v); r++ {
					values = append(values, v[r*stride])
				}
			} else {
				v, err := out.Float64s()
				if err != nil {
					return nil, err
				}
				for _, x := range v {
					labels = append(labels, strconv.FormatFloat(x, 'g', -1, 64))
				}
			}
		}
		if hi%(batchRows*25) == 0 {
			say(fmt.Sprintf("predicted %d of %d rows…", hi, t.rows))
		}
	}
	say(fmt.Sprintf("predicted %d rows in %s", t.rows, time.Since(start).Round(time.Millisecond)))
	switch {
	case probaAt >= 0:
		return probabilities(md.Outputs[probaAt].Name, probs, width, labels, bins), nil
	case labels != nil:
		return labelShares(md.Outputs[labelAt].Name, labels), nil
	case values != nil:
		score := numeric("score", values, bins)
		return &monitor.Outcome{Output: md.Outputs[labelAt].Name, Kind: monitor.Values, Score: &score}, nil
	}
	return nil, errors.New("the model has no output to profile")
}

// probabilities profiles a classifier's predict_proba: the shares of the most
// probable class, named by the labels predict answered for those rows (the
// class's index when predict is not there), and a binary model's positive-class
// probability in quantile bins.
func probabilities(output string, probs []float64, k int, labels []string, bins int) *monitor.Outcome {
	o := &monitor.Outcome{Output: output, Kind: monitor.Probabilities, Classes: make([]string, k)}
	counts := make([]float64, k)
	rows := len(probs) / k
	for r := 0; r < rows; r++ {
		best := 0
		for c := 1; c < k; c++ {
			if probs[r*k+c] > probs[r*k+best] {
				best = c
			}
		}
		counts[best]++
		if labels != nil && o.Classes[best] == "" {
			o.Classes[best] = labels[r]
		}
	}
	for c := range o.Classes {
		if o.Classes[c] == "" {
			o.Classes[c] = strconv.Itoa(c)
		}
	}
	o.Shares = monitor.Shares(counts)
	if k == 2 {
		pos := make([]float64, rows)
		for r := range pos {
			pos[r] = probs[r*2+1]
		}
		score := numeric("score", pos, bins)
		o.Score = &score
	}
	return o
}

func labelShares(output string, labels []string) *monitor.Outcome {
	counts := map[string]float64{}
	for _, l := range labels {
		counts[l]++
	}
	o := &monitor.Outcome{Output: output, Kind: monitor.Labels}
	for l := range counts {
		o.Classes = append(o.Classes, l)
	}
	sort.Strings(o.Classes)
	if len(o.Classes) > monitor.MaxClasses {
		o.Classes = o.Classes[:monitor.MaxClasses]
	}
	c := make([]float64, len(o.Classes))
	for i, l := range o.Classes {
		c[i] = counts[l]
	}
	o.Shares = monitor.Shares(c)
	return o
}

// batchInputs builds rows lo..hi as the model takes them.
func batchInputs(md model.Metadata, t *table, kinds []columnKind, lo, hi int) ([]*tensor.Tensor, error) {
	n := hi - lo
	if len(md.Inputs) == len(md.Features) && len(md.Inputs) > 1 {
		ins := make([]*tensor.Tensor, len(md.Inputs))
		for i, in := range md.Inputs {
			text, missing, _ := t.column(md.Features[i])
			if kinds[i] == kindNumber {
				v, err := numbers(in.Name, text[lo:hi], missing[lo:hi])
				if err != nil {
					return nil, err
				}
				ins[i] = &tensor.Tensor{Name: in.Name, Datatype: tensor.FP64, Shape: []int64{int64(n)}, Data: v}
				continue
			}
			b := make([][]byte, n)
			for r := range b {
				if !missing[lo+r] {
					b[r] = []byte(text[lo+r])
				}
			}
			ins[i] = &tensor.Tensor{Name: in.Name, Datatype: tensor.Bytes, Shape: []int64{int64(n)}, Data: b}
		}
		return ins, nil
	}
	nf := len(md.Features)
	m := make([]float64, n*nf)
	for j, f := range md.Features {
		text, missing, _ := t.column(f)
		v, err := numbers(f, text[lo:hi], missing[lo:hi])
		if err != nil {
			return nil, err
		}
		for r, x := range v {
			m[r*nf+j] = x
		}
	}
	in := md.Inputs[0]
	x := &tensor.Tensor{Name: in.Name, Datatype: tensor.FP64, Shape: []int64{int64(n), int64(nf)}, Data: m}
	if in.Datatype == tensor.FP32 {
		f32 := make([]float32, len(m))
		for i, v := range m {
			f32[i] = float32(v)
		}
		x.Datatype, x.Data = tensor.FP32, f32
	}
	return []*tensor.Tensor{x}, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
