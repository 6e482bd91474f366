# shellcheck shell=bash
# Cluster add-ons. Each one is a manifest under manifests/ plus a readiness check that
# proves it works (not just that its pod runs). The set is selectable:
#   TIDE_CLUSTER_ADDONS="coredns metrics-server"   (default: DEFAULT_ADDONS)

ALL_ADDONS="coredns metrics-server prometheus prometheus-adapter keda helm"
DEFAULT_ADDONS="coredns metrics-server helm"

# Add-ons that live in their own file (lib/addon-NAME.sh) append themselves to
# ALL_ADDONS and define build_NAME and addon_NAME (dashes become underscores).
for f in "$HARNESS"/lib/addon-*.sh; do
  # shellcheck source=/dev/null
  [ -e "$f" ] && . "$f"
done
unset f

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
  wait_for "node metrics (kubectl top node)" 120 kctl top node "$NODE_NAME" \
    || die "metrics-server serves no node metrics"
}

# prom_query <url-encoded promql>: an instant query through the API server's service proxy.
prom_query() {
  kctl get --raw "/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query=$1"
}
# up{job="kubernetes-pods",namespace="kube-system"}==1
coredns_scraped() {
  prom_query 'up%7Bjob%3D%22kubernetes-pods%22%2Cnamespace%3D%22kube-system%22%7D%3D%3D1' | grep -q '"pod":"coredns-'
}

addon_prometheus() {
  kctl apply -f "$HARNESS/manifests/prometheus.yaml" >/dev/null
  rollout monitoring prometheus 180s
  # Proves pod discovery through the Kubernetes API: the CoreDNS pods carry the
  # prometheus.io/scrape annotation and must be up as scrape targets.
  wait_for "Prometheus scraping CoreDNS pods found by kubernetes_sd" 120 coredns_scraped \
    || die "Prometheus does not scrape the annotated CoreDNS pods"
}

custom_metric_readable() {
  kctl get --raw '/apis/custom.metrics.k8s.io/v1beta1/namespaces/kube-system/pods/*/process_cpu_seconds_per_second' \
    | grep -q '"value"'
}

addon_prometheus_adapter() {
  kctl apply -f "$HARNESS/manifests/prometheus-adapter.yaml" >/dev/null
  rollout monitoring prometheus-adapter 180s
  kctl wait --for=condition=Available apiservice/v1beta1.custom.metrics.k8s.io --timeout=120s >/dev/null \
    || die "APIService v1beta1.custom.metrics.k8s.io not Available"
  # A custom metric every cluster has: CoreDNS' process CPU counter as a per-second rate.
  wait_for "custom metric pods/process_cpu_seconds_per_second" 120 custom_metric_readable \
    || die "custom.metrics.k8s.io serves no process_cpu_seconds_per_second for kube-system pods"
}

addon_keda() {
  local dir=$STATE/keda config
  config=$(keda_config_dir) || die "KEDA module not in the module cache: run build"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$HARNESS/manifests/keda/kustomization.yaml" "$dir/"
  cp -r "$config" "$dir/config" && chmod -R u+w "$dir/config"
  # Server-side apply: the CRDs are too large for the client-side last-applied annotation.
  kctl apply --server-side --force-conflicts -k "$dir" >/dev/null || die "apply KEDA manifests"
  rollout keda keda-operator 240s
  rollout keda keda-metrics-apiserver 240s
  kctl wait --for=condition=Available apiservice/v1beta1.external.metrics.k8s.io --timeout=120s >/dev/null \
    || die "APIService v1beta1.external.metrics.k8s.io not Available"
  wait_for "external metrics API discovery" 60 kctl get --raw /apis/external.metrics.k8s.io/v1beta1 \
    || die "external.metrics.k8s.io does not answer"
}

addon_helm() {
  "$BIN/helm" version --short >/dev/null || die "helm does not run"
  # helm talks to the cluster with the admin kubeconfig: listing releases proves it.
  KUBECONFIG=$KUBECONFIG_ADMIN "$BIN/helm" list --all-namespaces >/dev/null || die "helm cannot reach the cluster"
  say "helm $("$BIN/helm" version --short)"
}

start_addons() {
  local a
  for a in $(selected_addons); do
    local t0; t0=$(date +%s)
    "addon_${a//-/_}"
    say "add-on $a ready in $(( $(date +%s) - t0 ))s"
  done
}
