// Package repository finds models on disk, loads them through the runtime registry
// and tracks each one's state. A repository is a folder of models,
//
//	<root>/<name>/[<version>/]<model file>   plus an optional <root>/<name>/config.yaml
//
// or a single model file, served as a repository of one named after the file's stem.
// A model that fails to load is reported with its reason; the others keep serving.
package repository

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/runtime"
)

// State is a model version's lifecycle state, named as the OIP repository extension
// names them.
type State string

// The states a model version moves through.
const (
	Unavailable State = "UNAVAILABLE"
	Loading     State = "LOADING"
	Ready       State = "READY"
	Failed      State = "FAILED"
)

// Errors that protocol front ends map to status codes.
var (
	ErrNotFound = errors.New("model not found")
	ErrNotReady = errors.New("model not ready")
)

// Version is one loadable model version.
type Version struct {
	Name    string
	Version string
	Path    string
	Format  string
	Config  Config

	mu     sync.RWMutex
	state  State
	reason string
	model  model.Model
	meta   model.Metadata
}

// Status returns the version's state and, for a failed load, why.
func (v *Version) Status() (State, string) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.state, v.reason
}

// Model returns the loaded model and its metadata, or ErrNotReady.
func (v *Version) Model() (model.Model, model.Metadata, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.state != Ready {
		if v.reason != "" {
			return nil, model.Metadata{}, fmt.Errorf("%w: model %s version %s: %s", ErrNotReady, v.Name, v.Version, v.reason)
		}
		return nil, model.Metadata{}, fmt.Errorf("%w: model %s version %s is %s", ErrNotReady, v.Name, v.Version, strings.ToLower(string(v.state)))
	}
	return v.model, v.meta, nil
}

// Entry is one served model name with its versions, newest (default) first.
type Entry struct {
	Name     string
	Versions []*Version
}

// Repository is the set of models a server serves.
type Repository struct {
	root    string
	entries map[string]*Entry
	names   []string
	log     *slog.Logger
	// OnLoad, if set, is told how long each load took and whether it failed (metrics).
	OnLoad func(name, version string, d time.Duration, err error)
	// Problems found while scanning (bad folders, bad configs): reported, not fatal.
	problems []string
}

// Open scans path (a model file or a repository folder) without loading anything.
func Open(path string, log *slog.Logger) (*Repository, error) {
	if log == nil {
		log = slog.Default()
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open model repository: %w", err)
	}
	r := &Repository{root: path, entries: map[string]*Entry{}, log: log}
	if info.IsDir() {
		err = r.scanFolder(path)
	} else {
		err = r.scanFile(path)
	}
	if err != nil {
		return nil, err
	}
	if len(r.entries) == 0 {
		return nil, fmt.Errorf("open model repository %s: no models found (expected <name>/[<version>/]<model file>)", path)
	}
	for n := range r.entries {
		r.names = append(r.names, n)
	}
	sort.Strings(r.names)
	return r, nil
}

func (r *Repository) scanFile(path string) error {
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	cfg, err := sidecarConfig(strings.TrimSuffix(path, filepath.Ext(path)))
	if err != nil {
		return fmt.Errorf("model %s: %w", path, err)
	}
	name := stem
	if cfg.Name != "" {
		name = cfg.Name
	}
	if !ValidName(name) {
		return fmt.Errorf("model %s: name %q may hold only letters, digits, '.', '_' and '-' (set name: in %s.yaml)", path, name, stem)
	}
	v, err := newVersion(name, "1", path, cfg)
	if err != nil {
		return err
	}
	r.entries[name] = &Entry{Name: name, Versions: []*Version{v}}
	return nil
}

// sidecarConfig reads <base>.yaml, .yml or .json if one exists.
func sidecarConfig(base string) (Config, error) {
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		p := base + ext
		if _, err := os.Stat(p); err == nil {
			c, err := ReadConfig(p)
			if err != nil {
				return c, fmt.Errorf("%s: %w", p, err)
			}
			return c, nil
		}
	}
	return Config{}, nil
}

func (r *Repository) scanFolder(root string) error {
	dirs, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("open model repository: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		if err := r.scanModel(filepath.Join(root, d.Name())); err != nil {
			r.problems = append(r.problems, err.Error())
			r.log.Error("skipping model folder", "path", filepath.Join(root, d.Name()), "error", err)
		}
	}
	return nil
}

func (r *Repository) scanModel(dir string) error {
	cfg, err := sidecarConfig(filepath.Join(dir, "config"))
	if err != nil {
		return err
	}
	name := filepath.Base(dir)
	if cfg.Name != "" {
		name = cfg.Name
	}
	if !ValidName(name) {
		return fmt.Errorf("model folder %s: name %q may hold only letters, digits, '.', '_' and '-'", dir, name)
	}
	if _, dup := r.entries[name]; dup {
		return fmt.Errorf("model folder %s: a model named %q exists already", dir, name)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var versions []*Version
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(e.Name(), 10, 63)
		if err != nil {
			continue // not a version folder
		}
		file, err := modelFile(filepath.Join(dir, e.Name()), cfg.Format)
		if err != nil {
			return err
		}
		v, err := newVersion(name, strconv.FormatUint(n, 10), file, cfg)
		if err != nil {
			return err
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 { // unversioned: the model file sits in the folder itself
		file, err := modelFile(dir, cfg.Format)
		if err != nil {
			return err
		}
		v, err := newVersion(name, "1", file, cfg)
		if err != nil {
			return err
		}
		versions = []*Version{v}
	}
	sort.Slice(versions, func(i, j int) bool {
		a, _ := strconv.ParseUint(versions[i].Version, 10, 64)
		b, _ := strconv.ParseUint(versions[j].Version, 10, 64)
		return a > b
	})
	r.entries[name] = &Entry{Name: name, Versions: versions}
	return nil
}

// modelFile finds the one model file in dir: a file whose extension a runtime claims
// (or any file named model.* when the format is configured).
func modelFile(dir, format string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := runtime.ForFile(p); err == nil {
			found = append(found, p)
		} else if format != "" && strings.HasPrefix(e.Name(), "model.") {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: no model file (known formats: %s)", dir, strings.Join(runtime.Formats(), ", "))
	case 1:
		return found[0], nil
	}
	for _, p := range found {
		if strings.HasPrefix(filepath.Base(p), "model.") {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: several model files (%s); name the one to serve model.<ext>", dir, strings.Join(baseNames(found), ", "))
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func newVersion(name, version, path string, cfg Config) (*Version, error) {
	format := cfg.Format
	if format == "" {
		rt, err := runtime.ForFile(path)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", path, err)
		}
		format = rt.Format
	} else if _, ok := runtime.Lookup(format); !ok {
		return nil, fmt.Errorf("model %s: unknown format %q (known: %s)", path, format, strings.Join(runtime.Formats(), ", "))
	}
	return &Version{Name: name, Version: version, Path: path, Format: format, Config: cfg, state: Unavailable}, nil
}

// Problems lists what was skipped while scanning, one line each.
func (r *Repository) Problems() []string { return r.problems }

// Names lists the served model names, sorted.
func (r *Repository) Names() []string { return r.names }

// Entry returns a model by name.
func (r *Repository) Entry(name string) (*Entry, bool) {
	e, ok := r.entries[name]
	return e, ok
}

// Get returns a version of a model: the given one, or the newest ready one when
// version is empty.
func (r *Repository) Get(name, version string) (*Version, error) {
	e, ok := r.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if version == "" {
		for _, v := range e.Versions {
			if st, _ := v.Status(); st == Ready {
				return v, nil
			}
		}
		return e.Versions[0], nil // not ready: its status says why
	}
	for _, v := range e.Versions {
		if v.Version == version {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: %q version %q", ErrNotFound, name, version)
}

// LoadAll loads every version, `parallel` at a time, and returns when all are done.
// Failures are recorded on the version and logged; they do not stop the others.
func (r *Repository) LoadAll(ctx context.Context, parallel int) {
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, name := range r.names {
		for _, v := range r.entries[name].Versions {
			wg.Add(1)
			sem <- struct{}{}
			go func(v *Version) {
				defer func() { <-sem; wg.Done() }()
				r.load(ctx, v)
			}(v)
		}
	}
	wg.Wait()
}

func (r *Repository) load(ctx context.Context, v *Version) {
	v.mu.Lock()
	v.state, v.reason = Loading, ""
	v.mu.Unlock()

	start := time.Now()
	m, err := loadModel(ctx, v)
	d := time.Since(start)
	if r.OnLoad != nil {
		r.OnLoad(v.Name, v.Version, d, err)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.state, v.reason = Failed, err.Error()
		r.log.Error("model failed to load", "model", v.Name, "version", v.Version, "path", v.Path, "error", err)
		return
	}
	v.model, v.meta, v.state = m, m.Metadata(), Ready
	r.log.Info("model loaded", "model", v.Name, "version", v.Version, "format", v.Format,
		"path", v.Path, "inputs", len(v.meta.Inputs), "outputs", len(v.meta.Outputs), "duration", d.Round(time.Microsecond))
}

// loadModel runs the runtime's loader, turning a panic in it into an error: a bad
// file must never take the server down with it.
func loadModel(ctx context.Context, v *Version) (m model.Model, err error) {
	rt, ok := runtime.Lookup(v.Format)
	if !ok {
		return nil, fmt.Errorf("unknown format %q", v.Format)
	}
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("load %s: internal error in %s loader: %v", filepath.Base(v.Path), v.Format, p)
		}
	}()
	m, err = rt.Loader.Load(ctx, v.Path, runtime.Config{Name: v.Name, Features: v.Config.Features, Outputs: v.Config.Outputs})
	if err == nil && m == nil {
		err = fmt.Errorf("load %s: %s loader returned no model", filepath.Base(v.Path), v.Format)
	}
	return m, err
}

// Ready reports whether loading has finished with every model version ready. With
// strict false, it is enough that loading has finished and at least one model
// version is ready: a broken model is reported but does not take the others out
// of service.
func (r *Repository) Ready(strict bool) bool {
	anyReady := false
	for _, e := range r.entries {
		for _, v := range e.Versions {
			switch st, _ := v.Status(); st {
			case Ready:
				anyReady = true
			case Failed:
				if strict {
					return false
				}
			default:
				return false
			}
		}
	}
	return anyReady
}

// IndexEntry is one row of the repository index.
type IndexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   State  `json:"state"`
	Reason  string `json:"reason"`
}

// Index lists every model version with its state.
func (r *Repository) Index() []IndexEntry {
	var out []IndexEntry
	for _, n := range r.names {
		for _, v := range r.entries[n].Versions {
			st, why := v.Status()
			out = append(out, IndexEntry{Name: n, Version: v.Version, State: st, Reason: why})
		}
	}
	return out
}

// Close releases every loaded model that holds resources.
func (r *Repository) Close() {
	for _, e := range r.entries {
		for _, v := range e.Versions {
			v.mu.Lock()
			if c, ok := v.model.(model.Closer); ok {
				if err := c.Close(); err != nil {
					r.log.Warn("closing model", "model", v.Name, "version", v.Version, "error", err)
				}
			}
			v.model, v.state = nil, Unavailable
			v.mu.Unlock()
		}
	}
}
