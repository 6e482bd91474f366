package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestLoadSpecResolve(t *testing.T) {
	tests := []struct {
		name     string
		spec     LoadSpec
		wantMode Mode
		wantPlan string
		wantErr  string
	}{
		{name: "nothing given", spec: LoadSpec{}, wantMode: Closed, wantPlan: "10s:10"},
		{name: "-c", spec: LoadSpec{Concurrency: 4, Duration: time.Minute}, wantMode: Closed, wantPlan: "1m0s:4"},
		{name: "-r", spec: LoadSpec{Rate: 250}, wantMode: Open, wantPlan: "10s:250"},
		{name: "-n alone runs until the count", spec: LoadSpec{Requests: 100}, wantMode: Closed, wantPlan: "unbounded:10"},
		{name: "-n with -d keeps the duration", spec: LoadSpec{Requests: 100, Duration: time.Second, Rate: 5}, wantMode: Open, wantPlan: "1s:5"},
		{name: "stages default open", spec: LoadSpec{Stages: "30s:10,60s:200"}, wantMode: Open, wantPlan: "30s:10,1m0s:200"},
		{name: "stages closed", spec: LoadSpec{Stages: "30s:1-8", StagesMode: Closed}, wantMode: Closed, wantPlan: "30s:1-8"},
		{name: "stages file", spec: LoadSpec{StagesFile: strings.NewReader("# x\n5s:1\n")}, wantMode: Open, wantPlan: "5s:1"},
		{name: "-c and -r", spec: LoadSpec{Concurrency: 1, Rate: 1}, wantErr: "exclude each other"},
		{name: "stages and -d", spec: LoadSpec{Stages: "1s:1", Duration: time.Second}, wantErr: "drop -c, -r and -d"},
		{name: "stages and -r", spec: LoadSpec{Stages: "1s:1", Rate: 3}, wantErr: "drop -c, -r and -d"},
		{name: "bad mode", spec: LoadSpec{Stages: "1s:1", StagesMode: "sideways"}, wantErr: "want open or closed"},
		{name: "bad stages", spec: LoadSpec{Stages: "1s"}, wantErr: "DURATION:TARGET"},
		{name: "negative", spec: LoadSpec{Concurrency: -1}, wantErr: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, plan, err := tt.spec.Resolve()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mode != tt.wantMode || plan.String() != tt.wantPlan {
				t.Errorf("got %s %s, want %s %s", mode, plan, tt.wantMode, tt.wantPlan)
			}
		})
	}
}
