# Shared by the bench scripts that compare server variants by requests per
# server CPU-second (source it: . bench/lib.sh).

# free_port: a loopback port nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# cpu_ns PID: user plus system time of PID so far, in nanoseconds (from
# /proc/PID/stat, which, unlike the threads' schedstat run time, includes the
# network interrupt work done on its behalf).
tck=$(getconf CLK_TCK)
cpu_ns() { awk -v t="$tck" '{printf "%.0f", ($14 + $15) * 1e9 / t}' /proc/"$1"/stat; }

# summarize_ratios BASE RAW: RAW has lines "VARIANT REQ_PER_CPU_S REQ_PER_S",
# every variant once per round, BASE first in each. Prints each variant's
# medians, and each against BASE in the same round: the median of the rounds'
# ratios and their range.
summarize_ratios() {
  awk -v base="$1" '
  $1 == base { round++ }
  { v[$1] = v[$1] " " $2; r[$1] = r[$1] " " $3; cpu[$1, round] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
  function median(s,   a, m, i, j, t) { m = split(s, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END { print ""; print "median over the rounds:"
    for (k = 1; k <= n; k++) { x = order[k]; printf "  %-6s %8.0f req/server-CPU-s  %8.0f req/s\n", x, median(v[x]), median(r[x]) }
    print ""; printf "each variant against %s in the same round (median of the rounds'"'"' ratios, and their range):\n", base
    for (k = 2; k <= n; k++) { x = order[k]; ratios = ""; lo = 1e9; hi = 0
      for (i = 1; i <= round; i++) { q = cpu[x, i] / cpu[base, i]; ratios = ratios " " q; if (q < lo) lo = q; if (q > hi) hi = q }
      q = median(ratios)
      printf "  %-6s / %s: %.3fx requests per server CPU-second (cost %.1f%%; rounds %.3f to %.3f)\n", x, base, q, 100 * (1 - q), lo, hi } }' "$2"
}

# build_tools DIR: builds tide-server, the tide CLI and the Go floor server
# (FLOOR_SRC, default ../shared/baselines/floor.go) into DIR (DIR/floor/floor),
# and writes the tutorial's /predict body as DIR/body.json and as wrk's
# DIR/post.lua. Sets $body to it.
build_tools() {
  local dir=$1
  go build -o "$dir/tide-server" ./cmd/tide-server
  go build -o "$dir/tide" ./cmd/tide
  mkdir -p "$dir/floor" && cp "${FLOOR_SRC:-../shared/baselines/floor.go}" "$dir/floor/floor.go"
  (cd "$dir/floor" && go mod init floor >/dev/null 2>&1 && go build -o floor .)
  body='{"feature1": 0.5, "feature2": -1.2}'
  printf '%s' "$body" >"$dir/body.json"
  cat >"$dir/post.lua" <<EOF
wrk.method = "POST"
wrk.body   = '$body'
wrk.headers["Content-Type"] = "application/json"
EOF
}
