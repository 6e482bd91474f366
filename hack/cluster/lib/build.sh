# shellcheck shell=bash
# Builds everything the cluster runs from the Go module proxy: no container registry,
# no GitHub downloads. Each upstream project has its own go.mod under
# hack/cluster/modules/ so the product's module stays small. Output goes to $BIN and
# $IMAGES; with a warm $GOCACHE a rebuild is a cache hit of a few seconds.

MODULES=$HARNESS/modules

# Kubernetes is built from k8s.io/kubernetes with every staging module replaced by its
# published v0.X.Y tag (the replaces in modules/kubernetes/go.mod).
K8S_COMMANDS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"

build_kubernetes() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w" p bdate
  # buildDate is the release's commit time (from the proxy's .info), not `date`, so an
  # unchanged rebuild is a pure cache hit instead of a relink.
  (cd "$MODULES/kubernetes" && go mod download k8s.io/kubernetes)
  bdate=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.info")
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=${bdate:-1970-01-01T00:00:00Z}"
  done
  local pkgs=() c
  for c in $K8S_COMMANDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  mkdir -p "$BIN"
  (cd "$MODULES/kubernetes" && timed "build kubernetes $K8S_VERSION" \
    go build -trimpath -ldflags "$ld" -o "$BIN/" "${pkgs[@]}")
}

# build_module <module-dir> <package> <output-name> [extra ldflags]: build one command
# from a wrapper module under modules/, whose go.mod and go.sum pin every dependency.
build_module() {
  local dir=$1 pkg=$2 out=$3 extra=${4:-}
  mkdir -p "$BIN"
  (cd "$MODULES/$dir" && timed "build $out" go build -trimpath -ldflags "-s -w $extra" -o "$BIN/$out" "$pkg")
}

# make_image <binary> <image-ref> <path-in-image> <tar> [uid:gid]
make_image() {
  mkdir -p "$IMAGES"
  "$BIN/imgtool" -user "${5:-65534:65534}" "$1" "$2" "$3" "$IMAGES/$4" >/dev/null \
    || die "image $2: imgtool failed"
}

# Image names: every image is built here and imported, never pulled. Pods use
# imagePullPolicy: Never (or IfNotPresent with a fixed tag).
PAUSE_IMAGE=tide.local/pause:3.10
DEMO_IMAGE=tide.local/demo:v1
COREDNS_IMAGE=tide.local/coredns:v1.12.4
METRICS_SERVER_IMAGE=tide.local/metrics-server:v0.8.0
PROMETHEUS_ADAPTER_IMAGE=tide.local/prometheus-adapter:v0.12.0
PROMETHEUS_IMAGE=tide.local/prometheus:v3.16.0
KEDA_VERSION=v2.21.0
KEDA_OPERATOR_IMAGE=tide.local/keda:$KEDA_VERSION
KEDA_METRICS_IMAGE=tide.local/keda-metrics-apiserver:$KEDA_VERSION

build_images() {
  build_module images ./imgtool imgtool
  build_module images ./pause pause
  build_module images ./demo demo
  make_image "$BIN/pause" "$PAUSE_IMAGE" /pause pause.tar 65535:65535
  make_image "$BIN/demo" "$DEMO_IMAGE" /demo demo.tar
}
build_coredns() {
  build_module coredns . coredns
  make_image "$BIN/coredns" "$COREDNS_IMAGE" /coredns coredns.tar 0:0
}
build_metrics_server() {
  build_module metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server metrics-server \
    "-X k8s.io/client-go/pkg/version.gitVersion=v0.8.0"
  make_image "$BIN/metrics-server" "$METRICS_SERVER_IMAGE" /metrics-server metrics-server.tar 1000:1000
}
build_prometheus_adapter() {
  build_module prometheus-adapter sigs.k8s.io/prometheus-adapter/cmd/adapter prometheus-adapter
  make_image "$BIN/prometheus-adapter" "$PROMETHEUS_ADAPTER_IMAGE" /adapter prometheus-adapter.tar
}

# Prometheus with only the kubernetes service discovery compiled in (build tags), which
# is what a cluster needs and a fraction of the full build.
build_prometheus() {
  mkdir -p "$BIN"
  (cd "$MODULES/prometheus" && timed "build prometheus" go build -trimpath \
    -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=3.16.0" \
    -o "$BIN/prometheus" github.com/prometheus/prometheus/cmd/prometheus)
  make_image "$BIN/prometheus" "$PROMETHEUS_IMAGE" /prometheus prometheus.tar
}

build_keda() {
  local ld="-X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}"
  build_module keda github.com/kedacore/keda/v2/cmd/operator keda-operator "$ld"
  build_module keda github.com/kedacore/keda/v2/cmd/adapter keda-adapter "$ld"
  make_image "$BIN/keda-operator" "$KEDA_OPERATOR_IMAGE" /keda keda.tar
  make_image "$BIN/keda-adapter" "$KEDA_METRICS_IMAGE" /keda-adapter keda-metrics-apiserver.tar
}

# keda_config_dir prints KEDA's own manifests directory in the module cache.
keda_config_dir() {
  local dir
  dir=$(cd "$MODULES/keda" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2) || return 1
  echo "$dir/config"
}

# The helm CLI runs on the host (tests install charts with it); no image.
build_helm() {
  build_module helm helm.sh/helm/v3/cmd/helm helm \
    "-X helm.sh/helm/v3/internal/version.version=v3.22.0 -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
}

# build_all [addon...]: the cluster itself plus the images of the selected add-ons.
build_all() {
  local a
  build_images
  build_kubernetes
  for a in "$@"; do
    case $a in
      coredns) build_coredns ;;
      metrics-server) build_metrics_server ;;
      prometheus) build_prometheus ;;
      prometheus-adapter) build_prometheus_adapter ;;
      keda) build_keda ;;
      helm) build_helm ;;
      *) declare -F "build_${a//-/_}" >/dev/null || die "build: unknown add-on $a"
         "build_${a//-/_}" ;;
    esac
  done
}
