//go:build tools

// Package helm pins the helm CLI (v3.22.0) for the local test cluster; the harness
// builds it from this module so chart installs can be tested without downloads.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
