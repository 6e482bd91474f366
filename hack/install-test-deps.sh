#!/usr/bin/env bash
# Installs what `make unit` needs beyond Go, on Debian: Prometheus (a real one is
# scraped in a test), the ONNX backend node tests (libonnx-testdata, the ONNX
# conformance suite), gcc (cgo, for ONNX Runtime) and python3-sklearn (the documented
# training step); then the pinned ONNX Runtime
# library (hack/install-onnxruntime.sh, from npm). Idempotent: quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v npm >/dev/null || need+=(npm)
dpkg -s libonnx-testdata >/dev/null 2>&1 || need+=(libonnx-testdata)
# docs/getting-started.md trains the tutorial's model (test/docs runs it).
/usr/bin/python3 -c 'import sklearn, joblib' 2>/dev/null || need+=(python3-sklearn)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
  # Debian starts the packaged service; the tests start their own instance.
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
bash hack/install-onnxruntime.sh
# helm, for the chart tests (lint, template): the harness pins and builds it from its
# Go module into its cache (a few minutes cold, a cache hit after).
# Into $TIDE_CLUSTER_CACHE like every other cluster binary.
cache=${TIDE_CLUSTER_CACHE:-/var/cache/tide-cluster}
if ! command -v helm >/dev/null && [ ! -x "$cache/bin/helm" ]; then
  echo "building helm (pinned in hack/cluster/modules/helm) into $cache/bin"
  mkdir -p "$cache/bin"
  (cd hack/cluster/modules/helm && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0" \
    -o "$cache/bin/helm" helm.sh/helm/v3/cmd/helm)
fi
echo "test dependencies present"
