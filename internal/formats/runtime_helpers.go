// What every runtime does the same way: reading a model file within the load
// budget, sniffing its first bytes, and applying a model config's output and
// feature names.

package formats

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/model"
)

// NameOutputs renames a runtime's outputs in order with a model config's
// outputs (fewer names rename the first outputs only). An empty name, a name
// used twice or more names than outputs is an error.
func NameOutputs(outputs []model.TensorSpec, names []string) error {
	if len(names) > len(outputs) {
		return fmt.Errorf("config names %d outputs but the model has %d", len(names), len(outputs))
	}
	seen := map[string]bool{}
	for i := range outputs {
		if i < len(names) {
			if names[i] == "" {
				return fmt.Errorf("config output %d has an empty name", i+1)
			}
			outputs[i].Name = names[i]
		}
		if seen[outputs[i].Name] {
			return fmt.Errorf("config names two outputs %q", outputs[i].Name)
		}
		seen[outputs[i].Name] = true
	}
	return nil
}

// FeatureNames picks a model's feature names: the file's (the columns the
// model was trained on), else the config's, else feature1..featureN (the names
// the tutorial's clients send). Config features of the wrong length are an
// error even when the file's names win, so a broken config never goes
// unnoticed.
func FeatureNames(n int, fromFile, fromConfig []string) ([]string, error) {
	if len(fromConfig) > 0 && len(fromConfig) != n {
		return nil, fmt.Errorf("config lists %d features but the model takes %d", len(fromConfig), n)
	}
	switch {
	case len(fromFile) > 0:
		return fromFile, nil
	case len(fromConfig) > 0:
		return append([]string(nil), fromConfig...), nil
	}
	return defaultFeatureNames(n), nil
}

// defaultFeatureNames returns feature1..featureN as substrings of one string,
// so a wide model costs two allocations, not one per name.
func defaultFeatureNames(n int) []string {
	var sb strings.Builder
	sb.Grow(n * (len("feature") + len(strconv.Itoa(n))))
	ends := make([]int, n)
	for i := range ends {
		sb.WriteString("feature")
		sb.WriteString(strconv.Itoa(i + 1))
		ends[i] = sb.Len()
	}
	all := sb.String()
	names := make([]string, n)
	start := 0
	for i, end := range ends {
		names[i], start = all[start:end], end
	}
	return names
}

// ReadCharged reads a model file whole after charging budget cost(size) for
// it: the file plus the measured multiple of it that decoding allocates.
// kind names the format in the refusal ("a 1024-byte XGBoost file: ...").
// Errors are one line starting with "load <path>: ".
func ReadCharged(path string, budget *loadmem.Budget, cost func(size int64) int64, kind string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := budget.Charge(cost(st.Size())); err != nil {
		return nil, fmt.Errorf("load %s: a %d-byte %s file: %w", path, st.Size(), kind, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return data, nil
}

// FileHead returns up to n of a file's first bytes, for a Match that tells a
// format by its content. Only a regular file is opened: a FIFO with a model's
// name would block the repository's scan on the open. ok is false when the
// file cannot be read.
func FileHead(path string, n int) (head []byte, ok bool) {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return nil, false
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	head = make([]byte, n)
	got, _ := io.ReadFull(f, head)
	return head[:got], true
}
