// Command tide-server is what Tide's pods run: `serve` (the model server),
// `activator` (the proxy that makes scale to zero safe) and `autoscaler` (the KEDA
// push scaler that scales in seconds). It carries only serving —
// no Kubernetes client, plotting or image-registry code — so the image is small and
// a pod starts in milliseconds. The people's CLI, with `tide load` and
// `tide image build`, is cmd/tide.
package main

import "github.com/tideserve/tide/internal/cli"

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := cli.NewRoot(cli.ServerBinary, "Tide's production server: serve models, or front a scaled-to-zero Deployment", version)
	root.AddCommand(
		cli.NewServeCommand(version),
		cli.NewActivatorCommand(),
		cli.NewAutoscalerCommand(),
		cli.NewFetchCommand(),
		cli.NewVersionCommand(cli.ServerBinary, version),
		cli.NewMovedCommand("load", "Drive load at a model server"),
		cli.NewMovedCommand("image", "Build Tide's container image"),
	)
	cli.Main(root)
}
