#!/usr/bin/env bash
# ci-e2e.sh - the end-to-end stage of CI: install host packages, build (cached in
# /var/cache/tide-cluster), bring up the hermetic cluster with its add-ons, run
# `go test -tags e2e ./test/e2e/...` against it, and always tear it down and check that
# nothing was left behind. Prints progress and a timing summary.
#
# Environment: TIDE_CLUSTER_ADDONS (add-on set, see hack/cluster/cluster; CI runs them all),
#              TIDE_E2E_RUN (a -run pattern for the e2e tests), TIDE_E2E_TIMEOUT (default 60m),
#              TIDE_E2E_ARTIFACTS (where the tests keep their reports, plots and
#              timelines, and the run its log; default bin/e2e-artifacts, emptied each run)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=$ROOT/hack/cluster/cluster
SNAPSHOT=$(mktemp /tmp/tide-e2e-host.XXXXXX)
TIMES=()
T_ALL=$(date +%s)

# Every add-on the e2e tests use: CPU HPA (metrics-server), requests/s HPA (prometheus,
# prometheus-adapter), scale to zero (keda), the queue worker's brokers (nats, redis), NetworkPolicy
# (network-policies), the chart (helm), its Ingress and HTTPRoute (traefik).
export TIDE_CLUSTER_ADDONS=${TIDE_CLUSTER_ADDONS:-coredns metrics-server network-policies prometheus prometheus-adapter keda nats redis traefik helm}

log() { printf '[ci-e2e %4ds] %s\n' "$(( $(date +%s) - T_ALL ))" "$*"; }

# phase <name> <cmd...>: run one step, record its time; the first failure ends the run
# (the EXIT trap still tears the cluster down).
phase() {
  local name=$1; shift
  local t0 rc=0; t0=$(date +%s)
  log "== $name"
  "$@" || rc=$?
  TIMES+=("$(printf '%-14s %5ds  rc=%d' "$name" "$(( $(date +%s) - t0 ))" "$rc")")
  if [ $rc -ne 0 ]; then log "== $name FAILED (rc=$rc)"; exit $rc; fi
}

diagnose() {
  log "cluster state at failure:"
  "$CLUSTER" status 2>&1 | tail -60
  local f
  for f in /var/lib/tide-cluster/logs/*.log /var/lib/tide-cluster/logs/node2/*.log; do
    [ -f "$f" ] && { echo "--- tail $f"; tail -15 "$f"; }
  done
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  [ $rc -ne 0 ] && [ -f /var/lib/tide-cluster/pki/admin.kubeconfig ] && diagnose
  local t0; t0=$(date +%s)
  log "== down"
  "$CLUSTER" down --purge || rc=1
  TIMES+=("$(printf '%-14s %5ds' down "$(( $(date +%s) - t0 ))")")
  log "== check-clean"
  "$CLUSTER" check-clean "$SNAPSHOT" || { log "leftovers found after down"; rc=1; }
  rm -f "$SNAPSHOT" "$TIDE_IMAGE_TAR" "$ONNX_IMAGE_TAR" "$CLI_IMAGE_TAR" "$OPERATOR_IMAGE_TAR"
  log "timings:"; printf '  %s\n' "${TIMES[@]}"
  log "total $(( $(date +%s) - T_ALL ))s, exit $rc"
  exit $rc
}

# tide_image: the fraud example baked into Tide's own image, for the chart tests.
TIDE_IMAGE_TAR=/tmp/tide-e2e-fraud-v1.tar
tide_image() {
  (cd "$ROOT" && go run ./cmd/tide image build --model examples/fraud/model.pkl \
    --tag tide.local/tide:fraud-v1 --output "$TIDE_IMAGE_TAR") && "$CLUSTER" load-image "$TIDE_IMAGE_TAR"
}

# cli_image: the people's CLI (cmd/tide, with tide load) in an image, for the
# NetworkPolicy test's in-cluster clients; the fraud image carries only tide-server.
CLI_IMAGE_TAR=/tmp/tide-e2e-cli.tar
cli_image() {
  (cd "$ROOT" && go run ./cmd/tide image build --package ./cmd/tide \
    --tag tide.local/tide-cli:e2e --output "$CLI_IMAGE_TAR") && "$CLUSTER" load-image "$CLI_IMAGE_TAR"
}

# onnx_image: the test MLP in the cgo image with ONNX Runtime, for TestOnnxImageInferThroughService.
ONNX_IMAGE_TAR=/tmp/tide-e2e-onnx-mlp.tar
onnx_image() {
  bash "$ROOT/hack/install-onnxruntime.sh" &&
  (cd "$ROOT" && go run ./cmd/tide image build --model internal/formats/onnx/testdata/mlp.onnx \
    --onnxruntime-lib /usr/local/lib/tide/libonnxruntime.so.1.24.1 \
    --tag tide.local/tide:onnx-mlp --output "$ONNX_IMAGE_TAR") && "$CLUSTER" load-image "$ONNX_IMAGE_TAR"
}

# envtest_suite: the operator against a real kube-apiserver and etcd (internal/controller).
envtest_suite() {
  (cd "$ROOT" && TIDE_REQUIRE_ENVTEST=1 go test -count=1 -run 'TestEnv' ./internal/controller/)
}

# operator_image: the operator (cmd/tide-operator) in an image, for TestOperator.
OPERATOR_IMAGE_TAR=/tmp/tide-e2e-operator.tar
operator_image() {
  (cd "$ROOT" && go run ./cmd/tide image build --package ./cmd/tide-operator \
    --tag tide.local/tide-operator:e2e --output "$OPERATOR_IMAGE_TAR") && "$CLUSTER" load-image "$OPERATOR_IMAGE_TAR"
}

ARTIFACTS=${TIDE_E2E_ARTIFACTS:-$ROOT/bin/e2e-artifacts}
e2e_tests() {
  local kubeconfig; kubeconfig=$("$CLUSTER" kubeconfig) || return 1
  # The default folder is ours to empty; one given by the caller is only added to.
  if [ -z "${TIDE_E2E_ARTIFACTS:-}" ]; then rm -rf "$ARTIFACTS"; fi
  mkdir -p "$ARTIFACTS" || return 1
  (cd "$ROOT" && KUBECONFIG=$kubeconfig \
    TIDE_E2E_ARTIFACTS=$ARTIFACTS \
    TIDE_E2E_TIDE_IMAGE_TAR=$TIDE_IMAGE_TAR \
    TIDE_E2E_ONNX_IMAGE_TAR=$ONNX_IMAGE_TAR \
    TIDE_E2E_CLI_IMAGE_TAR=$CLI_IMAGE_TAR \
    TIDE_E2E_OPERATOR_IMAGE_TAR=$OPERATOR_IMAGE_TAR \
    TIDE_E2E_KUBECTL=${TIDE_CLUSTER_CACHE:-/var/cache/tide-cluster}/bin/kubectl \
    TIDE_E2E_HELM=${TIDE_CLUSTER_CACHE:-/var/cache/tide-cluster}/bin/helm \
    TIDE_E2E_HOST_REACHES_CLUSTER_IP=1 \
    TIDE_E2E_SECOND_NODE=$CLUSTER \
    go test -tags e2e -count=1 -v -timeout "${TIDE_E2E_TIMEOUT:-60m}" ${TIDE_E2E_RUN:+-run "$TIDE_E2E_RUN"} ./test/e2e/...) \
    2>&1 | tee "$ARTIFACTS/e2e.log"
  local rc=${PIPESTATUS[0]}
  # The counts come from the run (top-level tests; subtests are indented).
  log "e2e tests: $(grep -c '^--- PASS' "$ARTIFACTS/e2e.log") passed, $(grep -c '^--- FAIL' "$ARTIFACTS/e2e.log") failed, $(grep -c '^--- SKIP' "$ARTIFACTS/e2e.log") skipped"
  log "e2e artifacts (reports, plots, timelines, this log): $ARTIFACTS"
  return "$rc"
}

[ "$(id -u)" = 0 ] || { log "must run as root (the cluster runs host processes)"; exit 1; }
export PATH=/usr/local/go/bin:$PATH
phase deps "$CLUSTER" deps
# A run killed before its trap ran leaves a cluster behind: clear it before the snapshot.
if [ -d /run/tide-cluster ]; then phase stale-down "$CLUSTER" down --purge; fi
"$CLUSTER" snapshot >"$SNAPSHOT"
trap finish EXIT
trap 'exit 130' INT TERM
phase build "$CLUSTER" build
# The operator's envtest suite needs the kube-apiserver the build just made (a cold
# `make test` ran before it and skipped the suite); here it must run.
phase envtest envtest_suite
phase up env TIDE_CLUSTER_SKIP_BUILD=1 "$CLUSTER" up
phase tide-image tide_image
phase cli-image cli_image
phase onnx-image onnx_image
phase operator-image operator_image
phase e2e e2e_tests
