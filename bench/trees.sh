#!/usr/bin/env bash
# Tree ensembles on batches, Tide beside the libraries that trained them, for
# docs/performance.md. Three models of 30 features (bench/trees.py gen): a
# RandomForest of 200 trees of depth 16, a HistGradientBoosting of 300
# iterations, an XGBoost of 300 trees of depth 8. Each round, on CPU 0 alone:
# sklearn's and xgboost's predict_proba on 1,000 rows with one thread, then
# Tide's Predict on the same rows (bench/trees), then Tide's one-row call. Then
# Tide with GOMAXPROCS=2 on both CPUs, on 256 and 1,000 rows, beside the same
# batch on one core. Prints medians over the rounds and the ratios.
#
#   bash bench/trees.sh [ROUNDS]        (default 5)
#
# BASE=<git revision> also times that revision's Tide, one row and 1,000 rows
# (the "no slower than before" check). TREES_DIR keeps the generated models
# between runs. REPEATS is how many batches each Tide figure is the median of
# (default 51: with 15, the two-CPU figures of a model came out up to half as
# good again as a minute later, the first calls of a process being its slowest).
# Needs /usr/bin/python3 with sklearn and xgboost, and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
repeats=${REPEATS:-51}
dir=${TREES_DIR:-$(mktemp -d)}
[ -f "$dir/xgb.json" ] || /usr/bin/python3 bench/trees.py gen "$dir"
go build -o "$dir/tide-trees" ./bench/trees
if [ -n "${BASE:-}" ]; then
  wt=$(mktemp -d)
  git worktree add -q --detach "$wt" "$BASE"
  trap 'git worktree remove --force "$wt"' EXIT
  mkdir -p "$wt/bench/trees" && cp bench/trees/main.go "$wt/bench/trees/"
  (cd "$wt" && go build -o "$dir/base-trees" ./bench/trees)
fi
raw="$dir/raw.txt"
: >"$raw"
echo "load before: $(uptime)"
for r in $(seq "$rounds"); do
  taskset -c 0 /usr/bin/python3 bench/trees.py time "$dir" 2>/dev/null | sed 's/^/library /' >>"$raw"
  taskset -c 0 "$dir/tide-trees" -dir "$dir" -procs 1 -repeats "$repeats" | sed 's/^/tide /' >>"$raw"
  [ -z "${BASE:-}" ] || taskset -c 0 "$dir/base-trees" -dir "$dir" -procs 1 -repeats "$repeats" | sed 's/^/before /' >>"$raw"
  taskset -c 0 "$dir/tide-trees" -dir "$dir" -procs 1 -rows 256 -repeats "$repeats" | grep -v -E '^(rf|hgb|xgb) 1 ' | sed 's/^/tide /' >>"$raw"
  for rows in 256 1000; do
    "$dir/tide-trees" -dir "$dir" -procs 2 -rows "$rows" -repeats "$repeats" | grep -v -E '^(rf|hgb|xgb) 1 ' | sed 's/^/tide-2cpu /' >>"$raw"
  done
  echo "round $r/$rounds" >&2
done
echo "load after:  $(uptime)"
awk '
  { key = $1 " " $2 " " $3; v[key] = v[key] " " $4; if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
  function median(s,   a, m, i, j, t) { m = split(s, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    print ""; print "medians (variant model rows: microseconds per call):"
    for (k = 1; k <= n; k++) { med[order[k]] = median(v[order[k]]); printf "  %-28s %10.1f\n", order[k], med[order[k]] / 1000 }
    print ""
    split("rf hgb xgb", models, " ")
    for (i = 1; i <= 3; i++) { m = models[i]
      printf "%-4s 1,000 rows, one core: library %.2f ms, Tide %.2f ms: %.2fx faster\n", m, med["library " m " 1000"] / 1e6, med["tide " m " 1000"] / 1e6, med["library " m " 1000"] / med["tide " m " 1000"]
      for (j = 0; j < 2; j++) { rows = j ? 1000 : 256
        printf "     %d rows, 2 CPUs against one core: %.2fx\n", rows, med["tide " m " " rows] / med["tide-2cpu " m " " rows] }
      if (("tide-2cpu " m " alone-120") in med) printf "     120 rows on one CPU: %.0f us alone, %.0f us while the other CPU runs a copy (%.2fx as long)\n", med["tide-2cpu " m " alone-120"] / 1000, med["tide-2cpu " m " together-120"] / 1000, med["tide-2cpu " m " together-120"] / med["tide-2cpu " m " alone-120"]
      printf "     one row: %.1f us", med["tide " m " 1"] / 1000
      if (("before " m " 1") in med) printf " (before: %.1f us, %.2fx; 1,000 rows before: %.2f ms)", med["before " m " 1"] / 1000, med["before " m " 1"] / med["tide " m " 1"], med["before " m " 1000"] / 1e6
      printf "\n" }
    if (("tide-2cpu wake 1") in med) printf "a goroutine started on the idle second CPU runs after %.0f us (median)\n", med["tide-2cpu wake 1"] / 1000 }' "$raw"
echo "raw results: $raw"
