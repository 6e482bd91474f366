package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Outcome is what becomes of a message once answered.
type Outcome int

const (
	Answered Outcome = iota // a 2xx answer: published to the results, then acked
	Refused                 // the request itself is wrong (400, 404, 413, 422 …): dead-lettered, acked
	Passing                 // overload, a passed deadline, a server fault (429, 503, 504, 5xx): handed back
)

// Answer is the in-process answer to one message.
type Answer struct {
	Outcome Outcome
	Status  int
	Body    []byte
	Reason  string // the answer's one-line error, when not Answered
	Model   string // the model asked ("" for /predict's default)
}

// Answerer turns a message into an in-process request to the server's handler.
// An OIP v2 inference request (a JSON object with "inputs") goes to
// /v2/models/{model}/infer, anything else to /predict, the tutorial's contract,
// which the handler serves from the named model when a Tide-Model header is set.
type Answerer struct {
	Handler http.Handler
	// DefaultModel names the model an OIP request without Tide-Model asks
	// (--default-model, or the only one served); "" when there is none.
	DefaultModel func() string
	// Timeout is each message's deadline (0: none). A message that passes it
	// ends 504 and is handed back.
	Timeout time.Duration
}

// Answer asks the handler and classifies its answer.
func (a *Answerer) Answer(ctx context.Context, m *Message) Answer {
	model := m.Model
	path := "/predict"
	if IsOIP(m.Body) {
		if model == "" && a.DefaultModel != nil {
			model = a.DefaultModel()
		}
		if model == "" {
			return Answer{Outcome: Refused, Status: http.StatusNotFound, Model: model,
				Reason: "an OIP request needs a " + HeaderModel + " header when the server serves several models and no --default-model"}
		}
		path = "/v2/models/" + url.PathEscape(model) + "/infer"
	}
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(m.Body))
	if err != nil { // only a malformed path, and the model name is escaped
		return Answer{Outcome: Refused, Status: http.StatusBadRequest, Model: model, Reason: fmt.Sprintf("model name %q: %v", model, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", m.ID)
	if m.Model != "" {
		req.Header.Set(HeaderModel, m.Model)
	}
	rec := &recorder{header: http.Header{}}
	a.Handler.ServeHTTP(rec, req)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	ans := Answer{Status: status, Model: model, Body: rec.body.Bytes()}
	switch {
	case status >= 200 && status < 300:
		ans.Outcome = Answered
	case status == http.StatusTooManyRequests || status >= 500:
		ans.Outcome, ans.Reason = Passing, reasonOf(status, ans.Body)
	default:
		ans.Outcome, ans.Reason = Refused, reasonOf(status, ans.Body)
	}
	return ans
}

// IsOIP reports whether body is a JSON object with a top-level "inputs" key:
// an OIP v2 inference request rather than /predict's feature object or array.
func IsOIP(body []byte) bool {
	// Most bodies never name "inputs": those need no decoder.
	if !bytes.Contains(body, []byte(`"inputs"`)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	var skip json.RawMessage
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if key == "inputs" {
			return true
		}
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

// reasonOf is the error line of a Tide error body ({"error": "..."}), else the status.
func reasonOf(status int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Sprintf("%d: %s", status, oneLine(e.Error))
	}
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// recorder is the in-process response: the handler writes into memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
