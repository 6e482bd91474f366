//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/doctest"
)

// TestGettingStartedOnTheCluster runs docs/getting-started.md as a reader
// would on the project's cluster: the local steps it builds on (build, train,
// serve, image), then the blocks marked e2e — load the image, install the
// chart, turn on the CPU HPA, tide load --watch, KEDA and its activator — and
// checks what each prints against what the page shows. (test/docs runs the
// local steps alone in make test.) The transcript goes to the artifacts.
func TestGettingStartedOnTheCluster(t *testing.T) {
	c := testCluster
	if !c.served(t.Context(), "keda.sh/v1alpha1", "ScaledObject") {
		t.Fatal("the getting-started page scales to zero with KEDA, which this cluster does not serve")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const page = "docs/getting-started.md"
	blocks, err := doctest.Parse(filepath.Join(root, page), page)
	if err != nil {
		t.Fatal(err)
	}
	doctest.PortsFree(t, "8080", "8081")
	kubectl, err := exec.LookPath(c.kubectlBin)
	if err != nil {
		t.Fatal(err)
	}
	helm := helmBin(t)
	// The page's namespace and release, removed however the test ends.
	// (t.Context() is already cancelled when cleanups run.)
	t.Cleanup(func() {
		exec.Command(helm, "--kubeconfig", c.kubeconfig, "--namespace", "demo", "uninstall", "fraud", "--wait", "--timeout", "2m").Run()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c.run(ctx, "", "delete", "namespace", "demo", "--wait=true", "--ignore-not-found")
	})
	s := doctest.NewSession(t, root, "KUBECONFIG="+c.kubeconfig,
		"PATH="+filepath.Dir(kubectl)+":"+filepath.Dir(helm)+":/usr/local/go/bin:"+os.Getenv("PATH"))
	if dir := artifactDir(t); dir != "" {
		s.Transcript(filepath.Join(dir, "transcript.txt"))
	}
	s.Run(blocks, "run", "background", "e2e", "e2e background")
}
