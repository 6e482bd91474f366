# shellcheck shell=bash
# Host packages the cluster needs, all from Debian: the container runtime, CNI plugins,
# etcd, iptables tooling, and the static busybox used as a debug image. Installing is
# idempotent: nothing is done when every package is already present.

DEBIAN_PACKAGES="runc containerd containernetworking-plugins etcd-server etcd-client
  iptables conntrack busybox-static openssl socat curl jq bc iproute2 util-linux procps"
# Prometheus is built from its Go module (Debian's build lacks kubernetes_sd), so it is
# not in this list.

install_deps() {
  local missing=() p
  for p in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "host packages: all present"; return 0; fi
  say "host packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # apt may be held by another installer on a shared machine: wait for its lock.
  timed "apt-get update" apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  timed "apt-get install" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts containerd and etcd as services on install; the cluster runs its own
  # instances on its own sockets and ports, so the packaged services must not run.
  for p in containerd etcd; do
    if systemctl is-active --quiet "$p" 2>/dev/null; then systemctl stop "$p"; systemctl disable --quiet "$p" 2>/dev/null || true; fi
  done
}
