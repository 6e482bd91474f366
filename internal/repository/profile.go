package repository

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/monitor"
	"github.com/tideserve/tide/internal/serving"
)

// ProfileName is the reference profile's file name beside a model file in a
// repository folder; beside a single model file it is <stem>.profile.json.
const ProfileName = "profile.json"

// maxProfileBytes bounds what is read of a profile.
const maxProfileBytes = 16 << 20

// profilePath is where a version's profile is: the config's monitoring.profile
// (relative to the model file's folder), else profile.json beside the model
// file, else in the model's folder above a version folder (one profile for
// every version). "" when there is none.
func profilePath(modelFile string, single bool, cfg Config) string {
	dir := filepath.Dir(modelFile)
	if m := cfg.Monitoring; m != nil && m.Profile != "" {
		if filepath.IsAbs(m.Profile) {
			return m.Profile
		}
		return filepath.Join(dir, m.Profile)
	}
	var candidates []string
	if single {
		candidates = []string{strings.TrimSuffix(modelFile, filepath.Ext(modelFile)) + ".profile.json"}
	} else {
		candidates = []string{filepath.Join(dir, ProfileName)}
		if _, err := strconv.ParseUint(filepath.Base(dir), 10, 63); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(dir), ProfileName))
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// profileStamp is part of a version's stamp: a changed profile reloads the
// version, as a changed model file does.
func profileStamp(modelFile string, single bool, cfg Config) string {
	if p := profilePath(modelFile, single, cfg); p != "" {
		return "+profile:" + fileStamp(p)
	}
	return ""
}

// monitoring says how a loaded version is monitored: nil when it is not (no
// profile and no monitoring section, or enabled: false). A profile that cannot
// be read or does not fit the model leaves monitoring on without it (feedback
// still works) and says why: monitoring never stops a model from serving.
func (r *Repository) monitoring(name, version, modelFile string, cfg Config, md model.Metadata) *serving.Monitoring {
	if m := cfg.Monitoring; m != nil && m.Enabled != nil && !*m.Enabled {
		return nil
	}
	path := profilePath(modelFile, r.single, cfg)
	if path == "" && cfg.Monitoring == nil {
		return nil
	}
	defaults := monitor.DefaultSettings
	if r.opts.Monitoring != nil {
		defaults = *r.opts.Monitoring
	}
	settings, err := cfg.Monitoring.settings(defaults)
	if err != nil { // validated with the config; kept for safety
		settings = defaults
	}
	mo := &serving.Monitoring{Settings: settings}
	if path == "" {
		if cfg.Monitoring.Profile != "" {
			mo.ProfileError = fmt.Sprintf("profile %s: not found", filepath.Base(cfg.Monitoring.Profile))
		}
	} else if p, err := readProfile(path, md); err != nil {
		mo.ProfileError = publicMessage(r.rootForms, err.Error())
	} else {
		mo.Profile = p
	}
	if mo.ProfileError != "" {
		r.log.Error("model profile not used; drift is not measured", "model", name, "version", version, "error", mo.ProfileError)
	}
	return mo
}

func readProfile(path string, md model.Metadata) (*monitor.Profile, error) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profile %s: cannot be read", name)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() > maxProfileBytes {
		return nil, fmt.Errorf("profile %s: larger than %d bytes", name, maxProfileBytes)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("profile %s: cannot be read", name)
	}
	p, err := monitor.ParseProfile(data)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	if err := p.Validate(md); err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	return p, nil
}
