package loadpace

import (
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeClock is a pacer's clock and sleep for tests: work advances it by hand,
// sleeping advances it by the sleep.
type fakeClock struct {
	t      time.Time
	sleeps []time.Duration
}

func fake(share float64) (*Pacer, *fakeClock) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	p := New(share)
	p.now = func() time.Time { return c.t }
	p.sleep = func(d time.Duration) { c.sleeps = append(c.sleeps, d); c.t = c.t.Add(d) }
	return p, c
}

func TestNilPacerNeverPauses(t *testing.T) {
	for _, share := range []float64{0, -1, 1, 1.5} {
		if p := New(share); p != nil {
			t.Errorf("New(%v) = %+v, want nil (unpaced)", share, p)
		}
	}
	var p *Pacer
	p.Pause() // must not panic
	if p.Slept() != 0 {
		t.Error("a nil pacer reports sleep")
	}
}

func TestPauseSleepsOnlyAfterAQuantum(t *testing.T) {
	p, c := fake(0.5)
	p.Pause() // starts the first slice
	c.t = c.t.Add(Quantum / 2)
	p.Pause()
	if len(c.sleeps) != 0 {
		t.Fatalf("slept %v after half a quantum of work", c.sleeps)
	}
	c.t = c.t.Add(Quantum) // 1.5 quanta of work in this slice
	p.Pause()
	if want := Quantum * 3 / 2; len(c.sleeps) != 1 || c.sleeps[0] != want {
		t.Fatalf("sleeps %v, want one of %v (as long as the work at share 0.5)", c.sleeps, want)
	}
	// The next slice starts after the sleep: no sleep until another quantum.
	c.t = c.t.Add(Quantum / 4)
	p.Pause()
	if len(c.sleeps) != 1 {
		t.Fatalf("slept again after a quarter quantum: %v", c.sleeps)
	}
}

// Over a long load with checkpoints a fraction of a quantum apart, work is the
// share of the elapsed time.
func TestPacedWorkIsTheShareOfTheTime(t *testing.T) {
	for _, share := range []float64{0.1, 0.25, 0.5, 0.9} {
		p, c := fake(share)
		start := c.t
		var work time.Duration
		for i := 0; i < 10000; i++ {
			step := Quantum / 7
			c.t = c.t.Add(step)
			work += step
			p.Pause()
		}
		got := float64(work) / float64(c.t.Sub(start))
		if got < share*0.97 || got > share*1.03 {
			t.Errorf("share %v: work is %.3f of the time", share, got)
		}
		if p.Slept() != c.t.Sub(start)-work {
			t.Errorf("share %v: Slept %v, want %v", share, p.Slept(), c.t.Sub(start)-work)
		}
	}
}

// With the real clock and sleep, a busy loop that checkpoints often uses no
// more than its share of the CPU: its thread's CPU time over the wall time.
// (A busy machine only lowers the figure, so the bound holds under load.)
func TestRealLoopKeepsToItsShare(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a quarter second")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p := New(0.25)
	cpu0, wall0 := threadCPU(t), time.Now()
	x := 1.0
	for time.Since(wall0) < 250*time.Millisecond {
		for i := 0; i < 2000; i++ {
			x = x*1.0000001 + 1e-9
		}
		p.Pause()
	}
	cpu, wall := threadCPU(t)-cpu0, time.Since(wall0)
	if got := float64(cpu) / float64(wall); got > 0.25+0.08 {
		t.Errorf("the loop used %.2f of a CPU (%v of %v), want at most 0.25 (+0.08 for timer slack) (x=%v)", got, cpu, wall, x)
	}
	if p.Slept() < wall/2 {
		t.Errorf("slept %v of %v, want about three quarters", p.Slept(), wall)
	}
	t.Logf("CPU %v, slept %v, wall %v", cpu, p.Slept(), wall)
}

func threadCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		t.Skipf("no per-thread CPU time here: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestParseShare(t *testing.T) {
	for in, want := range map[string]float64{"0.5": 0.5, " 1 ": 1, "25%": 0.25, "100%": 1, "0.01": 0.01} {
		if got, err := ParseShare(in); err != nil || got != want {
			t.Errorf("ParseShare(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"": "is not a CPU share", "half": "is not a CPU share", "0": "out of range", "-0.5": "out of range",
		"1.5": "out of range", "150%": "out of range", "NaN": "out of range", "Inf": "out of range",
	} {
		if _, err := ParseShare(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseShare(%q) error %v, want %q", in, err, msg)
		}
	}
}

func TestDefaultFollowsGOMAXPROCS(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for procs, want := range map[int]float64{1: 0.25, 2: 0.5, 3: 0.75, 4: 1, 16: 1} {
		runtime.GOMAXPROCS(procs)
		if got := Default(); got != want {
			t.Errorf("GOMAXPROCS %d: Default() = %v, want %v", procs, got, want)
		}
	}
}
