# shellcheck shell=bash
# The second node: a containerd, a kubelet and a kube-proxy of their own, joined to the
# same control plane, in their own network namespace and cgroup root, so that the
# cluster has two nodes in two zones on one machine.
#
#   host                                     its network namespace (the node's "machine")
#   eth0 192.0.2.x   API server :6443        eth0 10.243.0.2 --- default via 10.243.0.1
#   tide0 10.244.0.1/24 (node 1's pods)      tide0 10.244.N.1/24 (node 2's pods)
#   tide-n2 10.243.0.1 ===== veth =========  kubelet :10250, kube-proxy, containerd
#   route 10.244.N.0/24 via 10.243.0.2       cgroups /tide-node2/{system,kubepods}
#
# Pods reach each other across nodes through the host's routing table (a pod's packets
# leave its node masqueraded by the bridge plugin, as on node 1); each node's kube-proxy
# writes its own Service rules, so Services answer from either node. Node 1's processes
# are the host's; node 2's are the ones in its network namespace and under its cgroup,
# so "losing" node 2 is killing everything in /tide-node2 at once (node2_kill).
#
# Not separate: the filesystem (node 2's state lives under $STATE/var/node2 and
# $RUN/node2), the CPU and memory (both kubelets report the whole machine), and the
# kubelet paths that are not configurable (/var/lib/kubelet/device-plugins and
# pod-resources sockets: the last kubelet to start owns them; nothing here uses them).
#
#   cluster node-up     start node 2 (with node 1's images), wait until it is Ready
#   cluster node-kill   node loss: SIGKILL its kubelet, runtime, proxy and pods at once
#   cluster node-down   remove node 2: its Node object, processes, mounts, cgroups, netns

# The node's network namespace, kept by a bind mount of our own rather than `ip netns
# add`: that makes /run/netns a shared bind mount of itself on first use, which hides
# the pod namespaces containerd mounted there before it from their unmount at down.
NODE2_NETNS=$TIDE_CLUSTER_RUN/node2.netns
NODE2_LINK=tide-n2 # the host's end of the veth
NODE2_GATEWAY=10.243.0.1
NODE2_IP=10.243.0.2
NODE2_CGROUP=tide-node2
NODE2_ZONE=tide-b
NODE2_NAME=${NODE2_NAME:-$NODE_NAME-2}

# as_node2: point the node functions of up.sh and down.sh at node 2. Call it in a
# subshell only: it rebinds the globals they read.
as_node2() {
  NODE_NAME=$NODE2_NAME
  NODE_ZONE=$NODE2_ZONE
  RUN=$TIDE_CLUSTER_RUN/node2
  ETC=$STATE/etc/node2
  VAR=$STATE/var/node2
  LOGS=$STATE/logs/node2
  CTR_SOCK=$RUN/containerd/containerd.sock
  NODE_EXEC="nsenter --net=$NODE2_NETNS --"
  KUBELET_EXTRA_CONFIG="cgroupRoot: /$NODE2_CGROUP"
}

node2_running() { [ -f "$TIDE_CLUSTER_RUN/node2/kubelet.pid" ]; }

# node2_cgroups <sub>: each v1 hierarchy's /tide-node2/<sub> (or the root with "").
node2_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] && echo "$h$NODE2_CGROUP${1:+/$1}"
  done
}

# node2_enter_cgroup moves the calling shell into /tide-node2/system, so that
# everything node 2 starts (containerd and its shims, the kubelet, kube-proxy) is under
# the node's cgroup; the kubelet puts pods in /tide-node2/kubepods (its cgroupRoot).
node2_enter_cgroup() {
  local d
  for d in $(node2_cgroups system); do
    mkdir -p "$d"
    # A new cpuset cgroup starts with no CPUs or memory nodes: copy its parent's.
    if [ -f "$d/cpuset.cpus" ]; then
      local parent; parent=$(dirname "$d")
      [ -s "$parent/cpuset.cpus" ] && [ -n "$(tr -d '\n' <"$parent/cpuset.cpus")" ] \
        || cat /sys/fs/cgroup/cpuset/cpuset.cpus >"$parent/cpuset.cpus"
      [ -n "$(tr -d '\n' <"$parent/cpuset.mems")" ] || cat /sys/fs/cgroup/cpuset/cpuset.mems >"$parent/cpuset.mems"
      cat "$parent/cpuset.cpus" >"$d/cpuset.cpus"; cat "$parent/cpuset.mems" >"$d/cpuset.mems"
    fi
    echo "$BASHPID" >"$d/cgroup.procs" 2>/dev/null || true
  done
}

netns_mounted() { awk '{print $5}' /proc/self/mountinfo | grep -qx "$NODE2_NETNS"; }
in_node2() { nsenter --net="$NODE2_NETNS" -- "$@"; }

node2_network() {
  if ! netns_mounted; then
    mkdir -p "$TIDE_CLUSTER_RUN" && touch "$NODE2_NETNS" && unshare --net="$NODE2_NETNS" true \
      || die "create node 2's network namespace"
  fi
  if ! ip link show "$NODE2_LINK" >/dev/null 2>&1; then
    # Made inside the namespace, its peer moved out to this shell's (the host's).
    in_node2 ip link add eth0 type veth peer name "$NODE2_LINK" netns $$ || die "create veth $NODE2_LINK"
    ip addr add "$NODE2_GATEWAY/30" dev "$NODE2_LINK"
    in_node2 ip addr add "$NODE2_IP/30" dev eth0
  fi
  ip link set "$NODE2_LINK" up
  in_node2 ip link set lo up
  in_node2 ip link set eth0 up
  in_node2 ip route replace default via "$NODE2_GATEWAY"
  # The namespace's own copies of what prepare_host sets on the host.
  in_node2 sysctl -qw net.ipv4.ip_forward=1
  in_node2 sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

# node2_copy_images gives node 2's containerd every image node 1's has (the add-ons'
# and whatever the tests loaded since up): there is no registry to pull from.
node2_copy_images() {
  local node1_sock=$1 refs
  refs=$(ctr -a "$node1_sock" -n k8s.io images ls -q | grep -v '^sha256:') || die "list node 1's images"
  # shellcheck disable=SC2086
  ctr -a "$node1_sock" -n k8s.io images export - $refs | ctr -a "$CTR_SOCK" -n k8s.io images import - >/dev/null \
    || die "copy node 1's images to node 2"
  say "copied $(echo "$refs" | wc -l) images from node 1"
}

node2_up() {
  node_ready || die "node 1 is not Ready: run up first"
  local node1_sock=$CTR_SOCK
  gen_cert "kubelet-$NODE2_NAME" "system:node:$NODE2_NAME" system:nodes ca client
  write_kubeconfig "kubelet-$NODE2_NAME" "kubelet-$NODE2_NAME" "$(node_ip)"
  chmod 600 "$PKI"/*.key "$PKI"/*.kubeconfig
  node2_network
  (
    as_node2
    mkdir -p "$RUN" "$ETC/cni/net.d" "$ETC/manifests" "$VAR" "$LOGS"
    node2_enter_cgroup
    start_containerd
    node2_copy_images "$node1_sock"
    start_kubelet "$NODE2_IP"
    ip route replace "$(node_pod_cidr)" via "$NODE2_IP" dev "$NODE2_LINK" || die "route node 2's pods"
    start_kube_proxy
    wait_for "node $NODE_NAME Ready" 180 node_ready || exit 1
    label_zone "$NODE_NAME" "$NODE_ZONE"
  ) || die "node 2 did not come up (logs: $STATE/logs/node2)"
  say "node $NODE2_NAME ready (zone $NODE2_ZONE, $NODE2_IP)"
}

# node2_pids: every process under node 2's cgroup.
node2_pids() {
  find "/sys/fs/cgroup/pids/$NODE2_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# node2_record_pod_netns appends to $TIDE_CLUSTER_RUN/node2-pod-netns the pod network
# namespaces (/run/netns/cni-*) that node 2's processes are in. Their mounts outlive the
# processes; node2_down removes the ones recorded, leaving node 1's alone.
node2_record_pod_netns() {
  local p ours n
  ours=$(for p in $(node2_pids); do stat -L -c %i "/proc/$p/ns/net" 2>/dev/null; done | sort -u)
  [ -n "$ours" ] || return 0
  for n in /run/netns/cni-*; do
    [ -e "$n" ] && grep -qx "$(stat -L -c %i "$n" 2>/dev/null)" <<<"$ours" && echo "$n"
  done >>"$TIDE_CLUSTER_RUN/node2-pod-netns"
  return 0
}

# node2_kill is node loss: every process of the node (kubelet, kube-proxy, containerd,
# the shims, every container) gets SIGKILL at once, and the node's link goes down, so
# that its pods' addresses stop answering as a dead machine's would. The Node object
# and the pods' API objects stay: the control plane has to notice, as it would.
node2_kill() {
  local i pids
  node2_record_pod_netns
  ip link set "$NODE2_LINK" down 2>/dev/null
  for ((i = 0; i < 20; i++)); do
    pids=$(node2_pids)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.2
  done
  [ -z "$(node2_pids)" ] || die "processes of node 2 survived SIGKILL: $(node2_pids | tr '\n' ' ')"
  rm -f "$TIDE_CLUSTER_RUN"/node2/*.pid
  say "node $NODE2_NAME lost: its processes are killed and its link is down"
}

# node2_down removes node 2 and everything it left on the host. It works on a node
# that runs (drain it first to move its pods gracefully) and on one node2_kill killed.
node2_down() {
  set +e
  netns_mounted || [ -d "$TIDE_CLUSTER_RUN/node2" ] || return 0
  [ -f "$KUBECONFIG_ADMIN" ] && kctl delete node "$NODE2_NAME" --ignore-not-found --wait=false >/dev/null 2>&1
  node2_record_pod_netns
  (
    as_node2
    stop_process kube-proxy
    stop_process kubelet
    stop_containers
    stop_process containerd
    kill_leftover_containers
  )
  local pids; pids=$(node2_pids)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE/var/node2|$TIDE_CLUSTER_RUN/node2)(/|$)" | sort -ru); do
    umount -l "$m" 2>/dev/null
  done
  local h
  for h in $(node2_cgroups ""); do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  local n
  if [ -f "$TIDE_CLUSTER_RUN/node2-pod-netns" ]; then
    for n in $(sort -u "$TIDE_CLUSTER_RUN/node2-pod-netns"); do umount -l "$n" 2>/dev/null; rm -f "$n"; done
    rm -f "$TIDE_CLUSTER_RUN/node2-pod-netns"
  fi
  ip link del "$NODE2_LINK" 2>/dev/null
  umount "$NODE2_NETNS" 2>/dev/null; rm -f "$NODE2_NETNS"
  if awk '{print $5}' /proc/self/mountinfo | grep -qE "^($STATE/var/node2|$TIDE_CLUSTER_RUN/node2)(/|$)"; then
    say "mounts of node 2 remain; not deleting its state"
    return 1
  fi
  rm -rf --one-file-system "$TIDE_CLUSTER_RUN/node2" "$STATE/var/node2"
  say "node $NODE2_NAME removed"
}

# node2_leftovers prints what node 2 left on the host (for check-clean).
node2_leftovers() {
  netns_mounted && echo "network namespace $NODE2_NETNS"
  ip link show "$NODE2_LINK" >/dev/null 2>&1 && echo "link $NODE2_LINK"
  local h
  for h in $(node2_cgroups ""); do [ -d "$h" ] && echo "cgroup $h"; done
  return 0
}
