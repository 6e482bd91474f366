package loadgen

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// LoadSpec is how a user asks for load: the command line's -c, -r, -d, -n,
// --stages and --mode. Resolve turns it into a mode and a plan.
type LoadSpec struct {
	Concurrency int
	Rate        float64
	Duration    time.Duration
	Requests    int64
	// Stages is a plan in ParseStages syntax; StagesFile, if set, is read instead.
	Stages     string
	StagesFile io.Reader
	// StagesMode says what stage targets mean: Open (requests/s) or Closed (workers).
	StagesMode Mode
}

// Defaults when a user gives neither a level nor a length.
const (
	DefaultConcurrency = 10
	DefaultDuration    = 10 * time.Second
)

// Resolve checks the combination and returns the mode and plan to run.
//
//	-c N            closed loop, N workers, for -d (default 10s) or until -n
//	-r R            open loop, R requests/s, likewise
//	--stages PLAN   the plan, open loop unless StagesMode is Closed; -n may cap it
//	nothing         closed loop, 10 workers, 10 s
func (s LoadSpec) Resolve() (Mode, Plan, error) {
	if s.Concurrency < 0 || s.Rate < 0 || s.Requests < 0 || s.Duration < 0 {
		return "", nil, errors.New("-c, -r, -n and -d must not be negative")
	}
	if s.Concurrency > 0 && s.Rate > 0 {
		return "", nil, errors.New("-c (closed loop) and -r (open loop) exclude each other")
	}
	if s.Stages != "" || s.StagesFile != nil {
		if s.Concurrency > 0 || s.Rate > 0 || s.Duration > 0 {
			return "", nil, errors.New("--stages sets the load and its duration: drop -c, -r and -d (use --mode closed for concurrency targets)")
		}
		mode := s.StagesMode
		if mode == "" {
			mode = Open
		}
		if mode != Open && mode != Closed {
			return "", nil, fmt.Errorf("--mode %q: want open or closed", mode)
		}
		var plan Plan
		var err error
		if s.StagesFile != nil {
			plan, err = ReadStages(s.StagesFile)
		} else {
			plan, err = ParseStages(s.Stages)
		}
		if err != nil {
			return "", nil, err
		}
		return mode, plan, nil
	}
	mode, level := Closed, float64(s.Concurrency)
	if s.Rate > 0 {
		mode, level = Open, s.Rate
	}
	if level == 0 {
		level = DefaultConcurrency
	}
	d := s.Duration
	switch {
	case d == 0 && s.Requests > 0:
		d = Forever
	case d == 0:
		d = DefaultDuration
	}
	return mode, Plan{{Duration: d, From: level, To: level}}, nil
}
