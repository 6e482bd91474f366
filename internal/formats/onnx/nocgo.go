//go:build !cgo

package onnx

import (
	"fmt"

	"github.com/tideserve/tide/internal/formats"
	"github.com/tideserve/tide/internal/model"
)

// errNoCgo says why a static build cannot serve ONNX and what to do instead.
var errNoCgo = fmt.Errorf("this tide binary was built without cgo (CGO_ENABLED=0) and cannot call ONNX Runtime; "+
	"build with CGO_ENABLED=1 (go build ./cmd/tide) and install the library with hack/install-onnxruntime.sh "+
	"(ONNX Runtime %s)", LibraryVersion)

func loadModel(path string, cfg formats.Config) (model.Model, error) {
	return nil, fmt.Errorf("load %s: %w", path, errNoCgo)
}
