#!/usr/bin/env bash
# make demo: build tide-server and serve the tutorial's fraud model, named
# "fraud" (examples/ is a model repository: examples/fraud/model.pkl), on :8080
# (HTTP) and :8081 (gRPC).
#
# A cold build downloads Go modules for a few minutes. The terminal shows the
# phase and how long it has taken; everything the build prints goes to
# bin/demo-build.log, named (with its last lines) if the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bin
log=bin/demo-build.log
start=$(date +%s)
echo "[demo] building tide-server (the first build downloads Go modules and takes a few minutes; log: $log)"
$GO build -trimpath -tags "${SERVER_TAGS:-}" -ldflags "${LDFLAGS:-}" -o bin/tide-server ./cmd/tide-server >"$log" 2>&1 &
build=$!
while kill -0 "$build" 2>/dev/null; do
  sleep 1
  elapsed=$(( $(date +%s) - start ))
  if (( elapsed > 0 && elapsed % 15 == 0 )); then
    echo "[demo] still building: ${elapsed}s ($(grep -c '^go: downloading' "$log" || true) modules downloaded)"
  fi
done
if ! wait "$build"; then
  echo "[demo] the build failed after $(( $(date +%s) - start ))s; the full log is $log. Its last lines:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
echo "[demo] built in $(( $(date +%s) - start ))s; serving the fraud model (Ctrl-C stops it)"
exec ./bin/tide-server serve examples
