# shellcheck shell=bash
# Add-on nats: a NATS server with JetStream, the broker of the queue worker's e2e
# proof (autoscaling.mode=queue). Built from its Go module (modules/nats-server),
# static, into an image FROM scratch like the other add-ons. One replica with its
# store on an emptyDir: a test broker, not a production one (docs/queue.md says what
# a production NATS needs). The monitoring port 8222 is what KEDA's nats-jetstream
# scaler reads (/jsz).

ALL_ADDONS+=" nats"

NATS_VERSION=$(awk '$1 == "github.com/nats-io/nats-server/v2" {print $2}' "$MODULES/nats-server/go.mod")
NATS_IMAGE=tide.local/nats:$NATS_VERSION

# build_nats: the binary is named by its version, the name hack/install-test-deps.sh
# gives the same build, so a warm cache serves both.
build_nats() {
  build_module nats-server github.com/nats-io/nats-server/v2 "nats-server-$NATS_VERSION"
  make_image "$BIN/nats-server-$NATS_VERSION" "$NATS_IMAGE" /nats-server nats.tar
}

# nats_jetstream_ready: JetStream answers on the monitoring port, through the API
# server's service proxy (the path KEDA's scaler takes, from another namespace).
nats_jetstream_ready() {
  kctl get --raw "/api/v1/namespaces/nats/services/nats:8222/proxy/jsz" 2>/dev/null | grep -q '"config"'
}

addon_nats() {
  sed "s#NATS_IMAGE#$NATS_IMAGE#" "$HARNESS/manifests/nats.yaml" | kctl apply -f - >/dev/null || die "apply nats manifests"
  rollout nats nats 180s
  wait_for "NATS JetStream answering /jsz" 60 nats_jetstream_ready || die "NATS JetStream does not answer on its monitoring port"
}
