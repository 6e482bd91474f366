package batcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/tensor"
)

func TestDecide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	base := Config{MaxBatchSize: 8, MaxQueueDelay: 10 * ms, MaxQueue: 100}
	withPrefs := base
	withPrefs.PreferredBatchSizes = []int{4, 2}
	withPrefsAscending := base
	withPrefsAscending.PreferredBatchSizes = []int{2, 4}
	threePrefs := base
	threePrefs.PreferredBatchSizes = []int{2, 3, 8}
	cases := []struct {
		name     string
		cfg      Config
		rows     []int
		waited   time.Duration
		wantN    int
		wantWait time.Duration
	}{
		{"empty queue waits for work", base, nil, 0, 0, -1},
		{"one request, fresh: wait the rest of the delay", base, []int{1}, 3 * ms, 0, 7 * ms},
		{"delay elapsed: run what there is", base, []int{1, 2}, 10 * ms, 2, 0},
		{"full batch runs at once", base, []int{4, 4}, 0, 2, 0},
		{"overflowing request ends the batch early", base, []int{3, 3, 3}, 0, 2, 0},
		{"request as large as a batch runs alone", base, []int{8, 1}, 0, 1, 0},
		{"request larger than a batch runs alone", base, []int{9}, 0, 1, 0},
		{"largest preferred size reached: run it now", withPrefs, []int{1, 3, 1}, 0, 2, 0},
		{"preferred size not reachable exactly: wait", withPrefs, []int{3, 3}, 2 * ms, 0, 8 * ms},
		{"delay elapsed: cut back to a preferred size", withPrefs, []int{1, 1, 1}, 10 * ms, 2, 0},
		{"delay elapsed, no preferred prefix: run all that fit", withPrefs, []int{3}, 12 * ms, 1, 0},
		{"zero delay runs immediately", Config{MaxBatchSize: 8, MaxQueue: 1}, []int{1}, 0, 1, 0},
		{"preferred sizes in any order: the largest reached runs", withPrefsAscending, []int{1, 3, 1}, 0, 2, 0},
		{"preferred sizes in any order: cut back to the largest prefix", threePrefs, []int{1, 1, 1, 1}, 10 * ms, 3, 0},
		{"only a smaller preferred size reached: wait for the delay", withPrefs, []int{1, 1}, 4 * ms, 0, 6 * ms},
		{"first request overflows with the second: run it alone", base, []int{5, 4}, 0, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, wait := Decide(t0.Add(c.waited), c.rows, t0, c.cfg)
			if n != c.wantN || wait != c.wantWait {
				t.Fatalf("Decide(%v, waited %s) = %d, %s; want %d, %s", c.rows, c.waited, n, wait, c.wantN, c.wantWait)
			}
		})
	}
}

// Decide runs on every enqueue, under the queue's lock: it must not allocate.
func TestDecideDoesNotAllocate(t *testing.T) {
	cfg := Config{MaxBatchSize: 64, MaxQueueDelay: time.Millisecond, MaxQueue: 64, PreferredBatchSizes: []int{16, 32, 8}}
	rows := []int{1, 1, 1, 1, 1}
	t0 := time.Unix(1000, 0)
	if n := testing.AllocsPerRun(100, func() {
		Decide(t0, rows, t0, cfg)
		Decide(t0.Add(time.Second), rows, t0, cfg)
	}); n != 0 {
		t.Fatalf("Decide allocates %.0f times per call", n)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{MaxBatchSize: -1}, {MaxQueueDelay: -1}, {MaxInFlight: -1}, {MaxQueue: -1},
		{MaxBatchSize: 4}, // batching without a queue
		{MaxBatchSize: 4, MaxQueue: 1, PreferredBatchSizes: []int{8}},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func rowsTensor(vals ...float64) []*tensor.Tensor {
	return []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{int64(len(vals)), 1}, Data: vals}}
}

// doubling is a model that returns 2x per row and records the batch sizes it saw.
type doubling struct {
	mu      sync.Mutex
	batches []int
	delay   time.Duration
	running atomic.Int32
	maxRun  atomic.Int32
}

func (d *doubling) run(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := d.running.Add(1)
	defer d.running.Add(-1)
	for {
		m := d.maxRun.Load()
		if n <= m || d.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	x := in[0].Data.([]float64)
	d.mu.Lock()
	d.batches = append(d.batches, len(x))
	d.mu.Unlock()
	time.Sleep(d.delay)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = 2 * v
	}
	return []*tensor.Tensor{{Name: "y", Datatype: tensor.FP64, Shape: []int64{int64(len(x))}, Data: out}}, nil
}

func TestBatchingJoinsAndSplits(t *testing.T) {
	m := &doubling{delay: 5 * time.Millisecond}
	b, err := New(m.run, Config{MaxBatchSize: 16, MaxQueueDelay: 20 * time.Millisecond, MaxInFlight: 1, MaxQueue: 64}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := b.Do(context.Background(), rowsTensor(float64(i), float64(i)+0.5))
			if err != nil {
				errs <- err
				return
			}
			got := out[0].Data.([]float64)
			if len(got) != 2 || got[0] != 2*float64(i) || got[1] != 2*float64(i)+1 {
				errs <- errors.New("wrong rows back")
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	total, biggest := 0, 0
	for _, s := range m.batches {
		total += s
		biggest = max(biggest, s)
	}
	if total != 64 || biggest < 4 || len(m.batches) >= 32 {
		t.Fatalf("batches %v: want 64 rows in fewer than 32 runs, some joined", m.batches)
	}
	if biggest > 16 {
		t.Fatalf("a batch of %d rows exceeds the maximum 16", biggest)
	}
	if m.maxRun.Load() > 1 {
		t.Fatalf("%d runs at once, limit 1", m.maxRun.Load())
	}
}

func TestAdmissionShedsAndBoundsConcurrency(t *testing.T) {
	{
		cfg := Config{MaxInFlight: 2, MaxQueue: 3}
		m := &doubling{delay: 100 * time.Millisecond}
		var shed atomic.Int32
		b, err := New(m.run, cfg, Hooks{Shed: func() { shed.Add(1) }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var ok, overloaded atomic.Int32
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := b.Do(context.Background(), rowsTensor(1))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrOverloaded):
					overloaded.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		b.Close()
		if ok.Load() != 5 || overloaded.Load() != 5 || shed.Load() != 5 {
			t.Fatalf("ok %d, shed %d (hook %d): want 2 running + 3 queued served and 5 shed", ok.Load(), overloaded.Load(), shed.Load())
		}
		if m.maxRun.Load() != 2 {
			t.Fatalf("max concurrent runs %d, want 2", m.maxRun.Load())
		}
	}
}

func TestQueuedRequestPastDeadlineNeverRuns(t *testing.T) {
	for _, cfg := range []Config{
		{MaxInFlight: 1, MaxQueue: 10},
		{MaxInFlight: 1, MaxQueue: 10, MaxBatchSize: 4, MaxQueueDelay: time.Millisecond},
	} {
		m := &doubling{delay: 200 * time.Millisecond}
		var expired atomic.Int32
		b, err := New(m.run, cfg, Hooks{Expired: func() { expired.Add(1) }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		go b.Do(context.Background(), rowsTensor(1)) // occupies the only slot
		time.Sleep(20 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, err = b.Do(ctx, rowsTensor(7))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%+v: got %v, want deadline exceeded", cfg, err)
		}
		if waited := time.Since(start); waited > 150*time.Millisecond {
			t.Fatalf("deadline honoured only after %s", waited)
		}
		b.Close()
		m.mu.Lock()
		for _, s := range m.batches {
			if s != 1 {
				t.Fatalf("the expired request ran: batches %v", m.batches)
			}
		}
		if len(m.batches) != 1 || expired.Load() != 1 {
			t.Fatalf("runs %v, expired %d", m.batches, expired.Load())
		}
		m.mu.Unlock()
	}
}

func TestUnjoinableRequestsRunAlone(t *testing.T) {
	m := &doubling{}
	b, _ := New(m.run, Config{MaxBatchSize: 8, MaxQueueDelay: 5 * time.Millisecond, MaxQueue: 8}, Hooks{}, nil)
	defer b.Close()
	// A 0-d input has no batch dimension; a 9-row one is larger than a batch.
	scalar := []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1}, Data: []float64{3}}}
	if out, err := b.Do(context.Background(), scalar); err != nil || out[0].Data.([]float64)[0] != 6 {
		t.Fatal(out, err)
	}
	big := make([]float64, 9)
	if out, err := b.Do(context.Background(), rowsTensor(big...)); err != nil || len(out[0].Data.([]float64)) != 9 {
		t.Fatal(err)
	}
}

// With batching, the queue bound holds too: one batch runs, MaxQueue requests wait
// (for a batch or for the run slot: both count), and the next is shed.
func TestBatchingShedsWhenQueueFull(t *testing.T) {
	gate := make(chan struct{})
	var runs atomic.Int32
	run := func(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		runs.Add(1)
		<-gate
		return in, nil
	}
	b, err := New(run, Config{MaxBatchSize: 2, MaxInFlight: 1, MaxQueue: 2}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := b.Do(context.Background(), rowsTensor(1, 2)); results <- err }()
		time.Sleep(30 * time.Millisecond) // let each be queued or started in turn
	}
	if _, err := b.Do(context.Background(), rowsTensor(1)); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("fourth request: %v, want shed", err)
	}
	if runs.Load() != 1 {
		t.Fatalf("%d runs started, want 1 (one slot)", runs.Load())
	}
	close(gate)
	for i := 0; i < 3; i++ {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
}

// A batch starts the moment the policy says so (here: full), not when a dispatcher
// next looks: with an hour of queue delay, four one-row callers of a four-row batch
// are answered at once.
func TestFullBatchRunsWithoutWaitingForTheDelay(t *testing.T) {
	m := &doubling{}
	b, err := New(m.run, Config{MaxBatchSize: 4, MaxQueueDelay: time.Hour, MaxInFlight: 1, MaxQueue: 4}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := b.Do(ctx, rowsTensor(float64(i)))
			if err == nil && out[0].Data.([]float64)[0] != 2*float64(i) {
				err = errors.New("wrong row back")
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.batches) != 1 || m.batches[0] != 4 {
		t.Fatalf("batches %v, want one of 4 rows", m.batches)
	}
}

// Close runs what is queued without waiting out the queue delay.
func TestCloseFlushesTheQueue(t *testing.T) {
	m := &doubling{}
	b, err := New(m.run, Config{MaxBatchSize: 8, MaxQueueDelay: time.Hour, MaxQueue: 8}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		out, err := b.Do(context.Background(), rowsTensor(1, 2))
		if err == nil && out[0].Data.([]float64)[1] != 4 {
			err = errors.New("wrong rows back")
		}
		got <- err
	}()
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not run the queued request")
	}
	<-closed
	if _, err := b.Do(context.Background(), rowsTensor(1)); err == nil {
		t.Fatal("a closed batcher accepted work")
	}
}

// A request that gives up while queued leaves the queue at once, so its place is
// free for the next one rather than counted against the bound until a run starts.
func TestExpiredRequestFreesItsQueuePlace(t *testing.T) {
	gate := make(chan struct{})
	run := func(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		<-gate
		return []*tensor.Tensor{{Name: "y", Datatype: tensor.FP64, Shape: []int64{in[0].Rows()}, Data: make([]float64, in[0].Rows())}}, nil
	}
	var expired atomic.Int32
	b, err := New(run, Config{MaxBatchSize: 2, MaxInFlight: 1, MaxQueue: 1}, Hooks{Expired: func() { expired.Add(1) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := b.Do(context.Background(), rowsTensor(1, 2)); first <- err }() // holds the slot
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if _, err := b.Do(ctx, rowsTensor(3, 4)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued request: %v, want its deadline", err)
	}
	cancel()
	third := make(chan error, 1)
	go func() { _, err := b.Do(context.Background(), rowsTensor(5, 6)); third <- err }()
	time.Sleep(20 * time.Millisecond)
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatalf("after the expired request left, the next was refused: %v", err)
	}
	b.Close()
	if expired.Load() != 1 {
		t.Fatalf("expired hook %d, want 1", expired.Load())
	}
}

// Requests with different inputs queue in one line but never share a run: each
// run takes a prefix of the queue with the head's layout, in order.
func TestMixedLayoutsRunInOrderAndApart(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var runs []string
	run := func(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		<-gate
		mu.Lock()
		runs = append(runs, fmt.Sprintf("%s:%d", in[0].Name, in[0].Rows()))
		mu.Unlock()
		x := in[0].Data.([]float64)
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = 2 * v
		}
		return []*tensor.Tensor{{Name: "y", Datatype: tensor.FP64, Shape: []int64{int64(len(x))}, Data: out}}, nil
	}
	b, err := New(run, Config{MaxBatchSize: 8, MaxQueueDelay: time.Millisecond, MaxInFlight: 1, MaxQueue: 8}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	named := func(name string, v float64) []*tensor.Tensor {
		return []*tensor.Tensor{{Name: name, Datatype: tensor.FP64, Shape: []int64{1, 1}, Data: []float64{v}}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	send := func(name string, v float64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := b.Do(context.Background(), named(name, v))
			if err == nil && out[0].Data.([]float64)[0] != 2*v {
				err = fmt.Errorf("%s %v: got %v", name, v, out[0].Data)
			}
			errs <- err
		}()
		time.Sleep(10 * time.Millisecond) // queue them in this order
	}
	send("a", 1) // starts alone and holds the slot at the gate
	for i, name := range []string{"a", "a", "b", "b", "a"} {
		send(name, float64(i+2))
	}
	close(gate)
	wg.Wait()
	b.Close()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a:1", "a:2", "b:2", "a:1"}
	if fmt.Sprint(runs) != fmt.Sprint(want) {
		t.Fatalf("runs %v, want %v", runs, want)
	}
}

// Each caller's outputs are views of the model's output buffer, cut at its own
// rows: appending to one cannot write into the next caller's rows.
func TestSplitOutputsCannotGrowIntoANeighbour(t *testing.T) {
	m := &doubling{}
	b, err := New(m.run, Config{MaxBatchSize: 2, MaxQueueDelay: time.Hour, MaxQueue: 2}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	outs := make(chan []float64, 2)
	for _, v := range []float64{1, 10} {
		go func() {
			out, err := b.Do(context.Background(), rowsTensor(v))
			if err != nil {
				t.Error(err)
			}
			outs <- out[0].Data.([]float64)
		}()
	}
	x, y := <-outs, <-outs
	if cap(x) != 1 || cap(y) != 1 {
		t.Fatalf("output capacities %d and %d, want 1: a caller could grow into another's rows", cap(x), cap(y))
	}
	_ = append(x, -1)
	if y[0] != 2 && y[0] != 20 {
		t.Fatalf("neighbour's row changed to %v", y[0])
	}
}

// A model that answers a batch with the wrong number of rows fails every caller
// in it with an error, rather than handing anyone another caller's rows.
func TestBatchedOutputWithWrongRowsFailsTheBatch(t *testing.T) {
	run := func(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return []*tensor.Tensor{{Name: "y", Datatype: tensor.FP64, Shape: []int64{1}, Data: []float64{0}}}, nil
	}
	b, err := New(run, Config{MaxBatchSize: 2, MaxQueueDelay: time.Hour, MaxQueue: 2}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { _, err := b.Do(context.Background(), rowsTensor(1)); errs <- err }()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "for 2 input rows") {
			t.Fatalf("got %v, want an error about the rows", err)
		}
	}
}

// A model that panics in a batch's run, joined or alone, hands the panic to each
// caller of that batch, in the caller's own goroutine (where the server contains
// it); the run's slot is freed, and the batcher goes on serving and closes.
func TestPanicInABatchReachesItsCallers(t *testing.T) {
	d := &doubling{}
	run := func(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if slices.Contains(in[0].Data.([]float64), 13) {
			panic("row 13")
		}
		return d.run(ctx, in)
	}
	b, err := New(run, Config{MaxBatchSize: 2, MaxQueueDelay: time.Hour, MaxInFlight: 1, MaxQueue: 4}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	do := func(v ...float64) (out []*tensor.Tensor, err error, p any) {
		defer func() { p = recover() }()
		out, err = b.Do(context.Background(), rowsTensor(v...))
		return out, err, nil
	}
	for _, batch := range [][2]float64{{13, 1}, {2, 13}, {3, 4}} {
		type answer struct {
			out   []*tensor.Tensor
			err   error
			panic any
		}
		answers := make([]answer, 2)
		var wg sync.WaitGroup
		for i, v := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err, p := do(v)
				answers[i] = answer{out, err, p}
			}()
		}
		wg.Wait()
		poisoned := batch[0] == 13 || batch[1] == 13
		for i, a := range answers {
			switch {
			case poisoned && (a.panic != "row 13" || a.out != nil || a.err != nil):
				t.Errorf("batch %v, caller %d: %v %v, panic %v; want the model's panic", batch, i, a.out, a.err, a.panic)
			case !poisoned && (a.panic != nil || a.err != nil || a.out[0].Data.([]float64)[0] != 2*batch[i]):
				t.Errorf("batch %v, caller %d: %v %v, panic %v; want its row doubled", batch, i, a.out, a.err, a.panic)
			}
		}
	}
	// A call alone in its run: two rows fill a batch by themselves.
	if _, _, p := do(13, 13); p != "row 13" {
		t.Errorf("a one-call batch: panic %v, want the model's", p)
	}
	if out, err, p := do(5, 6); err != nil || p != nil || out[0].Data.([]float64)[1] != 12 {
		t.Errorf("after the panics: %v %v, panic %v", out, err, p)
	}
	b.Close()
}

// TestTimingReportsTheSharedRun: every request of a joined run reports that run
// (its rows, its requests, when the model ran), and its own arrival before it.
func TestTimingReportsTheSharedRun(t *testing.T) {
	m := &doubling{delay: 2 * time.Millisecond}
	b, err := New(m.run, Config{MaxBatchSize: 6, MaxQueueDelay: time.Second, MaxQueue: 8}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	timings := make([]Timing, 3)
	var wg sync.WaitGroup
	for i := range timings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.DoTimed(context.Background(), rowsTensor(1, 2), &timings[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, tm := range timings {
		if tm.Rows != 6 || tm.Requests != 3 {
			t.Fatalf("request %d: run of %d rows, %d requests; want the full batch of 6 rows, 3 requests", i, tm.Rows, tm.Requests)
		}
		if tm.Queued.IsZero() || tm.Started.Before(tm.Queued) || tm.RunStart.Before(tm.Started) || tm.RunEnd.Sub(tm.RunStart) < 2*time.Millisecond {
			t.Fatalf("request %d: timing out of order or too short: %+v", i, tm)
		}
		if !tm.RunStart.Equal(timings[0].RunStart) || !tm.RunEnd.Equal(timings[0].RunEnd) {
			t.Fatalf("request %d reports a different run than request 0: %+v vs %+v", i, tm, timings[0])
		}
	}
}

// TestTimingWithoutBatching: a request that waited for a run slot reports the wait.
func TestTimingWithoutBatching(t *testing.T) {
	m := &doubling{delay: 20 * time.Millisecond}
	b, err := New(m.run, Config{MaxInFlight: 1, MaxQueue: 4}, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go b.Do(context.Background(), rowsTensor(1)) // holds the only slot for 20 ms
	for m.running.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var tm Timing
	if _, err := b.DoTimed(context.Background(), rowsTensor(1, 2, 3), &tm); err != nil {
		t.Fatal(err)
	}
	if tm.Rows != 3 || tm.Requests != 1 {
		t.Fatalf("rows %d, requests %d; want 3 and 1", tm.Rows, tm.Requests)
	}
	if wait := tm.Started.Sub(tm.Queued); wait < 5*time.Millisecond {
		t.Fatalf("waited %s for the slot; the other run held it for ~20 ms", wait)
	}
	if tm.RunEnd.Sub(tm.RunStart) < 20*time.Millisecond || tm.RunStart.Before(tm.Started) {
		t.Fatalf("run timing wrong: %+v", tm)
	}
}
