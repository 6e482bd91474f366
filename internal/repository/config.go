package repository

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
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
	for _, o := range c.Outputs {
		if o == "" {
			return fmt.Errorf("config: empty output name")
		}
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
