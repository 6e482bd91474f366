package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"
)

// fetch is the init step of a Model whose source is a URL: the server image
// downloads the file itself, so a URL model needs no second image (no busybox, no
// shell), and nothing the checksum does not match is ever served.

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// FetchOptions bound one download.
type FetchOptions struct {
	SHA256   string        // required: 64 lowercase hex digits
	MaxBytes int64         // larger bodies are refused (0: unlimited)
	Timeout  time.Duration // the whole download, headers to last byte
	Progress time.Duration // how often a progress line is logged
}

// NewFetchCommand is `fetch --sha256 HEX URL DEST`.
func NewFetchCommand() *cobra.Command {
	o := FetchOptions{MaxBytes: 8 << 30, Timeout: 30 * time.Minute, Progress: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "fetch --sha256 HEX URL DEST",
		Short: "Download a model file over http(s), checked against its sha256 (the init step of a URL model)",
		Long: `Download URL to DEST, refusing it unless its sha256 is HEX. The file is written
beside DEST under a temporary name and renamed only once the checksum matches, so
DEST is either the whole, verified file or absent. Progress is logged every few
seconds; redirects are followed (at most 10); the size is bounded by --max-bytes.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := NewLogger("info", "json")
			if err != nil {
				return err
			}
			return Fetch(cmd.Context(), args[0], args[1], o, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.SHA256, "sha256", "", "expected sha256 of the file, 64 lowercase hex digits (required)")
	fl.Int64Var(&o.MaxBytes, "max-bytes", o.MaxBytes, "largest file accepted, in bytes (0: unlimited)")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "time the whole download may take")
	return cmd
}

// Fetch downloads rawURL to dest as FetchOptions says. Errors are one line and
// name the URL without its query (which may carry a token) or userinfo.
func Fetch(ctx context.Context, rawURL, dest string, o FetchOptions, log *slog.Logger) error {
	if !sha256Hex.MatchString(o.SHA256) {
		return errors.New("--sha256 must be 64 lowercase hex digits")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("fetch: the URL must be http:// or https:// with a host")
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %v", shown, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, query and all
		}
		return fmt.Errorf("fetch %s: %v", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: the server answered %s", shown, resp.Status)
	}
	if o.MaxBytes > 0 && resp.ContentLength > o.MaxBytes {
		return fmt.Errorf("fetch %s: %d bytes is over --max-bytes %d", shown, resp.ContentLength, o.MaxBytes)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".part-*")
	if err != nil {
		return fmt.Errorf("fetch: %v", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()

	sum := sha256.New()
	body := io.Reader(resp.Body)
	if o.MaxBytes > 0 {
		body = io.LimitReader(resp.Body, o.MaxBytes+1)
	}
	p := &progressWriter{log: log, url: shown, total: resp.ContentLength, every: o.Progress, last: time.Now(), start: time.Now()}
	n, err := io.Copy(io.MultiWriter(tmp, sum, p), body)
	if err != nil {
		return fmt.Errorf("fetch %s: after %d bytes: %v", shown, n, err)
	}
	if o.MaxBytes > 0 && n > o.MaxBytes {
		return fmt.Errorf("fetch %s: the body is over --max-bytes %d", shown, o.MaxBytes)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != o.SHA256 {
		return fmt.Errorf("fetch %s: sha256 %s does not match the expected %s; the file is not kept", shown, got, o.SHA256)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fetch: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fetch: %v", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("fetch: %v", err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("fetch: %v", err)
	}
	log.Info("fetched", "url", shown, "bytes", n, "sha256", o.SHA256, "seconds", time.Since(p.start).Seconds())
	return nil
}

// progressWriter logs how far a download is, at most once per every.
type progressWriter struct {
	log         *slog.Logger
	url         string
	total, done int64
	every       time.Duration
	last, start time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); p.every > 0 && now.Sub(p.last) >= p.every {
		p.last = now
		p.log.Info("fetching", "url", p.url, "bytes", p.done, "of", p.total)
	}
	return len(b), nil
}
