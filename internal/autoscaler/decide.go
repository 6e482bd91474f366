// Package autoscaler is Tide's fast scaler: a KEDA external push scaler fed each
// second by the Tide pods' and the activator's own counters, so that a burst reaches
// its replicas in seconds instead of after the scrape, adapter and HPA intervals.
//
// Like Knative's autoscaler it keeps two windows over the same per-second samples: a
// stable one (60 s by default) that decides in quiet times, and a short panic one
// (6 s) that takes over when demand outruns the ready pods, and in panic never
// lowers the count. Decide is the whole policy, a pure function of the samples and
// the clock; Scaler (scaler.go) collects the samples, runs Decide each tick and
// answers KEDA (grpc.go).
package autoscaler

import (
	"fmt"
	"math"
	"time"
)

// Policy is the scaler's configuration: targets per pod, windows and bounds.
type Policy struct {
	// TargetConcurrency is the in-flight requests (queued or running) one pod should
	// carry. Required.
	TargetConcurrency float64
	// TargetRate is the requests per second one pod should carry; 0 leaves the rate
	// out. The larger of the two replica counts wins.
	TargetRate float64
	// StableWindow averages the samples for the quiet-time decision and is how long
	// panic lasts after its last trigger.
	StableWindow time.Duration
	// PanicWindow averages the samples for the burst decision.
	PanicWindow time.Duration
	// PanicThreshold: panic starts when the panic window asks for at least this
	// multiple of the ready pods (2 = twice as many).
	PanicThreshold float64
	// MinReplicas and MaxReplicas bound the answer. MinReplicas 0 allows scale to
	// zero: with no demand in the stable window the answer is 0, and any demand at
	// all (a request held by the activator) makes it at least 1.
	MinReplicas, MaxReplicas int
}

// DefaultPolicy is Knative's choice of windows with a target of 4 in-flight
// requests per pod.
func DefaultPolicy() Policy {
	return Policy{TargetConcurrency: 4, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second,
		PanicThreshold: 2, MinReplicas: 0, MaxReplicas: 10}
}

// Sample is one second's view of the whole Deployment.
type Sample struct {
	At time.Time
	// Concurrency is in-flight requests summed over the pods, plus the requests the
	// activator holds while no pod accepts them.
	Concurrency float64
	// Rate is requests per second summed over the pods, plus the activator's held
	// requests counted as arrivals.
	Rate float64
	// ReadyPods is how many pods answered the scrape.
	ReadyPods int
}

// State is what Decide carries from one tick to the next.
type State struct {
	// PanicUntil: in panic until then (zero: not in panic). Each trigger moves it to
	// now + StableWindow.
	PanicUntil time.Time
	// Desired is the last answer; in panic the answer never goes below it.
	Desired int
}

// Decision is one tick's answer and the figures behind it (exported as metrics).
type Decision struct {
	Desired int
	Panic   bool
	// Active: any demand in the panic window. KEDA keeps a Deployment at zero until
	// this is true.
	Active bool
	// StableDemand and PanicDemand are the replicas each window asks for, before
	// the bounds.
	StableDemand, PanicDemand     int
	StableConcurrency, StableRate float64
	PanicConcurrency, PanicRate   float64
	ReadyPods                     int
	// Warm: the scaler has watched for a whole stable window (set by Scaler, not
	// Decide). Until then its decision may only raise: a scaler restarted under load
	// has seen too little to let the HPA scale down on its word.
	Warm bool
}

// Decide is the policy. samples are in time order, newest last; those older than the
// stable window are ignored. It returns the decision and the state for the next tick.
func Decide(now time.Time, samples []Sample, st State, p Policy) (Decision, State) {
	var d Decision
	stableN, panicN := 0, 0
	for i := len(samples) - 1; i >= 0; i-- {
		s := samples[i]
		age := now.Sub(s.At)
		if age >= p.StableWindow {
			break
		}
		stableN++
		d.StableConcurrency += s.Concurrency
		d.StableRate += s.Rate
		if age < p.PanicWindow {
			panicN++
			d.PanicConcurrency += s.Concurrency
			d.PanicRate += s.Rate
		}
	}
	if stableN > 0 {
		d.StableConcurrency /= float64(stableN)
		d.StableRate /= float64(stableN)
	}
	if panicN > 0 {
		d.PanicConcurrency /= float64(panicN)
		d.PanicRate /= float64(panicN)
	}
	// A burst is trusted once it has lasted two samples. The panic window's average
	// alone takes most of the window to see a step (a 20x step needs 5 of 6 seconds
	// to lift a 6 s average to 17x); one second's spike alone would panic on noise.
	if n := len(samples); panicN >= 2 {
		a, b := samples[n-1], samples[n-2]
		d.PanicConcurrency = math.Max(d.PanicConcurrency, math.Min(a.Concurrency, b.Concurrency))
		d.PanicRate = math.Max(d.PanicRate, math.Min(a.Rate, b.Rate))
	}
	if len(samples) > 0 {
		d.ReadyPods = samples[len(samples)-1].ReadyPods
	}
	d.StableDemand = p.replicasFor(d.StableConcurrency, d.StableRate)
	d.PanicDemand = p.replicasFor(d.PanicConcurrency, d.PanicRate)
	d.Active = d.PanicConcurrency > 0 || d.PanicRate > 0

	// Panic when the short window asks for PanicThreshold times the pods that are
	// ready; from zero ready pods any demand is a burst.
	if d.PanicDemand > 0 && float64(d.PanicDemand) >= p.PanicThreshold*float64(max(d.ReadyPods, 1)) && d.PanicDemand > d.ReadyPods {
		st.PanicUntil = now.Add(p.StableWindow)
	}
	d.Panic = now.Before(st.PanicUntil)
	if d.Panic {
		d.Desired = max(d.PanicDemand, st.Desired)
	} else {
		st.PanicUntil = time.Time{}
		d.Desired = d.StableDemand
	}
	if d.Active || d.StableConcurrency > 0 || d.StableRate > 0 {
		d.Desired = max(d.Desired, 1)
	}
	d.Desired = min(max(d.Desired, p.MinReplicas), p.MaxReplicas)
	st.Desired = d.Desired
	return d, st
}

// replicasFor is the pods that carry concurrency and rate at the targets.
func (p Policy) replicasFor(concurrency, rate float64) int {
	n := 0.0
	if p.TargetConcurrency > 0 {
		n = concurrency / p.TargetConcurrency
	}
	if p.TargetRate > 0 {
		n = math.Max(n, rate/p.TargetRate)
	}
	// A hair under a whole number is that number: 8.0000001 concurrency at a
	// target of 4 is float noise, not a third pod.
	return int(math.Ceil(n - 1e-9))
}

// Validate says what is wrong with a policy, in one line.
func (p Policy) Validate() error {
	switch {
	case !(p.TargetConcurrency > 0):
		return errorf("target concurrency %v: want more than 0", p.TargetConcurrency)
	case p.TargetRate < 0:
		return errorf("target rate %v: want 0 (off) or more", p.TargetRate)
	case p.PanicWindow < time.Second || p.StableWindow < p.PanicWindow:
		return errorf("windows %s (panic) and %s (stable): want 1s <= panic <= stable", p.PanicWindow, p.StableWindow)
	case p.PanicThreshold < 1:
		return errorf("panic threshold %v: want 1 or more", p.PanicThreshold)
	case p.MinReplicas < 0 || p.MaxReplicas < 1 || p.MinReplicas > p.MaxReplicas:
		return errorf("replicas %d..%d: want 0 <= min <= max, max >= 1", p.MinReplicas, p.MaxReplicas)
	}
	return nil
}

func errorf(format string, args ...any) error { return fmt.Errorf("autoscaler: "+format, args...) }
