// Command tide is Tide's CLI for people: `serve` and `activator` (the same commands
// the production binary tide-server runs in pods), `load` (drive load at a model
// server and report what happened) and `image build` (an OCI image around
// tide-server, no Docker needed).
package main

import (
	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { cli.Main(newRootCommand()) }

func newRootCommand() *cobra.Command {
	root := cli.NewRoot("tide", "Serve machine-learning models over HTTP, fast, from one binary", version)
	root.AddCommand(
		cli.NewServeCommand(version),
		cli.NewVersionCommand("tide", version),
		newLoadCommand(),
		newImageCommand(),
		newProfileCommand(),
		cli.NewActivatorCommand(),
		cli.NewAutoscalerCommand(),
		cli.NewFetchCommand(),
	)
	return root
}
