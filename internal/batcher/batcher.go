package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tideserve/tide/internal/tensor"
)

// ErrOverloaded is returned when a request is shed: every run slot is busy and the
// queue is full. The server answers 429 with Retry-After.
var ErrOverloaded = errors.New("overloaded")

// Runner runs the model once.
type Runner func(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error)

// Hooks observe the batcher for metrics; any may be nil.
type Hooks struct {
	QueueDepth func(depth int)          // after every change
	QueueTime  func(d time.Duration)    // per request that waited, when its run starts
	BatchRows  func(rows, requests int) // per model run
	Shed       func()                   // per request refused for overload
	Expired    func()                   // per request whose deadline passed while queued
}

// Batcher serves one model version. It is safe for concurrent use.
type Batcher struct {
	cfg   Config
	run   Runner
	hooks Hooks
	now   func() time.Time

	slots chan struct{} // a token per concurrent model run; nil means unlimited

	// Without batching: how many requests wait for a slot.
	waiting atomic.Int64

	// With batching: the queue the dispatcher forms batches from.
	mu     sync.Mutex
	queue  []*call
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

type call struct {
	ctx     context.Context
	inputs  []*tensor.Tensor
	rows    int
	queued  time.Time
	result  chan result // buffered: the dispatcher never blocks on a caller
	dropped atomic.Bool // the caller gave up (deadline, cancel): do not run it
}

type result struct {
	outputs []*tensor.Tensor
	err     error
}

// New makes a batcher; now is the clock (time.Now in production).
func New(run Runner, cfg Config, hooks Hooks, now func() time.Time) (*Batcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	b := &Batcher{cfg: cfg, run: run, hooks: hooks, now: now, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if cfg.MaxInFlight > 0 {
		b.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	if cfg.Batching() {
		go b.dispatch()
	} else {
		close(b.done)
	}
	return b, nil
}

// Config returns the policy in force.
func (b *Batcher) Config() Config { return b.cfg }

// Do runs inputs through the model under the admission and batching policy.
func (b *Batcher) Do(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.cfg.Batching() {
		if rows, ok := batchRows(inputs); ok && rows <= b.cfg.MaxBatchSize {
			return b.enqueue(ctx, inputs, rows)
		}
		// Not joinable (no common batch dimension) or larger than a batch: it runs
		// alone, under the same run-slot limit.
	}
	return b.direct(ctx, inputs)
}

// direct runs one request as soon as a run slot is free, waiting in the bounded
// queue meanwhile.
func (b *Batcher) direct(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if b.slots == nil {
		return b.run(ctx, inputs)
	}
	select {
	case b.slots <- struct{}{}:
	default:
		if n := b.waiting.Add(1); n > int64(b.cfg.MaxQueue) {
			b.waiting.Add(-1)
			b.hook(b.hooks.Shed)
			return nil, fmt.Errorf("%w: %d requests running and %d queued", ErrOverloaded, b.cfg.MaxInFlight, b.cfg.MaxQueue)
		}
		b.depth(int(b.waiting.Load()))
		start := b.now()
		select {
		case b.slots <- struct{}{}:
			b.depth(int(b.waiting.Add(-1)))
			if b.hooks.QueueTime != nil {
				b.hooks.QueueTime(b.now().Sub(start))
			}
		case <-ctx.Done():
			b.depth(int(b.waiting.Add(-1)))
			b.hook(b.hooks.Expired)
			return nil, ctx.Err()
		}
	}
	defer func() { <-b.slots }()
	if err := ctx.Err(); err != nil { // expired just as the slot came free
		b.hook(b.hooks.Expired)
		return nil, err
	}
	if b.hooks.BatchRows != nil {
		rows, _ := batchRows(inputs)
		b.hooks.BatchRows(rows, 1)
	}
	return b.run(ctx, inputs)
}

func (b *Batcher) enqueue(ctx context.Context, inputs []*tensor.Tensor, rows int) ([]*tensor.Tensor, error) {
	c := &call{ctx: ctx, inputs: inputs, rows: rows, queued: b.now(), result: make(chan result, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("model is shutting down")
	}
	if len(b.queue) >= b.cfg.MaxQueue {
		b.mu.Unlock()
		b.hook(b.hooks.Shed)
		return nil, fmt.Errorf("%w: %d requests queued", ErrOverloaded, b.cfg.MaxQueue)
	}
	b.queue = append(b.queue, c)
	depth := len(b.queue)
	b.mu.Unlock()
	b.depth(depth)
	b.signal()

	select {
	case r := <-c.result:
		return r.outputs, r.err
	case <-ctx.Done():
		c.dropped.Store(true)
		b.signal() // let the dispatcher drop it from the queue now
		b.hook(b.hooks.Expired)
		return nil, ctx.Err()
	}
}

func (b *Batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// dispatch forms batches with Decide and starts their runs.
func (b *Batcher) dispatch() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		b.mu.Lock()
		b.queue = dropAbandoned(b.queue)
		if b.closed && len(b.queue) == 0 {
			b.mu.Unlock()
			return
		}
		rows := joinableRows(b.queue)
		var n int
		var wait time.Duration = -1
		if len(rows) > 0 {
			n, wait = Decide(b.now(), rows, b.queue[0].queued, b.cfg)
			if b.closed && n == 0 {
				n = len(rows) // shutting down: flush without waiting
			}
		}
		var batch []*call
		if n > 0 {
			batch = append(batch, b.queue[:n]...)
			b.queue = b.queue[n:]
		}
		depth := len(b.queue)
		b.mu.Unlock()

		if batch != nil {
			b.depth(depth)
			if b.slots != nil {
				b.slots <- struct{}{}
			}
			go b.runBatch(batch)
			continue
		}
		if wait < 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-b.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// runBatch joins the calls' inputs, runs the model once and hands each caller its rows.
func (b *Batcher) runBatch(batch []*call) {
	defer func() {
		if b.slots != nil {
			<-b.slots
		}
	}()
	live := batch[:0]
	for _, c := range batch {
		if c.dropped.Load() || c.ctx.Err() != nil {
			continue // its caller has already returned
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	now := b.now()
	total := 0
	for _, c := range live {
		total += c.rows
		if b.hooks.QueueTime != nil {
			b.hooks.QueueTime(now.Sub(c.queued))
		}
	}
	if b.hooks.BatchRows != nil {
		b.hooks.BatchRows(total, len(live))
	}
	if len(live) == 1 {
		out, err := b.run(live[0].ctx, live[0].inputs)
		live[0].result <- result{out, err}
		return
	}
	outs, err := b.runJoined(live, total)
	for i, c := range live {
		if err != nil {
			c.result <- result{nil, err}
			continue
		}
		c.result <- result{outs[i], nil}
	}
}

func (b *Batcher) runJoined(live []*call, total int) ([][]*tensor.Tensor, error) {
	joined := make([]*tensor.Tensor, len(live[0].inputs))
	parts := make([]*tensor.Tensor, len(live))
	for i := range joined {
		for j, c := range live {
			parts[j] = c.inputs[i]
		}
		t, err := tensor.Concat(parts)
		if err != nil {
			return nil, err
		}
		joined[i] = t
	}
	// The joined run belongs to no single caller: one caller's cancellation must not
	// fail the others, so it runs without their contexts.
	outs, err := b.run(context.Background(), joined)
	if err != nil {
		return nil, err
	}
	split := make([][]*tensor.Tensor, len(live))
	for i := range split {
		split[i] = make([]*tensor.Tensor, len(outs))
	}
	for k, o := range outs {
		if o.Rows() != int64(total) {
			return nil, fmt.Errorf("batched run: output %q has %d rows for %d input rows", o.Name, o.Rows(), total)
		}
		from := int64(0)
		for i, c := range live {
			part, err := o.SliceRows(from, from+int64(c.rows))
			if err != nil {
				return nil, err
			}
			split[i][k] = part
			from += int64(c.rows)
		}
	}
	return split, nil
}

// Close stops accepting work, runs what is queued and waits for the dispatcher.
func (b *Batcher) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	<-b.done
}

func (b *Batcher) depth(n int) {
	if b.hooks.QueueDepth != nil {
		b.hooks.QueueDepth(n)
	}
}

func (b *Batcher) hook(f func()) {
	if f != nil {
		f()
	}
}

// batchRows is the common first dimension of all inputs, if they have one.
func batchRows(inputs []*tensor.Tensor) (int, bool) {
	if len(inputs) == 0 {
		return 0, false
	}
	r := inputs[0].Rows()
	for _, t := range inputs {
		if t.Rows() != r || r < 1 {
			return 0, false
		}
	}
	return int(r), true
}

// joinableRows lists the rows of the queued calls, from the head, that can join the
// head's batch (same input names, datatypes and trailing shapes).
func joinableRows(q []*call) []int {
	if len(q) == 0 {
		return nil
	}
	rows := []int{q[0].rows}
	for _, c := range q[1:] {
		if !sameLayouts(q[0].inputs, c.inputs) {
			break
		}
		rows = append(rows, c.rows)
	}
	return rows
}

func sameLayouts(a, b []*tensor.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !tensor.SameLayout(a[i], b[i]) {
			return false
		}
	}
	return true
}

func dropAbandoned(q []*call) []*call {
	out := q[:0]
	for _, c := range q {
		if !c.dropped.Load() {
			out = append(out, c)
		}
	}
	for i := len(out); i < len(q); i++ {
		q[i] = nil
	}
	return out
}
