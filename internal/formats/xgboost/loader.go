package xgboost

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/loadpace"
	"github.com/tideserve/tide/internal/model"
)

func init() {
	formats.Register(formats.Runtime{
		Format:     "xgboost",
		Extensions: extensions,
		Match:      MatchesFile,
		Unclaimed: func(path string) string {
			if ext := strings.ToLower(filepath.Ext(path)); ext == ".json" {
				return filepath.Base(path) + " is JSON but not an XGBoost model (its document does not open with \"learner\"; name it xgboost.json or set format: xgboost to load it anyway)"
			}
			return ""
		},
		Loader: loader{},
	})
}

// extensions are the file extensions the runtime claims without a configured
// format. ".json" is not among them: many formats use it, so a JSON file is
// claimed by its name (MatchesName) or its content (MatchesFile).
var extensions = []string{".ubj", ".xgb"}

// loader reads XGBoost models saved with Booster.save_model or
// XGBModel.save_model.
type loader struct{}

// Load reads the file, whatever its name says, by its content: JSON, UBJSON, or
// the old binary format (refused with how to convert it). Every error is one
// line that starts with "load <path>: ".
func (loader) Load(ctx context.Context, path string, cfg formats.Config) (model.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	data, err := formats.ReadCharged(path, cfg.Memory, loadCost, "XGBoost")
	if err != nil {
		return nil, err
	}
	m, err := load(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

// loadCost is what loading a file of size bytes allocates at most, charged to
// the load's memory budget before the file is read: the file itself, plus what
// decoding allocates, measured over the fixtures (TestLoadCostBoundsAllocation)
// at up to 14× the file for JSON (every number is parsed from text into a
// generic tree first) and 6× for UBJSON. The charge does not know the encoding
// before reading, so it takes JSON's; a fixed part covers the decoder's own
// tables for small files.
func loadCost(size int64) int64 {
	const perByte, fixed = 16, 256 << 10
	if size > (1<<62)/perByte {
		return 1 << 62
	}
	return size + perByte*size + fixed
}

// load decodes a model file's bytes and wraps the booster as a model.
func load(data []byte, cfg formats.Config) (*boosterModel, error) {
	b, err := decode(data, cfg.CPU)
	if err != nil {
		return nil, err
	}
	return newModel(b, cfg)
}

// FromSnapshot builds a model from what a pickled xgboost.core.Booster carries
// (the "handle" of its state; the scikit-learn wrappers XGBClassifier and
// XGBRegressor pickle one): XGBoost's memory snapshot, a UBJSON or JSON
// document whose "Model" member is the document save_model writes, next to
// the training "Config". A bare model document is read as it is. The caller
// charges its memory budget SnapshotCost(len(raw)) first.
func FromSnapshot(raw []byte, cfg formats.Config) (model.Model, error) {
	var doc any
	var err error
	switch sniff(raw) {
	case encJSON:
		doc, err = parseJSON(raw, cfg.CPU)
	case encUBJSON:
		doc, err = parseUBJSON(raw, cfg.CPU)
	default:
		return nil, fmt.Errorf("the pickled XGBoost booster is not a JSON or UBJSON snapshot (XGBoost before 1.0 pickled its old binary format, which Tide does not read; save the model with a newer XGBoost)")
	}
	if err != nil {
		return nil, fmt.Errorf("the pickled XGBoost booster: %w", err)
	}
	if top, ok := doc.(map[string]any); ok {
		if m, ok := top["Model"]; ok {
			doc = m
		}
	}
	b, err := newBooster(doc, cfg.CPU)
	if err != nil {
		return nil, fmt.Errorf("the pickled XGBoost booster: %w", err)
	}
	return newModel(b, cfg)
}

// SnapshotCost is what decoding an n-byte snapshot allocates beyond its own
// bytes, the measured multiple a file load charges (loadCost).
func SnapshotCost(n int64) int64 { return loadCost(n) - n }

// encoding is what a model file's first bytes say it is.
type encoding uint8

const (
	encUnknown encoding = iota
	encJSON
	encUBJSON
	encLegacyBinary
)

// sniff tells the encodings apart. Both JSON and UBJSON documents open with
// '{'; after it JSON has a quote (or '}' or space) and UBJSON the type marker
// of the first key's length, or an optimized-container '$' / '#'. The old
// binary format starts with "binf" (before 1.0, with raw parameters: binary
// bytes that text never has).
func sniff(data []byte) encoding {
	if bytes.HasPrefix(data, []byte("binf")) {
		return encLegacyBinary
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		head := data[:min(len(data), 64)]
		if bytes.ContainsFunc(head, func(r rune) bool { return r < '\t' || r == utf8.RuneError }) {
			return encLegacyBinary
		}
		return encUnknown
	}
	if len(trimmed) < 2 {
		return encJSON // truncated; the JSON reader says so
	}
	switch trimmed[1] {
	case 'i', 'U', 'I', 'l', 'L', '$', '#':
		if len(trimmed) == len(data) {
			return encUBJSON
		}
	}
	return encJSON
}

// decode parses a model file into a booster, pausing at the load's pacer as
// it goes.
func decode(data []byte, pace *loadpace.Pacer) (*booster, error) {
	var doc any
	var err error
	switch sniff(data) {
	case encJSON:
		doc, err = parseJSON(data, pace)
	case encUBJSON:
		doc, err = parseUBJSON(data, pace)
	case encLegacyBinary:
		return nil, fmt.Errorf("this is XGBoost's old binary model format, which Tide does not read; " +
			`load it in XGBoost and re-save it as JSON with model.save_model("model.json")`)
	default:
		return nil, fmt.Errorf("not an XGBoost model: want a JSON or UBJSON document")
	}
	if err != nil {
		return nil, err
	}
	return newBooster(doc, pace)
}

// MatchesFile reports whether path is an XGBoost model: by its name
// (MatchesName), or a .json or .ubj file whose document opens with the
// "learner" key, as every model XGBoost's save_model writes does, whatever the
// file is called ("model.json", the name XGBoost's own documentation uses).
// Other JSON files are left alone.
func MatchesFile(path string) bool {
	if MatchesName(path) {
		return true
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".json" && ext != ".ubj" {
		return false
	}
	head, _ := formats.FileHead(path, 64)
	return opensWithLearner(head)
}

// opensWithLearner reports whether a JSON or UBJSON document's first key is
// "learner": `{"learner"` (JSON, spaces allowed) or '{' then the key's length
// as an int8, uint8 or int64 marker and "learner" (UBJSON).
func opensWithLearner(head []byte) bool {
	b := bytes.TrimLeft(head, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	b = b[1:]
	if j := bytes.TrimLeft(b, " \t\r\n"); bytes.HasPrefix(j, []byte(`"learner"`)) {
		return true
	}
	for _, key := range [][]byte{{'i', 7}, {'U', 7}, {'L', 0, 0, 0, 0, 0, 0, 0, 7}} {
		if bytes.HasPrefix(b, append(key, "learner"...)) {
			return true
		}
	}
	return false
}

// MatchesName reports whether a file's name marks it as an XGBoost model even
// where its extension does not: a claimed extension (".ubj", ".xgb"), or a JSON
// file named "xgboost.json" or "<anything>.xgboost.json". The match ignores
// case.
func MatchesName(path string) bool {
	name := strings.ToLower(filepath.Base(path))
	if name == "xgboost.json" || strings.HasSuffix(name, ".xgboost.json") {
		return true
	}
	ext := filepath.Ext(name)
	for _, e := range extensions {
		if ext == e {
			return true
		}
	}
	return false
}
