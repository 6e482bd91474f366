package rollout

import (
	"math"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64             { return &v }
func d(v time.Duration) *time.Duration { return &v }

var (
	t0   = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	plan = Plan{Steps: []int32{5, 25, 50, 100}, StepInterval: time.Minute}
	th   = Thresholds{MaxErrorRatio: f(0.01), MaxP99: d(200 * time.Millisecond), MaxP99Ratio: f(3), MinAgreement: f(0.99), MinRequests: 100}
	good = Measurement{Requests: 500, Errors: 0, P99: 10 * time.Millisecond, StableP99: 8 * time.Millisecond, Compared: 500, Agreed: 499}
)

// TestDecide: one row per situation a rollout meets.
func TestDecide(t *testing.T) {
	at := func(step int, started time.Duration) State {
		return State{Phase: Progressing, Step: step, StepStarted: t0.Add(started)}
	}
	cases := []struct {
		name    string
		plan    Plan
		th      Thresholds
		state   State
		m       Measurement
		cmd     Manual
		now     time.Duration
		phase   Phase
		step    int
		weight  int32
		changed bool
		reason  string
	}{
		{name: "start", state: State{}, phase: Progressing, weight: 5, changed: true, reason: "step 1 of 4 at 5%"},
		{name: "hold within the interval", state: at(0, 0), m: good, now: 30 * time.Second, phase: Progressing, weight: 5, reason: "step 1 of 4 at 5%"},
		{name: "advance after the interval", state: at(0, 0), m: good, now: time.Minute, phase: Progressing, step: 1, weight: 25, changed: true, reason: "step 1 passed"},
		{name: "wait for enough requests", state: at(1, 0), m: Measurement{Requests: 40}, now: 2 * time.Minute, phase: Progressing, step: 1, weight: 25, reason: "waiting for 100 requests (40 so far)"},
		{name: "promote after the last step", state: at(3, 0), m: good, now: time.Minute, phase: Promoted, step: 3, weight: 100, changed: true, reason: "all 4 steps passed"},
		{name: "errors roll back mid-step", state: at(1, 0), m: Measurement{Requests: 200, Errors: 12, P99: time.Millisecond}, now: 10 * time.Second, phase: RolledBack, step: 1, weight: 0, changed: true, reason: "error ratio 0.0600 over 0.0100 (12 of 200 requests; at least 0.0347 at 95% confidence)"},
		{name: "a few errors may be chance", state: at(1, 0), m: Measurement{Requests: 200, Errors: 3, P99: time.Millisecond}, now: 10 * time.Second, phase: Progressing, step: 1, weight: 25, reason: "step 2 of 4"},
		{name: "one disagreement in a small step is chance", state: at(0, 0), m: Measurement{Requests: 100, P99: time.Millisecond, Compared: 100, Agreed: 99}, now: time.Second, phase: Progressing, weight: 5, reason: "step 1 of 4"},
		{name: "a shuffled model at the first evidence", th: Thresholds{MinAgreement: f(0.99), MinRequests: 20}, state: at(0, 0), m: Measurement{Requests: 20, Compared: 20, Agreed: 13}, now: time.Second, phase: RolledBack, changed: true, reason: "agreement 0.6500 under 0.9900"},
		{name: "slow absolute", state: at(0, 0), m: Measurement{Requests: 100, P99: time.Second}, now: time.Second, phase: RolledBack, changed: true, reason: "p99 1s over 200ms"},
		{name: "slow relative to stable", th: Thresholds{MaxP99Ratio: f(3), MinRequests: 100}, state: at(0, 0), m: Measurement{Requests: 100, P99: 100 * time.Millisecond, StableP99: 10 * time.Millisecond}, phase: RolledBack, changed: true, reason: "p99 100ms over 3.00× the stable version's 10ms"},
		{name: "disagreement", state: at(2, 0), m: Measurement{Requests: 300, P99: time.Millisecond, Compared: 300, Agreed: 150}, now: time.Second, phase: RolledBack, step: 2, changed: true, reason: "agreement 0.5000 under 0.9900 (150 of 300 predictions agree; at most 0.5562 at 95% confidence)"},
		{name: "too little evidence is no breach", state: at(0, 0), m: Measurement{Requests: 10, Errors: 10, Compared: 10}, now: time.Second, phase: Progressing, weight: 5, reason: "step 1 of 4"},
		{name: "thresholds off", th: Thresholds{}, state: at(0, 0), m: Measurement{Requests: 10, Errors: 10, P99: time.Hour, Compared: 10}, now: time.Minute, phase: Progressing, step: 1, weight: 25, changed: true},
		{name: "candidate cannot load", state: at(0, 0), m: Measurement{CandidateFailure: `refusing to load "posix.system"`}, phase: RolledBack, changed: true, reason: `the candidate cannot serve: refusing to load "posix.system"`},
		{name: "abort by hand", state: at(2, 0), m: good, cmd: Abort, phase: RolledBack, step: 2, changed: true, reason: "aborted by hand"},
		{name: "promote by hand", state: at(0, 0), cmd: Promote, phase: Promoted, weight: 100, changed: true, reason: "promoted by hand"},
		{name: "pause", state: at(1, 0), m: good, cmd: Pause, now: 5 * time.Minute, phase: Paused, step: 1, weight: 25, changed: true, reason: "paused by hand"},
		{name: "paused holds past the interval", state: State{Phase: Paused, Step: 1, StepStarted: t0}, m: good, now: 5 * time.Minute, phase: Paused, step: 1, weight: 25, reason: "paused"},
		{name: "paused still rolls back on a breach", state: State{Phase: Paused, Step: 1, StepStarted: t0}, m: Measurement{Requests: 100, Errors: 50}, phase: RolledBack, step: 1, changed: true, reason: "error ratio"},
		{name: "resume restarts the step clock", state: State{Phase: Paused, Step: 1, StepStarted: t0}, m: good, cmd: Resume, now: 5 * time.Minute, phase: Progressing, step: 1, weight: 25, changed: true, reason: "resumed"},
		{name: "final phases stay", state: State{Phase: RolledBack, Step: 2}, m: good, cmd: Promote, phase: RolledBack, step: 2, weight: 0, reason: "rolled back"},
		{name: "promoted stays", state: State{Phase: Promoted, Step: 3}, cmd: Abort, phase: Promoted, step: 3, weight: 100, reason: "promoted"},
		{name: "shadow steps are mirror shares", plan: Plan{Steps: []int32{10, 100}, StepInterval: time.Minute, Shadow: true}, state: at(0, 0), m: good, now: time.Minute, phase: Progressing, step: 1, weight: 100, changed: true},
		{name: "weights are clamped", plan: Plan{Steps: []int32{-5, 250}, StepInterval: time.Minute}, state: at(0, 0), m: good, now: time.Minute, phase: Progressing, step: 1, weight: 100, changed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, thr := plan, th
			if c.plan.Steps != nil {
				p = c.plan
			}
			if c.th != (Thresholds{}) || strings.HasPrefix(c.name, "thresholds off") {
				thr = c.th
			}
			got := Decide(p, thr, c.state, c.m, c.cmd, t0.Add(c.now))
			if got.State.Phase != c.phase || got.State.Step != c.step || got.Weight != c.weight || got.Changed != c.changed {
				t.Errorf("got %+v (%s), want phase %s step %d weight %d changed %v", got.State, got.Reason, c.phase, c.step, c.weight, c.changed)
			}
			if !strings.Contains(got.Reason, c.reason) {
				t.Errorf("reason %q lacks %q", got.Reason, c.reason)
			}
		})
	}
}

// TestWilson: the interval against scipy's
// binomtest(k, n).proportion_ci(method="wilson"), rounded to 4 places.
func TestWilson(t *testing.T) {
	for _, c := range []struct {
		k, n   int64
		lo, hi float64
	}{{0, 10, 0, 0.2775}, {79, 80, 0.9325, 0.9978}, {150, 300, 0.4438, 0.5562}, {12, 200, 0.0347, 0.1019}, {5, 0, 0, 1}} {
		lo, hi := wilson(c.k, c.n)
		if math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
			t.Errorf("wilson(%d, %d) = %.4f, %.4f; want %.4f, %.4f", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
}

// TestDecideResumesFromTheRecordedStep: a restarted operator passes the state
// it recorded and the rollout goes on from there, not from the start.
func TestDecideResumesFromTheRecordedStep(t *testing.T) {
	s := Decide(plan, th, State{}, Measurement{}, NoCommand, t0).State
	for i := 1; i <= 2; i++ {
		s = Decide(plan, th, s, good, NoCommand, t0.Add(time.Duration(i)*time.Minute)).State
	}
	recorded := s // what the status holds when the operator dies
	got := Decide(plan, th, recorded, good, NoCommand, t0.Add(2*time.Minute+10*time.Second))
	if got.State.Step != 2 || got.Weight != 50 || got.Changed {
		t.Fatalf("after a restart: %+v weight %d", got.State, got.Weight)
	}
}
