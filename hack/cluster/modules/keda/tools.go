//go:build tools

// Package keda pins KEDA v2.21.0 (operator and metrics API server) for the local test
// cluster. The replace in go.mod is copied from KEDA's own go.mod: replaces of a
// dependency are ignored, so a wrapper module must repeat them.
package keda

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
