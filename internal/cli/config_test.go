package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parseServe runs the serve command's flag handling without serving.
func parseServe(t *testing.T, args []string) (serveFlags, error) {
	t.Helper()
	var got serveFlags
	cmd := NewServeCommand("test")
	cmd.RunE = func(c *cobra.Command, a []string) error { return nil }
	cmd.SetArgs(append(args, "model.pkl"))
	cmd.SetOut(&strings.Builder{})
	cmd.SetErr(&strings.Builder{})
	var inner error
	cmd.PreRunE = func(c *cobra.Command, a []string) error {
		configFile, _ := c.Flags().GetString("config")
		inner = applyEnvAndFile(c.Flags(), configFile)
		got.httpAddr, _ = c.Flags().GetString("http-addr")
		got.logLevel, _ = c.Flags().GetString("log-level")
		got.opts.DrainTimeout, _ = c.Flags().GetDuration("drain-timeout")
		got.opts.MaxBodyBytes, _ = c.Flags().GetInt64("max-body-bytes")
		got.opts.StrictReadiness, _ = c.Flags().GetBool("strict-readiness")
		return inner
	}
	err := cmd.Execute()
	return got, err
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tide.yaml")
	os.WriteFile(file, []byte("http-addr: 127.0.0.1:7000\nlog-level: debug\ndrain-timeout: 45s\nmax-body-bytes: 16777216\nstrict-readiness: true\n"), 0o644)

	got, err := parseServe(t, []string{"--config", file})
	if err != nil {
		t.Fatal(err)
	}
	if got.httpAddr != "127.0.0.1:7000" || got.logLevel != "debug" || got.opts.DrainTimeout != 45*time.Second ||
		got.opts.MaxBodyBytes != 16777216 || !got.opts.StrictReadiness {
		t.Fatalf("file values not applied: %+v", got)
	}

	t.Setenv("TIDE_HTTP_ADDR", "127.0.0.1:8000")
	got, _ = parseServe(t, []string{"--config", file})
	if got.httpAddr != "127.0.0.1:8000" || got.logLevel != "debug" {
		t.Fatalf("environment should beat the file: %+v", got)
	}
	got, _ = parseServe(t, []string{"--config", file, "--http-addr", ":9000"})
	if got.httpAddr != ":9000" {
		t.Fatalf("flags should beat the environment: %+v", got)
	}
	t.Setenv("TIDE_CONFIG", file)
	got, _ = parseServe(t, nil)
	if got.logLevel != "debug" {
		t.Fatalf("TIDE_CONFIG not read: %+v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ file, env, err string }{
		{file: "http-adr: :1\n", err: "unknown settings: http-adr"},
		{file: "drain-timeout: soon\n", err: `"drain-timeout"`},
		{file: "http-addr: [a, b]\n", err: "want a single value"},
		{file: "- a\n", err: "not a YAML map"},
		{env: "TIDE_MAX_BODY_BYTES=lots", err: "TIDE_MAX_BODY_BYTES"},
	}
	for i, c := range cases {
		args := []string{}
		if c.file != "" {
			p := filepath.Join(dir, "c"+string(rune('a'+i))+".yaml")
			os.WriteFile(p, []byte(c.file), 0o644)
			args = append(args, "--config", p)
		}
		if c.env != "" {
			k, v, _ := strings.Cut(c.env, "=")
			t.Setenv(k, v)
		}
		_, err := parseServe(t, args)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q %q: %v, want %q", c.file, c.env, err, c.err)
		}
	}
}

// TestServeFormatFlag: --format names a known runtime or stops the server at
// start with one line naming the known ones; "auto" means by extension.
func TestServeFormatFlag(t *testing.T) {
	run := func(format string) error {
		cmd := NewServeCommand("test")
		cmd.SetArgs([]string{"--format", format, "--http-addr", "127.0.0.1:0", "--grpc-addr", "", "--log-level", "error", filepath.Join(t.TempDir(), "absent.pkl")})
		cmd.SetOut(&strings.Builder{})
		cmd.SetErr(&strings.Builder{})
		return cmd.Execute()
	}
	err := run("pytorch")
	if err == nil || !strings.Contains(err.Error(), `--format "pytorch": unknown format (known: `) || !strings.Contains(err.Error(), "sklearn") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unknown format: %v", err)
	}
	// Known formats get past the check (and fail later, on the absent model).
	for _, f := range []string{"auto", "sklearn", "xgboost", "lightgbm", "onnx"} {
		if err := run(f); err == nil || strings.Contains(err.Error(), "--format") {
			t.Errorf("--format %s: %v", f, err)
		}
	}
}
