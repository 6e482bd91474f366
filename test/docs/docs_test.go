// Package docs runs the documentation's local commands: every shell block of
// README.md, docs/getting-started.md and docs/monitoring.md marked run (internal/doctest says how
// blocks are marked and checked) runs here, in make test, exactly as written,
// and what it prints must contain what the document shows. The blocks marked
// e2e run on the project's cluster (test/e2e's TestGettingStartedOnTheCluster).
package docs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tideserve/tide/internal/doctest"
)

func runDocument(t *testing.T, name string) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := doctest.Parse(filepath.Join(root, name), name)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "" && testing.Short() {
		t.Skip("-short: not running the documented commands")
	}
	doctest.PortsFree(t, "8080", "8081")
	doctest.NewSession(t, root).Run(blocks, "run", "background")
}

func TestREADME(t *testing.T) { runDocument(t, "README.md") }

func TestGettingStarted(t *testing.T) { runDocument(t, "docs/getting-started.md") }

func TestMonitoring(t *testing.T) { runDocument(t, "docs/monitoring.md") }
