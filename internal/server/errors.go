package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tideserve/tide/internal/batcher"
	"github.com/tideserve/tide/internal/jsonwire"
	"github.com/tideserve/tide/internal/model"
	"github.com/tideserve/tide/internal/oip"
	"github.com/tideserve/tide/internal/repository"
	"github.com/tideserve/tide/internal/tracing"
)

// statusOf maps an error from any layer to the HTTP status that fits it. Anything
// not recognised is the server's fault: 500.
func statusOf(err error) int {
	var pe *oip.Error
	switch {
	case errors.As(err, &pe):
		return pe.Status
	case errors.Is(err, batcher.ErrOverloaded):
		return http.StatusTooManyRequests
	case errors.Is(err, model.ErrInvalidInput), errors.Is(err, repository.ErrLoadFailed):
		return http.StatusUnprocessableEntity
	case errors.Is(err, repository.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, repository.ErrNotReady):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return 499 // client closed the request (nginx's convention); never seen by it
	}
	return http.StatusInternalServerError
}

// writeError answers {"error": msg}, the OIP error shape, used by every protocol.
func (s *Server) writeError(w http.ResponseWriter, status int, msg string) {
	b := make([]byte, 0, len(msg)+16)
	b = append(b, `{"error":`...)
	b = jsonwire.AppendString(b, msg)
	b = append(b, '}')
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSONBytes(w, status, b)
}

// fail answers err with its status, logging server-side failures, and returns the
// status for the request metrics.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) int {
	status := statusOf(err)
	msg := err.Error()
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err,
			"request_id", requestIDOf(w))
		if status == http.StatusInternalServerError {
			msg = "internal error: " + msg
		}
	}
	s.writeError(w, status, msg)
	return status
}

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	// Assigned, not Set: Set would allocate a one-element slice per answer.
	// net/http only reads header values.
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// jsonContentType is every JSON answer's Content-Type value, shared.
var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding response"}`, http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, status, b)
}

// record counts one finished request in the metrics; a traced request's trace id
// becomes the latency observation's exemplar, and its server span gets the model
// and protocol (known only once the handler has looked the model up).
func (s *Server) record(ctx context.Context, modelName, protocol string, status int, start time.Time) {
	traceID := ""
	if span := tracing.Recording(ctx); span != nil {
		span.SetAttributes(tracing.Protocol.String(protocol), tracing.Model.String(modelName))
		traceID = tracing.TraceID(ctx)
	}
	s.metrics.RecordRequest(modelName, protocol, status, time.Since(start), traceID)
}
