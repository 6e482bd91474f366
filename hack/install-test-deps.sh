#!/usr/bin/env bash
# Installs what `make unit` needs beyond Go, on Debian: Prometheus (a real one is
# scraped in a test, and its promtool checks the chart's alert rules), Chromium (drives the /docs page), the ONNX backend node tests (libonnx-testdata, the ONNX
# conformance suite), gcc (cgo, for ONNX Runtime) and python3-sklearn (the documented
# training step); then the pinned ONNX Runtime
# library (hack/install-onnxruntime.sh, from npm), helm and Jaeger (built from their
# pinned Go modules). Idempotent: quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v npm >/dev/null || need+=(npm)
dpkg -s libonnx-testdata >/dev/null 2>&1 || need+=(libonnx-testdata)
# docs/getting-started.md trains the tutorial's model (test/docs runs it).
/usr/bin/python3 -c 'import sklearn, joblib' 2>/dev/null || need+=(python3-sklearn)
# A real browser drives the /docs page (test/integration/docs_browser_test.go).
command -v chromium >/dev/null || need+=(chromium)
# A real Redis: the queue worker's Redis Streams tests (test/integration/queue_test.go).
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
  # Debian starts the packaged service; the tests start their own instance.
  systemctl disable --now prometheus redis-server >/dev/null 2>&1 || true
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
# Jaeger, the tracing backend the tracing integration test exports to and reads
# back from: pinned in hack/tools/jaeger and built from its Go module like helm
# (about 10 minutes cold, a cache hit after).
jaeger_version=$(awk '$1 == "github.com/jaegertracing/jaeger" {print $2}' hack/tools/jaeger/go.mod)
if [ ! -x "$cache/bin/jaeger-$jaeger_version" ]; then
  echo "building jaeger $jaeger_version (pinned in hack/tools/jaeger) into $cache/bin; about 10 minutes cold"
  mkdir -p "$cache/bin"
  (cd hack/tools/jaeger && go build -trimpath -ldflags "-s -w" -o "$cache/bin/jaeger-$jaeger_version.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
  mv "$cache/bin/jaeger-$jaeger_version.tmp" "$cache/bin/jaeger-$jaeger_version"
fi
ln -sfn "jaeger-$jaeger_version" "$cache/bin/jaeger"
# nats-server with JetStream, the broker of the queue worker's NATS tests and of
# the cluster's queue add-on: pinned in hack/cluster/modules/nats-server (the cluster add-on nats builds the same), built like helm
# (about a minute cold).
nats_version=$(awk '$1 == "github.com/nats-io/nats-server/v2" {print $2}' hack/cluster/modules/nats-server/go.mod)
if [ ! -x "$cache/bin/nats-server-$nats_version" ]; then
  echo "building nats-server $nats_version (pinned in hack/cluster/modules/nats-server) into $cache/bin"
  mkdir -p "$cache/bin"
  # With the cluster harness's caches and flags, so that its nats add-on finds the
  # same build done (hack/cluster/lib/common.sh, build_module).
  (cd hack/cluster/modules/nats-server && GOCACHE="$cache/go-build" GOMODCACHE="$cache/gomod" GOFLAGS=-buildvcs=false \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache/bin/nats-server-$nats_version.tmp" github.com/nats-io/nats-server/v2)
  mv "$cache/bin/nats-server-$nats_version.tmp" "$cache/bin/nats-server-$nats_version"
fi
ln -sfn "nats-server-$nats_version" "$cache/bin/nats-server"
echo "test dependencies present"
