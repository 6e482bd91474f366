package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tideserve/tide/internal/cli"
)

// TestMovedCommands: the people's CLI commands are not in tide-server, which says
// in one line where they went (exit 2), also when run as "tide" inside the image.
func TestMovedCommands(t *testing.T) {
	for _, args := range [][]string{{"load", "-c", "4", "http://x/predict"}, {"image", "build", "--output", "x.tar"}} {
		root := cli.NewRoot(cli.ServerBinary, "", "test")
		root.AddCommand(cli.NewServeCommand("test"), cli.NewMovedCommand("load", "x"), cli.NewMovedCommand("image", "x"))
		var stderr bytes.Buffer
		code := cli.Run(root, args, &stderr)
		msg := stderr.String()
		if code != 2 || !strings.Contains(msg, `run "tide `+args[0]+`"`) || strings.Count(msg, "\n") != 1 {
			t.Errorf("tide-server %v: exit %d, %q; want exit 2 and one line pointing at tide %s", args, code, msg, args[0])
		}
	}
}
