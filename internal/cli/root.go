// Package cli holds the commands that both binaries mount, and how they start:
//
//   - tide-server (cmd/tide-server) is what pods run: serve, activator, version. It
//     links no Kubernetes client, plotting or registry code, so it is small and
//     starts in milliseconds.
//   - tide (cmd/tide) is the people's CLI: the same serve, activator and version,
//     plus load and image build.
//
// The binaries' main packages only choose which commands to mount; everything a
// command does lives here or in the package it wires up.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	// Runtimes register themselves by format; importing one here is all it takes
	// for both binaries to serve a format.
	_ "github.com/tideserve/tide/internal/formats/lightgbm"
	_ "github.com/tideserve/tide/internal/formats/onnx"
	_ "github.com/tideserve/tide/internal/formats/sklearn"
	_ "github.com/tideserve/tide/internal/formats/xgboost"
)

// ServerBinary is the production binary's name, as the image and the chart call it.
const ServerBinary = "tide-server"

// NewRoot is a binary's root command: one-line errors, no usage dump on failure.
func NewRoot(name, short, version string) *cobra.Command {
	return &cobra.Command{
		Use:           name,
		Short:         short,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
}

// NewVersionCommand prints "<binary> <version>".
func NewVersionCommand(binary, version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), binary+" "+version)
		},
	}
}

// NewMovedCommand stands in tide-server for a command of the people's CLI, so that
// `tide-server load ...` (or an old `tide load` run inside the image, where tide is
// tide-server) says where the command lives instead of "unknown command".
func NewMovedCommand(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              short + " (in the tide CLI, not in " + ServerBinary + ")",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return &ExitError{Code: 2, Err: fmt.Errorf("%q is part of the tide CLI, not of %s (the production server binary): run \"tide %s\"", name, ServerBinary, name)}
		},
	}
}

// ExitError ends the program with Code instead of 1.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs root and exits: errors are one line on stderr, prefixed with the
// binary's name, with the ExitError's code or 1.
func Main(root *cobra.Command) {
	os.Exit(Run(root, os.Args[1:], os.Stderr))
}

// Run executes root with args and returns the exit code; errors go to stderr.
func Run(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	// One line, no usage dump: the message says what was wrong.
	fmt.Fprintln(stderr, root.Name()+": "+strings.TrimSpace(err.Error()))
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}
