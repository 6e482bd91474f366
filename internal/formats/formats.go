// Package formats is the registry of model formats and the runtimes that load them.
// Each runtime lives in its own package (formats/sklearn, ...) and registers itself
// by format name from init, the way KEDA registers scalers: adding a format means
// adding a package and one import in the binaries' format list, nothing else changes.
// (It is not called "runtime" so that it never shadows the standard library.)
package formats

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/loadpace"
	"github.com/tideserve/tide/internal/model"
)

// Config is what the repository knows about a model before loading it: the parts of
// the model's config file that any runtime may use.
type Config struct {
	// Name is the model's served name.
	Name string
	// Features names the input columns when the file carries no names of its own
	// (a file's own names, such as sklearn's feature_names_in_, win; a list of the
	// wrong length is a load error).
	Features []string
	// Outputs, if set, renames the model's outputs in order.
	Outputs []string
	// Memory is the load's memory budget (nil: unlimited). A loader charges it
	// before each large allocation (the file, decoded data, the built model, or a
	// measured multiple of the file for what a native runtime allocates) and fails
	// the load, with loadmem.ErrExceeded in its chain, at the first charge it
	// cannot hold.
	Memory *loadmem.Budget
	// CPU is the load's pacer (nil: unpaced). A loader that decodes in Go calls
	// its Pause at checkpoints a fraction of loadpace.Quantum apart (per tree,
	// per few thousand records), so that the load keeps to its share of a CPU.
	CPU *loadpace.Pacer
}

// Loader turns a model file into a model.Model.
type Loader interface {
	// Load reads the model at path. Errors say what is wrong with the file in one line.
	Load(ctx context.Context, path string, cfg Config) (model.Model, error)
}

// Runtime is one registered format.
type Runtime struct {
	// Format is the name used in model config files ("sklearn").
	Format string
	// Extensions are the file extensions (with dot, lower case) this runtime claims
	// when no format is configured, e.g. ".pkl", ".joblib".
	Extensions []string
	// Match, if set, also claims files by name when the extension alone is not
	// enough (an XGBoost "model.xgboost.json" among other JSON files).
	Match func(path string) bool
	// Unclaimed, if set, says why a file that looks like one of this
	// runtime's (by its name) is not claimed by Match, for the repository's
	// note on a folder without a model file ("" when the name is not one of
	// its).
	Unclaimed func(path string) string
	Loader    Loader
}

var (
	mu       sync.RWMutex
	registry = map[string]Runtime{}
)

// Register adds a runtime. It panics on a duplicate format: that is a programming
// error found at start-up, not a run-time condition.
func Register(r Runtime) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[r.Format]; dup {
		panic("runtime: format registered twice: " + r.Format)
	}
	registry[r.Format] = r
}

// Lookup returns the runtime for a format name.
func Lookup(format string) (Runtime, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[format]
	return r, ok
}

// ForFile picks a runtime by the file's extension.
func ForFile(path string) (Runtime, error) {
	ext := strings.ToLower(filepath.Ext(path))
	mu.RLock()
	defer mu.RUnlock()
	for _, r := range registry {
		for _, e := range r.Extensions {
			if e == ext {
				return r, nil
			}
		}
		if r.Match != nil && r.Match(path) {
			return r, nil
		}
	}
	return Runtime{}, fmt.Errorf("no runtime for %q files (known formats: %s)", ext, strings.Join(namesLocked(), ", "))
}

// WhyUnclaimed collects the runtimes' notes on a file no runtime claims
// ("" when none has one).
func WhyUnclaimed(path string) string {
	mu.RLock()
	defer mu.RUnlock()
	var notes []string
	for _, f := range namesLocked() {
		if r := registry[f]; r.Unclaimed != nil {
			if n := r.Unclaimed(path); n != "" {
				notes = append(notes, n)
			}
		}
	}
	return strings.Join(notes, "; ")
}

// Names lists the registered format names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(registry))
	for f := range registry {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
