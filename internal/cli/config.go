package cli

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// applyEnvAndFile fills every flag the user did not set on the command line from
// the environment (TIDE_HTTP_ADDR for --http-addr) or else from the YAML config
// file, so the precedence is flags > environment > file > defaults.
func applyEnvAndFile(fs *pflag.FlagSet, configFile string) error {
	if configFile == "" {
		configFile = os.Getenv("TIDE_CONFIG")
	}
	file := map[string]any{}
	if configFile != "" {
		data, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if file, err = parseConfigFile(data, fs); err != nil {
			return fmt.Errorf("config file %s: %w", configFile, err)
		}
	}
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || firstErr != nil {
			return
		}
		env := "TIDE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(settingString(v)); err != nil {
				firstErr = fmt.Errorf("config file %s: %q: %v", configFile, f.Name, err)
			}
		}
	})
	return firstErr
}

// parseConfigFile reads a flat YAML map of flag names to values and rejects keys
// that are not flags, so a typo is an error instead of a setting silently ignored.
func parseConfigFile(data []byte, fs *pflag.FlagSet) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a YAML map of settings: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	var unknown []string
	for k, v := range m {
		if fs.Lookup(k) == nil || k == "config" {
			unknown = append(unknown, k)
			continue
		}
		switch v.(type) {
		case map[string]any, []any, nil:
			return nil, fmt.Errorf("%q: want a single value", k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown settings: %s", strings.Join(unknown, ", "))
	}
	return m, nil
}

// settingString renders a YAML scalar as a flag value. YAML numbers arrive as
// float64; whole ones must not become "1.6777216e+07".
func settingString(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
