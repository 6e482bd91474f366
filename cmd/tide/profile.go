package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tideserve/tide/internal/profiler"
)

// newProfileCommand is `tide profile`: the reference profile a model's live
// traffic is compared with.
func newProfileCommand() *cobra.Command {
	var o profiler.Options
	var out string
	cmd := &cobra.Command{
		Use:   "profile --model MODEL [flags] DATA.csv|DATA.parquet",
		Short: "Write a model's reference profile (feature and prediction distributions) for drift monitoring",
		Long: `Read training or validation data (CSV with a header row, or Parquet), run the
model on it, and write the reference profile the server's monitoring compares live
traffic with: each feature in quantile bins (numbers) or category shares (strings),
missing shares, and the model's prediction distribution.

Put the file beside the model as profile.json (<name>/[<version>/]profile.json, or
<stem>.profile.json beside a single model file); tide serve loads it with the model
and reloads it when it changes.`,
		Example: `  tide profile --model models/fraud train.csv -o models/fraud/profile.json
  tide profile --model model.pkl --bins 20 validation.parquet -o model.profile.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Model == "" {
				return fmt.Errorf("--model is required: the model file or folder to profile")
			}
			o.Data = args[0]
			o.Progress = func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) }
			p, err := profiler.Build(cmd.Context(), o)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d features, %d rows\n", filepath.Base(out), len(p.Features), p.Rows)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Model, "model", "", "the model file or folder (as tide serve takes it)")
	fl.StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	fl.IntVar(&o.Bins, "bins", 10, "quantile bins per numeric feature (2 to 20)")
	fl.IntVar(&o.MaxRows, "max-rows", 1_000_000, "read at most this many rows")
	return cmd
}
