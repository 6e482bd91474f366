# shellcheck shell=bash
# Cluster add-ons. Each one is a manifest under manifests/ plus a readiness check that
# proves it works (not just that its pod runs). The set is selectable:
#   TIDE_CLUSTER_ADDONS="coredns metrics-server"   (default: DEFAULT_ADDONS)

ALL_ADDONS="coredns metrics-server prometheus prometheus-adapter keda helm"
DEFAULT_ADDONS="coredns metrics-server"

selected_addons() {
  local a
  for a in ${TIDE_CLUSTER_ADDONS:-$DEFAULT_ADDONS}; do
    case " $ALL_ADDONS " in *" $a "*) echo "$a" ;; *) die "unknown add-on $a (known: $ALL_ADDONS)" ;; esac
  done
}

rollout() { # rollout <namespace> <deployment> <timeout>
  kctl -n "$1" rollout status "deploy/$2" --timeout="$3" >/dev/null \
    || { kctl -n "$1" get pods -o wide >&2; die "$1/$2 did not become ready in $3"; }
  say "$1/$2 ready"
}

addon_coredns() {
  kctl apply -f "$HARNESS/manifests/coredns.yaml" >/dev/null
  rollout kube-system coredns 180s
}

addon_metrics_server() {
  kctl apply -f "$HARNESS/manifests/metrics-server.yaml" >/dev/null
  rollout kube-system metrics-server 180s
  kctl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=120s >/dev/null \
    || die "APIService v1beta1.metrics.k8s.io not Available"
  # Available only means the server answers; the HPA needs actual samples.
  wait_for "node metrics (kubectl top node)" 120 kctl top node "$NODE_NAME"
}

start_addons() {
  local a
  for a in $(selected_addons); do
    local t0; t0=$(date +%s)
    "addon_${a//-/_}"
    say "add-on $a ready in $(( $(date +%s) - t0 ))s"
  done
}
