#!/usr/bin/env bash
# What the router costs, measured side by side in one run: the latency a client
# sees and the router's own CPU per request, for
#   direct   tide load straight at the stable tide-server (the Service);
#   before   through the activator built from BASE_REF, the last commit before it
#            became a router (it only held and forwarded);
#   router   through this tree's activator/router with no canary (everything to stable);
#   split50  through the router with a candidate at 50%: the candidate's answers
#            are mirrored to the stable version and compared (agreement);
#   shadow   through the router answering from stable and mirroring 100% to the
#            candidate, compared.
# Each round runs every variant in turn (the order rotating from round to round)
# for SECONDS at RATE requests/s, open loop
# (tide load measures from each request's intended send time). The two
# tide-servers are pinned to CPU 0; the router and tide load to CPU 1. The
# router's CPU time is its user plus system time from /proc/PID/stat. Prints
# every measurement, the medians, and each routed variant's added p50/p99
# against direct in the same round, to stdout and bench/router-<UTC time>.md.
#
#   bash bench/router.sh [ROUNDS] [SECONDS] [RATE]     (default 3, 10, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
result=bench/router-$(date -u +%Y%m%dT%H%M%SZ).md
exec > >(tee "$result") 2>&1
rounds=${1:-3}
secs=${2:-10}
rate=${3:-1000}
out=$(mktemp -d)
pids=()
base_ref=${BASE_REF:-664c4d0}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; git worktree remove --force "$out/base" >/dev/null 2>&1 || true; rm -rf "$out"; }
trap cleanup EXIT

echo "building tide-server at $base_ref (before the router) and at this tree, and tide"
git worktree add --detach "$out/base" "$base_ref" >/dev/null 2>&1
(cd "$out/base" && go build -trimpath -o "$out/tide-server-base" ./cmd/tide-server)
go build -trimpath -o "$out/tide-server" ./cmd/tide-server
go build -trimpath -o "$out/tide" ./cmd/tide
/usr/bin/python3 examples/fraud/train_candidates.py "$out" >/dev/null

stable=$(free_port); cand=$(free_port); front=$(free_port); ops=$(free_port); front0=$(free_port); ops0=$(free_port)
taskset -c 0 "$out/tide-server" serve --http-addr "127.0.0.1:$stable" --grpc-addr "127.0.0.1:$(free_port)" --log-level warn examples/fraud/model.pkl >"$out/stable.log" 2>&1 &
pids+=($!)
taskset -c 0 "$out/tide-server" serve --http-addr "127.0.0.1:$cand" --grpc-addr "127.0.0.1:$(free_port)" --log-level warn "$out/model_v2.pkl" >"$out/cand.log" 2>&1 &
pids+=($!)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$out/token"
taskset -c 1 "$out/tide-server" activator --listen "127.0.0.1:$front" --metrics-addr "127.0.0.1:$ops" \
  --target "http://127.0.0.1:$stable" --control-token-file "$out/token" --log-level warn >"$out/router.log" 2>&1 &
router=$!
pids+=($router)
taskset -c 1 "$out/tide-server-base" activator --listen "127.0.0.1:$front0" --metrics-addr "127.0.0.1:$ops0" \
  --target "http://127.0.0.1:$stable" --log-level warn >"$out/router0.log" 2>&1 &
router0=$!
pids+=($router0)
for port in "$stable" "$cand"; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
done
for port in "$ops" "$ops0"; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done

route() { # ID WEIGHT SHADOW
  curl -fsS -X PUT -H "Authorization: Bearer $(cat "$out/token")" "http://127.0.0.1:$ops/v1/route" \
    -d "{\"id\":\"$1\",\"candidate\":\"http://127.0.0.1:$cand\",\"weight\":$2,\"shadow\":$3}" >/dev/null
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "each variant: tide load -r $rate -d ${secs}s on POST /predict, $rounds rounds"
echo
printf '%-8s %8s %8s %8s %12s %10s %10s\n' variant p50_ms p99_ms errors router_cpu_s req/cpu_s agreement
raw=$out/raw
for round in $(seq "$rounds"); do
  # Each round starts one variant later, so no variant always runs first or
  # right after another (the order alone moved the router's figure by 10-20%).
  order=(direct before router split50 shadow)
  for k in 0 1 2 3 4; do
    v=${order[$(( (k + round - 1) % 5 ))]}
    url="http://127.0.0.1:$front/predict"
    pid=$router
    case $v in
      direct) url="http://127.0.0.1:$stable/predict" ;;
      before) url="http://127.0.0.1:$front0/predict"; pid=$router0 ;;
      router) route "r$round-$v" 0 false ;;
      split50) route "r$round-$v" 50 false ;;
      shadow) route "r$round-$v" 100 true ;;
    esac
    before=$(cpu_ns "$pid")
    taskset -c 1 "$out/tide" load -r "$rate" -d "${secs}s" --report "$out/rep" \
      --template '{"feature1": {{rand -3 3}}, "feature2": {{rand -3 3}}}' "$url" >/dev/null 2>&1
    after=$(cpu_ns "$pid")
    sleep 0.5 # let the last mirrors land before the report is read
    agreement=-
    if [ "$v" != direct ] && [ "$v" != before ]; then
      agreement=$(curl -fs "http://127.0.0.1:$ops/v1/route" | python3 -c 'import json,sys; a=json.load(sys.stdin)["agreement"]; print("%.4f/%d" % (a["agreed"]/a["compared"], a["compared"]) if a["compared"] else "-")')
    fi
    python3 - "$out/rep/summary.json" "$v" "$before" "$after" "$agreement" <<'PY' | tee -a "$raw"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
cpu = (int(sys.argv[4]) - int(sys.argv[3])) / 1e9
v = sys.argv[2]
per = s["completed"] / cpu if v != "direct" and cpu > 0 else 0
print(f'{v:<8} {s["latency_ms"]["percentiles"]["50"]:8.3f} {s["latency_ms"]["percentiles"]["99"]:8.3f} {s["errors"]:8d} {cpu:12.2f} {per:10.0f} {sys.argv[5]:>10}')
PY
  done
done
echo
python3 - "$raw" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r[0], []).append(r)
print("median over the rounds:")
for v, rs in by.items():
    print(f"  {v:<8} p50 {st.median(float(r[1]) for r in rs):.3f} ms  p99 {st.median(float(r[2]) for r in rs):.3f} ms"
          + ("" if v == "direct" else f"  {st.median(float(r[5]) for r in rs):.0f} requests per router CPU-second"))
print()
print("added latency against direct in the same round (median of the rounds):")
n = len(by["direct"])
for v in ("before", "router", "split50", "shadow"):
    d50 = st.median(float(by[v][i][1]) - float(by["direct"][i][1]) for i in range(n))
    d99 = st.median(float(by[v][i][2]) - float(by["direct"][i][2]) for i in range(n))
    print(f"  {v:<8} +{d50:.3f} ms at p50, {d99:+.3f} ms at p99")
print()
print("router requests per CPU-second against before in the same round (median of the rounds' ratios, and their range):")
for v in ("router", "split50", "shadow"):
    q = sorted(float(by[v][i][5]) / float(by["before"][i][5]) for i in range(n))
    print(f"  {v:<8} {st.median(q):.3f}x (rounds {q[0]:.3f} to {q[-1]:.3f})")
PY
