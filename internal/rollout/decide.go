// Package rollout judges a model rollout: given what a canary step measured (the
// candidate's requests, errors, p99 latency, and how often its predictions agree
// with the stable version's), the thresholds and the clock, Decide says whether to
// hold, advance, promote or roll back, and why. It is pure, like batcher.Decide:
// the operator records the state in the Model's status and calls it each pass,
// so a restarted operator resumes from the recorded step.
package rollout

import (
	"fmt"
	"math"
	"time"
)

// Phase is where a rollout is.
type Phase string

// The phases. Promoted and RolledBack are final.
const (
	Progressing Phase = "Progressing"
	Paused      Phase = "Paused"
	Promoted    Phase = "Promoted"
	RolledBack  Phase = "RolledBack"
)

// Plan is the route a candidate takes: traffic percentages, each held for
// StepInterval. In shadow mode the percentages are of traffic mirrored to the
// candidate, whose answers are compared but never returned to clients.
type Plan struct {
	Steps        []int32
	StepInterval time.Duration
	Shadow       bool
}

// Thresholds are the analysis; a nil field is not checked.
type Thresholds struct {
	// MaxErrorRatio of the candidate's requests that failed (5xx, timeouts).
	MaxErrorRatio *float64
	// MaxP99 is an absolute bound on the candidate's p99 latency.
	MaxP99 *time.Duration
	// MaxP99Ratio bounds the candidate's p99 relative to the stable version's.
	MaxP99Ratio *float64
	// MinAgreement is the least share of compared predictions that agree.
	MinAgreement *float64
	// MinRequests the candidate must answer in a step before it is judged.
	MinRequests int64
}

// Measurement is what the current step has seen so far.
type Measurement struct {
	// CandidateFailure is set when the candidate cannot serve (its model failed
	// to load): it never gets traffic.
	CandidateFailure string
	Requests, Errors int64
	P99, StableP99   time.Duration
	// Compared predictions (mirrored, or both answers to one request) and those that agreed.
	Compared, Agreed int64
}

// State is what the Model's status records between passes.
type State struct {
	Phase       Phase
	Step        int       // index into Plan.Steps
	StepStarted time.Time // when the current step began
}

// Manual is a person's command (spec field or annotation), if any.
type Manual int

// The manual commands.
const (
	NoCommand Manual = iota
	Promote
	Abort
	Pause
	Resume
)

// Decision is Decide's answer.
type Decision struct {
	State State
	// Weight is the candidate's share of traffic (or of mirrored traffic in
	// shadow mode) from now on, in percent.
	Weight int32
	// Changed reports a transition worth an Event; Reason says what and why.
	Changed bool
	Reason  string
}

// Decide is one judgement at time now.
func Decide(p Plan, th Thresholds, s State, m Measurement, cmd Manual, now time.Time) Decision {
	if s.Phase == "" {
		s = State{Phase: Progressing, StepStarted: now}
		return Decision{State: s, Weight: weightAt(p, 0), Changed: true, Reason: fmt.Sprintf("started: step 1 of %d at %d%%", len(p.Steps), weightAt(p, 0))}
	}
	switch s.Phase {
	case Promoted:
		return Decision{State: s, Weight: 100, Reason: "promoted"}
	case RolledBack:
		return Decision{State: s, Weight: 0, Reason: "rolled back"}
	}
	switch cmd {
	case Abort:
		return rollBack(s, "aborted by hand")
	case Promote:
		return promote(s, "promoted by hand")
	case Pause:
		if s.Phase != Paused {
			s.Phase = Paused
			return Decision{State: s, Weight: weightAt(p, s.Step), Changed: true, Reason: "paused by hand"}
		}
	case Resume:
		if s.Phase == Paused {
			s.Phase, s.StepStarted = Progressing, now // the step's clock starts again
			return Decision{State: s, Weight: weightAt(p, s.Step), Changed: true, Reason: "resumed by hand"}
		}
	}
	if m.CandidateFailure != "" {
		return rollBack(s, "the candidate cannot serve: "+m.CandidateFailure)
	}
	// The thresholds are checked as soon as there is enough evidence, not only at
	// the end of a step, so a bad candidate is stopped within the step it fails in.
	if why := breach(th, m); why != "" {
		return rollBack(s, why)
	}
	if s.Phase == Paused {
		return Decision{State: s, Weight: weightAt(p, s.Step), Reason: "paused"}
	}
	if now.Sub(s.StepStarted) < p.StepInterval {
		return Decision{State: s, Weight: weightAt(p, s.Step), Reason: fmt.Sprintf("step %d of %d at %d%%", s.Step+1, len(p.Steps), weightAt(p, s.Step))}
	}
	if m.Requests < th.MinRequests {
		return Decision{State: s, Weight: weightAt(p, s.Step),
			Reason: fmt.Sprintf("step %d of %d: waiting for %d requests (%d so far)", s.Step+1, len(p.Steps), th.MinRequests, m.Requests)}
	}
	if s.Step+1 >= len(p.Steps) {
		return promote(s, fmt.Sprintf("all %d steps passed", len(p.Steps)))
	}
	s.Step, s.StepStarted = s.Step+1, now
	return Decision{State: s, Weight: weightAt(p, s.Step), Changed: true,
		Reason: fmt.Sprintf("step %d passed (%s); step %d of %d at %d%%", s.Step, summary(m), s.Step+1, len(p.Steps), weightAt(p, s.Step))}
}

// breach names the first threshold the measurement crosses, once the candidate
// has answered MinRequests (agreement: once MinRequests were compared). The
// error ratio and the agreement are counts, so a few events in a small step
// are chance as much as evidence: each is judged by its 95% Wilson score
// interval, rolled back only when even the interval's kinder end is past the
// threshold. One disagreement in 80 (0.9875) does not fail a 0.99 agreement;
// 30 in 80 does. The latencies are judged as measured.
func breach(th Thresholds, m Measurement) string {
	if m.Requests >= max(th.MinRequests, 1) {
		ratio := float64(m.Errors) / float64(m.Requests)
		if lo, _ := wilson(m.Errors, m.Requests); th.MaxErrorRatio != nil && lo > *th.MaxErrorRatio {
			return fmt.Sprintf("error ratio %.4f over %.4f (%d of %d requests; at least %.4f at 95%% confidence)", ratio, *th.MaxErrorRatio, m.Errors, m.Requests, lo)
		}
		if th.MaxP99 != nil && m.P99 > *th.MaxP99 {
			return fmt.Sprintf("p99 %s over %s", m.P99, *th.MaxP99)
		}
		if th.MaxP99Ratio != nil && m.StableP99 > 0 && float64(m.P99) > *th.MaxP99Ratio*float64(m.StableP99) {
			return fmt.Sprintf("p99 %s over %.2f× the stable version's %s", m.P99, *th.MaxP99Ratio, m.StableP99)
		}
	}
	if th.MinAgreement != nil && m.Compared >= max(th.MinRequests, 1) {
		a := float64(m.Agreed) / float64(m.Compared)
		if _, hi := wilson(m.Agreed, m.Compared); hi < *th.MinAgreement {
			return fmt.Sprintf("agreement %.4f under %.4f (%d of %d predictions agree; at most %.4f at 95%% confidence)", a, *th.MinAgreement, m.Agreed, m.Compared, hi)
		}
	}
	return ""
}

// wilson is the 95% Wilson score interval of k events in n trials.
func wilson(k, n int64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p, nf := float64(min(max(k, 0), n))/float64(n), float64(n)
	center := (p + z*z/(2*nf)) / (1 + z*z/nf)
	half := z / (1 + z*z/nf) * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	return max(0, center-half), min(1, center+half)
}

func summary(m Measurement) string {
	s := fmt.Sprintf("%d requests, %d errors, p99 %s", m.Requests, m.Errors, m.P99)
	if m.Compared > 0 {
		s += fmt.Sprintf(", agreement %.4f", float64(m.Agreed)/float64(m.Compared))
	}
	return s
}

func rollBack(s State, why string) Decision {
	s.Phase = RolledBack
	return Decision{State: s, Weight: 0, Changed: true, Reason: "rolled back: " + why}
}

func promote(s State, why string) Decision {
	s.Phase = Promoted
	return Decision{State: s, Weight: 100, Changed: true, Reason: "promoted: " + why}
}

// weightAt is step i's percentage (0 past the plan's end or with no steps).
func weightAt(p Plan, i int) int32 {
	if i < 0 || i >= len(p.Steps) {
		return 0
	}
	return min(max(p.Steps[i], 0), 100)
}
