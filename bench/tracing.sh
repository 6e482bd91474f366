#!/usr/bin/env bash
# What tracing costs, measured side by side in one run: requests per server
# CPU-second on the tutorial's POST /predict for
#   base  tide-server built from BASE_REF, the last commit before tracing existed;
#   off   this tree's tide-server, tracing compiled in but off (no OTEL_* set);
#   on1   this tree's tide-server exporting to a real Jaeger over OTLP/HTTP,
#         sampling 1% of requests (parentbased_traceidratio 0.01);
#   on100 the same sampling every request (for scale, not a target).
# ROUNDS rounds, each running every variant once in turn for SECONDS under wrk
# (16 connections); the server is pinned to CPU 0, wrk and Jaeger to CPU 1.
# Server CPU time is its user plus system time from /proc/PID/stat (which, unlike
# the threads' schedstat run time, includes the network interrupt work done on
# its behalf); the server is saturated, so it is also about the seconds run.
# Prints every measurement, the median per variant and the ratios to base, to
# stdout and bench/tracing-<UTC time>.md.
#
#   bash bench/tracing.sh [ROUNDS] [SECONDS]     (default 5 and 8)
#
# Needs wrk, taskset and the Jaeger that hack/install-test-deps.sh builds.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
result=bench/tracing-$(date -u +%Y%m%dT%H%M%SZ).md
exec > >(tee "$result") 2>&1
rounds=${1:-5}
secs=${2:-8}
base_ref=${BASE_REF:-c9a2d41}
jaeger=${TIDE_JAEGER:-${TIDE_CLUSTER_CACHE:-/var/cache/tide-cluster}/bin/jaeger}
model=internal/server/testdata/fraud_logreg.joblib
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; git worktree remove --force "$out/base" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "building tide-server at $base_ref (before tracing) and at this tree"
git worktree add --detach "$out/base" "$base_ref" >/dev/null 2>&1
(cd "$out/base" && go build -trimpath -tags grpcnotrace -o "$out/tide-server-base" ./cmd/tide-server)
go build -trimpath -tags grpcnotrace -o "$out/tide-server" ./cmd/tide-server

otlp=$(free_port); query=$(free_port); health=$(free_port)
cat >"$out/jaeger.yaml" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter]}}
  telemetry: {metrics: {level: none}}
extensions:
  healthcheckv2: {use_v2: true, http: {endpoint: "127.0.0.1:$health"}}
  jaeger_storage: {backends: {mem: {memory: {max_traces: 20000}}}}
  jaeger_query: {storage: {traces: mem}, http: {endpoint: "127.0.0.1:$query"}, grpc: {endpoint: "127.0.0.1:$(free_port)"}}
receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:$otlp"}}}}
processors: {batch: {}}
exporters: {jaeger_storage_exporter: {trace_storage: mem}}
YAML
taskset -c 1 "$jaeger" --config "file:$out/jaeger.yaml" >"$out/jaeger.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$health/status" >/dev/null 2>&1 && break; sleep 0.2; done

cat >"$out/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"feature1": 0.5, "feature2": -1.2}'
wrk.headers["Content-Type"] = "application/json"
LUA


run_variant() { # NAME BINARY [ENV...]
  local name=$1 bin=$2; shift 2
  local port; port=$(free_port)
  env "$@" taskset -c 0 "$bin" serve --http-addr "127.0.0.1:$port" --grpc-addr "" --log-level warn "$model" 2>>"$out/server-$name.log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.05; done
  taskset -c 1 wrk -t1 -c16 -d1s -s "$out/post.lua" "http://127.0.0.1:$port/predict" >/dev/null # warm up
  local c0 c1 reqs
  c0=$(cpu_ns "$pid")
  reqs=$(taskset -c 1 wrk -t1 -c16 -d"${secs}s" -s "$out/post.lua" "http://127.0.0.1:$port/predict" | awk '/requests in/ {print $1}')
  c1=$(cpu_ns "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v n="$name" -v r="$reqs" -v c=$((c1 - c0)) -v s="$secs" 'BEGIN {printf "%s %.0f %.0f\n", n, r / (c / 1e9), r / s}' | tee -a "$out/raw.txt"
}

on=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_TRACES_SAMPLER=parentbased_traceidratio)
echo "load before: $(uptime)"
echo "variant req/server-CPU-s req/s"
for r in $(seq "$rounds"); do
  run_variant base "$out/tide-server-base"
  run_variant off "$out/tide-server"
  run_variant on1 "$out/tide-server" "${on[@]}" OTEL_TRACES_SAMPLER_ARG=0.01
  run_variant on100 "$out/tide-server" "${on[@]}" OTEL_TRACES_SAMPLER_ARG=1
done
echo "load after:  $(uptime)"
exported=$(curl -fs "http://127.0.0.1:$query/api/services" || true)
echo "services that exported to Jaeger: $exported"
summarize_ratios base "$out/raw.txt"
