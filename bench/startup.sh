#!/usr/bin/env bash
# startup.sh — the production binary's size, start-up and memory beside the bare Go
# floor server, in one run: stripped binary sizes (tide-server vs the tide CLI), the
# fraud image's compressed size, exec-to-first-/predict over 20 interleaved start-ups,
# idle RSS, and RSS after loading a 56 MB RandomForest pickle against the bytes its
# flattened trees occupy. Results go to stdout and bench/startup-<UTC time>.md.
#
#   bash bench/startup.sh            (needs Go; the forest needs Debian's python3-sklearn)
#   RUNS=40 FOREST=0 bash bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
FOREST=${FOREST:-1}
work=$(mktemp -d /tmp/tide-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=bench/startup-$(date -u +%Y%m%dT%H%M%SZ).md
step() { printf '== %s\n' "$*" >&2; }

step "building tide-server (static, as the image has it), the tide CLI and the Go floor"
CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags '-s -w' -o "$work/tide-server" ./cmd/tide-server
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/tide" ./cmd/tide
floor_src=${FLOOR_SRC:-../shared/baselines/floor.go}
mkdir -p "$work/floor" && cp "$floor_src" "$work/floor/floor.go"
(cd "$work/floor" && go mod init floor >/dev/null 2>&1 && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o floor .)

step "building the fraud image"
image_out=$("$work/tide" image build --binary "$work/tide-server" --model examples/fraud/model.pkl --output "$work/fraud.tar" --tag tide.local/tide:startup)
image_line=${image_out%%$'\n'*}

forest_args=()
if [ "$FOREST" = 1 ]; then
  step "writing the 200-tree, depth-16 forest (bench/gen_big_forest.py)"
  /usr/bin/python3 bench/gen_big_forest.py "$work/forest.pkl"
  forest_args=(-forest "$work/forest.pkl")
fi

step "measuring ($RUNS start-ups each)"
{
  echo "# tide-server start-up and memory ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "Command: \`bash bench/startup.sh\` (commit $(git rev-parse --short HEAD))"
  echo
  echo "| binary (static, stripped) | bytes | MB |"
  echo "|---|---:|---:|"
  for b in tide-server tide floor/floor; do
    n=$(stat -c %s "$work/$b")
    awk -v b="${b#floor/}" -v n="$n" 'BEGIN { printf "| %s | %d | %.1f |\n", b, n, n / 1e6 }'
  done
  echo
  echo "Fraud image: $image_line"
  echo
  go run ./bench/startup -tide "$work/tide-server" -floor "$work/floor/floor" -runs "$RUNS" "${forest_args[@]}"
} | tee "$out"
step "wrote $out"
