# shellcheck shell=bash
# Add-on network-policies: NetworkPolicy enforcement for a cluster whose CNI (the bridge
# plugin) has none. It runs sigs.k8s.io/kube-network-policies, as kind does: a DaemonSet
# in the host network that sends the first packet of each connection to or from a pod
# selected by a policy through nfqueue to userspace, which accepts or drops it.
#
# This kernel has nf_tables without the native queue expression (CONFIG_NFT_QUEUE off,
# no loadable modules) but with nft_compat and the xtables NFQUEUE target, so the
# controller is built with the NFQUEUE target where upstream emits "queue" (see
# build_network_policies and modules/network-policies/).
#
# Host state: the nftables table "inet kube-network-policies". The controller deletes it
# on SIGTERM; when the pod is killed instead (cluster down kills containers with
# SIGKILL), network_policies_clean deletes it, and network_policies_leftovers reports it.

ALL_ADDONS+=" network-policies"

NETWORK_POLICIES_VERSION=v0.8.0
NETWORK_POLICIES_IMAGE=tide.local/kube-network-policies:$NETWORK_POLICIES_VERSION
NETWORK_POLICIES_CHECK_NS=tide-netpol-check

# build_network_policies builds the wrapper command of modules/network-policies against
# a patched copy of the pinned module: the controller's two queue expressions become
# xtQueue (modules/network-policies/_patch/xtqueue.go). Go refuses to overlay files in
# the module cache, so the copy lives in $CACHE and a generated go.mod (-modfile) points
# the module at it; every other dependency stays as go.mod and go.sum pin it.
build_network_policies() {
  local dir=$MODULES/network-policies work=$CACHE/network-policies-build src copy pkg
  (cd "$dir" && go mod download sigs.k8s.io/kube-network-policies) || die "download kube-network-policies"
  src=$(cd "$dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kube-network-policies) || die "kube-network-policies not in the module cache"
  copy=$work/kube-network-policies@$NETWORK_POLICIES_VERSION
  pkg=$copy/pkg/networkpolicy
  rm -rf "$copy" && mkdir -p "$work"
  cp -r "$src" "$copy" && chmod -R u+w "$copy"
  sed -i -e 's/queue := &expr\.Queue{Num: uint16(c\.config\.QueueID)}/queue := xtQueue(uint16(c.config.QueueID), c.config.FailOpen)/' \
      -e 's|^\([[:space:]]*\)queue\.Flag = expr\.QueueFlagBypass$|\1// the bypass flag is set by xtQueue|' \
      "$pkg/controller.go"
  # A new upstream version must fail here, not build a controller that installs no rules.
  if [ "$(grep -c 'queue := xtQueue(' "$pkg/controller.go")" != 2 ] || grep -q 'expr\.Queue' "$pkg/controller.go"; then
    die "kube-network-policies $NETWORK_POLICIES_VERSION: controller.go no longer has the two queue expressions to replace"
  fi
  cp "$dir/_patch/xtqueue.go" "$pkg/zz_xtqueue.go"
  { cat "$dir/go.mod"; echo "replace sigs.k8s.io/kube-network-policies => $copy"; } >"$work/go.mod"
  cp "$dir/go.sum" "$work/go.sum"
  mkdir -p "$BIN"
  (cd "$dir" && timed "build kube-network-policies" go build -trimpath -modfile "$work/go.mod" \
    -ldflags "-s -w" -o "$BIN/kube-network-policies" .)
  make_image "$BIN/kube-network-policies" "$NETWORK_POLICIES_IMAGE" /kube-network-policies network-policies.tar 0:0
}

# network_policies_clean deletes the controller's nftables table from the host (there is
# no nft command here; the controller binary does it). cluster_down calls it once the
# containers are stopped.
network_policies_clean() {
  [ -x "$BIN/kube-network-policies" ] || return 0
  if ! "$BIN/kube-network-policies" -leftover >/dev/null 2>&1; then
    "$BIN/kube-network-policies" -cleanup && say "deleted nftables table inet kube-network-policies"
  fi
  return 0
}

# network_policies_leftovers prints the table if it is still on the host (for check-clean).
network_policies_leftovers() {
  [ -x "$BIN/kube-network-policies" ] || return 0
  "$BIN/kube-network-policies" -leftover || true
}

# netpol_check_pod <name> <command...>: a pod of the demo image in the check namespace;
# the server (the command alone, no arguments) gets a readiness probe.
netpol_check_pod() {
  local name=$1; shift
  local args="" a probe=""
  for a in "$@"; do args+="\"$a\", "; done
  [ $# -eq 1 ] && probe="readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}"
  kctl -n "$NETWORK_POLICIES_CHECK_NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $name, labels: {app: $name}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: demo
    image: $DEMO_IMAGE
    imagePullPolicy: Never
    command: [${args%, }]
    $probe
EOF
}

# netpol_client_phase <name> <url>: run "demo get url" in a fresh pod and print how it
# ended (Succeeded, or Failed after the client's 5 s timeout).
netpol_client_phase() {
  local name=$1 url=$2 i phase=""
  kctl -n "$NETWORK_POLICIES_CHECK_NS" delete pod "$name" --ignore-not-found --wait=true >/dev/null
  netpol_check_pod "$name" /demo get "$url"
  for ((i = 0; i < 60; i++)); do
    phase=$(kctl -n "$NETWORK_POLICIES_CHECK_NS" get pod "$name" -o jsonpath='{.status.phase}' 2>/dev/null)
    case $phase in Succeeded|Failed) break ;; esac
    sleep 1
  done
  echo "$phase"
}

addon_network_policies() {
  kctl apply -f "$HARNESS/manifests/network-policies.yaml" >/dev/null
  kctl -n kube-system rollout status ds/kube-network-policies --timeout=120s >/dev/null \
    || { kctl -n kube-system get pods -l k8s-app=kube-network-policies -o wide >&2
         kctl -n kube-system logs -l k8s-app=kube-network-policies --tail=30 >&2
         die "kube-system/kube-network-policies did not become ready in 120s"; }
  say "kube-system/kube-network-policies ready"

  # Proof: a connection between two pods works, a deny-all ingress policy on the server's
  # namespace refuses the same connection, and removing the policy lets it through again.
  local ns=$NETWORK_POLICIES_CHECK_NS ip url phase i
  kctl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
  kctl create namespace "$ns" >/dev/null
  netpol_check_pod server /demo
  kctl -n "$ns" wait --for=condition=Ready pod/server --timeout=90s >/dev/null || die "netpol check: server pod not ready"
  ip=$(kctl -n "$ns" get pod server -o jsonpath='{.status.podIP}')
  url="http://$ip:8080/healthz"
  phase=$(netpol_client_phase client-open "$url")
  [ "$phase" = Succeeded ] || die "netpol check: pod-to-pod $url fails without any policy ($phase)"
  kctl -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
EOF
  # The controller puts the selected pods' addresses into its nftables set
  # asynchronously; give it three tries.
  for ((i = 1; i <= 3; i++)); do
    phase=$(netpol_client_phase client-denied "$url")
    [ "$phase" = Failed ] && break
    sleep 2
  done
  [ "$phase" = Failed ] || die "netpol check: $url still answers under a deny-all ingress policy: NetworkPolicy is not enforced"
  kctl -n "$ns" logs client-denied 2>/dev/null | head -1 | sed 's/^/[netpol check] refused: /' >&2
  kctl -n "$ns" delete networkpolicy deny-all-ingress >/dev/null
  for ((i = 1; i <= 3; i++)); do
    phase=$(netpol_client_phase client-reopened "$url")
    [ "$phase" = Succeeded ] && break
    sleep 2
  done
  [ "$phase" = Succeeded ] || die "netpol check: $url stays refused after the policy was deleted"
  kctl delete namespace "$ns" --wait=false >/dev/null
  say "NetworkPolicy enforced: pod-to-pod allowed, refused under deny-all ingress, allowed again without it"
}
