# shellcheck shell=bash
# Brings up a single-node Kubernetes as plain host processes, no systemd and no registry:
#   etcd (Debian) -> kube-apiserver -> kube-controller-manager + kube-scheduler
#   containerd (Debian; CRI, cgroupfs, overlayfs, our FROM-scratch pause image)
#   kubelet (cgroupfs) + CNI bridge/host-local/portmap (Debian plugins) + kube-proxy (iptables)
# Every process is started in its own session with its PID recorded in $RUN, so that
# down stops exactly what up started and nothing else.

# start_process <name> <cmd...>: run in the background, log to $LOGS/<name>.log.
start_process() {
  local name=$1; shift
  local pidfile=$RUN/$name.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "$name already running (pid $(cat "$pidfile"))"; return 0
  fi
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  say "started $name (pid $!)"
}

# write_if_changed <file>: stdin to file, only when the content differs. kube-proxy exits
# when its config file changes under it, and containerd 1.6's CNI config watcher reloads
# only on Write events (not Create), so files are rewritten in place and only if needed.
write_if_changed() {
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  cmp -s "$tmp" "$1" 2>/dev/null || cat "$tmp" >"$1"
  rm -f "$tmp"
}

# The kubelet rewrites these sysctls; up saves the originals once and down restores them.
SAVED_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables"

# Paths outside our directories that the kubelet, the CNI plugins and the runc shim write
# to whatever their configuration says (kubelet device-plugin socket and container log
# links, the CNI result cache, the shim socket directory). up records the ones that did
# not exist before; down deletes exactly those.
HOST_PATHS="/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd"

prepare_host() {
  [ "$(id -u)" = 0 ] || die "the cluster runs host processes and changes iptables: run as root"
  [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] || say "note: cgroup v2 host; the kubelet config targets cgroup v1"
  mkdir -p "$RUN" "$PKI" "$ETC/cni/net.d" "$ETC/manifests" "$VAR" "$LOGS"
  modprobe br_netfilter 2>/dev/null || true
  modprobe overlay 2>/dev/null || true
  if [ ! -f "$RUN/created-host-paths" ]; then
    local p
    for p in $HOST_PATHS; do [ -e "$p" ] || echo "$p"; done >"$RUN/created-host-paths"
  fi
  if [ ! -f "$RUN/sysctl.orig" ]; then
    local s
    for s in $SAVED_SYSCTLS; do
      sysctl -n "$s" >/dev/null 2>&1 && echo "$s=$(sysctl -n "$s")"
    done >"$RUN/sysctl.orig"
  fi
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
}

# ------------------------------------------------------------------ PKI (openssl, ECDSA P-256)
gen_ca() {
  local n=$1
  [ -f "$PKI/$n.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$n.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$n.key" -subj "/CN=tide-cluster-$n" -days 3650 -out "$PKI/$n.crt" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}
# gen_cert <name> <CN> <O or ""> <ca> <client|server> [subjectAltName]
gen_cert() {
  local n=$1 cn=$2 o=$3 ca=$4 kind=$5 san=${6:-}
  [ -f "$PKI/$n.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$n.key" 2>/dev/null
  local subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o/CN=$cn"
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment"
  if [ "$kind" = server ]; then
    ext+=$'\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName='"$san"
  else
    ext+=$'\nextendedKeyUsage=clientAuth'
  fi
  openssl req -new -key "$PKI/$n.key" -subj "$subj" -out "$PKI/$n.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 365 -extfile <(echo "$ext") -out "$PKI/$n.crt" 2>/dev/null
  rm -f "$PKI/$n.csr"
}
# write_kubeconfig <name> <cert-name>: $PKI/<name>.kubeconfig with embedded credentials.
write_kubeconfig() {
  local f=$PKI/$1.kubeconfig c=$2 ip=$3
  [ -f "$f" ] && return 0
  "$BIN/kubectl" config --kubeconfig="$f" set-cluster tide --server="https://$ip:6443" \
    --certificate-authority="$PKI/ca.crt" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig="$f" set-credentials "$c" --client-certificate="$PKI/$c.crt" \
    --client-key="$PKI/$c.key" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig="$f" set-context tide --cluster=tide --user="$c" >/dev/null
  "$BIN/kubectl" config --kubeconfig="$f" use-context tide >/dev/null
}
make_pki() {
  local ip=$1
  # Certificates name the node's address; a new address (another machine, new DHCP
  # lease) needs a fresh PKI rather than TLS errors later.
  if [ -f "$PKI/node-ip" ] && [ "$(cat "$PKI/node-ip")" != "$ip" ]; then
    say "node address changed to $ip: regenerating PKI"; rm -rf "$PKI"; mkdir -p "$PKI"
  fi
  echo "$ip" >"$PKI/node-ip"
  gen_ca ca
  gen_ca front-proxy-ca
  gen_cert apiserver kube-apiserver "" ca server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:$API_SERVICE_IP,IP:127.0.0.1,IP:$ip"
  gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ca client
  gen_cert front-proxy-client front-proxy-client "" front-proxy-ca client
  gen_cert admin kubernetes-admin system:masters ca client
  gen_cert controller-manager system:kube-controller-manager "" ca client
  gen_cert scheduler system:kube-scheduler "" ca client
  gen_cert kube-proxy system:kube-proxy "" ca client
  gen_cert "kubelet-$NODE_NAME" "system:node:$NODE_NAME" system:nodes ca client
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  write_kubeconfig admin admin "$ip"
  write_kubeconfig controller-manager controller-manager "$ip"
  write_kubeconfig scheduler scheduler "$ip"
  write_kubeconfig kube-proxy kube-proxy "$ip"
  write_kubeconfig "kubelet-$NODE_NAME" "kubelet-$NODE_NAME" "$ip"
  chmod 600 "$PKI"/*.key "$PKI"/*.kubeconfig
  say "PKI ready in $PKI"
}

# ------------------------------------------------------------------ control plane
start_etcd() {
  start_process etcd /usr/bin/etcd --name tide --data-dir "$VAR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster tide=http://127.0.0.1:2380 --quota-backend-bytes=4294967296 \
    --auto-compaction-retention=1 --snapshot-count=10000
  wait_for etcd 60 curl -sf http://127.0.0.1:2379/health
}
start_apiserver() {
  local ip=$1
  start_process kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --advertise-address="$ip" --secure-port=6443 --bind-address=0.0.0.0 \
    --service-cluster-ip-range=$SERVICE_CIDR --service-node-port-range=30000-32767 \
    --allow-privileged=true --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --client-ca-file="$PKI/ca.crt" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --requestheader-group-headers=X-Remote-Group --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --profiling=false
  wait_for kube-apiserver 180 kctl get --raw /readyz
}
start_controllers() {
  start_process kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --use-service-account-credentials=true \
    --controllers='*,bootstrapsigner,tokencleaner' \
    --allocate-node-cidrs=true --cluster-cidr=$CLUSTER_CIDR --node-cidr-mask-size=24 \
    --service-cluster-ip-range=$SERVICE_CIDR \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --horizontal-pod-autoscaler-sync-period=15s \
    --node-monitor-period=2s --node-monitor-grace-period="$NODE_MONITOR_GRACE"
  start_process kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false
}

# ------------------------------------------------------------------ node
start_containerd() {
  write_if_changed "$ETC/containerd.toml" <<EOF2
# containerd 1.6 for the local test cluster: CRI plugin, cgroupfs, runc v2 shim, overlayfs.
version = 2
root = "$VAR/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$CTR_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  # Our own FROM-scratch pause image, imported below: no registry can be reached.
  sandbox_image = "$PAUSE_IMAGE"
  enable_cdi = false
  # root on these hosts may lack CAP_SYS_RESOURCE, so the kernel refuses a negative
  # oom_score_adj (sandboxes get -998) and runc fails with "can't get final child's PID
  # from pipe: EOF". Clamp pod oom_score_adj to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni/net.d"
EOF2
  # shellcheck disable=SC2086 # NODE_EXEC is a command prefix: empty, or words
  start_process containerd $NODE_EXEC /usr/bin/containerd --config "$ETC/containerd.toml"
  wait_for containerd 60 ctr -a "$CTR_SOCK" version
}

# load_image <tar>: import an image archive into the CRI namespace of the node's containerd.
load_image() {
  [ -f "$1" ] || die "load-image: $1: no such file"
  ctr -a "$CTR_SOCK" -n k8s.io images import "$1" >/dev/null \
    || die "load-image: import $1 into containerd at $CTR_SOCK failed"
  say "image loaded: $(basename "$1")"
}

write_cni_config() {
  local pod_cidr=$1
  write_if_changed "$ETC/cni/net.d/10-tide-bridge.conflist" <<EOF2
{
  "cniVersion": "0.4.0",
  "name": "tide",
  "plugins": [
    { "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$VAR/cni-ipam",
                "ranges": [[{ "subnet": "$pod_cidr" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF2
}

start_kubelet() {
  local ip=$1
  mkdir -p "$VAR/kubelet" "$VAR/pod-logs"
  write_if_changed "$ETC/kubelet.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://$CTR_SOCK
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
failSwapOn: false
resolvConf: /etc/resolv.conf
staticPodPath: "$ETC/manifests"
podLogsDir: "$VAR/pod-logs"
serializeImagePulls: false
# Nothing can be re-pulled, so imported images must never be garbage-collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
rotateCertificates: false
serverTLSBootstrap: false
$KUBELET_EXTRA_CONFIG
EOF2
  # shellcheck disable=SC2086
  start_process kubelet $NODE_EXEC "$BIN/kubelet" --config="$ETC/kubelet.yaml" \
    --kubeconfig="$PKI/kubelet-$NODE_NAME.kubeconfig" \
    --root-dir="$VAR/kubelet" --cert-dir="$VAR/kubelet/pki" --node-ip="$ip" --hostname-override="$NODE_NAME" --v=1
  wait_for "node $NODE_NAME registered" 120 kctl get node "$NODE_NAME"
  # The bridge CNI config needs the pod CIDR the controller-manager allocates to the node.
  wait_for "pod CIDR allocated" 60 node_pod_cidr
  write_cni_config "$(node_pod_cidr)"
}
node_pod_cidr() {
  local c; c=$(kctl get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}' 2>/dev/null)
  [ -n "$c" ] && echo "$c"
}

start_kube_proxy() {
  write_if_changed "$ETC/kube-proxy.yaml" <<EOF2
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$PKI/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
conntrack: {maxPerCore: 0}   # leave the host's nf_conntrack_max alone
EOF2
  # shellcheck disable=SC2086
  start_process kube-proxy $NODE_EXEC "$BIN/kube-proxy" --config="$ETC/kube-proxy.yaml" --hostname-override="$NODE_NAME"
}

node_ready() {
  kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

cluster_up() {
  local ip; ip=$(node_ip)
  [ -n "$ip" ] || die "cannot find the host's IPv4 address (set NODE_IP)"
  prepare_host
  make_pki "$ip"
  start_etcd
  start_apiserver "$ip"
  start_controllers
  start_containerd
  local t
  for t in "$IMAGES"/*.tar; do load_image "$t"; done
  start_kubelet "$ip"
  start_kube_proxy
  wait_for "node $NODE_NAME Ready" 180 node_ready
  label_zone "$NODE_NAME" "$NODE_ZONE"
}

# label_zone <node> <zone>: the well-known zone label, so that zone spread has two
# zones to spread over once the second node (zone $NODE2_ZONE) joins. An admin sets it,
# as a cloud's node controller would: the kubelet does not label itself with a zone.
label_zone() {
  kctl label node "$1" --overwrite "topology.kubernetes.io/zone=$2" >/dev/null || die "label node $1 with zone $2"
}
