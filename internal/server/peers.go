package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tideserve/tide/internal/monitor"
)

// Feedback between replicas. Each replica keeps the predictions it made, and a
// Service sends feedback to any of them, so with N replicas most items would
// find nothing where they land. With Options.FeedbackPeers set, the items a
// replica does not know are forwarded to its peers (a headless Service's name,
// resolved at each use, or a fixed list), and their answers are merged: the
// replica that made the prediction matches it. A forwarded request carries
// headerFeedbackForwarded and is not forwarded again, and is not counted where
// it lands: the replica the client called counts each item once.

const headerFeedbackForwarded = "X-Tide-Feedback-Forwarded"

// peerTimeout bounds one forward: feedback is not on a latency path, but a
// replica that hangs must not hold the client's request for long.
const peerTimeout = 3 * time.Second

type peerSet struct {
	targets []string // host:port, a DNS name resolved at each use or an address
	scheme  string
	client  *http.Client
	lookup  func(ctx context.Context, host string) ([]string, error)
}

func newPeerSet(spec string, tlsOn bool) *peerSet {
	if strings.TrimSpace(spec) == "" {
		return nil
	}
	p := &peerSet{scheme: "http", lookup: net.DefaultResolver.LookupHost}
	for _, t := range strings.Split(spec, ",") {
		if t = strings.TrimSpace(t); t != "" {
			p.targets = append(p.targets, t)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsOn {
		// Peers are dialled by address, and serve the Service's certificate:
		// verify it against the name the peers were given.
		p.scheme = "https"
		host, _, _ := net.SplitHostPort(p.targets[0])
		tr.TLSClientConfig = &tls.Config{ServerName: host}
	}
	p.client = &http.Client{Timeout: peerTimeout, Transport: tr}
	return p
}

// addrs resolves the targets to the peers' addresses now.
func (p *peerSet) addrs(ctx context.Context) []string {
	var out []string
	for _, t := range p.targets {
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			continue
		}
		if net.ParseIP(host) != nil {
			out = append(out, t)
			continue
		}
		ips, err := p.lookup(ctx, host)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	return out
}

// forwardedItem is an item as a peer reads it (the label as its class text).
type forwardedItem struct {
	ID    string   `json:"id"`
	Row   int      `json:"row,omitempty"`
	Label *string  `json:"label,omitempty"`
	Value *float64 `json:"value,omitempty"`
}

// resolve asks the peers about the items results marks unknown and fills in
// the first answer that is not unknown. Peers that fail or time out are
// skipped: their items stay unknown.
func (p *peerSet) resolve(r *http.Request, model string, items []monitor.Item, results []monitor.ItemResult) {
	var ask []forwardedItem
	var at []int
	for i, res := range results {
		if res.Status == monitor.FeedbackUnknown {
			it := items[i]
			ask = append(ask, forwardedItem{ID: it.ID, Row: it.Row, Label: it.Label, Value: it.Value})
			at = append(at, i)
		}
	}
	if len(ask) == 0 {
		return
	}
	body, err := json.Marshal(ask)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), peerTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range p.addrs(ctx) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers := p.ask(ctx, r, addr, model, body)
			if len(answers) != len(ask) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for j, a := range answers {
				if a.Status != monitor.FeedbackUnknown && results[at[j]].Status == monitor.FeedbackUnknown {
					results[at[j]] = monitor.ItemResult{ID: results[at[j]].ID, Row: results[at[j]].Row, Status: a.Status, Error: a.Error}
				}
			}
		}()
	}
	wg.Wait()
}

func (p *peerSet) ask(ctx context.Context, r *http.Request, addr, model string, body []byte) []monitor.ItemResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.scheme+"://"+addr+"/v2/models/"+model+"/feedback", bytes.NewReader(body))
	if err != nil {
		return nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerFeedbackForwarded, "1")
	for _, h := range []string{"Authorization", "X-Api-Key"} { // the caller's own key, to a replica of the same server
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var ans feedbackAnswer
	if json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&ans) != nil {
		return nil
	}
	return ans.Results
}
