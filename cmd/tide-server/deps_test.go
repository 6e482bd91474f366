package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// heavyForServing are module paths the production binary must not link: the
// Kubernetes client (tide load --watch), plotting (tide load --report) and the
// image registry code (tide image build). A pod never runs them, and each one adds
// megabytes and start-up time.
var heavyForServing = []string{"k8s.io/client-go", "gonum.org/", "github.com/google/go-containerregistry"}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

func linked(deps []string, prefix string) []string {
	var hits []string
	for _, d := range deps {
		if strings.HasPrefix(d, prefix) {
			hits = append(hits, d)
		}
	}
	return hits
}

// TestProductionBinaryIsLean: tide-server links none of the people's CLI's heavy
// dependencies. The same check on cmd/tide must find them, so this test is known
// to look at the right thing.
func TestProductionBinaryIsLean(t *testing.T) {
	server, cli := deps(t, "."), deps(t, "../tide")
	for _, prefix := range heavyForServing {
		if hits := linked(server, prefix); len(hits) > 0 {
			t.Errorf("tide-server links %s (%d packages, e.g. %s): move the code that needs it to the tide CLI", prefix, len(hits), hits[0])
		}
		if len(linked(cli, prefix)) == 0 {
			t.Errorf("the tide CLI does not link %s: the check lost its control; update heavyForServing", prefix)
		}
	}
}
