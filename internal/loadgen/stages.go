package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// A Stage holds the load at a target, or ramps it linearly from From to To, for
// Duration. The target is requests per second in open loop and concurrent
// workers in closed loop: the same plan can drive either.
type Stage struct {
	Duration time.Duration `json:"duration"`
	From     float64       `json:"from"`
	To       float64       `json:"to"`
}

// Plan is the whole run's schedule: stages back to back.
type Plan []Stage

// ParseStages reads "30s:10,60s:200,30s:10" (steps: hold 10, then 200, then 10)
// and "30s:10-200" (a ramp from 10 to 200 over 30 s). Stages may also be
// separated by newlines, and '#' starts a comment, so the same syntax works in a
// file (see ReadStages).
func ParseStages(s string) (Plan, error) {
	var plan Plan
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, item := range strings.Split(line, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			st, err := parseStage(item)
			if err != nil {
				return nil, err
			}
			plan = append(plan, st)
		}
	}
	if len(plan) == 0 {
		return nil, fmt.Errorf("stages: none given (want DURATION:TARGET[,DURATION:TARGET...], e.g. 30s:10,60s:200)")
	}
	return plan, nil
}

// ReadStages parses a stages file: one DURATION:TARGET per line or comma.
func ReadStages(r io.Reader) (Plan, error) {
	var b strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("stages: %w", err)
	}
	return ParseStages(b.String())
}

func parseStage(item string) (Stage, error) {
	durText, target, ok := strings.Cut(item, ":")
	if !ok {
		return Stage{}, fmt.Errorf("stage %q: want DURATION:TARGET (e.g. 30s:10) or DURATION:FROM-TO (e.g. 30s:10-200)", item)
	}
	d, err := time.ParseDuration(strings.TrimSpace(durText))
	if err != nil {
		return Stage{}, fmt.Errorf("stage %q: duration: %w", item, err)
	}
	if d <= 0 {
		return Stage{}, fmt.Errorf("stage %q: duration must be positive", item)
	}
	fromText, toText, ramp := strings.Cut(target, "-")
	from, err := parseTarget(item, fromText)
	if err != nil {
		return Stage{}, err
	}
	to := from
	if ramp {
		if to, err = parseTarget(item, toText); err != nil {
			return Stage{}, err
		}
	}
	return Stage{Duration: d, From: from, To: to}, nil
}

func parseTarget(item, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("stage %q: target %q is not a non-negative number", item, strings.TrimSpace(s))
	}
	return v, nil
}

// Duration is the plan's total length.
func (p Plan) Duration() time.Duration {
	var d time.Duration
	for _, s := range p {
		if s.Duration >= Forever-d {
			return Forever
		}
		d += s.Duration
	}
	return d
}

// Target is the load the plan asks for at elapsed time t, and false once the
// plan is over.
func (p Plan) Target(t time.Duration) (float64, bool) {
	if t < 0 {
		t = 0
	}
	for _, s := range p {
		if t < s.Duration {
			frac := float64(t) / float64(s.Duration)
			return s.From + (s.To-s.From)*frac, true
		}
		t -= s.Duration
	}
	return 0, false
}

// Peak is the highest target anywhere in the plan.
func (p Plan) Peak() float64 {
	var m float64
	for _, s := range p {
		m = max(m, s.From, s.To)
	}
	return m
}

// String writes the plan back in the syntax ParseStages reads.
func (p Plan) String() string {
	parts := make([]string, len(p))
	for i, s := range p {
		t := strconv.FormatFloat(s.From, 'g', -1, 64)
		if s.To != s.From {
			t += "-" + strconv.FormatFloat(s.To, 'g', -1, 64)
		}
		d := s.Duration.String()
		if s.Duration == Forever {
			d = "unbounded"
		}
		parts[i] = d + ":" + t
	}
	return strings.Join(parts, ",")
}
