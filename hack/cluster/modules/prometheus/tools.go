//go:build tools

// Package prometheus pins Prometheus v3.16 (module version v0.316.0) for the local test
// cluster. Debian's Prometheus has no kubernetes_sd, so it is built here, with the build
// tags remove_all_sd,enable_kubernetes_sd: pods are discovered exactly as on a real
// cluster, and none of the cloud service-discovery code is compiled.
package prometheus

import _ "github.com/prometheus/prometheus/cmd/prometheus"
