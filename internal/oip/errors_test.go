package oip

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestErrorCodes: each HTTP status an Error carries has the gRPC code that means
// the same, so REST and gRPC refuse a request alike.
func TestErrorCodes(t *testing.T) {
	for _, c := range []struct {
		status int
		code   codes.Code
	}{
		{http.StatusOK, codes.OK},
		{http.StatusBadRequest, codes.InvalidArgument},
		{http.StatusUnprocessableEntity, codes.InvalidArgument},
		{http.StatusUnauthorized, codes.Unauthenticated},
		{http.StatusForbidden, codes.PermissionDenied},
		{http.StatusNotFound, codes.NotFound},
		{http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
		{http.StatusTooManyRequests, codes.ResourceExhausted},
		{499, codes.Canceled},
		{http.StatusInternalServerError, codes.Internal},
		{http.StatusNotImplemented, codes.Unimplemented},
		{http.StatusServiceUnavailable, codes.Unavailable},
		{http.StatusGatewayTimeout, codes.DeadlineExceeded},
		{http.StatusTeapot, codes.Internal}, // anything unlisted is the server's fault
	} {
		e := Errorf(c.status, "model %q: %d", "m", c.status)
		if e.Code() != c.code || GRPCCode(c.status) != c.code {
			t.Errorf("status %d: code %v, want %v", c.status, e.Code(), c.code)
		}
		if want := fmt.Sprintf("model %q: %d", "m", c.status); e.Error() != want {
			t.Errorf("message %q, want %q", e.Error(), want)
		}
		var got *Error
		if !errors.As(fmt.Errorf("wrapped: %w", e), &got) || got.Status != c.status {
			t.Errorf("status %d lost through wrapping", c.status)
		}
	}
}
