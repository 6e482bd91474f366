# shellcheck shell=bash
# Add-on traefik: Traefik, the cluster's ingress and Gateway API controller, so that
# the chart's Ingress and HTTPRoute are routed by a real controller (e2e:
# test/e2e/ingress_test.go). Built from its Go module (modules/traefik) into an
# image FROM scratch like the other add-ons; the Gateway API's standard CRDs come
# from the sigs.k8s.io/gateway-api module that Traefik's build pins. One replica:
# a cluster's front door for tests, not a production edge.

ALL_ADDONS+=" traefik"

TRAEFIK_VERSION=$(awk '$1 == "github.com/traefik/traefik/v3" {print $2} $1 == "require" && $2 == "github.com/traefik/traefik/v3" {print $3}' "$MODULES/traefik/go.mod")
TRAEFIK_IMAGE=tide.local/traefik:$TRAEFIK_VERSION
# Where the cluster's entrypoint "web" is reached from outside: every node's
# address at this NodePort.
TRAEFIK_NODE_PORT=30880

build_traefik() {
  build_module traefik github.com/traefik/traefik/v3/cmd/traefik traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v}"
  make_image "$BIN/traefik" "$TRAEFIK_IMAGE" /traefik traefik.tar
}

# gateway_api_crds_dir prints the standard channel's CRDs in the module cache.
gateway_api_crds_dir() {
  local dir
  dir=$(cd "$MODULES/traefik" && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api) || return 1
  echo "$dir/config/crd/standard"
}

traefik_gateway_programmed() {
  kctl -n traefik get gateway traefik -o jsonpath='{.status.conditions[?(@.type=="Programmed")].status}' | grep -qx True
}

# traefik_answers: the entrypoint answers on the node port (404: no route matches
# the probe's host), so the path from outside the cluster through kube-proxy works.
traefik_answers() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: probe.invalid' "http://$(node_ip):$TRAEFIK_NODE_PORT/")" = 404 ]
}

addon_traefik() {
  local crds
  crds=$(gateway_api_crds_dir) || die "Gateway API module not in the module cache: run build"
  # Server-side apply: the CRDs are too large for the client-side last-applied annotation.
  kctl apply --server-side --force-conflicts -f "$crds" >/dev/null || die "apply the Gateway API CRDs"
  kctl wait --for=condition=Established crd --all --timeout=60s >/dev/null || die "Gateway API CRDs not Established"
  sed -e "s#TRAEFIK_IMAGE#$TRAEFIK_IMAGE#" -e "s#TRAEFIK_NODE_PORT#$TRAEFIK_NODE_PORT#" "$HARNESS/manifests/traefik.yaml" \
    | kctl apply -f - >/dev/null || die "apply traefik manifests"
  rollout traefik traefik 180s
  wait_for "Gateway traefik/traefik Programmed" 60 traefik_gateway_programmed || die "Traefik does not program its Gateway"
  wait_for "Traefik answering on node port $TRAEFIK_NODE_PORT" 60 traefik_answers || die "Traefik does not answer on its node port"
}
