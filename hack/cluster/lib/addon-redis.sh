# shellcheck shell=bash
# Add-on redis: Debian's redis-server (Redis 7, whose consumer groups report the lag
# KEDA's redis-streams scaler reads), packaged FROM scratch with the dynamic loader and
# the shared libraries ldd lists for it (imgtool -libs), as the ONNX image carries its
# own. The queue worker's Redis Streams proof on the cluster runs against it. One
# replica, no persistence: a test broker.

ALL_ADDONS+=" redis"

REDIS_IMAGE=tide.local/redis:debian

# build_redis: the image is made from the host's package, installed here when missing
# (the version is Debian's: the image tag says where it came from, the digest what).
build_redis() {
  if ! command -v redis-server >/dev/null; then
    say "host packages: installing redis-server (for the redis add-on's image)"
    DEBIAN_FRONTEND=noninteractive timed "apt-get install redis-server" \
      apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends redis-server >/dev/null
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
  mkdir -p "$IMAGES"
  "$BIN/imgtool" -libs -user 65534:65534 "$(command -v redis-server)" "$REDIS_IMAGE" /redis-server "$IMAGES/redis.tar" >/dev/null \
    || die "image $REDIS_IMAGE: imgtool failed"
}

addon_redis() {
  sed "s#REDIS_IMAGE#$REDIS_IMAGE#" "$HARNESS/manifests/redis.yaml" | kctl apply -f - >/dev/null || die "apply redis manifests"
  rollout redis redis 180s
  # Ready means the port is open; the version line proves the loader found every
  # library the image carries.
  say "$(kctl -n redis exec deploy/redis -- /redis-server --version)" || die "redis-server in the image does not run"
}
