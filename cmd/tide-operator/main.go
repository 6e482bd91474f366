// Command tide-operator runs the Model controller: one Model object becomes a
// served, autoscaled, observable model (internal/controller). It is its own
// binary so that neither tide-server nor the tide CLI links controller-runtime,
// and it links no model runtime.
package main

import (
	"fmt"
	"os"

	"github.com/tideserve/tide/internal/controller"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := controller.NewCommand(version).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tide-operator:", err)
		os.Exit(1)
	}
}
