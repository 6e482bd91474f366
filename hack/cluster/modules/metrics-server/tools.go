//go:build tools

// Package metricsserver pins metrics-server for the local test cluster; hack/cluster/cluster build
// compiles it from this module so the product's go.mod never carries its dependencies.
package metricsserver

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
