#!/usr/bin/env bash
# load-p99.sh — what loading a ~210 MB model does to a serving model's latency, in
# one run: tide-server serves the fraud model at a fixed open-loop rate while the
# big RandomForest is loaded through the repository API again and again, each load
# preceded by an idle window; prints each phase's percentiles and the p99 ratio
# (target ≤ 2×). Extra tide-server flags go in ARGS.
# Results go to stdout and bench/load-p99-<UTC time>.md.
#
#   bash bench/load-p99.sh                 (needs Go and Debian's python3-sklearn)
#   RATE=1000 LOADS=8 bash bench/load-p99.sh
#   ARGS="--load-cpu-share 1" bash bench/load-p99.sh     (loads unpaced)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-500}
LOADS=${LOADS:-20}
WINDOW=${WINDOW:-3s}
ARGS=${ARGS:-}
work=$(mktemp -d /tmp/tide-load-p99.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=bench/load-p99-$(date -u +%Y%m%dT%H%M%SZ).md
step() { printf '== %s\n' "$*" >&2; }

step "building tide-server (static, as the image has it)"
CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags '-s -w' -o "$work/tide-server" ./cmd/tide-server
go build -o "$work/loadp99" ./bench/loadp99
step "writing the big forest: 800 trees of depth 16 (bench/gen_big_forest.py, 4 copies)"
/usr/bin/python3 bench/gen_big_forest.py "$work/forest.pkl" 4

step "measuring: $LOADS times $WINDOW idle then a load, at $RATE requests/s"
{
  echo "# Serving latency while a big model loads ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "Command: \`${ARGS:+ARGS=\"$ARGS\" }bash bench/load-p99.sh\` (commit $(git rev-parse --short HEAD)); the serving model is"
  echo "internal/server/testdata/fraud_logreg.joblib, the load generator runs on the same machine."
  echo
  "$work/loadp99" -tide "$work/tide-server" -small internal/server/testdata/fraud_logreg.joblib \
    -big "$work/forest.pkl" -rate "$RATE" -loads "$LOADS" -window "$WINDOW" -args "$ARGS"
} | tee "$out"
step "wrote $out"
