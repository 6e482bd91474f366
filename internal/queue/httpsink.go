package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HTTPResults sends results to an HTTP endpoint instead of the broker: each
// is POSTed with its headers (Tide-Request-Id, Tide-Status, Tide-Model), and
// only a 2xx answer counts as published, so a sink that is down makes the
// worker hand the requests back rather than ack them. Dead letters and
// everything else stay with the broker.
type HTTPResults struct {
	Broker
	URL    string
	Client *http.Client
}

// NewHTTPResults wraps b; rawURL must be an http(s) URL.
func NewHTTPResults(b Broker, rawURL string) (*HTTPResults, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("results sink %s: want an http:// or https:// URL", Redact(rawURL))
	}
	return &HTTPResults{Broker: b, URL: rawURL, Client: &http.Client{Timeout: 10 * time.Second}}, nil
}

func (h *HTTPResults) Publish(ctx context.Context, to Destination, out Outgoing) error {
	if to != Results {
		return h.Broker.Publish(ctx, to, out)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(out.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, out.ID)
	req.Header.Set(HeaderStatus, strconv.Itoa(out.Status))
	if out.Model != "" {
		req.Header.Set(HeaderModel, out.Model)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("results sink: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("results sink answered %s", resp.Status)
	}
	return nil
}
