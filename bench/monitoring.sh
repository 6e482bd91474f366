#!/usr/bin/env bash
# What model-quality monitoring costs, measured side by side in one run:
# requests per server CPU-second on the tutorial's POST /predict at 32
# connections (wrk) for
#   off   the fraud model without a profile (monitoring off, as before it existed);
#   on    the same model with a profile beside it from `tide profile`: drift of
#         both features and the prediction over a 1000-row window, and every
#         prediction kept for feedback (the default store of 100,000 rows);
#   log1  on, plus 1% of payloads logged as CloudEvents to a JSON Lines file.
# ROUNDS rounds, each running every variant once in turn for SECONDS; the server
# is pinned to CPU 0, wrk to CPU 1; server CPU is its user plus system time
# from /proc/PID/stat.
#
# Then a soak: SOAK_REQUESTS requests (default 10 million) at full speed through
# the "on" variant, its resident memory sampled every 10 s, so that a leak in the
# window, the feedback store or the id map shows as growth.
#
# Prints every measurement, medians, ratios to off and the RSS samples, to
# stdout and bench/monitoring-<UTC time>.md.
#
#   bash bench/monitoring.sh [ROUNDS] [SECONDS]     (default 5 and 8)
#
# Needs wrk, taskset and python3 (for free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
result=bench/monitoring-$(date -u +%Y%m%dT%H%M%SZ).md
exec > >(tee "$result") 2>&1
rounds=${1:-5}
secs=${2:-8}
soak=${SOAK_REQUESTS:-10000000}
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

echo "building tide-server and tide at $(git rev-parse --short HEAD)"
go build -trimpath -tags grpcnotrace -o "$out/tide-server" ./cmd/tide-server
go build -trimpath -o "$out/tide" ./cmd/tide

# Two repositories with the same model: one plain, one with a profile of 5000
# reference rows (feature1 around -1, feature2 around 1, as the tutorial's data).
mkdir -p "$out/off/fraud" "$out/on/fraud"
cp internal/server/testdata/fraud_logreg.joblib "$out/off/fraud/model.joblib"
cp internal/server/testdata/fraud_logreg.joblib "$out/on/fraud/model.joblib"
awk 'BEGIN { srand(7); print "feature1,feature2"
  for (i = 0; i < 5000; i++) { u = rand(); v = rand(); r = sqrt(-2 * log(1 - u)); printf "%.6f,%.6f\n", r * cos(6.283185307 * v) - 1, r * sin(6.283185307 * v) + 1 } }' >"$out/reference.csv"
"$out/tide" profile --model "$out/on/fraud" "$out/reference.csv" -o "$out/on/fraud/profile.json" 2>/dev/null

cat >"$out/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"feature1": -0.5, "feature2": 1.2}'
wrk.headers["Content-Type"] = "application/json"
LUA

start_server() { # REPO [FLAGS...]: starts it pinned to CPU 0, sets pid and port
  local repo=$1; shift
  port=$(free_port)
  taskset -c 0 "$out/tide-server" serve --http-addr "127.0.0.1:$port" --grpc-addr "" --log-level warn "$@" "$repo" 2>>"$out/server.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.05; done
}

run_variant() { # NAME REPO [FLAGS...]
  local name=$1; shift
  start_server "$@"
  taskset -c 1 wrk -t1 -c32 -d1s -s "$out/post.lua" "http://127.0.0.1:$port/predict" >/dev/null # warm up
  local c0 c1 reqs
  c0=$(cpu_ns "$pid")
  reqs=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$out/post.lua" "http://127.0.0.1:$port/predict" | awk '/requests in/ {print $1}')
  c1=$(cpu_ns "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v n="$name" -v r="$reqs" -v c=$((c1 - c0)) -v s="$secs" 'BEGIN {printf "%s %.0f %.0f\n", n, r / (c / 1e9), r / s}' | tee -a "$out/raw.txt"
}

echo "load before: $(uptime)"
echo "variant req/server-CPU-s req/s"
for r in $(seq "$rounds"); do
  run_variant off "$out/off"
  run_variant on "$out/on"
  run_variant log1 "$out/on" --payload-log "$out/payloads.jsonl" --payload-log-sample 0.01
done
echo "load after:  $(uptime)"
echo "payload events written: $(wc -l <"$out/payloads.jsonl")"
summarize_ratios off "$out/raw.txt"

echo
echo "soak: $soak requests through the monitored server (wrk -c32), RSS every 10 s"
start_server "$out/on"
rss() { awk '/VmRSS/ {print $2}' /proc/"$pid"/status; }
echo "seconds requests_so_far rss_kib"
(
  t0=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    n=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^tide_requests_total\{.*protocol="predict"/ {s += $2} END {printf "%.0f", s}')
    echo "$(( $(date +%s) - t0 )) $n $(rss)"
    sleep 10
  done
) >"$out/rss.txt" &
sampler=$!
done_reqs=0
while (( done_reqs < soak )); do
  got=$(taskset -c 1 wrk -t1 -c32 -d60s -s "$out/post.lua" "http://127.0.0.1:$port/predict" | awk '/requests in/ {print $1}')
  done_reqs=$(( done_reqs + got ))
done
sleep 11
kill "$sampler" 2>/dev/null || true
cat "$out/rss.txt"
curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^(tide_feedback_predictions_kept|tide_monitoring_window_rows)\{|^go_memstats_heap_inuse_bytes '
awk -v total="$done_reqs" '$2 + 0 > 0 { n++; rss[n] = $3; reqs[n] = $2 }
  END { if (n < 3) { print "too few samples"; exit }
    # Growth from the first sample past a million requests (the feedback store full) to the last.
    for (i = 1; i <= n && reqs[i] < 1000000; i++) ; if (i > n) i = 1
    max = 0; for (j = i; j <= n; j++) if (rss[j] > max) max = rss[j]
    printf "\nsoak: %.0f requests; RSS %d KiB after %.0f requests, %d KiB at the end (max %d KiB): %+.1f%%\n",
      total, rss[i], reqs[i], rss[n], max, 100 * (rss[n] - rss[i]) / rss[i] }' "$out/rss.txt"
