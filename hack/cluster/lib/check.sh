# shellcheck shell=bash
# Leftover checks: `snapshot` records the host state the cluster touches, and
# `check-clean [snapshot]` fails if anything of the cluster is still there or, given a
# snapshot taken before up, if the host differs from it.

host_snapshot() {
  echo "## sysctls"
  local s
  for s in $SAVED_SYSCTLS; do sysctl -n "$s" >/dev/null 2>&1 && echo "$s=$(sysctl -n "$s")"; done
  echo "## links"
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "## iptables"
  local t
  for t in nat filter mangle; do iptables -t "$t" -S 2>/dev/null | sed "s/^/$t /"; done
  echo "## host paths"
  local p
  for p in $HOST_PATHS; do [ -e "$p" ] && echo "$p"; done
  echo "## cgroups"
  ls -d /sys/fs/cgroup/*/*/ 2>/dev/null | sort
}

# check_clean [snapshot-file]: print each leftover; return 1 if there is any.
check_clean() {
  local base=${1:-} bad=0 out
  report() { echo "leftover: $*"; bad=1; }
  # Processes: any program from $BIN (the API server, kubelet, ...), or anything naming
  # our state or run directories (etcd, containerd, the shims). A build writing into $BIN
  # runs /usr/local/go/bin/go and is not a leftover.
  out=$( { find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$BIN/*" 2>/dev/null | cut -d/ -f3
            ps -eo pid=,args= | awk -v st="$STATE" -v run="$RUN" 'index($0, st) || index($0, run) {print $1}'
          } | sort -un | while read -r pid; do
            [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || ps -o pid=,args= -p "$pid"
          done | grep -v -e ' awk -v st=' || true)
  [ -z "$out" ] || report "processes:"$'\n'"$out"
  [ -d "$RUN" ] && report "run directory $RUN"
  out=$(awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE|$RUN|/run/netns/cni-)" || true)
  [ -z "$out" ] || report "mounts:"$'\n'"$out"
  ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && report "bridge $CNI_BRIDGE"
  out=$(ip -o link show type veth 2>/dev/null | awk -F': ' '$2 ~ /^veth/ {print $2}' || true)
  [ -z "$out" ] || report "veth links: $out"
  local t
  for t in nat filter mangle; do
    out=$(iptables -t "$t" -S 2>/dev/null | grep -E 'KUBE-|CNI-' || true)
    [ -z "$out" ] || report "iptables $t rules:"$'\n'"$out"
  done
  out=$(node2_leftovers)
  [ -z "$out" ] || report "second node: $out"
  out=$(declare -F network_policies_leftovers >/dev/null && network_policies_leftovers)
  [ -z "$out" ] || report "nftables: $out"
  out=$(ls -d /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/*/k8s.io 2>/dev/null || true)
  [ -z "$out" ] || report "cgroups: $out"
  if [ -n "$base" ]; then
    [ -f "$base" ] || die "check-clean: snapshot $base not found"
    out=$(diff <(host_snapshot) "$base" || true)
    [ -z "$out" ] || report "host differs from the snapshot taken before up (< now, > before):"$'\n'"$out"
  fi
  [ $bad -eq 0 ] && say "check-clean: nothing left behind"
  return $bad
}
