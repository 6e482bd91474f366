// Package model defines what every runtime implements: a loaded model that describes
// its inputs and outputs and predicts a batch of tensors. Nothing above this interface
// knows a file format; nothing below it knows a protocol.
package model

import (
	"context"
	"errors"
	"fmt"

	"github.com/tideserve/tide/internal/tensor"
)

// TensorSpec describes one input or output. A -1 in Shape is a variable dimension
// (the batch dimension, usually).
type TensorSpec struct {
	Name     string
	Datatype tensor.Datatype
	Shape    []int64
	// Unused marks an input whose values the model ignores (a column its
	// pipeline drops): it must be sent, in any datatype, as the model was
	// fitted with it.
	Unused bool
}

// Metadata is what a model says about itself.
type Metadata struct {
	// Platform names the runtime and format, e.g. "sklearn", "onnx".
	Platform string
	Inputs   []TensorSpec
	Outputs  []TensorSpec
	// Features names the columns of a tabular model, in order: of its single
	// 2-D input, or, when Inputs has one entry per feature (a model with
	// string columns), those inputs, named alike. The tutorial's /predict
	// endpoint maps JSON object keys onto these. Empty for models that are
	// not tabular.
	Features []string
}

// Model is a loaded, ready-to-serve model. Implementations must be safe for
// concurrent use: one Model serves every request.
type Model interface {
	Metadata() Metadata
	// Predict runs the model on inputs (validated against Metadata().Inputs by the
	// caller only for names; the model checks types and shapes) and returns every
	// output in Metadata().Outputs order. The first dimension of every tabular
	// input and output is the batch.
	Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// Sizer is implemented by models that know how many bytes their loaded
// parameters occupy (a forest's flattened trees, say). The repository logs it with
// each load, so that an operator can size a pod's memory, and the memory
// benchmarks compare the process's footprint with it.
type Sizer interface {
	SizeBytes() int64
}

// Closer is implemented by models that hold resources (native sessions, files)
// to release when the model is unloaded.
type Closer interface {
	Close() error
}

// ErrInvalidInput marks an error caused by the caller's input (wrong shape, wrong
// datatype, missing features). Protocol front ends answer it with 422 (REST) or
// INVALID_ARGUMENT (gRPC) rather than a server error.
var ErrInvalidInput = errors.New("invalid input")

// InvalidInputf returns an error that wraps ErrInvalidInput with a message that says
// what was wrong; the message alone is shown to the caller.
func InvalidInputf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrInvalidInput }

// ShortName is a value a client sent (a model, a version, a feature, a string
// category) as an error quotes it: such values can be anything a client sends
// (thousands of bytes in a gRPC model_name, which would then travel back whole
// in the status trailer), so at most 64 bytes.
func ShortName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
