package repository

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tideserve/tide/internal/monitor"
)

// Config is a model's optional config file (config.yaml in a repository folder, or
// <stem>.yaml beside a single model file). Every field is optional.
type Config struct {
	// Name overrides the served name (default: the folder name or file stem).
	Name string `json:"name,omitempty"`
	// Format picks the runtime ("sklearn"); default: by file extension.
	Format string `json:"format,omitempty"`
	// Features names a tabular model's input columns, in order; used when the file
	// does not carry feature names itself.
	Features []string `json:"features,omitempty"`
	// Outputs renames the model's outputs, in order.
	Outputs []string `json:"outputs,omitempty"`
	// VersionPolicy picks which version folders are served (default: the latest one).
	VersionPolicy *VersionPolicy `json:"version_policy,omitempty"`
	// Batching sets this model's admission control and dynamic batching; unset
	// fields take the server's defaults (its --max-* flags).
	Batching *Batching `json:"batching,omitempty"`
	// Monitoring sets this model's drift, feedback and payload logging; a
	// profile beside the model turns monitoring on without it.
	Monitoring *Monitoring `json:"monitoring,omitempty"`
}

// Monitoring is the per-model monitoring section of a config file:
//
//	monitoring:
//	  enabled: true               # false: off, even with a profile beside the model
//	  profile: ref/profile.json   # default: profile.json beside the model file
//	  window: 1000                # drift over the last 1000 rows, or a duration: 10m
//	  min_rows: 100               # rows the window needs before statistics are shown
//	  features: 100               # profiled features monitored, at most
//	  payload_log_sample: 0.01    # share of requests sent to the server's --payload-log
//	  feedback:
//	    ttl: 1h                   # how long a prediction waits for its label
//	    max_rows: 100000          # prediction rows kept for feedback
//	    window: 1000              # labelled rows the rolling accuracy covers
//	    threshold: 0.5            # a binary classifier's decision threshold
type Monitoring struct {
	Enabled          *bool            `json:"enabled,omitempty"`
	Profile          string           `json:"profile,omitempty"`
	Window           string           `json:"window,omitempty"`
	MinRows          *int             `json:"min_rows,omitempty"`
	Features         *int             `json:"features,omitempty"`
	PayloadLogSample *float64         `json:"payload_log_sample,omitempty"`
	Feedback         *FeedbackSection `json:"feedback,omitempty"`
}

// FeedbackSection is monitoring.feedback in a config file.
type FeedbackSection struct {
	TTL       *Duration `json:"ttl,omitempty"`
	MaxRows   *int      `json:"max_rows,omitempty"`
	Window    *int      `json:"window,omitempty"`
	Threshold *float64  `json:"threshold,omitempty"`
}

// settings applies the section over the server's defaults.
func (m *Monitoring) settings(d monitor.Settings) (monitor.Settings, error) {
	s := d
	if m == nil {
		return s, nil
	}
	if m.Window != "" {
		w, err := monitor.ParseWindow(m.Window)
		if err != nil {
			return s, fmt.Errorf("config: monitoring.%w", err)
		}
		s.Window = w
	}
	if m.MinRows != nil {
		s.MinRows = *m.MinRows
	}
	if m.Features != nil {
		s.Features = *m.Features
	}
	if m.PayloadLogSample != nil {
		s.PayloadSample = *m.PayloadLogSample
	}
	if f := m.Feedback; f != nil {
		if f.TTL != nil {
			s.Feedback.TTL = time.Duration(*f.TTL)
		}
		if f.MaxRows != nil {
			s.Feedback.MaxRows = *f.MaxRows
		}
		if f.Window != nil {
			s.Feedback.Window = *f.Window
		}
		if f.Threshold != nil {
			s.Feedback.Threshold = *f.Threshold
		}
	}
	return s, nil
}

func (m *Monitoring) validate() error {
	if _, err := m.settings(monitor.DefaultSettings); err != nil {
		return err
	}
	for name, v := range map[string]*int{"min_rows": m.MinRows, "features": m.Features} {
		if v != nil && *v < 0 {
			return fmt.Errorf("config: monitoring.%s is negative", name)
		}
	}
	if p := m.PayloadLogSample; p != nil && !(*p >= 0 && *p <= 1) {
		return fmt.Errorf("config: monitoring.payload_log_sample %v: want a share from 0 to 1", *p)
	}
	if f := m.Feedback; f != nil {
		if f.TTL != nil && *f.TTL <= 0 {
			return fmt.Errorf("config: monitoring.feedback.ttl must be positive")
		}
		for name, v := range map[string]*int{"max_rows": f.MaxRows, "window": f.Window} {
			if v != nil && *v <= 0 {
				return fmt.Errorf("config: monitoring.feedback.%s must be positive", name)
			}
		}
		if t := f.Threshold; t != nil && !(*t > 0 && *t < 1) {
			return fmt.Errorf("config: monitoring.feedback.threshold %v: want a probability between 0 and 1", *t)
		}
	}
	return nil
}

// Batching is the per-model admission and batching section of a config file:
//
//	batching:
//	  max_batch_size: 32          # rows per model run; 0 or 1: no batching
//	  max_queue_delay: 2ms        # how long a request may wait for a batch to fill
//	  preferred_batch_sizes: [16, 32]
//	  max_inflight: 2             # model runs at once
//	  max_queue: 256              # requests waiting; one more is shed with 429
type Batching struct {
	MaxBatchSize        *int      `json:"max_batch_size,omitempty"`
	MaxQueueDelay       *Duration `json:"max_queue_delay,omitempty"`
	PreferredBatchSizes []int     `json:"preferred_batch_sizes,omitempty"`
	MaxInFlight         *int      `json:"max_inflight,omitempty"`
	MaxQueue            *int      `json:"max_queue,omitempty"`
}

// VersionPolicy selects versions, as Triton's does: exactly one field is set.
//
//	version_policy: {latest: 2}        # the two highest versions (default: latest 1)
//	version_policy: {all: true}        # every version folder
//	version_policy: {specific: [1, 3]} # these versions
type VersionPolicy struct {
	Latest   int      `json:"latest,omitempty"`
	All      bool     `json:"all,omitempty"`
	Specific []uint64 `json:"specific,omitempty"`
}

func (p *VersionPolicy) validate() error {
	set := 0
	if p.Latest != 0 {
		set++
	}
	if p.All {
		set++
	}
	if len(p.Specific) > 0 {
		set++
	}
	if set != 1 || p.Latest < 0 {
		return fmt.Errorf("config: version_policy needs exactly one of latest: N (N ≥ 1), all: true, specific: [versions]")
	}
	return nil
}

// selects reports whether the policy serves version v, given all versions on disk
// sorted newest first.
func (p *VersionPolicy) selects(v uint64, newestFirst []uint64) bool {
	switch {
	case p == nil:
		return len(newestFirst) > 0 && newestFirst[0] == v
	case p.All:
		return true
	case len(p.Specific) > 0:
		for _, s := range p.Specific {
			if s == v {
				return true
			}
		}
		return false
	}
	for i, x := range newestFirst {
		if i >= p.Latest {
			return false
		}
		if x == v {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written as "5ms" in config files.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"5ms\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// maxConfigBytes bounds what we read of a config file: it is a few lines.
const maxConfigBytes = 1 << 20

// ReadConfig parses a model config file (YAML or JSON), rejecting unknown fields so a
// typo is an error rather than a silently ignored setting.
func ReadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data)
}

// ParseConfig parses config file contents.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if len(data) > maxConfigBytes {
		return c, fmt.Errorf("config is %d bytes, more than the %d allowed", len(data), maxConfigBytes)
	}
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return c, fmt.Errorf("parse config: %s", oneLine(err.Error()))
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if c.Name != "" && !ValidName(c.Name) {
		return fmt.Errorf("config: name %q may hold only letters, digits, '.', '_' and '-'", c.Name)
	}
	seen := map[string]bool{}
	for _, f := range c.Features {
		if f == "" {
			return fmt.Errorf("config: empty feature name")
		}
		if seen[f] {
			return fmt.Errorf("config: feature %q listed twice", f)
		}
		seen[f] = true
	}
	if c.VersionPolicy != nil {
		if err := c.VersionPolicy.validate(); err != nil {
			return err
		}
	}
	if b := c.Batching; b != nil {
		for name, v := range map[string]*int{"max_batch_size": b.MaxBatchSize, "max_inflight": b.MaxInFlight, "max_queue": b.MaxQueue} {
			if v != nil && *v < 0 {
				return fmt.Errorf("config: batching.%s is negative", name)
			}
		}
		if b.MaxQueueDelay != nil && *b.MaxQueueDelay < 0 {
			return fmt.Errorf("config: batching.max_queue_delay is negative")
		}
	}
	for _, o := range c.Outputs {
		if o == "" {
			return fmt.Errorf("config: empty output name")
		}
	}
	if c.Monitoring != nil {
		return c.Monitoring.validate()
	}
	return nil
}

// ValidName reports whether s can be a model name in a URL path segment.
func ValidName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
