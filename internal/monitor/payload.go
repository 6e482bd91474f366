package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Payload logging sends sampled requests and their answers, as CloudEvents, to a
// JSON Lines file or an HTTP endpoint, through a bounded queue that never makes
// a request wait: when it is full the payload is dropped and counted.
//
// The events are KServe's payload logger's: types
// org.kubeflow.serving.inference.request and …response, the request id as the
// event id (so a request and its answer pair up), and the model in
// inferenceservicename, so a consumer written for KServe's logger reads them.

// CloudEvent types of a logged request and its response.
const (
	EventRequest  = "org.kubeflow.serving.inference.request"
	EventResponse = "org.kubeflow.serving.inference.response"
)

// Payload is one logged request and the answer it got.
type Payload struct {
	ID       string
	Model    string
	Version  string
	Endpoint string // the route: predict, infer, v1, grpc
	Time     time.Time
	Request  []byte
	Response []byte
	// ContentType of both bodies; JSON bodies are embedded as JSON, others
	// as base64.
	ContentType string
}

// PayloadHooks count what happens to payloads (all optional).
type PayloadHooks struct {
	Sent, Dropped, Failed func()
}

// PayloadLogger owns the queue and the one goroutine that writes it out.
type PayloadLogger struct {
	sink  payloadSink
	queue chan Payload
	hooks PayloadHooks
	done  chan struct{}
	once  sync.Once
}

type payloadSink interface {
	write(ctx context.Context, p *Payload) error
	flush() error
	close() error
}

// PayloadQueue is how many payloads may wait to be written.
const PayloadQueue = 1024

// NewPayloadLogger opens target: a file path or file:// URL (JSON Lines, one
// event per line, appended), or an http:// or https:// URL (each event POSTed
// in CloudEvents binary mode, as KServe's logger does).
func NewPayloadLogger(target string, hooks PayloadHooks) (*PayloadLogger, error) {
	var sink payloadSink
	switch {
	case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"):
		u, err := url.Parse(target)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("payload log %q: not a URL with a host", target)
		}
		sink = &httpSink{url: target, client: &http.Client{Timeout: 5 * time.Second}}
	default:
		path := strings.TrimPrefix(target, "file://")
		if path == "" {
			return nil, fmt.Errorf("payload log: no file or URL")
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("payload log: %w", err)
		}
		sink = &fileSink{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	}
	l := &PayloadLogger{sink: sink, queue: make(chan Payload, PayloadQueue), hooks: hooks, done: make(chan struct{})}
	go l.run()
	return l, nil
}

// SetHooks sets the counters; call it before the first Log.
func (l *PayloadLogger) SetHooks(h PayloadHooks) { l.hooks = h }

// Log queues p, or drops it when the queue is full. The bodies must not be
// changed afterwards (callers pass copies of pooled buffers).
func (l *PayloadLogger) Log(p Payload) {
	select {
	case l.queue <- p:
	default:
		if l.hooks.Dropped != nil {
			l.hooks.Dropped()
		}
	}
}

func (l *PayloadLogger) run() {
	defer close(l.done)
	ctx := context.Background()
	for p := range l.queue {
		err := l.sink.write(ctx, &p)
		if len(l.queue) == 0 && err == nil {
			err = l.sink.flush()
		}
		switch {
		case err != nil && l.hooks.Failed != nil:
			l.hooks.Failed()
		case err == nil && l.hooks.Sent != nil:
			l.hooks.Sent()
		}
	}
	l.sink.flush()
	l.sink.close()
}

// Close writes what is queued (waiting at most timeout) and closes the sink.
func (l *PayloadLogger) Close(timeout time.Duration) {
	l.once.Do(func() { close(l.queue) })
	select {
	case <-l.done:
	case <-time.After(timeout):
	}
}

// event is a structured-mode CloudEvent (one JSON Lines record).
type event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Service         string          `json:"inferenceservicename"`
	ModelVersion    string          `json:"modelversion,omitempty"`
	Endpoint        string          `json:"endpoint"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
}

func events(p *Payload) [2]event {
	var out [2]event
	for i, body := range [][]byte{p.Request, p.Response} {
		e := event{SpecVersion: "1.0", ID: p.ID, Type: EventRequest, Source: "/tide/models/" + p.Model,
			Time: p.Time.UTC().Format(time.RFC3339Nano), DataContentType: p.ContentType,
			Service: p.Model, ModelVersion: p.Version, Endpoint: p.Endpoint}
		if i == 1 {
			e.Type = EventResponse
		}
		if strings.HasPrefix(p.ContentType, "application/json") && json.Valid(body) {
			e.Data = body
		} else {
			e.DataBase64 = base64.StdEncoding.EncodeToString(body)
		}
		out[i] = e
	}
	return out
}

type fileSink struct {
	f *os.File
	w *bufio.Writer
}

func (s *fileSink) write(_ context.Context, p *Payload) error {
	for _, e := range events(p) {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		s.w.Write(b)
		if err := s.w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

func (s *fileSink) flush() error { return s.w.Flush() }
func (s *fileSink) close() error { return s.f.Close() }

type httpSink struct {
	url    string
	client *http.Client
}

// write POSTs the request and the response events in binary mode: the body is
// the payload, the attributes are Ce- headers.
func (s *httpSink) write(ctx context.Context, p *Payload) error {
	for _, e := range events(p) {
		body := p.Request
		if e.Type == EventResponse {
			body = p.Response
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		h := req.Header
		h.Set("Content-Type", p.ContentType)
		h.Set("Ce-Specversion", e.SpecVersion)
		h.Set("Ce-Id", e.ID)
		h.Set("Ce-Type", e.Type)
		h.Set("Ce-Source", e.Source)
		h.Set("Ce-Time", e.Time)
		h.Set("Ce-Inferenceservicename", e.Service)
		h.Set("Ce-Modelversion", e.ModelVersion)
		h.Set("Ce-Endpoint", e.Endpoint)
		resp, err := s.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("payload sink answered %d", resp.StatusCode)
		}
	}
	return nil
}

func (s *httpSink) flush() error { return nil }
func (s *httpSink) close() error { return nil }
