#!/usr/bin/env bash
# Tail latency of the tutorial's /predict at 128 connections, tide-server on one
# core (CPU 0) beside the bare Go floor server (../shared/baselines/floor.go) on
# the same core, the load on CPU 1: wrk (closed loop, 128 connections) and tide
# load -c 128, ROUNDS interleaved rounds of DURATION each. Prints each round's
# p50/p99 and requests/s, the medians, and tide-server's p99 against the floor's.
#
#   bash bench/tail.sh [ROUNDS] [DURATION]     (default 3 rounds of 10s)
#
# Needs wrk and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-3}
dur=${2:-10s}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
build_tools "$work"

start() { # NAME: starts that server on CPU 0 and waits until it answers
  local port; port=$(free_port)
  case $1 in
    tide) taskset -c 0 "$work/tide-server" serve --http-addr "127.0.0.1:$port" --grpc-addr 127.0.0.1:0 --log-level warn --watch=false examples/fraud/model.pkl & ;;
    floor) taskset -c 0 "$work/floor/floor" -addr "127.0.0.1:$port" & ;;
  esac
  pids+=($!)
  url="http://127.0.0.1:$port/predict"
  for _ in $(seq 100); do curl -sf -XPOST -d "$body" "$url" >/dev/null && return; sleep 0.1; done
  echo "$1 did not answer" >&2; exit 1
}

raw="$work/raw.txt"
echo "load before: $(uptime)"
for r in $(seq "$rounds"); do
  for server in tide floor; do
    start "$server"
    taskset -c 1 wrk -t1 -c128 -d"$dur" --latency -s "$work/post.lua" "$url" >"$work/wrk.txt"
    awk -v s="$server" '$1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 } $1 == "Requests/sec:" { rps = $2 }
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      END { printf "wrk %s %.3f %.3f %.0f\n", s, ms(p50), ms(p99), rps }' "$work/wrk.txt" | tee -a "$raw"
    taskset -c 1 "$work/tide" load -c 128 -d "$dur" --body-file "$work/body.json" "$url" 2>"$work/load.txt" >/dev/null || true
    awk -v s="$server" '/50% in/ { p50 = $3 * 1000 } /99% in/ && !/99.9/ { p99 = $3 * 1000 } /Requests\/sec/ { rps = $2 }
      END { printf "tide-load %s %.3f %.3f %.0f\n", s, p50, p99, rps }' "$work/load.txt" | tee -a "$raw"
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
  done
done
echo "load after:  $(uptime)"
awk '
  { key = $1 " " $2; p50[key] = p50[key] " " $3; p99[key] = p99[key] " " $4; rps[key] = rps[key] " " $5; if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
  function median(s,   a, m, i, j, t) { m = split(s, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END { print ""; print "medians (client server: p50 ms, p99 ms, requests/s):"
    for (k = 1; k <= n; k++) { x = order[k]; m99[x] = median(p99[x]); printf "  %-16s %7.2f %7.2f %8.0f\n", x, median(p50[x]), m99[x], median(rps[x]) }
    print ""
    split("wrk tide-load", clients, " ")
    for (i = 1; i <= 2; i++) { c = clients[i]
      printf "%s: tide-server p99 %.2f ms at 128 connections on one core (floor %.2f ms, %.2fx)\n", c, m99[c " tide"], m99[c " floor"], m99[c " tide"] / m99[c " floor"] } }' "$raw"
