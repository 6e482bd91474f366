#!/usr/bin/env bash
# tide load against wrk as load generators: the same server (the Go floor,
# ../shared/baselines/floor.go, or tide-server with SERVER=tide) pinned to CPU 0,
# each generator pinned to CPU 1 with 32 connections for DURATION, ROUNDS
# interleaved rounds. The figure is requests per second of the generator's own
# CPU (user + system), and tide load's against wrk's in the same
# round. tide load runs as users run it: closed loop, every latency recorded,
# the live view off (no terminal).
#
#   bash bench/loadgen.sh [ROUNDS] [DURATION]     (default 3 rounds of 10s)
#
# BASE=<git revision> also runs that revision's tide load in every round (as
# tide-load-base), to compare generator engines side by side.
#
# Needs wrk and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-3}
dur=${2:-10}
dur=${dur%s}
server=${SERVER:-floor}
work=$(mktemp -d)
srv_pid=
wt=
cleanup() {
  [ -z "$srv_pid" ] || kill "$srv_pid" 2>/dev/null || true
  [ -z "$wt" ] || git worktree remove --force "$wt"
  rm -rf "$work"
}
trap cleanup EXIT
build_tools "$work"
if [ -n "${BASE:-}" ]; then
  wt=$(mktemp -d)
  git worktree add -q --detach "$wt" "$BASE"
  (cd "$wt" && go build -o "$work/tide-base" ./cmd/tide)
fi
port=$(free_port)
url="http://127.0.0.1:$port/predict"
case $server in
  tide) taskset -c 0 "$work/tide-server" serve --http-addr "127.0.0.1:$port" --grpc-addr 127.0.0.1:0 --log-level warn --watch=false examples/fraud/model.pkl & ;;
  *) taskset -c 0 "$work/floor/floor" -addr "127.0.0.1:$port" & ;;
esac
srv_pid=$!
for _ in $(seq 100); do curl -sf -XPOST -d "$body" "$url" >/dev/null && break; sleep 0.1; done

# measure NAME CMD...: runs CMD on CPU 1 and prints "NAME REQ_PER_CPU_S REQ_PER_S";
# its CPU is the user plus system time /usr/bin/time reports when it exits.
measure() {
  local name=$1; shift
  /usr/bin/time -f "%U %S" -o "$work/time.txt" taskset -c 1 "$@" >"$work/out.txt" 2>&1 || true
  local reqs
  case $name in
    wrk) reqs=$(awk '/requests in/ { print $1 }' "$work/out.txt") ;;
    *) reqs=$(awk '/^  \[2[0-9][0-9]\]/ { n += $2 } END { print n + 0 }' "$work/out.txt") ;;
  esac
  awk -v n="$name" -v r="$reqs" -v d="$dur" '{ c = $1 + $2 } END { printf "%s %.0f %.0f\n", n, r / c, r / d }' "$work/time.txt"
}

raw="$work/raw.txt"
echo "load before: $(uptime)"
echo "server: $server on CPU 0; generators on CPU 1, 32 connections, ${dur}s each"
for r in $(seq "$rounds"); do
  measure wrk wrk -t1 -c32 -d"${dur}s" -s "$work/post.lua" "$url" | tee -a "$raw"
  measure tide-load "$work/tide" load -c 32 -d "${dur}s" --body-file "$work/body.json" "$url" | tee -a "$raw"
  [ -z "${BASE:-}" ] || measure tide-load-base "$work/tide-base" load -c 32 -d "${dur}s" --body-file "$work/body.json" "$url" | tee -a "$raw"
done
echo "load after:  $(uptime)"
summarize_ratios wrk "$raw" | sed "s/server-CPU-s/generator-CPU-s/; s/server CPU-second/generator CPU-second/"
