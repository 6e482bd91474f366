#!/usr/bin/env bash
# What answering from a queue costs against answering over HTTP, side by side in
# one run, for the tutorial's fraud model with the same batching
# (--max-batch-size 32 --max-queue-delay 2ms):
#   http   requests per server CPU-second on POST /predict at 32 connections (wrk);
#   queue  messages per worker CPU-second: tide serve --queue-url answering
#          MESSAGES /predict messages from NATS JetStream (each one fetched,
#          answered in process, its result published with the stream's ack,
#          then acked), published by tide load as fast as the stream takes them.
# ROUNDS rounds, each running both in turn; the server or worker is pinned to
# CPU 0, everything else (wrk; nats-server and tide load) to CPU 1. CPU is the
# server's user plus system time from /proc/PID/stat, from ready to the last
# answer. A JetStream publish is a round trip to a stream that writes to disk,
# so the queue's figure is also bounded by the broker on CPU 1: the figure
# that matters is the worker's CPU per message.
#
# Prints every measurement, medians and the ratio to http, to stdout and
# bench/queue-<UTC time>.md.
#
#   bash bench/queue.sh [ROUNDS] [SECONDS] [MESSAGES]     (default 5, 8, 40000)
#
# Needs wrk, taskset, python3 (free ports) and nats-server (hack/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
result=bench/queue-$(date -u +%Y%m%dT%H%M%SZ).md
exec > >(tee "$result") 2>&1
rounds=${1:-5}
secs=${2:-8}
messages=${3:-40000}
nats_server=${TIDE_NATS_SERVER:-${TIDE_CLUSTER_CACHE:-/var/cache/tide-cluster}/bin/nats-server}
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

echo "building tide-server and tide at $(git rev-parse --short HEAD)"
go build -trimpath -tags grpcnotrace -o "$out/tide-server" ./cmd/tide-server
go build -trimpath -o "$out/tide" ./cmd/tide
model=internal/server/testdata/fraud_logreg.joblib
batching=(--max-batch-size 32 --max-queue-delay 2ms)

cat >"$out/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"feature1": -0.5, "feature2": 1.2}'
wrk.headers["Content-Type"] = "application/json"
LUA

nats_port=$(free_port)
taskset -c 1 "$nats_server" -js -sd "$out/js" -a 127.0.0.1 -p "$nats_port" 2>"$out/nats.log" &
pids+=($!)
sleep 0.5

wait_ready() { for _ in $(seq 200); do curl -fs "http://127.0.0.1:$1/v2/health/ready" >/dev/null 2>&1 && return; sleep 0.05; done; echo "not ready" >&2; exit 1; }
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2}'; }

run_http() {
  local port; port=$(free_port)
  taskset -c 0 "$out/tide-server" serve --http-addr "127.0.0.1:$port" --grpc-addr "" --log-level warn "${batching[@]}" "$model" 2>>"$out/server.log" &
  local pid=$!; pids+=("$pid")
  wait_ready "$port"
  taskset -c 1 wrk -t1 -c32 -d1s -s "$out/post.lua" "http://127.0.0.1:$port/predict" >/dev/null # warm up
  local c0 c1 reqs
  c0=$(cpu_ns "$pid")
  reqs=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$out/post.lua" "http://127.0.0.1:$port/predict" | awk '/requests in/ {print $1}')
  c1=$(cpu_ns "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v r="$reqs" -v c=$((c1 - c0)) -v s="$secs" 'BEGIN {printf "http %.0f %.0f\n", r / (c / 1e9), r / s}' | tee -a "$out/raw.txt"
}

run_queue() { # ROUND: its own stream, so that each round starts empty
  local port stream=bench$1; port=$(free_port)
  taskset -c 0 "$out/tide-server" serve --http-addr "127.0.0.1:$port" --grpc-addr "" --log-level warn "${batching[@]}" \
    --queue-url "nats://127.0.0.1:$nats_port" --queue-stream "$stream" --queue-subject "$stream.requests" \
    --queue-results "$stream.results" --queue-dead-letters "$stream.dead" --queue-create-stream "$model" 2>>"$out/server.log" &
  local pid=$!; pids+=("$pid")
  wait_ready "$port"
  until [ -n "$(metric "$port" 'tide_queue_messages_total{result="ok"}')" ]; do sleep 0.05; done
  local c0 c1 t0 t1 done=0
  c0=$(cpu_ns "$pid"); t0=$(date +%s%N)
  taskset -c 1 "$out/tide" load -r 50000 -n "$messages" --max-in-flight 256 --template '{"feature1": -0.5, "feature2": 1.2}' \
    "nats://127.0.0.1:$nats_port/$stream.requests" >/dev/null 2>>"$out/load.log"
  while [ "${done%.*}" -lt "$messages" ]; do sleep 0.02; done=$(metric "$port" 'tide_queue_messages_total{result="ok"}'); done
  c1=$(cpu_ns "$pid"); t1=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v m="$messages" -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN {printf "queue %.0f %.0f\n", m / (c / 1e9), m / (t / 1e9)}' | tee -a "$out/raw.txt"
}

echo "load before: $(uptime)"
echo "variant per-server-CPU-s per-s"
for r in $(seq "$rounds"); do
  run_http
  run_queue "$r"
done
summarize_ratios http "$out/raw.txt"
echo
echo "load after: $(uptime)"
echo "commands: bash bench/queue.sh $rounds $secs $messages (tide-server pinned to CPU 0; wrk, nats-server and tide load to CPU 1)"
