// Package loadpace keeps a model load to a share of one CPU.
//
// A load decodes and builds on a thread of its own at a lower priority (nice
// 10), but on a small node that is not enough: on two cores, the serving
// model's p99 went to about 2.5× its idle value for as long as a big load ran
// (docs/performance.md). A nice value decides who runs when both want a core;
// it does not keep the loader from holding one for the kernel's whole time
// slice (about a millisecond and a half on two CPUs) while a request that just
// woke up waits, nor from the cache, memory bandwidth and page faults that go
// with its work. So a load also runs in slices: after each Quantum of work it
// sleeps for as long as its share allows, and the core is the requests'
// meanwhile. The load takes 1/share times as long.
//
// Loaders call Pause at checkpoints: the pickle decoder every few thousand
// opcodes, between chunks of a large array's conversion and of the file's
// mapping; the XGBoost decoders every few thousand values and per tree. The
// work between two checkpoints must stay well under Quantum for the slices to
// hold. Native runtimes (ONNX Runtime) cannot be paced; the nice value alone
// applies there.
package loadpace

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Quantum is the work a load does between two pauses. Short, because a request
// that wakes on the loader's core may wait up to this long for it; measured on
// two cores, 0.5 ms kept the serving p99 clearly lower than 2 ms did, and the
// sleeps' wake-ups (tens of microseconds) still cost the load little.
const Quantum = 500 * time.Microsecond

// Pacer paces one load. It is used by the goroutine that runs the load, not
// concurrently. A nil *Pacer never pauses (an unpaced load).
type Pacer struct {
	share float64
	// sliceStart is when the current slice of work began (zero before the
	// first checkpoint).
	sliceStart time.Time
	// owed is the sleep the work so far calls for and has not had: a sleep
	// that overruns (timer slack) is paid back from the next one, so that over
	// a load the share holds rather than drifting lower.
	owed  time.Duration
	slept time.Duration

	// The clock and the sleep; tests replace them.
	now   func() time.Time
	sleep func(time.Duration)
}

// New returns a pacer that keeps a load to share of one CPU (0.5: half); a
// share of 1 or more, or 0 or less, is unpaced (nil).
func New(share float64) *Pacer {
	if !(share > 0 && share < 1) {
		return nil
	}
	return &Pacer{share: share, now: time.Now, sleep: time.Sleep}
}

// Pause is a checkpoint: once the load has worked a Quantum since its last
// pause, it sleeps long enough for the work to be share of the time.
func (p *Pacer) Pause() {
	if p == nil {
		return
	}
	now := p.now()
	if p.sliceStart.IsZero() {
		p.sliceStart = now
		return
	}
	worked := now.Sub(p.sliceStart)
	if worked < Quantum {
		return
	}
	// Wall time, not the thread's CPU time: reading that is a system call per
	// checkpoint, and time the loader spent preempted by requests counts as its
	// work here, which errs on the side of serving.
	p.owed += time.Duration(float64(worked) * (1 - p.share) / p.share)
	if p.owed > 0 {
		p.sleep(p.owed)
		after := p.now()
		p.owed -= after.Sub(now)
		p.slept += after.Sub(now)
		now = after
	}
	p.sliceStart = now
}

// Slept is how long the load has paused so far.
func (p *Pacer) Slept() time.Duration {
	if p == nil {
		return 0
	}
	return p.slept
}

// Default is the share a load gets when none is configured: a quarter of the
// CPUs the server may use (GOMAXPROCS, which follows a container's CPU limit),
// at most one whole CPU. On two CPUs that is half a core, a quarter of the
// machine; from four on, loads run unpaced on one core of four or more.
func Default() float64 {
	return min(1, float64(runtime.GOMAXPROCS(0))/4)
}

// ParseShare reads a share as people write it in flags: "0.5", "50%", "1".
func ParseShare(s string) (float64, error) {
	t := strings.TrimSpace(s)
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a CPU share (want e.g. 0.5 or 50%%)", s)
	}
	if strings.HasSuffix(t, "%") {
		f /= 100
	}
	if !(f > 0 && f <= 1) {
		return 0, fmt.Errorf("CPU share %q is out of range: want more than 0 and at most 1 (one whole CPU)", s)
	}
	return f, nil
}
