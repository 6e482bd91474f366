package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFetch(t *testing.T) {
	body := []byte(strings.Repeat("model bytes ", 1000))
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/model.pkl":
			w.Write(body)
		case "/moved":
			http.Redirect(w, r, "/model.pkl", http.StatusFound)
		case "/huge":
			w.Header().Set("Content-Length", "100000000")
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := FetchOptions{SHA256: good, MaxBytes: 1 << 20, Timeout: 10 * time.Second}

	cases := []struct {
		name, url, sha, wantErr string
		max                     int64
	}{
		{name: "verified", url: "/model.pkl"},
		{name: "redirect followed", url: "/moved"},
		{name: "checksum mismatch", url: "/model.pkl", sha: strings.Repeat("0", 64), wantErr: "does not match"},
		{name: "not found", url: "/nope?token=secret", wantErr: "404 Not Found"},
		{name: "too large by header", url: "/huge", wantErr: "over --max-bytes"},
		{name: "too large by body", url: "/model.pkl", max: 100, wantErr: "over --max-bytes"},
		{name: "bad sha", url: "/model.pkl", sha: "ABC", wantErr: "64 lowercase hex"},
		{name: "bad scheme", url: "file:///etc/passwd", wantErr: "http:// or https://"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "model.pkl")
			o := opts
			if c.sha != "" {
				o.SHA256 = c.sha
			}
			if c.max != 0 {
				o.MaxBytes = c.max
			}
			u := c.url
			if strings.HasPrefix(u, "/") {
				u = srv.URL + u
			}
			err := Fetch(context.Background(), u, dest, o, log)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(dest)
				if err != nil || string(got) != string(body) {
					t.Fatalf("dest holds %d bytes (%v), want the body", len(got), err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error leaks the query or spans lines: %q", err)
				}
				if _, statErr := os.Stat(dest); statErr == nil {
					t.Fatal("a refused download left the destination file")
				}
			}
			// Nothing but the verified file is left behind.
			entries, _ := os.ReadDir(dir)
			if len(entries) > 1 || (len(entries) == 1 && entries[0].Name() != "model.pkl") {
				t.Fatalf("left behind: %v", entries)
			}
		})
	}
}
