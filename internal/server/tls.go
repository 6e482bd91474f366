package server

// TLS for both front ends (HTTP and gRPC), from PEM files that are read again when
// they change.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// tlsConfig loads Options.TLSCertFile/TLSKeyFile, or returns nil when TLS is off.
// The files are read again when they change, so a rotated certificate (a
// Kubernetes Secret updated by cert-manager) takes effect without a restart.
func (s *Server) tlsConfig() (*tls.Config, error) {
	cert, key := s.opts.TLSCertFile, s.opts.TLSKeyFile
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, errors.New("TLS needs both a certificate and a key file (--tls-cert and --tls-key)")
	}
	r := &certReloader{certFile: cert, keyFile: key, interval: certCheckInterval, log: s.log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: r.get, MinVersion: tls.VersionTLS12}, nil
}

// certCheckInterval is how often, at most, a handshake looks at the files again.
const certCheckInterval = 10 * time.Second

// certReloader hands out the current key pair and reloads it when the files'
// size or modification time changes. A pair that fails to load (a rotation caught
// half-written) is logged and the previous one kept.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func (r *certReloader) fileStamp() string {
	var b strings.Builder
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

// load reads the pair; the caller holds mu or has not shared r yet.
func (r *certReloader) load() error {
	stamp := r.fileStamp()
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &pair, stamp
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		if r.fileStamp() != r.stamp {
			if err := r.load(); err != nil {
				r.log.Warn("TLS certificate changed but does not load; keeping the previous one", "error", err)
			} else {
				r.log.Info("TLS certificate reloaded", "cert", r.certFile)
			}
		}
	}
	return r.cert, nil
}
