//go:build tools

// Package prometheusadapter pins prometheus-adapter for the local test cluster; hack/cluster/cluster build
// compiles it from this module so the product's go.mod never carries its dependencies.
package prometheusadapter

import _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
