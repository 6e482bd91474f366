#!/usr/bin/env bash
# Refreshes the cloud providers' CRDs in third_party/cloud-crds, which the e2e
# suite installs to have the project cluster's API server check the EKS and GKE
# overlays (test/e2e/cloud_overlays_test.go).
#
#   hack/cloud-crds/update.sh AWS_LBC_GIT_DIR AWS_LBC_REF INGRESS_GCE_TREE INGRESS_GCE_COMMIT
#
# AWS_LBC_GIT_DIR: a clone of github.com/kubernetes-sigs/aws-load-balancer-controller
#   (its published CRDs, config/crd/bases, are copied at AWS_LBC_REF).
# INGRESS_GCE_TREE: a work tree of github.com/kubernetes/ingress-gce at
#   INGRESS_GCE_COMMIT with its vendor/ directory. ingress-gce builds its CRDs in
#   code at start; ingress-gce-crds.go runs that code there and prints them.
set -euo pipefail
[ $# -eq 4 ] || { sed -n 2,13p "$0"; exit 2; }
aws_git=$1 aws_ref=$2 gce_tree=$3 gce_commit=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/third_party/cloud-crds

mkdir -p "$out/aws-load-balancer-controller" "$out/ingress-gce"
aws_commit=$(git --git-dir "$aws_git" rev-parse "$aws_ref^{commit}")
for kind in ingressclassparams targetgroupbindings; do
	git --git-dir "$aws_git" show "$aws_commit:config/crd/bases/elbv2.k8s.aws_$kind.yaml" >"$out/aws-load-balancer-controller/$kind.yaml"
done
git --git-dir "$aws_git" show "$aws_commit:LICENSE" >"$out/aws-load-balancer-controller/LICENSE"
cat >"$out/aws-load-balancer-controller/SOURCE.md" <<SRC
# AWS Load Balancer Controller CRDs

From https://github.com/kubernetes-sigs/aws-load-balancer-controller, $aws_ref
(commit $aws_commit), config/crd/bases/elbv2.k8s.aws_{ingressclassparams,targetgroupbindings}.yaml,
unchanged. Apache License 2.0 (LICENSE beside this file). Refreshed by
hack/cloud-crds/update.sh.
SRC

mkdir -p "$gce_tree/cmd/tide-ingress-gce-crds"
cp "$root/hack/cloud-crds/ingress-gce-crds.go" "$gce_tree/cmd/tide-ingress-gce-crds/main.go"
sed -i '/^\/\/go:build ignore$/d' "$gce_tree/cmd/tide-ingress-gce-crds/main.go"
(cd "$gce_tree" && GOFLAGS=-mod=vendor go run ./cmd/tide-ingress-gce-crds) 2>/dev/null >"$out/ingress-gce/crds.yaml"
rm -r "$gce_tree/cmd/tide-ingress-gce-crds"
cp "$gce_tree/LICENSE" "$out/ingress-gce/LICENSE"
cat >"$out/ingress-gce/SOURCE.md" <<SRC
# GKE Ingress CRDs: BackendConfig (cloud.google.com v1, v1beta1), FrontendConfig (networking.gke.io v1beta1)

ingress-gce, the GKE Ingress controller (https://github.com/kubernetes/ingress-gce),
publishes no YAML for these: it installs them at start from its generated OpenAPI
definitions (pkg/apis/*/zz_generated.openapi.go through pkg/crd). crds.yaml is
what that code produces at commit $gce_commit, printed by
hack/cloud-crds/ingress-gce-crds.go (run inside that commit's tree by
hack/cloud-crds/update.sh). Apache License 2.0 (LICENSE beside this file).
SRC
echo "wrote $out"
