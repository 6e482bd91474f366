# shellcheck shell=bash
# Shared settings and helpers for the local test cluster. Sourced by hack/cluster/cluster.
#
# Three host locations, all outside the source tree so that every clone (a developer's,
# CI's) shares the expensive build output and no clone can leave a cluster behind:
#   CACHE  built binaries, image tarballs, Go build and module caches   (kept by down)
#   STATE  PKI, etcd data, containerd/kubelet roots, rendered configs, logs (kept by down,
#          removed by down --purge)
#   RUN    PID files, sockets, containerd runtime state, saved sysctls     (removed by down)

TIDE_CLUSTER_CACHE=${TIDE_CLUSTER_CACHE:-/var/cache/tide-cluster}
TIDE_CLUSTER_STATE=${TIDE_CLUSTER_STATE:-/var/lib/tide-cluster}
TIDE_CLUSTER_RUN=${TIDE_CLUSTER_RUN:-/run/tide-cluster}
CACHE=$TIDE_CLUSTER_CACHE
STATE=$TIDE_CLUSTER_STATE
RUN=$TIDE_CLUSTER_RUN

K8S_VERSION=${K8S_VERSION:-v1.34.4}   # last minor whose kubelet runs on cgroup v1 by default
BIN=$CACHE/bin
IMAGES=$CACHE/images
PKI=$STATE/pki
ETC=$STATE/etc
VAR=$STATE/var
LOGS=$STATE/logs
KUBECONFIG_ADMIN=$PKI/admin.kubeconfig
CTR_SOCK=$RUN/containerd/containerd.sock

# Cluster addressing. The pod and service CIDRs are private ranges owned by this cluster;
# tests may send traffic to them and to loopback, nowhere else.
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_CIDR=10.244.0.0/16
CNI_BRIDGE=tide0
NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
NODE_ZONE=tide-a
# How long a node may miss its heartbeats (a kubelet renews its Lease every 10 s)
# before the node controller marks it NotReady and its pods leave Service endpoints.
# Kubernetes' default is 50 s; see docs/cluster.md (node loss) for the trade-off.
NODE_MONITOR_GRACE=${NODE_MONITOR_GRACE:-20s}
# What a node's processes are started under (the second node: its network namespace)
# and what its kubelet configuration adds (its own cgroup root); empty for the first.
NODE_EXEC=
KUBELET_EXTRA_CONFIG=

export PATH=/usr/local/go/bin:$BIN:$PATH
export GOCACHE=$CACHE/go-build GOMODCACHE=$CACHE/gomod GOFLAGS=-buildvcs=false
export CGO_ENABLED=0 GOTOOLCHAIN=local

T0=${T0:-$(date +%s)}
say() { printf '[cluster %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# node_ip prints the host address the API server advertises and the kubelet registers.
node_ip() {
  if [ -n "${NODE_IP:-}" ]; then echo "$NODE_IP"; return; fi
  ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p'
}

# timed <label> <cmd...>: run cmd, print and record its wall time. What cmd prints
# (a cold go build's wall of "go: downloading" lines) goes to
# $CACHE/logs/<label>.log; the terminal gets a line a minute while it runs, and
# the log's last lines and its path if it fails.
timed() {
  local label=$1; shift
  local t0 t1 rc=0 log pid
  mkdir -p "$CACHE/logs"
  log="$CACHE/logs/$(printf '%s' "$label" | tr -c 'A-Za-z0-9._-' '_').log"
  t0=$(date +%s.%N)
  "$@" >"$log" 2>&1 &
  pid=$!
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if (( waited % 60 == 0 )); then say "$label: still running after ${waited}s (log: $log)"; fi
  done
  wait "$pid" || rc=$?
  t1=$(date +%s.%N)
  printf '%s %-36s %7.1fs rc=%d\n' "$(date -u +%FT%TZ)" "$label" "$(echo "$t1 - $t0" | bc)" "$rc" \
    | tee -a "$CACHE/logs/build-times.txt" >&2
  if [ "$rc" -ne 0 ]; then
    say "$label failed (rc=$rc); full log: $log; its last lines:"
    tail -n 20 "$log" >&2
  fi
  return $rc
}

# wait_for <description> <timeout_s> <cmd...>: poll cmd once a second until it succeeds.
wait_for() {
  local what=$1 timeout=$2 start; shift 2
  start=$(date +%s)
  while (( $(date +%s) - start < timeout )); do
    if "$@" >/dev/null 2>&1; then say "$what: ok after $(( $(date +%s) - start ))s"; return 0; fi
    sleep 1
  done
  say "timed out after ${timeout}s waiting for $what"
  return 1
}

kctl() { "$BIN/kubectl" --kubeconfig="$KUBECONFIG_ADMIN" "$@"; }
