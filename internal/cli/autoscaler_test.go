package cli

import (
	"strings"
	"testing"
)

// TestAutoscalerRefusesBadFlags: each bad flag is refused before anything listens,
// with one line that names the flag.
func TestAutoscalerRefusesBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "--pods is required"},
		{[]string{"--pods", "fraud-tide-pods.ml.svc"}, `--pods "fraud-tide-pods.ml.svc": want NAME:PORT`},
		{[]string{"--pods", "fraud-tide-pods.ml.svc:http"}, "want NAME:PORT"},
		{[]string{"--pods", ":8080"}, "want NAME:PORT"},
		{[]string{"--pods", "p.ml.svc:8080", "--activators", "a.ml.svc:99999"}, `--activators "a.ml.svc:99999": want NAME:PORT`},
		{[]string{"--pods", "p.ml.svc:8080", "--interval", "10ms"}, "--interval 10ms: want at least 100ms"},
		{[]string{"--pods", "p.ml.svc:8080", "--target-concurrency", "0"}, "target concurrency 0: want more than 0"},
		{[]string{"--pods", "p.ml.svc:8080", "--panic-window", "2m"}, "want 1s <= panic <= stable"},
		{[]string{"--pods", "p.ml.svc:8080", "--min-replicas", "5", "--max-replicas", "3"}, "replicas 5..3"},
		{[]string{"--pods", "p.ml.svc:8080", "--scale-deployment", "fraud-tide"}, "not in a Kubernetes pod"},
	}
	for _, c := range cases {
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		cmd := NewAutoscalerCommand()
		cmd.SetArgs(c.args)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v; want one line containing %q", c.args, err, c.want)
		}
	}
}
