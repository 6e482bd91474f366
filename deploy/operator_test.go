package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const operatorChart = "helm/tide-operator"

// TestOperatorGeneratedFilesAreCurrent: the kubectl bundle and the spec
// reference match the chart and the CRD (hack/gen-operator -check), and the CRD,
// deepcopy and ClusterRole rules match the Go types and RBAC markers
// (controller-gen run into a scratch copy).
func TestOperatorGeneratedFilesAreCurrent(t *testing.T) {
	helm := helmBinary(t)
	run := func(dir string, env []string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	goTool := filepath.Join(goRoot(t), "bin", "go")
	run("..", []string{"TIDE_HELM=" + helm}, goTool, "run", "./hack/gen-operator", "-check")

	gen := filepath.Join(t.TempDir(), "controller-gen")
	run("../hack/tools/controller-gen", nil, goTool, "build", "-o", gen, "sigs.k8s.io/controller-tools/cmd/controller-gen")
	out := t.TempDir()
	run("..", nil, gen, "crd", "paths=./api/...", "output:crd:dir="+filepath.Join(out, "crds"))
	run("..", nil, gen, "rbac:roleName=tide-operator", "paths=./internal/controller/...", "output:rbac:dir="+filepath.Join(out, "rbac"))
	for fresh, committed := range map[string]string{
		filepath.Join(out, "crds", "serving.tideserve.io_models.yaml"): operatorChart + "/crds/serving.tideserve.io_models.yaml",
		filepath.Join(out, "rbac", "role.yaml"):                        operatorChart + "/files/role.yaml",
	} {
		want, _ := os.ReadFile(fresh)
		have, _ := os.ReadFile(committed)
		if len(want) == 0 || !bytes.Equal(want, have) {
			t.Errorf("%s is stale against the Go types and markers: run hack/gen-operator.sh", committed)
		}
	}
}

func goRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestOperatorChart: the operator runs least-privileged with leader election,
// its ClusterRole is the generated one, and two replicas without leader
// election are refused.
func TestOperatorChart(t *testing.T) {
	helm := helmBinary(t)
	render := func(args ...string) ([]byte, error) {
		cmd := exec.Command(helm, append([]string{"template", "op", operatorChart, "--namespace", "tide-system", "--kube-version", kubeVersion}, args...)...)
		return cmd.CombinedOutput()
	}
	out, err := render("--set", "defaultModelImage=reg/tide:v9")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var deploy appsv1.Deployment
	var role rbacv1.ClusterRole
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var head struct{ Kind string }
		_ = yaml.Unmarshal(doc, &head)
		switch head.Kind {
		case "Deployment":
			if err := yaml.Unmarshal(doc, &deploy); err != nil {
				t.Fatal(err)
			}
		case "ClusterRole":
			if err := yaml.Unmarshal(doc, &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--leader-elect=true", "--default-image=reg/tide:v9", "--metrics-bind-address=:8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	if *c.SecurityContext.ReadOnlyRootFilesystem != true || *deploy.Spec.Template.Spec.SecurityContext.RunAsNonRoot != true {
		t.Error("operator container is not locked down")
	}
	secrets := false
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			if res == "secrets" {
				secrets = true
				// It reads the API-key Secret a Model names and creates its router's
				// control token once; it never lists, watches, updates or deletes one.
				if strings.Join(r.Verbs, ",") != "create,get" {
					t.Errorf("secrets verbs %v: want only create and get", r.Verbs)
				}
			}
			if res == "*" {
				t.Errorf("wildcard rule %+v", r)
			}
		}
	}
	if !secrets || len(role.Rules) < 8 {
		t.Errorf("cluster role rules %+v", role.Rules)
	}
	if out, err := render("--set", "replicas=2", "--set", "leaderElection=false"); err == nil || !strings.Contains(string(out), "needs leaderElection") {
		t.Errorf("two replicas without leader election rendered: %v\n%s", err, out)
	}
}
