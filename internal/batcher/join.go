package batcher

import (
	"context"
	"fmt"
	"time"

	"github.com/tideserve/tide/internal/tensor"
)

// batchRun is the working memory of one joined model run, pooled so that a run
// allocates only what it hands to its callers: the joined input tensors and their
// data buffers are reused from run to run, and each caller's outputs are views
// into the model's output buffers (no copy), cut so that none can grow into its
// neighbour's rows.
type batchRun struct {
	calls  []*call
	parts  []*tensor.Tensor
	joined []*tensor.Tensor
	inputs []tensor.Tensor // the joined inputs' headers; joined points into it
	split  [][]*tensor.Tensor
	// ranFrom and ranUntil bracket the model's own run (for the callers' traces).
	ranFrom, ranUntil time.Time
}

// reset drops every reference the run held, so a pooled run keeps no request or
// result alive.
func (r *batchRun) reset() *batchRun {
	clear(r.calls)
	r.calls = r.calls[:0]
	clear(r.parts)
	r.parts = r.parts[:0]
	clear(r.joined)
	for i := range r.inputs {
		r.inputs[i] = tensor.Tensor{Shape: r.inputs[i].Shape[:0]}
	}
	clear(r.split)
	r.split = r.split[:0]
	r.ranFrom, r.ranUntil = time.Time{}, time.Time{}
	return r
}

// runJoined joins the live calls' inputs along the batch dimension, runs the model
// once and leaves each call's outputs in r.split.
func (r *batchRun) runJoined(run Runner, now func() time.Time, live []*call, total int) error {
	n := len(live[0].inputs)
	if cap(r.inputs) < n {
		r.inputs = make([]tensor.Tensor, n)
		r.joined = make([]*tensor.Tensor, n)
	}
	r.inputs, r.joined = r.inputs[:n], r.joined[:n]
	for i := range n {
		r.parts = r.parts[:0]
		for _, c := range live {
			r.parts = append(r.parts, c.inputs[i])
		}
		first := r.parts[0]
		data, err := concat(first.Data, r.parts, total*rowWidth(first.Shape))
		if err != nil {
			return fmt.Errorf("batched run: input %q: %w", first.Name, err)
		}
		in := &r.inputs[i]
		in.Name, in.Datatype, in.Data = first.Name, first.Datatype, data
		in.Shape = append(append(in.Shape[:0], int64(total)), first.Shape[1:]...)
		r.joined[i] = in
	}
	// The joined run belongs to no single caller: one caller's cancellation must not
	// fail the others, so it runs without their contexts.
	r.ranFrom = now()
	outs, err := run(context.Background(), r.joined)
	r.ranUntil = now()
	if err != nil {
		return err
	}
	return r.splitOutputs(outs, live, total)
}

// splitOutputs hands each call its rows of every output. Three allocations per run
// hold every caller's output headers and shapes; each view costs one more (the
// slice header boxed in Tensor.Data).
func (r *batchRun) splitOutputs(outs []*tensor.Tensor, live []*call, total int) error {
	k := len(outs)
	rank := 0
	for _, o := range outs {
		if len(o.Shape) == 0 || o.Shape[0] != int64(total) {
			return fmt.Errorf("batched run: output %q has shape %v for %d input rows", o.Name, o.Shape, total)
		}
		rank += len(o.Shape)
	}
	ptrs := make([]*tensor.Tensor, len(live)*k)
	headers := make([]tensor.Tensor, len(live)*k)
	shapes := make([]int64, len(live)*rank)
	r.split = r.split[:0]
	for i := range live {
		r.split = append(r.split, ptrs[i*k:(i+1)*k:(i+1)*k])
	}
	for j, o := range outs {
		width := rowWidth(o.Shape)
		if n, ok := dataLen(o.Data); !ok || n != total*width {
			return fmt.Errorf("batched run: output %q: %T of %d elements for shape %v", o.Name, o.Data, n, o.Shape)
		}
		from := 0
		for i, c := range live {
			shape := shapes[:len(o.Shape):len(o.Shape)]
			shapes = shapes[len(o.Shape):]
			shape[0] = int64(c.rows)
			copy(shape[1:], o.Shape[1:])
			h := &headers[i*k+j]
			h.Name, h.Datatype, h.Shape = o.Name, o.Datatype, shape
			h.Data = view(o.Data, from*width, (from+c.rows)*width)
			ptrs[i*k+j] = h
			from += c.rows
		}
	}
	return nil
}

// rowWidth is the number of elements in one row of a tensor of this shape.
func rowWidth(shape []int64) int {
	return int(tensor.NumElements(shape[1:]))
}

// concat joins the parts' data (all of the same Go type as like) into one new
// slice of n elements.
func concat(like any, parts []*tensor.Tensor, n int) (any, error) {
	switch like.(type) {
	case []bool:
		return concatData[bool](parts, n)
	case []uint8:
		return concatData[uint8](parts, n)
	case []uint16:
		return concatData[uint16](parts, n)
	case []uint32:
		return concatData[uint32](parts, n)
	case []uint64:
		return concatData[uint64](parts, n)
	case []int8:
		return concatData[int8](parts, n)
	case []int16:
		return concatData[int16](parts, n)
	case []int32:
		return concatData[int32](parts, n)
	case []int64:
		return concatData[int64](parts, n)
	case []float32:
		return concatData[float32](parts, n)
	case []float64:
		return concatData[float64](parts, n)
	case [][]byte:
		return concatData[[]byte](parts, n)
	}
	return nil, fmt.Errorf("cannot join %T", like)
}

func concatData[T any](parts []*tensor.Tensor, n int) (any, error) {
	out := make([]T, 0, n)
	for _, p := range parts {
		d, ok := p.Data.([]T)
		if !ok {
			return nil, fmt.Errorf("cannot join %T with %T", out, p.Data)
		}
		out = append(out, d...)
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d elements for %d in the joined shape", len(out), n)
	}
	return out, nil
}

// view returns data[from:to] with its capacity cut at to.
func view(data any, from, to int) any {
	switch v := data.(type) {
	case []bool:
		return v[from:to:to]
	case []uint8:
		return v[from:to:to]
	case []uint16:
		return v[from:to:to]
	case []uint32:
		return v[from:to:to]
	case []uint64:
		return v[from:to:to]
	case []int8:
		return v[from:to:to]
	case []int16:
		return v[from:to:to]
	case []int32:
		return v[from:to:to]
	case []int64:
		return v[from:to:to]
	case []float32:
		return v[from:to:to]
	case []float64:
		return v[from:to:to]
	case [][]byte:
		return v[from:to:to]
	}
	panic(fmt.Sprintf("batcher: view of %T", data)) // dataLen accepted it: unreachable
}

// dataLen is the number of elements of a tensor's data, and whether it is one of
// the Go types tensor.Tensor.Data may hold.
func dataLen(data any) (int, bool) {
	switch v := data.(type) {
	case []bool:
		return len(v), true
	case []uint8:
		return len(v), true
	case []uint16:
		return len(v), true
	case []uint32:
		return len(v), true
	case []uint64:
		return len(v), true
	case []int8:
		return len(v), true
	case []int16:
		return len(v), true
	case []int32:
		return len(v), true
	case []int64:
		return len(v), true
	case []float32:
		return len(v), true
	case []float64:
		return len(v), true
	case [][]byte:
		return len(v), true
	}
	return 0, false
}
