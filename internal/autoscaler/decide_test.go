package autoscaler

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// steady is per-second samples ending at t0+end, each with the given demand.
func steady(from, to int, concurrency, rate float64, ready int) []Sample {
	var out []Sample
	for s := from; s <= to; s++ {
		out = append(out, Sample{At: t0.Add(time.Duration(s) * time.Second), Concurrency: concurrency, Rate: rate, ReadyPods: ready})
	}
	return out
}

func join(parts ...[]Sample) []Sample {
	var out []Sample
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDecide(t *testing.T) {
	p := Policy{TargetConcurrency: 4, TargetRate: 100, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second,
		PanicThreshold: 2, MinReplicas: 0, MaxReplicas: 10}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		name      string
		now       time.Time
		samples   []Sample
		st        State
		p         Policy
		want      int
		panic     bool
		active    bool
		panicTill time.Time
	}{
		{name: "no samples, scale to zero", now: at(0), want: 0},
		{name: "idle for the stable window: zero", now: at(60), samples: steady(0, 60, 0, 0, 2), st: State{Desired: 2}, want: 0},
		{name: "one held request wakes from zero", now: at(10), samples: join(steady(0, 9, 0, 0, 0), steady(10, 10, 1, 1, 0)),
			want: 1, active: true},
		{name: "steady load: stable window decides", now: at(59), samples: steady(0, 59, 12, 250, 3), st: State{Desired: 3}, want: 3, active: true},
		{name: "rate target dominates", now: at(59), samples: steady(0, 59, 2, 650, 7), st: State{Desired: 7}, want: 7, active: true},
		{name: "concurrency target dominates", now: at(59), samples: steady(0, 59, 30, 100, 8), st: State{Desired: 8}, want: 8, active: true},
		{name: "float noise is not a pod", now: at(59), samples: steady(0, 59, 8.0000000001, 0, 2), st: State{Desired: 2}, p: Policy{TargetConcurrency: 4,
			StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2, MaxReplicas: 10}, want: 2, active: true},
		{name: "20x burst: panic within the panic window", now: at(62), samples: join(steady(0, 59, 2, 100, 2), steady(60, 62, 20, 2000, 2)),
			st: State{Desired: 2}, want: 10, panic: true, active: true, panicTill: at(122)},
		{name: "small rise below threshold: no panic, stable window smooths", now: at(62), samples: join(steady(0, 59, 4, 150, 2), steady(60, 62, 5, 250, 2)),
			st: State{Desired: 2}, want: 2, active: true},
		{name: "in panic the count never drops", now: at(70), samples: join(steady(0, 59, 2, 100, 2), steady(60, 63, 20, 1000, 2), steady(64, 70, 1, 50, 10)),
			st: State{Desired: 10, PanicUntil: at(123)}, want: 10, panic: true, active: true, panicTill: at(123)},
		{name: "panic ends a stable window after its last trigger", now: at(124), samples: steady(64, 124, 1, 50, 10),
			st: State{Desired: 10, PanicUntil: at(123)}, want: 1, active: true},
		{name: "bounds: at most max", now: at(5), samples: steady(0, 5, 400, 0, 10), st: State{Desired: 10}, want: 10, active: true, panic: true, panicTill: at(65)},
		{name: "bounds: at least min", now: at(59), samples: steady(0, 59, 0, 0, 3), st: State{Desired: 3},
			p: Policy{TargetConcurrency: 4, StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2, MinReplicas: 2, MaxReplicas: 10}, want: 2},
		{name: "demand only in the stable window keeps one pod", now: at(59), samples: join(steady(0, 10, 1, 1, 1), steady(11, 59, 0, 0, 1)),
			st: State{Desired: 1}, want: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := p
			if c.p.TargetConcurrency != 0 {
				pol = c.p
			}
			if err := pol.Validate(); err != nil {
				t.Fatal(err)
			}
			d, st := Decide(c.now, c.samples, c.st, pol)
			if d.Desired != c.want || d.Panic != c.panic || d.Active != c.active || !st.PanicUntil.Equal(c.panicTill) || st.Desired != d.Desired {
				t.Errorf("got desired %d panic %v active %v (panic until %v, state desired %d); want %d %v %v (%v)\n%+v",
					d.Desired, d.Panic, d.Active, st.PanicUntil, st.Desired, c.want, c.panic, c.active, c.panicTill, d)
			}
		})
	}
}

// TestDecideStepTimeline walks a 20x step second by second, the way the scaler
// ticks: the answer reaches the bound within 2 s of the step, holds through the
// burst with no drop, and comes back down after it without turning back up (no
// flapping).
func TestDecideStepTimeline(t *testing.T) {
	p := Policy{TargetConcurrency: 4, TargetRate: 350, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second,
		PanicThreshold: 2, MinReplicas: 2, MaxReplicas: 6}
	var samples []Sample
	var st State
	ready, firstSix, reversals, last, rising := 2, -1, 0, 2, true
	for s := 0; s < 300; s++ {
		rate := 100.0
		if s >= 60 && s < 180 {
			rate = 2000
		}
		now := t0.Add(time.Duration(s) * time.Second)
		samples = append(samples, Sample{At: now, Rate: rate, Concurrency: rate / 1000, ReadyPods: ready})
		var d Decision
		d, st = Decide(now, samples, st, p)
		if d.Desired == 6 && firstSix < 0 {
			firstSix = s
		}
		if d.Desired != last {
			if up := d.Desired > last; up != rising {
				reversals++
				rising = up
			}
			last = d.Desired
		}
		if s >= 60 && s < 180 && firstSix >= 0 && d.Desired < 6 {
			t.Fatalf("second %d: dropped to %d during the burst", s, d.Desired)
		}
		ready = d.Desired // pods ready at once: the policy, not the kubelet, is under test
	}
	if firstSix < 60 || firstSix > 62 {
		t.Errorf("reached 6 at second %d; want within 2 s of the step at 60", firstSix)
	}
	if last != 2 || reversals != 1 {
		t.Errorf("after the burst: %d with %d reversals; want one rise and one fall back to 2", last, reversals)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Policy){
		func(p *Policy) { p.TargetConcurrency = 0 },
		func(p *Policy) { p.TargetRate = -1 },
		func(p *Policy) { p.PanicWindow = 0 },
		func(p *Policy) { p.StableWindow = time.Second },
		func(p *Policy) { p.PanicThreshold = 0.5 },
		func(p *Policy) { p.MinReplicas = 11 },
		func(p *Policy) { p.MaxReplicas = 0 },
	}
	for i, f := range bad {
		p := DefaultPolicy()
		f(&p)
		if p.Validate() == nil {
			t.Errorf("case %d: %+v accepted", i, p)
		}
	}
}
