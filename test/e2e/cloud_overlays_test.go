//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cloudCRDs are the providers' published CRDs (third_party/cloud-crds, with
// their source and licence): the AWS Load Balancer Controller's and GKE
// Ingress's, which the eks and gke overlays and values files use.
var cloudCRDs = []string{
	"../../third_party/cloud-crds/aws-load-balancer-controller/ingressclassparams.yaml",
	"../../third_party/cloud-crds/aws-load-balancer-controller/targetgroupbindings.yaml",
	"../../third_party/cloud-crds/ingress-gce/crds.yaml",
}

// TestCloudOverlaysServerDryRun installs the providers' CRDs into the project
// cluster and has its API server check, field by field (kubectl's strict field
// validation: an unknown or mistyped field is an error), every object of the
// EKS and GKE overlays and of the chart rendered with ci/eks-values.yaml and
// ci/gke-values.yaml. No object may be skipped as unserved. A broken copy of
// each provider object is refused, so the check is known to bite.
func TestCloudOverlaysServerDryRun(t *testing.T) {
	c := testCluster
	var names []string
	for _, f := range cloudCRDs {
		out := c.kubectl(t, "apply", "--server-side", "--field-manager=tide-e2e", "-f", f, "-o", "name")
		names = append(names, strings.Fields(out)...)
	}
	t.Cleanup(func() {
		// Cluster-scoped: the namespace's deletion would leave them.
		exec.Command(c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig, "delete", "--ignore-not-found", "--wait=false"}, names...)...).Run()
	})
	c.kubectl(t, append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, names...)...)
	t.Logf("installed %s", strings.Join(names, ", "))

	dryRun := func(t *testing.T, manifests string) int {
		t.Helper()
		var n int
		for _, doc := range strings.Split(manifests, "\n---") {
			api, kind := field(doc, "apiVersion"), field(doc, "kind")
			if kind == "" {
				continue
			}
			if strings.Contains(api, ".") && !c.served(t.Context(), api, kind) {
				t.Errorf("%s %s is not served: its CRD is missing from third_party/cloud-crds", api, kind)
			}
			n++
		}
		if _, err := c.run(t.Context(), manifests, "apply", "--dry-run=server", "--validate=strict", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kustomize := func(t *testing.T, dir string) string {
		t.Helper()
		out, err := c.run(t.Context(), "", "kustomize", dir)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, overlay := range []string{"eks", "eks-alb", "gke"} {
		t.Run("overlay/"+overlay, func(t *testing.T) {
			n := dryRun(t, kustomize(t, "../../deploy/kustomize/overlays/"+overlay))
			t.Logf("%d objects accepted by the API server", n)
		})
	}
	t.Run("component/aws-target-group-binding", func(t *testing.T) {
		dir := t.TempDir()
		abs, _ := filepath.Abs("../../deploy/kustomize")
		rel, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		k := "resources: [" + rel + "/base]\ncomponents: [" + rel + "/components/aws-target-group-binding]\n"
		os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644)
		t.Logf("%d objects accepted by the API server", dryRun(t, kustomize(t, dir)))
	})
	helm := helmBin(t)
	kubeVersion := c.serverVersion(t)
	for _, values := range []string{"eks-values.yaml", "gke-values.yaml"} {
		t.Run("chart/"+values, func(t *testing.T) {
			out := c.renderChart(t, helm, kubeVersion, "cloud", filepath.Join(chartDir, "ci", values))
			t.Logf("%d objects accepted by the API server", dryRun(t, out))
		})
	}

	// Each provider kind, broken once: a mistyped field, a value outside its
	// enum, a field the schema lacks. The API server must name what is wrong.
	broken := []struct{ name, manifest, want string }{
		{"BackendConfig with a string timeout", `
apiVersion: cloud.google.com/v1
kind: BackendConfig
metadata: {name: broken}
spec:
  connectionDraining: {drainingTimeoutSec: "20"}`, "spec.connectionDraining.drainingTimeoutSec"},
		{"FrontendConfig with an unknown field", `
apiVersion: networking.gke.io/v1beta1
kind: FrontendConfig
metadata: {name: broken}
spec:
  redirectToHTTPS: {enabled: true}`, "redirectToHTTPS"},
		{"IngressClassParams with a scheme outside its enum", `
apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata: {name: broken}
spec: {scheme: public}`, "spec.scheme"},
		{"TargetGroupBinding without its Service", `
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata: {name: broken}
spec: {targetGroupARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tide/0"}`, "spec.serviceRef"},
	}
	for _, b := range broken {
		t.Run("refused/"+b.name, func(t *testing.T) {
			_, err := c.run(t.Context(), b.manifest, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("dry run: %v; want a refusal naming %s", err, b.want)
			}
			t.Logf("refused: %s", lineWith(err.Error(), b.want))
		})
	}
}

// lineWith is the first line of s that holds sub, trimmed: the API server's
// reason among kubectl's other lines.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return s
}
