package repository

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/tideserve/tide/internal/monitor"
)

// Options control how a repository finds and loads models. The zero value is
// usable: unlimited memory per load, one load at a time, symlinks followed only
// inside the root.
type Options struct {
	// LoadMemoryBudget is what one model load may allocate, in bytes (see
	// loadmem); 0 is unlimited. The server derives it from the container's
	// memory limit unless told.
	LoadMemoryBudget int64
	// LoadConcurrency is how many models load at once (default 1). Each load gets
	// the whole LoadMemoryBudget, so the loads' peak is their product; one at a
	// time also leaves the other cores to the models that are serving.
	LoadConcurrency int
	// LoadCPUShare is the share of one CPU a load may keep busy (see loadpace):
	// it works in slices and sleeps in between, so that the models serving
	// meanwhile keep their latency. 0 or 1 is unpaced; the server sets a default
	// from the CPUs it may use.
	LoadCPUShare float64
	// FollowSymlinksOutside lets a symlink in the repository point outside its
	// root. Off, such a link is skipped with a warning: whoever can write a link
	// into the repository could otherwise have the server read any file it can.
	FollowSymlinksOutside bool
	// Monitoring are the server's monitoring defaults, which a model's config
	// overrides (nil: monitor.DefaultSettings).
	Monitoring *monitor.Settings
	// Format is the runtime of models whose config names none ("sklearn"); empty
	// picks it by file extension. The operator sets it from a Model's format, as
	// its read-only model volumes leave no room for a config file.
	Format string
}

func (o Options) withDefaults() Options {
	if o.LoadConcurrency < 1 {
		o.LoadConcurrency = 1
	}
	return o
}

// scanner reads the repository folder, applying the symlink policy.
type scanner struct {
	root          string // the root as given, for the paths it builds
	realRoot      string // the root with symlinks resolved, for the policy
	followOutside bool
	defaultFormat string   // Options.Format
	skipped       []string // one line per entry the policy skipped
}

func newScanner(root string, followOutside bool) *scanner {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		real = root
	}
	if abs, err := filepath.Abs(real); err == nil {
		real = abs
	}
	return &scanner{root: root, realRoot: real, followOutside: followOutside}
}

// entry says what a directory entry is once its symlink, if any, is followed
// (isDir), and whether to use it at all. A symlink to a place outside the root is
// used only when the policy allows; a broken one never. Each skip is recorded.
func (s *scanner) entry(path string, d fs.DirEntry) (isDir, use bool) {
	if d.Type()&fs.ModeSymlink == 0 {
		return d.IsDir(), true
	}
	rel := s.rel(path)
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		s.skipped = append(s.skipped, fmt.Sprintf("%s: broken symlink, skipped", rel))
		return false, false
	}
	if abs, err := filepath.Abs(target); err == nil {
		target = abs
	}
	if !s.followOutside && target != s.realRoot && !strings.HasPrefix(target, s.realRoot+string(filepath.Separator)) {
		s.skipped = append(s.skipped, fmt.Sprintf("%s: symlink to a path outside the repository, skipped (--follow-symlinks-outside serves it)", rel))
		return false, false
	}
	fi, err := os.Stat(path)
	if err != nil {
		s.skipped = append(s.skipped, fmt.Sprintf("%s: %v, skipped", rel, err))
		return false, false
	}
	return fi.IsDir(), true
}

// rel is path relative to the repository root, as errors show it.
func (s *scanner) rel(path string) string { return relativeTo(s.root, path) }

// relativeTo writes path relative to root when it is under it.
func relativeTo(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// absPath matches an absolute path in a message (at its start, or after a space,
// quote, bracket, '=' or ':'), group 1 being what precedes it.
var absPath = regexp.MustCompile(`(^|[\s"'(\[=:])((?:/[^\s/"':,;()\[\]]+)+/?)`)

// publicMessage rewrites a load error or scan problem for the API and the index,
// which whoever may call inference can read: paths under the repository root
// become relative to it ("fraud/2/model.pkl"), and any other absolute path (a
// native runtime's source file, a temp folder) is cut to its last element, so
// that nothing tells a client how the server's disk is laid out.
// prefixes are rootPrefixes(root), worked out once per repository.
func publicMessage(prefixes []string, msg string) string {
	for _, prefix := range prefixes {
		msg = strings.ReplaceAll(msg, prefix, "")
	}
	return absPath.ReplaceAllStringFunc(msg, func(m string) string {
		sub := absPath.FindStringSubmatch(m)
		return sub[1] + filepath.Base(sub[2])
	})
}

// rootPrefixes are the forms of the root that paths in messages start with: as
// given (cleaned), absolute, and with symlinks resolved. A single-file
// repository's paths are relative to the file's folder.
func rootPrefixes(root string) []string {
	if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
		root = filepath.Dir(root)
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		p = filepath.Clean(p)
		if p == "." || p == "/" || seen[p] {
			return
		}
		seen[p] = true
		out = append(out, p+string(filepath.Separator))
	}
	add(root)
	if abs, err := filepath.Abs(root); err == nil {
		add(abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			add(real)
		}
	}
	// Longest first, so that "/srv/models/" is not half-replaced by "models/".
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
