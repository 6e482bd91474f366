package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestParseStages(t *testing.T) {
	tests := []struct {
		in      string
		want    Plan
		wantErr string
	}{
		{in: "30s:10", want: Plan{{30 * time.Second, 10, 10}}},
		{in: "30s:10,60s:200,30s:10", want: Plan{{30 * time.Second, 10, 10}, {time.Minute, 200, 200}, {30 * time.Second, 10, 10}}},
		{in: " 1m30s:0.5 , 10s:0-100 ", want: Plan{{90 * time.Second, 0.5, 0.5}, {10 * time.Second, 0, 100}}},
		{in: "# warm up\n10s:5\n20s:5-50 # ramp\n\n5s:50,5s:0\n", want: Plan{{10 * time.Second, 5, 5}, {20 * time.Second, 5, 50}, {5 * time.Second, 50, 50}, {5 * time.Second, 0, 0}}},
		{in: "", wantErr: "none given"},
		{in: " , ,", wantErr: "none given"},
		{in: "30s", wantErr: "want DURATION:TARGET"},
		{in: "thirty:10", wantErr: "duration"},
		{in: "0s:10", wantErr: "must be positive"},
		{in: "-5s:10", wantErr: "must be positive"},
		{in: "10s:-1", wantErr: "not a non-negative number"},
		{in: "10s:ten", wantErr: "not a non-negative number"},
		{in: "10s:NaN", wantErr: "not a non-negative number"},
		{in: "10s:+Inf", wantErr: "not a non-negative number"},
		{in: "10s:1-", wantErr: "not a non-negative number"},
		{in: "10s:5,20s", wantErr: `stage "20s"`},
	}
	for _, tt := range tests {
		got, err := ParseStages(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseStages(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseStages(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseStages(%q) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseStages(%q)[%d] = %+v, want %+v", tt.in, i, got[i], tt.want[i])
			}
		}
		// What String writes, ParseStages reads back the same.
		again, err := ParseStages(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("round trip of %q: %q, %v", tt.in, again.String(), err)
		}
	}
}

func TestReadStagesFile(t *testing.T) {
	plan, err := ReadStages(strings.NewReader("10s:1\n# comment\n20s:1-3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Duration() != 30*time.Second || plan.Peak() != 3 {
		t.Errorf("plan %v: duration %v peak %v", plan, plan.Duration(), plan.Peak())
	}
}

func TestPlanTarget(t *testing.T) {
	plan := Plan{{10 * time.Second, 10, 10}, {10 * time.Second, 10, 110}, {5 * time.Second, 0, 0}}
	tests := []struct {
		at     time.Duration
		want   float64
		wantOK bool
	}{
		{-time.Second, 10, true},
		{0, 10, true},
		{9999 * time.Millisecond, 10, true},
		{10 * time.Second, 10, true}, // a ramp starts at its From
		{15 * time.Second, 60, true}, // and is linear
		{19 * time.Second, 100, true},
		{20 * time.Second, 0, true},
		{25 * time.Second, 0, false}, // the plan is over
		{time.Hour, 0, false},
	}
	for _, tt := range tests {
		got, ok := plan.Target(tt.at)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Target(%v) = %v, %v; want %v, %v", tt.at, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPlanDurationSaturates(t *testing.T) {
	plan := Plan{{Forever, 5, 5}, {time.Second, 1, 1}}
	if plan.Duration() != Forever {
		t.Errorf("Duration() = %v, want Forever", plan.Duration())
	}
	if s := (Plan{{Forever, 5, 5}}).String(); s != "unbounded:5" {
		t.Errorf("String() = %q", s)
	}
}
