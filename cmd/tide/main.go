// Command tide serves machine-learning models over HTTP: the tutorial's /predict,
// the Open Inference Protocol v2 and KServe v1, from one binary with no Python.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	// Runtimes register themselves by format; importing one here is all it takes
	// to serve a format.
	_ "github.com/tideserve/tide/internal/formats/onnx"
	_ "github.com/tideserve/tide/internal/formats/sklearn"
	_ "github.com/tideserve/tide/internal/formats/xgboost"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCommand().Execute(); err != nil {
		// One line, no usage dump: the message says what was wrong.
		fmt.Fprintln(os.Stderr, "tide: "+strings.TrimSpace(err.Error()))
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "tide",
		Short:         "Serve machine-learning models over HTTP, fast, from one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newServeCommand(), newVersionCommand(), newLoadCommand(), newImageCommand(), newActivatorCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "tide "+version)
		},
	}
}
