// Package lightgbm serves LightGBM models from the text files LightGBM writes
// (Booster.save_model, the CLI's output_model): gbdt, dart, goss and rf
// boosting, every built-in objective, numerical and categorical splits with
// LightGBM's missing-value rules. Predictions are summed and transformed in
// double precision in tree order, as LightGBM does, so they match its own to
// the last bits (tested against predictions LightGBM computed). Linear trees
// are refused.
package lightgbm

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
)

func init() {
	formats.Register(formats.Runtime{
		Format: "lightgbm",
		// No extension of its own: LightGBM's files are "model.txt" or
		// "*.model", names other files share; Match reads the first line.
		Match: MatchesFile,
		Unclaimed: func(path string) string {
			ext := strings.ToLower(filepath.Ext(path))
			for _, e := range extensions {
				if e == ext {
					return filepath.Base(path) + " is not a LightGBM text model (its first line is not \"tree\")"
				}
			}
			return ""
		},
		Loader: loader{},
	})
}

// extensions are the file names a LightGBM model is looked for under.
var extensions = []string{".txt", ".model", ".lgb", ".lightgbm"}

// MatchesFile reports whether path names a LightGBM text model: a .txt,
// .model, .lgb or .lightgbm file whose first line is "tree", as every model
// LightGBM writes begins. Other files with those names are left alone.
func MatchesFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	found := false
	for _, e := range extensions {
		found = found || e == ext
	}
	if !found {
		return false
	}
	head, _ := formats.FileHead(path, 6)
	return bytes.HasPrefix(head, []byte("tree\n")) || bytes.HasPrefix(head, []byte("tree\r\n"))
}

type loader struct{}

// Load reads and checks the whole file, then serves it. Every error is one
// line that starts with "load <path>: ".
func (loader) Load(ctx context.Context, path string, cfg formats.Config) (model.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	data, err := formats.ReadCharged(path, cfg.Memory, loadCost, "LightGBM")
	if err != nil {
		return nil, err
	}
	e, err := parse(data, cfg.CPU)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m, err := newModel(e, cfg)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

// loadCost is what a load of a size-byte file is charged before it is read:
// the file, plus what parsing allocates, measured over the fixtures
// (TestLoadCostBoundsAllocation) at up to about 6× the file (each line becomes
// a string, then its numbers, then the trees' layout for batch walks), and a
// fixed part for small files.
func loadCost(size int64) int64 {
	const perByte, fixed = 6, 64 << 10
	if size > (1<<62)/perByte {
		return 1 << 62
	}
	return size + perByte*size + fixed
}
