# shellcheck shell=bash
# Stops the cluster and returns the host to how up found it. Processes are stopped only
# by the PIDs recorded in $RUN (and container processes found through this containerd's
# own state directory), never by name, so other work on the machine is left alone.

# stop_process <name>: SIGTERM, wait up to 15 s, then SIGKILL.
stop_process() {
  local name=$1 pidfile=$RUN/$1.pid pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 15; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    say "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# stop_containers kills every task of the node's containerd, in every namespace, then
# removes the containers, while containerd is still up to clean its own shims.
stop_containers() {
  [ -S "$CTR_SOCK" ] && [ -f "$RUN/containerd.pid" ] || return 0
  local ns t c n=0
  for ns in $(ctr -a "$CTR_SOCK" namespaces ls -q 2>/dev/null); do
    for t in $(ctr -a "$CTR_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr -a "$CTR_SOCK" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; n=$((n + 1))
    done
    sleep 1
    for t in $(ctr -a "$CTR_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr -a "$CTR_SOCK" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
    done
    for c in $(ctr -a "$CTR_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
      ctr -a "$CTR_SOCK" -n "$ns" containers rm "$c" >/dev/null 2>&1
    done
  done
  [ "$n" -gt 0 ] && say "killed $n containers"
  return 0
}

# kill_leftover_containers: when containerd died first, its shims and containers live on;
# each bundle under containerd's state dir records the container's init PID, and the
# shim is that process' parent.
kill_leftover_containers() {
  local f pid ppid
  while IFS= read -r f; do
    pid=$(cat "$f" 2>/dev/null) || continue
    kill -0 "$pid" 2>/dev/null || continue
    ppid=$(ps -o ppid= -p "$pid" | tr -d ' ')
    kill -KILL "$pid" 2>/dev/null
    if [ -n "$ppid" ] && [ "$(ps -o comm= -p "$ppid")" = containerd-shim ]; then kill -KILL "$ppid" 2>/dev/null; fi
    say "killed leftover container process $pid (shim $ppid)"
  done < <(find "$RUN/containerd/io.containerd.runtime.v2.task" -name init.pid 2>/dev/null)
  # Shims whose container is already gone: their socket address names our state dir.
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CTR_SOCK" 2>/dev/null); do
    kill -KILL "$p" 2>/dev/null && say "killed leftover shim $p"
  done
}

unmount_all() {
  local i m
  for i in 1 2 3; do
    while IFS= read -r m; do
      umount -l "$m" 2>/dev/null
    done < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE|$RUN|/run/netns/cni-|/var/run/netns/cni-)" | sort -ru)
  done
  rm -f /run/netns/cni-* 2>/dev/null
  return 0
}

clean_network() {
  ip link del "$CNI_BRIDGE" 2>/dev/null && say "deleted bridge $CNI_BRIDGE"
  if [ -x "$BIN/kube-proxy" ]; then "$BIN/kube-proxy" --cleanup >/dev/null 2>&1; fi
  # kube-proxy's and the CNI plugins' chains: unhook from the built-in chains, flush, delete.
  local t c r
  for t in nat filter mangle; do
    iptables -t $t -S 2>/dev/null | grep -E '^-A (POSTROUTING|FORWARD|INPUT|OUTPUT|PREROUTING) .*(CNI-|KUBE-)' \
      | sed 's/^-A/-D/' | while read -r r; do eval "iptables -t $t $r" 2>/dev/null; done
    for c in $(iptables -t $t -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/{print $2}'); do iptables -t $t -F "$c" 2>/dev/null; done
    for c in $(iptables -t $t -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/{print $2}'); do iptables -t $t -X "$c" 2>/dev/null; done
  done
  rm -rf "$VAR/cni-ipam"
  return 0
}

# clean_cgroups removes the hierarchies the kubelet and containerd created (kubepods,
# and k8s.io from ctr), deepest first; rmdir only succeeds on empty cgroups.
clean_cgroups() {
  local h top
  for h in /sys/fs/cgroup/*/; do
    for top in kubepods kubepods.slice k8s.io; do
      [ -d "$h$top" ] && find "$h$top" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  return 0
}

remove_created_host_paths() {
  [ -f "$RUN/created-host-paths" ] || return 0
  local p
  while IFS= read -r p; do
    [ -n "$p" ] && [ -e "$p" ] && rm -rf --one-file-system "$p" && say "removed $p"
  done <"$RUN/created-host-paths"
  return 0
}

restore_sysctls() {
  [ -f "$RUN/sysctl.orig" ] || return 0
  local k v
  while IFS='=' read -r k v; do sysctl -qw "$k=$v" 2>/dev/null; done <"$RUN/sysctl.orig"
  rm -f "$RUN/sysctl.orig"
  say "sysctls restored"
}

cluster_down() {
  local purge=${1:-}
  local f
  # Teardown is best effort: a step that fails (nothing to clean, tool missing) must not
  # stop the steps after it. check-clean is what decides whether the host is clean.
  set +e
  # Add-ons that run as host processes (none by default) record extra-*.pid.
  for f in "$RUN"/extra-*.pid; do [ -f "$f" ] && stop_process "$(basename "$f" .pid)"; done
  node2_down
  stop_process kube-proxy
  stop_process kubelet
  stop_containers
  stop_process containerd
  kill_leftover_containers
  # Add-ons that write host state outside iptables clean it here (lib/addon-*.sh).
  declare -F network_policies_clean >/dev/null && network_policies_clean
  local n
  for n in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_process "$n"; done
  unmount_all
  clean_network
  clean_cgroups
  restore_sysctls
  remove_created_host_paths
  # Never delete through a mount that survived: rm would reach into the mounted tree.
  if awk '{print $5}' /proc/self/mountinfo | grep -qE "^($STATE|$RUN)(/|$)"; then
    say "mounts remain under $STATE or $RUN; not deleting state (see: grep $RUN /proc/self/mountinfo)"
    return 1
  fi
  rm -rf --one-file-system "$RUN"
  if [ "$purge" = --purge ]; then
    rm -rf --one-file-system "$STATE"
    say "purged $STATE (kept the build cache in $CACHE)"
  fi
  say "down"
}
