#!/usr/bin/env bash
# gen-operator.sh - regenerate what the operator's Go types and markers define:
# api/v1alpha1's deepcopy functions, the Model CRD (the chart's crds/), the
# operator's ClusterRole rules (the chart's files/role.yaml), the plain
# `kubectl apply` bundle rendered from the chart, and docs/operator-spec.md.
# controller-gen is built from hack/tools/controller-gen (its own module, pinned).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/bin/tools
mkdir -p "$BIN"
(cd hack/tools/controller-gen && go build -o "$BIN/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen)
CHART=deploy/helm/tide-operator
"$BIN/controller-gen" object paths=./api/...
"$BIN/controller-gen" crd paths=./api/... output:crd:dir=$CHART/crds
"$BIN/controller-gen" rbac:roleName=tide-operator paths=./internal/controller/... output:rbac:dir=$CHART/files
go run ./hack/gen-operator
