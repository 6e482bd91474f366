#!/usr/bin/env bash
# Dynamic batching figures for docs/performance.md: the in-process and HTTP batching
# benchmarks (internal/server/batching_bench_test.go), ROUNDS rounds, each round
# running every sub-benchmark once, so that batching off and on are measured side
# by side under the same load. Prints the median of each figure over the rounds
# and the batched/unbatched ratios, and the load average before and after.
#
#   bash bench/batching.sh [ROUNDS]        (default 3)
#
# N_ONNX and N_HTTP are the requests per run (default 400000 and 30000). A batched
# in-process run of 100000 requests lasts about 0.1 s, short enough for the
# process's start (threads, the first collections) to move its figure.
#
# Needs ONNX Runtime (hack/install-onnxruntime.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
n_onnx=${N_ONNX:-400000}
n_http=${N_HTTP:-30000}
out=$(mktemp -d)
go test -c -o "$out/server.test" ./internal/server
echo "load before: $(uptime)"
for r in $(seq "$rounds"); do
  for bench in ONNX:$n_onnx HTTP:$n_http; do
    (cd internal/server && "$out/server.test" -test.run '^$' -test.bench "^BenchmarkDynamicBatching${bench%%:*}\$" \
      -test.benchtime "${bench#*:}x") | grep '^Benchmark' >>"$out/raw.txt"
  done
done
echo "load after:  $(uptime)"
# One line per sub-benchmark: the median of every reported figure.
awk '
  { name = $1; sub(/-[0-9]+$/, "", name)
    for (i = 3; i < NF; i += 2) { key = name SUBSEP $(i+1); vals[key] = vals[key] " " $i; units[name] = units[name] (index(units[name], " " $(i+1) " ") ? "" : " " $(i+1) " ") }
    if (!(name in seen)) { seen[name] = 1; order[++count] = name } }
  function median(s,   a, m, i, j, t) { m = split(s, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    for (k = 1; k <= count; k++) { name = order[k]; line = name
      m = split(units[name], u, " ")
      for (i = 1; i <= m; i++) { med[name, u[i]] = median(vals[name SUBSEP u[i]]); line = line sprintf("  %s %s", med[name, u[i]], u[i]) }
      print line }
    print ""
    for (k = 1; k <= count; k++) { name = order[k]
      if (name ~ /batched-[0-9]+$/) { base = name; sub(/batched-[0-9]+$/, "unbatched", base)
        printf "%s: batched/unbatched req/s %.2fx", name, med[name, "req/s"] / med[base, "req/s"]
        if ((name, "req/srv-CPU-s") in med) printf ", req/srv-CPU-s %.2fx", med[name, "req/srv-CPU-s"] / med[base, "req/srv-CPU-s"]
        printf "\n" } } }' "$out/raw.txt"
echo "raw results: $out/raw.txt"
