#!/usr/bin/env bash
# Runs every fuzz target in the module for a fixed time each (default 20s).
# Usage: hack/fuzz.sh [DURATION]
set -euo pipefail
dur=${1:-20s}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' cmd internal test 2>/dev/null | xargs -n1 dirname | sort -u | while read -r pkg; do
  for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //'); do
    echo "== ./$pkg $fn ($dur)"
    go test "./$pkg" -run '^$' -fuzz "^${fn}\$" -fuzztime "$dur" -fuzzminimizetime 2s
  done
done
