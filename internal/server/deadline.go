package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tideserve/tide/internal/oip"
)

// requestTimeoutHeader carries a client's deadline for one request, as a Go
// duration ("250ms") or whole milliseconds ("250"). Queued work that can no longer
// finish in time ends with 504 without running.
const requestTimeoutHeader = "Request-Timeout"

// withRequestDeadline applies the Request-Timeout header to ctx.
func withRequestDeadline(r *http.Request) (context.Context, context.CancelFunc, error) {
	h := r.Header.Get(requestTimeoutHeader)
	if h == "" {
		return r.Context(), func() {}, nil
	}
	d, err := time.ParseDuration(h)
	if err != nil {
		ms, err2 := strconv.ParseUint(h, 10, 32)
		if err2 != nil {
			return nil, nil, &oip.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s header %q: want a duration such as 250ms", requestTimeoutHeader, h)}
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d <= 0 {
		return nil, nil, &oip.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s header %q: must be positive", requestTimeoutHeader, h)}
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}
