package oip

import (
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Error is an answer other than success, the one error type every protocol front
// end (REST, gRPC, KServe v1) speaks: Status is the HTTP status that fits (400 for
// an unparsable request, 422 for a well-formed one the model cannot take, ...),
// Code the gRPC code that means the same, and Msg the one line the caller reads.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Code is the gRPC status code for e.Status.
func (e *Error) Code() codes.Code { return GRPCCode(e.Status) }

// Errorf makes an *Error with an HTTP status and a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return Errorf(http.StatusBadRequest, format, args...)
}

func unprocessable(format string, args ...any) error {
	return Errorf(http.StatusUnprocessableEntity, format, args...)
}

// GRPCCode maps an HTTP status to the gRPC code that means the same, so that a
// request refused over REST with a status is refused over gRPC with its code.
func GRPCCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusOK:
		return codes.OK
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case 499: // the client closed the request (nginx's convention)
		return codes.Canceled
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	}
	return codes.Internal
}
