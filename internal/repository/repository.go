// Package repository finds models on disk, loads them through the runtime registry
// and keeps them current. A repository is a folder of models,
//
//	<root>/<name>/[<version>/]<model file>   plus an optional <root>/<name>/config.yaml
//
// or a single model file, served as a repository of one named after the file's stem.
// A model that fails to load is reported with its reason; the others keep serving.
// Refresh (run by Watch on every change on disk) loads new versions in the
// background and switches to them atomically once they are ready; requests already
// running finish on the model they started with (Acquire/Release), and a new version
// that fails to load leaves the old one serving, with the reason recorded.
package repository

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/loadmem"
	"github.com/tideserve/tide/internal/loadpace"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/serving"
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
	// ErrLoadFailed marks a load asked for through the API that the model's files
	// could not satisfy: the caller's request was well formed, the file is not
	// servable (422), and the server is fine.
	ErrLoadFailed = errors.New("model failed to load")
)

// Version is one model version.
type Version struct {
	Name    string
	Version string
	Path    string
	Format  string
	Config  Config

	mu      sync.RWMutex
	state   State
	reason  string
	current *serving.Model
	stamp   string // what the files on disk looked like when last loaded
	number  uint64 // Version as a number, for ordering
	// selected is whether the version policy serves this version now; a version
	// that is not keeps serving only until a selected one is ready.
	selected bool
}

// Status returns the version's state and, for a failed (re)load, why.
func (v *Version) Status() (State, string) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.state, v.reason
}

// Current returns the serving model without holding it: for its metadata and
// feature index, not for running it (see Acquire).
func (v *Version) Current() (*serving.Model, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.current == nil {
		if v.reason != "" {
			return nil, fmt.Errorf("%w: model %s version %s: %s", ErrNotReady, v.Name, v.Version, v.reason)
		}
		return nil, fmt.Errorf("%w: model %s version %s is %s", ErrNotReady, v.Name, v.Version, strings.ToLower(string(v.state)))
	}
	return v.current, nil
}

// Model returns the loaded model and its metadata, or ErrNotReady.
func (v *Version) Model() (model.Model, model.Metadata, error) {
	m, err := v.Current()
	if err != nil {
		return nil, model.Metadata{}, err
	}
	return m.Runtime, m.Meta, nil
}

// Acquire returns the serving model held for one request; call its Release when
// done. A reload meanwhile does not disturb it.
func (v *Version) Acquire() (*serving.Model, error) {
	v.mu.RLock()
	m := v.current
	if m != nil {
		// Held under the lock: a swap (write lock) cannot retire m unseen.
		m.Hold()
	}
	v.mu.RUnlock()
	if m == nil {
		_, err := v.Current()
		return nil, err
	}
	return m, nil
}

// Entry is a snapshot of one served model name with its versions, newest first.
type Entry struct {
	Name     string
	Versions []*Version
}

// VersionNames lists the versions a model's metadata names, newest first: every
// one but those that failed to load (the repository index shows those, with why).
func (e *Entry) VersionNames() []string {
	out := make([]string, 0, len(e.Versions))
	for _, v := range e.Versions {
		if st, _ := v.Status(); st != Failed {
			out = append(out, v.Version)
		}
	}
	return out
}

// modelDir is what a scan of the disk found for one model.
type modelDir struct {
	name     string
	config   Config
	versions map[string]string // version → model file
	stamps   map[string]string // version → file stamp
}

// entry is the live state of one model name.
type entry struct {
	name         string
	config       Config
	versions     map[string]*Version
	userUnloaded bool // unloaded through the API: stays unloaded until loaded again
}

// Repository is the set of models a server serves.
type Repository struct {
	root   string
	single bool
	// rootForms are the root's path forms that messages shown to clients have
	// cut (publicMessage).
	rootForms []string
	opts      Options
	log       *slog.Logger
	// serving makes the serving state of each loaded version (see ServeWith).
	serving *serving.Factory

	refreshMu sync.Mutex // one Refresh at a time
	mu        sync.RWMutex
	entries   map[string]*entry
	problems  []string
	loadSem   chan struct{}
}

// Open scans path (a model file or a repository folder) without loading anything.
func Open(path string, opts Options, log *slog.Logger) (*Repository, error) {
	if log == nil {
		log = slog.Default()
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open model repository: %w", err)
	}
	opts = opts.withDefaults()
	r := &Repository{root: path, single: !info.IsDir(), opts: opts, log: log, entries: map[string]*entry{},
		loadSem: make(chan struct{}, opts.LoadConcurrency), serving: &serving.Factory{Log: log}, rootForms: rootPrefixes(path)}
	found, problems, err := r.scan()
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("open model repository %s: no models found (expected <name>/[<version>/]<model file>)", path)
	}
	r.problems = problems
	r.reconcile(found, nil) // nothing is loaded yet, so nothing is replaced
	return r, nil
}

// ServeWith sets how loaded versions are served: the server's admission defaults
// and metrics. Call it before the first load; without it, versions serve with no
// limits and private metrics.
func (r *Repository) ServeWith(f *serving.Factory) { r.serving = f }

// scan reads the disk into the desired state.
func (r *Repository) scan() (map[string]*modelDir, []string, error) {
	found := map[string]*modelDir{}
	if r.single {
		md, err := scanFile(r.root, r.opts.Format)
		if err != nil {
			return nil, nil, err
		}
		found[md.name] = md
		return found, nil, nil
	}
	dirs, err := os.ReadDir(r.root)
	if err != nil {
		return nil, nil, fmt.Errorf("open model repository: %w", err)
	}
	sc := newScanner(r.root, r.opts.FollowSymlinksOutside)
	sc.defaultFormat = r.opts.Format
	var problems []string
	for _, d := range dirs {
		if strings.HasPrefix(d.Name(), ".") {
			continue
		}
		dir := filepath.Join(r.root, d.Name())
		if isDir, use := sc.entry(dir, d); !isDir || !use {
			continue
		}
		md, err := sc.model(dir)
		if err == nil {
			if _, dup := found[md.name]; dup {
				err = fmt.Errorf("model folder %s: a model named %q exists already", dir, md.name)
			}
		}
		if err != nil {
			problems = append(problems, publicMessage(r.rootForms, err.Error()))
			continue
		}
		found[md.name] = md
	}
	// Skipped symlinks come first: they often explain a model's problem below.
	return found, append(sc.skipped, problems...), nil
}

func scanFile(path, defaultFormat string) (*modelDir, error) {
	base := strings.TrimSuffix(path, filepath.Ext(path))
	stem := filepath.Base(base)
	// Only YAML beside a single file: a JSON file there is as likely a model
	// (XGBoost) or test data as a config.
	cfg, cfgStamp, err := sidecarConfig(base, ".yaml", ".yml")
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	if cfg.Format == "" {
		cfg.Format = defaultFormat
	}
	name := stem
	if cfg.Name != "" {
		name = cfg.Name
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("model %s: name %q may hold only letters, digits, '.', '_' and '-' (set name: in %s.yaml)", path, name, stem)
	}
	if _, err := formatOf(path, cfg); err != nil {
		return nil, err
	}
	return &modelDir{name: name, config: cfg, versions: map[string]string{"1": path},
		stamps: map[string]string{"1": fileStamp(path) + cfgStamp + profileStamp(path, true, cfg)}}, nil
}

// model reads one model folder.
func (sc *scanner) model(dir string) (*modelDir, error) {
	cfg, cfgStamp, err := sidecarConfig(filepath.Join(dir, "config"), ".yaml", ".yml", ".json")
	if err != nil {
		return nil, err
	}
	if cfg.Format == "" {
		cfg.Format = sc.defaultFormat
	}
	name := filepath.Base(dir)
	if cfg.Name != "" {
		name = cfg.Name
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("model folder %s: name %q may hold only letters, digits, '.', '_' and '-'", dir, name)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	md := &modelDir{name: name, config: cfg, versions: map[string]string{}, stamps: map[string]string{}}
	var all []uint64
	files := map[uint64]string{}
	for _, e := range entries {
		n, err := strconv.ParseUint(e.Name(), 10, 63)
		if err != nil {
			continue // not a version folder
		}
		if isDir, use := sc.entry(filepath.Join(dir, e.Name()), e); !isDir || !use {
			continue
		}
		file, err := sc.modelFile(filepath.Join(dir, e.Name()), cfg.Format)
		if err != nil {
			return nil, err
		}
		all = append(all, n)
		files[n] = file
	}
	if len(all) == 0 { // unversioned: the model file sits in the folder itself
		file, err := sc.modelFile(dir, cfg.Format)
		if err != nil {
			return nil, err
		}
		all, files[1] = []uint64{1}, file
	}
	sort.Slice(all, func(i, j int) bool { return all[i] > all[j] })
	for _, n := range all {
		if !cfg.VersionPolicy.selects(n, all) {
			continue
		}
		v := strconv.FormatUint(n, 10)
		if _, err := formatOf(files[n], cfg); err != nil {
			return nil, err
		}
		md.versions[v], md.stamps[v] = files[n], fileStamp(files[n])+cfgStamp+profileStamp(files[n], false, cfg)
	}
	if len(md.versions) == 0 {
		return nil, fmt.Errorf("model folder %s: the version policy selects none of the versions on disk", dir)
	}
	return md, nil
}

// fileStamp identifies a file's contents cheaply: size and modification time.
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d@%d", fi.Size(), fi.ModTime().UnixNano())
}

// sidecarConfig reads the first of <base><ext> that exists.
func sidecarConfig(base string, exts ...string) (Config, string, error) {
	for _, ext := range exts {
		p := base + ext
		if _, err := os.Stat(p); err == nil {
			c, err := ReadConfig(p)
			if err != nil {
				return c, "", fmt.Errorf("%s: %w", p, err)
			}
			return c, "+" + fileStamp(p), nil
		}
	}
	return Config{}, "", nil
}

// modelFile finds the one model file in dir: a file whose extension a runtime claims
// (or any file named model.* when the format is configured).
func (sc *scanner) modelFile(dir, format string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found, notes []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		_, err := formats.ForFile(p)
		candidate := err == nil || (format != "" && strings.HasPrefix(e.Name(), "model."))
		if !candidate {
			if n := formats.WhyUnclaimed(p); n != "" {
				notes = append(notes, n)
			}
			continue // not a model file, so never read (beyond the first bytes a runtime checks): no need to judge its link
		}
		if isDir, use := sc.entry(p, e); !isDir && use {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		msg := fmt.Sprintf("%s: no model file (known formats: %s)", dir, strings.Join(formats.Names(), ", "))
		if len(notes) > 0 {
			msg += "; " + strings.Join(notes, "; ")
		}
		return "", errors.New(msg)
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

func formatOf(path string, cfg Config) (string, error) {
	if cfg.Format != "" {
		if _, ok := formats.Lookup(cfg.Format); !ok {
			return "", fmt.Errorf("model %s: unknown format %q (known: %s)", path, cfg.Format, strings.Join(formats.Names(), ", "))
		}
		return cfg.Format, nil
	}
	rt, err := formats.ForFile(path)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	return rt.Format, nil
}

// reconcile makes the live state match found. It returns the versions that need a
// (re)load and those no longer selected, which keep serving until retireReplaced
// sees a selected version of their model ready. only, if not nil, limits the work
// to those model names.
func (r *Repository) reconcile(found map[string]*modelDir, only map[string]bool) (toLoad, replaced []*Version) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, e := range r.entries {
		if only != nil && !only[name] {
			continue
		}
		if _, ok := found[name]; !ok { // gone from disk
			for _, v := range e.versions {
				r.unloadVersion(v, "removed from the repository")
			}
			delete(r.entries, name)
			r.log.Info("model removed", "model", name)
		}
	}
	for name, md := range found {
		if only != nil && !only[name] {
			continue
		}
		e, ok := r.entries[name]
		if !ok {
			e = &entry{name: name, versions: map[string]*Version{}}
			r.entries[name] = e
		}
		configChanged := !reflect.DeepEqual(e.config, md.config)
		e.config = md.config
		if e.userUnloaded {
			continue
		}
		for ver, v := range e.versions {
			if _, keep := md.versions[ver]; !keep {
				v.selected = false
				if st, _ := v.Status(); st == Ready {
					replaced = append(replaced, v) // serves until its successor is ready
					continue
				}
				r.unloadVersion(v, "no longer selected")
				delete(e.versions, ver)
			}
		}
		for ver, path := range md.versions {
			format, _ := formatOf(path, md.config)
			v, ok := e.versions[ver]
			if !ok {
				n, _ := strconv.ParseUint(ver, 10, 64)
				v = &Version{Name: name, Version: ver, number: n, state: Unavailable}
				e.versions[ver] = v
			}
			v.selected = true
			v.mu.Lock()
			changed := !ok || configChanged || v.Path != path || v.stamp != md.stamps[ver] || (v.current == nil && v.state != Loading)
			if changed {
				v.Path, v.Format, v.Config, v.stamp = path, format, md.config, md.stamps[ver]
				if v.current == nil {
					v.state, v.reason = Loading, ""
				}
				toLoad = append(toLoad, v)
			}
			v.mu.Unlock()
		}
	}
	return toLoad, replaced
}

// retireReplaced unloads versions the policy no longer selects, once their model
// has a selected version ready: a new version that fails to load leaves the old one
// serving.
func (r *Repository) retireReplaced(replaced []*Version) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, old := range replaced {
		e, ok := r.entries[old.Name]
		if !ok || e.versions[old.Version] != old {
			continue
		}
		successor := false
		for ver, v := range e.versions {
			if st, _ := v.Status(); ver != old.Version && st == Ready && v.selected {
				successor = true
			}
		}
		if !successor {
			r.log.Warn("keeping a replaced version serving: no selected version of the model is ready", "model", old.Name, "version", old.Version)
			continue
		}
		r.unloadVersion(old, "replaced by a newer version")
		delete(e.versions, old.Version)
	}
}

// unloadVersion takes a version out of service (its model closes after its last use).
func (r *Repository) unloadVersion(v *Version, why string) {
	v.mu.Lock()
	old := v.current
	v.current, v.state, v.reason, v.stamp = nil, Unavailable, why, ""
	v.mu.Unlock()
	if old != nil {
		old.Retire()
		r.log.Info("model version unloaded", "model", v.Name, "version", v.Version, "reason", why)
	}
}

// loadAll loads versions, Options.LoadConcurrency at a time, and waits for them.
func (r *Repository) loadAll(ctx context.Context, versions []*Version) {
	var wg sync.WaitGroup
	for _, v := range versions {
		wg.Add(1)
		r.loadSem <- struct{}{}
		go func(v *Version) {
			defer func() { <-r.loadSem; wg.Done() }()
			// Decoding a big file is CPU work that must not slow the models
			// that serve meanwhile: the load runs on a thread of its own at a
			// lower priority, which ends with the goroutine.
			lowerPriority()
			r.load(ctx, v)
		}(v)
	}
	wg.Wait()
	if len(versions) > 0 {
		// A load (refused or not) decodes the whole file (a pickle's arrays, a JSON tree) into
		// buffers that are garbage once the runtime has built its compact model;
		// left to the GC's pace they would keep the peak as the process's
		// footprint for minutes. One forced collection per batch of loads (not per
		// model: a repository of many small models would pay one each at start-up)
		// returns them to the OS, on a lower-priority thread as the loads ran.
		done := make(chan struct{})
		go func() {
			defer close(done)
			lowerPriority()
			debug.FreeOSMemory()
		}()
		<-done
	}
}

// LoadAll loads every version the repository selected at Open.
func (r *Repository) LoadAll(ctx context.Context) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	r.mu.RLock()
	var all []*Version
	for _, e := range r.entries {
		for _, v := range e.versions {
			if st, _ := v.Status(); st == Loading || st == Unavailable {
				all = append(all, v)
			}
		}
	}
	r.mu.RUnlock()
	r.loadAll(ctx, all)
}

func (r *Repository) load(ctx context.Context, v *Version) {
	v.mu.RLock()
	path, format, cfg, stamp := v.Path, v.Format, v.Config, v.stamp
	v.mu.RUnlock()

	start := time.Now()
	var sm *serving.Model
	budget := loadmem.New(r.opts.LoadMemoryBudget)
	pace := loadpace.New(r.opts.LoadCPUShare)
	m, err := loadModel(ctx, v.Name, path, format, cfg, budget, pace)
	if err != nil {
		if errors.Is(err, loadmem.ErrExceeded) {
			err = fmt.Errorf("%w (the server's --load-memory-budget)", err)
		}
		err = errors.New(publicMessage(r.rootForms, err.Error()))
	}
	if err == nil {
		ov := overrides(cfg.Batching)
		if mo := r.monitoring(v.Name, v.Version, path, cfg, m.Metadata()); mo != nil {
			if ov == nil {
				ov = &serving.Overrides{}
			}
			ov.Monitoring = mo
		}
		sm, err = r.serving.New(v.Name, v.Version, m, ov)
	}
	d := time.Since(start)
	r.serving.ObserveLoad(v.Name, v.Version, d, err == nil)

	v.mu.Lock()
	if v.stamp != stamp || v.Path != path { // superseded while loading: drop this result
		v.mu.Unlock()
		if sm != nil {
			sm.Close()
		}
		return
	}
	old := v.current
	if err != nil {
		if old != nil {
			v.reason = "reload failed, still serving the previous load: " + err.Error()
		} else {
			v.state, v.reason = Failed, err.Error()
		}
		v.mu.Unlock()
		// The model keeps serving if this version's previous load does, or another
		// version of it is ready (a new version folder that failed to load).
		r.log.Error("model failed to load", "model", v.Name, "version", v.Version, "path", path, "error", err,
			"still_serving_previous", old != nil || r.otherVersionReady(v))
		return
	}
	v.current, v.state, v.reason = sm, Ready, ""
	v.mu.Unlock()
	if old != nil {
		old.Retire() // requests still running on it finish first
	}
	attrs := []any{"model", v.Name, "version", v.Version, "format", format, "path", path,
		"inputs", len(sm.Meta.Inputs), "outputs", len(sm.Meta.Outputs), "duration", d.Round(time.Microsecond), "reload", old != nil}
	if s, ok := m.(model.Sizer); ok && s.SizeBytes() > 0 {
		attrs = append(attrs, "bytes", s.SizeBytes())
	}
	r.log.Info("model loaded", attrs...)
}

// otherVersionReady reports whether a version of v's model other than v serves.
func (r *Repository) otherVersionReady(v *Version) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[v.Name]
	if !ok {
		return false
	}
	for _, o := range e.versions {
		if st, _ := o.Status(); o != v && st == Ready {
			return true
		}
	}
	return false
}

// overrides turns a config file's batching section into the serving layer's
// per-model admission overrides.
func overrides(b *Batching) *serving.Overrides {
	if b == nil {
		return nil
	}
	ov := &serving.Overrides{MaxInFlight: b.MaxInFlight, MaxQueue: b.MaxQueue, MaxBatchSize: b.MaxBatchSize, PreferredBatchSizes: b.PreferredBatchSizes}
	if b.MaxQueueDelay != nil {
		d := time.Duration(*b.MaxQueueDelay)
		ov.MaxQueueDelay = &d
	}
	return ov
}

// loadModel runs the runtime's loader, turning a panic in it into an error: a bad
// file must never take the server down with it.
func loadModel(ctx context.Context, name, path, format string, cfg Config, budget *loadmem.Budget, pace *loadpace.Pacer) (m model.Model, err error) {
	rt, ok := formats.Lookup(format)
	if !ok {
		return nil, fmt.Errorf("unknown format %q", format)
	}
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("load %s: internal error in %s loader: %v", filepath.Base(path), format, p)
		}
	}()
	m, err = rt.Loader.Load(ctx, path, formats.Config{Name: name, Features: cfg.Features, Outputs: cfg.Outputs, Memory: budget, CPU: pace})
	if err == nil && m == nil {
		err = fmt.Errorf("load %s: %s loader returned no model", filepath.Base(path), format)
	}
	return m, err
}

// Refresh rescans the disk and brings the served models in line: new models and
// versions load, changed files reload (the old load serves until the new one is
// ready, and keeps serving if it fails), removed ones unload. It waits for the
// loads it starts.
func (r *Repository) Refresh(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	found, problems, err := r.scan()
	if err != nil {
		return err
	}
	r.mu.Lock()
	known := map[string]bool{}
	for _, p := range r.problems {
		known[p] = true
	}
	r.problems = problems
	r.mu.Unlock()
	for _, p := range problems {
		if !known[p] { // new since the last scan (start-up's are logged by the server)
			r.log.Warn("repository problem", "problem", p)
		}
	}
	toLoad, replaced := r.reconcile(found, nil)
	r.loadAll(ctx, toLoad)
	r.retireReplaced(replaced)
	return nil
}

// LoadModel (the repository extension's load) loads or reloads one model from disk,
// also one unloaded through UnloadModel.
func (r *Repository) LoadModel(ctx context.Context, name string) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	found, _, err := r.scan()
	if err != nil {
		return err
	}
	md, ok := found[name]
	if !ok {
		return fmt.Errorf("%w: %q is not in the repository on disk", ErrNotFound, model.ShortName(name))
	}
	r.mu.Lock()
	if e, ok := r.entries[name]; ok {
		e.userUnloaded = false
		for _, v := range e.versions {
			v.mu.Lock()
			v.stamp = "" // force a fresh load
			v.mu.Unlock()
		}
	}
	r.mu.Unlock()
	toLoad, replaced := r.reconcile(map[string]*modelDir{name: md}, map[string]bool{name: true})
	r.loadAll(ctx, toLoad)
	r.retireReplaced(replaced)
	for _, v := range toLoad {
		if st, why := v.Status(); st != Ready {
			return fmt.Errorf("%w: %s version %s: %s", ErrLoadFailed, name, v.Version, why)
		}
	}
	return nil
}

// UnloadModel (the repository extension's unload) takes every version of a model
// out of service until LoadModel; requests running on it finish first.
func (r *Repository) UnloadModel(name string) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, model.ShortName(name))
	}
	e.userUnloaded = true
	for _, v := range e.versions {
		r.unloadVersion(v, "unloaded through the repository API")
	}
	return nil
}

// Problems lists what was skipped at the last scan, one line each.
func (r *Repository) Problems() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.problems...)
}

// Names lists the served model names, sorted.
func (r *Repository) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.entries))
	for n := range r.entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether the repository holds a model of this name (without the
// snapshot Entry makes: request metrics ask on every request).
func (r *Repository) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.entries[name]
	return ok
}

// Only returns the name of the repository's one model, or "" when it holds
// none or several. (The /predict route asks on every request; Names would
// allocate.)
func (r *Repository) Only() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.entries) != 1 {
		return ""
	}
	for n := range r.entries {
		return n
	}
	return ""
}

// Entry returns a snapshot of a model's versions, newest first.
func (r *Repository) Entry(name string) (*Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	if !ok {
		return nil, false
	}
	return &Entry{Name: name, Versions: sortedVersions(e)}, true
}

func sortedVersions(e *entry) []*Version {
	out := make([]*Version, 0, len(e.versions))
	for _, v := range e.versions {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.ParseUint(out[i].Version, 10, 64)
		b, _ := strconv.ParseUint(out[j].Version, 10, 64)
		return a > b
	})
	return out
}

// Get returns a version of a model: the given one, or the newest ready one when
// version is empty. It is on every request's path, so it allocates nothing when
// the model is there.
func (r *Repository) Get(name, version string) (*Version, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, model.ShortName(name))
	}
	if version != "" {
		if v, ok := e.versions[version]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%w: %q version %q", ErrNotFound, name, model.ShortName(version))
	}
	var newestReady, newest *Version
	for _, v := range e.versions {
		if newest == nil || v.number > newest.number {
			newest = v
		}
		if st, _ := v.Status(); st == Ready && (newestReady == nil || v.number > newestReady.number) {
			newestReady = v
		}
	}
	switch {
	case newestReady != nil:
		return newestReady, nil
	case newest != nil:
		return newest, nil // not ready: its status says why
	}
	return nil, fmt.Errorf("%w: model %s is unloaded", ErrNotReady, name)
}

// Ready reports whether every model version is ready. With strict false, it is
// enough that nothing is still loading and at least one version is ready: a broken
// model is reported but does not take the others out of service.
func (r *Repository) Ready(strict bool) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	anyReady := false
	for _, e := range r.entries {
		for _, v := range e.versions {
			switch st, _ := v.Status(); st {
			case Ready:
				anyReady = true
			case Failed, Unavailable:
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
	Version string `json:"version,omitempty"`
	State   State  `json:"state"`
	Reason  string `json:"reason"`
}

// Index lists every model version with its state; an unloaded model is one row.
func (r *Repository) Index() []IndexEntry {
	var out []IndexEntry
	for _, n := range r.Names() {
		e, ok := r.Entry(n)
		if !ok {
			continue
		}
		if len(e.Versions) == 0 {
			out = append(out, IndexEntry{Name: n, State: Unavailable, Reason: "unloaded"})
		}
		for _, v := range e.Versions {
			st, why := v.Status()
			out = append(out, IndexEntry{Name: n, Version: v.Version, State: st, Reason: why})
		}
	}
	return out
}

// Close takes every model out of service; each closes after its last use.
func (r *Repository) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		for _, v := range e.versions {
			r.unloadVersion(v, "server shutting down")
		}
	}
}
