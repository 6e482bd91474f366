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
//
// With batching there is no dispatcher goroutine: the policy is applied by
// whoever changes the queue, under its lock — the caller that enqueues (so a batch
// that becomes full or preferred-sized starts on that enqueue), a run that ends
// and frees its slot, and a timer armed for the oldest request's MaxQueueDelay.
// Each batch then runs on a goroutine of its own, so no caller's context is held
// up by another caller's work.
type Batcher struct {
	cfg   Config
	run   Runner
	hooks Hooks
	now   func() time.Time

	slots chan struct{} // a token per concurrent model run; nil means unlimited

	// Without batching: how many requests wait for a slot.
	waiting atomic.Int64

	// With batching: the queue batches are formed from, oldest first.
	mu         sync.Mutex
	queue      []*call
	rows       []int // rows[i] is queue[i].rows, the form Decide takes
	prefix     int   // length of the head's joinable run that Decide sees (see refreshPrefix)
	prefixRows int   // the rows in that run
	timer      *time.Timer
	timerT     time.Time // when the armed timer fires (b.now's clock); zero when idle
	active     int       // batches started and not yet finished
	closed     bool
	done       chan struct{} // closed when Close has nothing left to wait for
	ended      bool

	calls sync.Pool // *call
	runs  sync.Pool // *batchRun
}

// call is one queued request. A caller that gets its result back returns the call
// to the pool; one that gives up (deadline, cancel) leaves it to the garbage
// collector, since a run may still write to it.
type call struct {
	ctx     context.Context
	inputs  []*tensor.Tensor
	rows    int
	queued  time.Time
	outputs []*tensor.Tensor
	err     error
	done    chan struct{} // 1-buffered: the run never blocks on a caller
	dropped atomic.Bool   // the caller gave up: do not run it
	timing  *Timing       // filled for the caller when it asked (DoTimed)
	panic   any           // the model panicked in this call's run: the caller panics with it
}

// Timing is one request's trip through the batcher, for its trace: when it
// arrived, when its run started (a run slot taken, its batch formed), when the
// model itself ran, and how many rows and requests that run held. A joined run
// is shared, so every request in it reports the same run.
type Timing struct {
	Queued, Started  time.Time
	RunStart, RunEnd time.Time
	Rows, Requests   int
}

// New makes a batcher; now is the clock (time.Now in production).
func New(run Runner, cfg Config, hooks Hooks, now func() time.Time) (*Batcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	b := &Batcher{cfg: cfg, run: run, hooks: hooks, now: now, done: make(chan struct{})}
	if cfg.MaxInFlight > 0 {
		b.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	b.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	b.runs.New = func() any { return new(batchRun) }
	if cfg.Batching() {
		capacity := min(cfg.MaxQueue, 4096)
		b.queue = make([]*call, 0, capacity)
		b.rows = make([]int, 0, capacity)
		b.timer = time.AfterFunc(time.Hour, b.onTimer)
		b.timer.Stop()
	} else {
		b.ended = true
		close(b.done)
	}
	return b, nil
}

// Config returns the policy in force.
func (b *Batcher) Config() Config { return b.cfg }

// Do runs inputs through the model under the admission and batching policy.
func (b *Batcher) Do(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return b.DoTimed(ctx, inputs, nil)
}

// DoTimed is Do that also fills t (when not nil) with the request's timing; a
// request that fails before its run leaves the run's fields zero.
func (b *Batcher) DoTimed(ctx context.Context, inputs []*tensor.Tensor, t *Timing) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.cfg.Batching() {
		if rows, ok := batchRows(inputs); ok && rows <= b.cfg.MaxBatchSize {
			return b.enqueue(ctx, inputs, rows, t)
		}
		// Not joinable (no common batch dimension) or larger than a batch: it runs
		// alone, under the same run-slot limit.
	}
	return b.direct(ctx, inputs, t)
}

// direct runs one request as soon as a run slot is free, waiting in the bounded
// queue meanwhile.
func (b *Batcher) direct(ctx context.Context, inputs []*tensor.Tensor, t *Timing) ([]*tensor.Tensor, error) {
	if t != nil {
		t.Queued = b.now()
		t.Started, t.Requests = t.Queued, 1
		t.Rows, _ = batchRows(inputs)
	}
	if b.slots == nil {
		return b.timedRun(ctx, inputs, t)
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
			if t != nil {
				t.Started = b.now()
			}
		case <-ctx.Done():
			b.depth(int(b.waiting.Add(-1)))
			b.hook(b.hooks.Expired)
			return nil, ctx.Err()
		}
	}
	defer b.releaseSlot()
	if err := ctx.Err(); err != nil { // expired just as the slot came free
		b.hook(b.hooks.Expired)
		return nil, err
	}
	if b.hooks.BatchRows != nil {
		rows, _ := batchRows(inputs)
		b.hooks.BatchRows(rows, 1)
	}
	return b.timedRun(ctx, inputs, t)
}

// timedRun runs the model on one request's inputs, noting when in t (if any).
func (b *Batcher) timedRun(ctx context.Context, inputs []*tensor.Tensor, t *Timing) ([]*tensor.Tensor, error) {
	if t == nil {
		return b.run(ctx, inputs)
	}
	t.RunStart = b.now()
	out, err := b.run(ctx, inputs)
	t.RunEnd = b.now()
	return out, err
}

// releaseSlot frees a run slot; with batching, a batch that was ready but had no
// slot starts now.
func (b *Batcher) releaseSlot() {
	<-b.slots
	if b.cfg.Batching() {
		b.mu.Lock()
		b.startReadyLocked(b.now())
		b.mu.Unlock()
	}
}

func (b *Batcher) enqueue(ctx context.Context, inputs []*tensor.Tensor, rows int, t *Timing) ([]*tensor.Tensor, error) {
	c := b.calls.Get().(*call)
	c.ctx, c.inputs, c.rows, c.queued, c.timing = ctx, inputs, rows, b.now(), t
	if t != nil {
		t.Queued = c.queued
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.recycle(c)
		return nil, fmt.Errorf("model is shutting down")
	}
	if len(b.queue) >= b.cfg.MaxQueue {
		b.mu.Unlock()
		b.recycle(c)
		b.hook(b.hooks.Shed)
		return nil, fmt.Errorf("%w: %d requests queued", ErrOverloaded, b.cfg.MaxQueue)
	}
	b.push(c)
	b.startReadyLocked(c.queued)
	depth := len(b.queue)
	b.mu.Unlock()
	b.depth(depth)

	select {
	case <-c.done:
		out, err, p := c.outputs, c.err, c.panic
		b.recycle(c)
		if p != nil {
			// The model panicked in a run this request was part of. The panic goes
			// on here, in the caller's goroutine, where a direct run's would have
			// happened, so the server contains and reports it the same way.
			panic(p)
		}
		return out, err
	case <-ctx.Done():
		c.dropped.Store(true)
		b.mu.Lock()
		if b.remove(c) {
			// Its place in the queue is free again, and the head may have changed.
			b.startReadyLocked(b.now())
		}
		depth := len(b.queue)
		b.mu.Unlock()
		b.depth(depth)
		b.hook(b.hooks.Expired)
		return nil, ctx.Err()
	}
}

func (b *Batcher) recycle(c *call) {
	*c = call{done: c.done}
	b.calls.Put(c)
}

// push appends c to the queue and extends the head's joinable run when c joins it.
// Called with b.mu held.
func (b *Batcher) push(c *call) {
	b.queue = append(b.queue, c)
	b.rows = append(b.rows, c.rows)
	n := len(b.queue)
	switch {
	case n == 1:
		b.prefix, b.prefixRows = 1, c.rows
	case b.prefix == n-1 && b.prefixRows <= b.cfg.MaxBatchSize && sameLayouts(b.queue[n-2].inputs, c.inputs):
		// Joins the run (same layout as its predecessor, hence as the head).
		b.prefix++
		b.prefixRows += c.rows
	}
}

// refreshPrefix recomputes the head's joinable run after the head changed: the
// calls from the head with the same input layout, up to and including the first
// that overflows MaxBatchSize (Decide needs to see it to know the batch is full).
// Called with b.mu held.
func (b *Batcher) refreshPrefix() {
	b.prefix, b.prefixRows = 0, 0
	for i, c := range b.queue {
		if i > 0 && !sameLayouts(b.queue[0].inputs, c.inputs) {
			break
		}
		b.prefix++
		b.prefixRows += c.rows
		if b.prefixRows > b.cfg.MaxBatchSize {
			break
		}
	}
}

// remove takes c out of the queue if it is still there. Called with b.mu held.
func (b *Batcher) remove(c *call) bool {
	for i, q := range b.queue {
		if q == c {
			copy(b.queue[i:], b.queue[i+1:])
			b.queue[len(b.queue)-1] = nil
			b.queue = b.queue[:len(b.queue)-1]
			copy(b.rows[i:], b.rows[i+1:])
			b.rows = b.rows[:len(b.rows)-1]
			b.refreshPrefix()
			return true
		}
	}
	return false
}

// popFront takes the first n calls off the queue into run.calls. Called with b.mu held.
func (b *Batcher) popFront(n int, run *batchRun) {
	run.calls = append(run.calls[:0], b.queue[:n]...)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	b.rows = b.rows[:copy(b.rows, b.rows[n:])]
	b.refreshPrefix()
}

// startReadyLocked starts every batch the policy says to run now, as far as the
// run slots allow, and otherwise arms the timer for when the policy wants to look
// again. Called with b.mu held, after every change to the queue or the slots.
func (b *Batcher) startReadyLocked(now time.Time) {
	for len(b.queue) > 0 {
		n, wait := Decide(now, b.rows[:b.prefix], b.queue[0].queued, b.cfg)
		if n == 0 && b.closed {
			n = b.prefix // shutting down: flush without waiting
		}
		if n == 0 {
			b.armTimer(now, wait)
			break
		}
		if b.slots != nil {
			select {
			case b.slots <- struct{}{}:
			default:
				// Every slot is busy; the run that frees one calls this again.
				return
			}
		}
		run := b.runs.Get().(*batchRun)
		b.popFront(n, run)
		b.active++
		go b.runBatch(run)
	}
	if b.closed && len(b.queue) == 0 && b.active == 0 && !b.ended {
		b.ended = true
		close(b.done)
	}
}

// armTimer makes sure the policy is consulted again after wait (from now). Called
// with b.mu held.
func (b *Batcher) armTimer(now time.Time, wait time.Duration) {
	if wait < 0 {
		return
	}
	at := now.Add(wait)
	if !b.timerT.IsZero() && !at.Before(b.timerT) {
		return // already armed for then or earlier
	}
	b.timerT = at
	b.timer.Reset(wait)
}

func (b *Batcher) onTimer() {
	b.mu.Lock()
	b.timerT = time.Time{}
	b.startReadyLocked(b.now())
	depth := len(b.queue)
	b.mu.Unlock()
	b.depth(depth)
}

// runBatch joins the calls' inputs, runs the model once and hands each caller its
// rows; then it frees its run slot and starts what became ready meanwhile.
func (b *Batcher) runBatch(run *batchRun) {
	defer func() {
		b.mu.Lock()
		b.active--
		if b.slots != nil {
			<-b.slots // never blocks: this run holds a token
		}
		b.startReadyLocked(b.now())
		depth := len(b.queue)
		b.mu.Unlock()
		b.depth(depth)
	}()
	live := run.calls[:0]
	for _, c := range run.calls {
		if c.dropped.Load() || c.ctx.Err() != nil {
			continue // its caller has already returned
		}
		live = append(live, c)
	}
	clear(run.calls[len(live):])
	if len(live) == 0 {
		b.runs.Put(run.reset())
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
	for _, c := range live {
		if t := c.timing; t != nil {
			t.Started, t.Rows, t.Requests = now, total, len(live)
		}
	}
	var err error
	p := containPanic(func() {
		if len(live) == 1 {
			c := live[0]
			c.outputs, c.err = b.timedRun(c.ctx, c.inputs, c.timing)
			return
		}
		err = run.runJoined(b.run, b.now, live, total)
	})
	for i, c := range live {
		switch {
		case p != nil:
			c.outputs, c.err, c.panic = nil, nil, p
		case len(live) == 1: // timedRun has filled in the call
		case err != nil:
			c.err = err
		default:
			c.outputs = run.split[i]
		}
		if t := c.timing; t != nil && len(live) > 1 {
			t.RunStart, t.RunEnd = run.ranFrom, run.ranUntil
		}
		c.done <- struct{}{} // c belongs to its caller from here on
	}
	b.runs.Put(run.reset())
}

// containPanic runs f and returns what it panicked with, if it did. A batch runs
// on a goroutine of its own, where a panic would end the process; its callers
// panic with the value instead (see enqueue).
func containPanic(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// Close stops accepting work, runs what is queued and waits for those runs.
func (b *Batcher) Close() {
	if !b.cfg.Batching() {
		return
	}
	b.mu.Lock()
	b.closed = true
	b.timer.Stop()
	b.timerT = time.Time{}
	b.startReadyLocked(b.now())
	b.mu.Unlock()
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
