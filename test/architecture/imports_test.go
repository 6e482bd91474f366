// Package architecture checks that the code keeps the layering docs/architecture.md
// describes: each package imports only the Tide packages its row there allows.
package architecture

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/tideserve/tide/"

// allowed is docs/architecture.md's "What may import what", package by package
// (the module prefix left off). A package not listed here fails the test: add it
// here and to the document together.
var allowed = map[string][]string{
	// Foundations: no Tide imports.
	"internal/tensor":   nil,
	"internal/jsonwire": nil,
	"internal/loadmem":  nil,
	"internal/loadpace": nil,
	"internal/pickle":   {"internal/loadmem", "internal/loadpace"},
	"internal/metrics":  nil,
	"internal/tracing":  nil,
	"internal/apidocs":  {"internal/model", "internal/tensor"},
	"internal/oip/pb":   nil,
	// Contracts and codecs.
	"internal/model":   {"internal/tensor"},
	"internal/batcher": {"internal/tensor"},
	"internal/oip":     {"internal/tensor", "internal/jsonwire", "internal/model", "internal/oip/pb"},
	// Runtimes: the registry, and one package per format.
	"internal/formats":                {"internal/model", "internal/loadmem", "internal/loadpace"},
	"internal/formats/sklearn":        {"internal/formats", "internal/model", "internal/tensor", "internal/loadmem", "internal/pickle", "internal/formats/xgboost", "internal/formats/treewalk"},
	"internal/formats/lightgbm":       {"internal/formats", "internal/model", "internal/tensor", "internal/loadmem", "internal/loadpace", "internal/formats/treewalk"},
	"internal/formats/xgboost":        {"internal/formats", "internal/model", "internal/tensor", "internal/loadmem", "internal/loadpace", "internal/jsonwire", "internal/formats/treewalk"},
	"internal/formats/treewalk":       nil,
	"internal/formats/onnx":           {"internal/formats", "internal/model", "internal/tensor", "internal/loadmem", "internal/formats/onnx/onnxproto"},
	"internal/formats/onnx/onnxproto": {"internal/tensor"},
	"internal/formats/onnx/onnxtest":  {"internal/tensor", "internal/formats/onnx/onnxproto"},
	"internal/formats/formatstest":    {"internal/formats", "internal/model", "internal/tensor"},
	// Serving a loaded version, and the set of versions.
	"internal/monitor":    {"internal/model", "internal/tensor", "internal/metrics"},
	"internal/serving":    {"internal/model", "internal/batcher", "internal/metrics", "internal/tracing", "internal/tensor", "internal/monitor"},
	"internal/repository": {"internal/formats", "internal/model", "internal/serving", "internal/monitor", "internal/loadmem", "internal/loadpace"},
	// Protocol front ends.
	"internal/server": {"internal/repository", "internal/serving", "internal/oip", "internal/oip/pb", "internal/batcher",
		"internal/metrics", "internal/tracing", "internal/apidocs", "internal/model", "internal/tensor", "internal/jsonwire", "internal/monitor"},
	"internal/activator": {"internal/tracing", "internal/rollout"},
	// The fast scaler: KEDA's side through its generated interface, the pods' through /metrics.
	"internal/autoscaler":                {"internal/autoscaler/externalscaler"},
	"internal/autoscaler/externalscaler": nil,
	// Asynchronous inference: a broker's messages answered through the server's handler.
	"internal/queue": {"internal/metrics"},
	// What the binaries mount.
	"internal/cli": {"internal/server", "internal/repository", "internal/activator", "internal/autoscaler", "internal/queue", "internal/tracing", "internal/monitor", "internal/loadmem", "internal/loadpace",
		"internal/formats", "internal/formats/sklearn", "internal/formats/lightgbm", "internal/formats/xgboost", "internal/formats/onnx"},
	"cmd/tide-server": {"internal/cli"},
	// The operator: its own binary, linking no runtime and nothing of the server.
	"api/v1alpha1":        nil,
	"internal/controller": {"api/v1alpha1", "internal/rollout"},
	"internal/rollout":    nil,
	"cmd/tide-operator":   {"internal/controller"},
	"hack/gen-operator":   nil,
	// The people's CLI and its tools; nothing above may import them.
	"internal/loadgen":         {"internal/oip", "internal/oip/pb", "internal/queue"},
	"internal/loadgen/watch":   nil,
	"internal/loadgen/report":  {"internal/loadgen", "internal/loadgen/watch"},
	"internal/loadgen/session": {"internal/loadgen", "internal/loadgen/report", "internal/loadgen/watch"},
	"internal/image":           nil,
	"internal/profiler":        {"internal/monitor", "internal/repository", "internal/model", "internal/tensor"},
	"cmd/tide":                 {"internal/cli", "internal/image", "internal/loadgen", "internal/loadgen/session", "internal/profiler"},
	// Test helpers and the rest.
	"internal/tensor/tensortest": {"internal/tensor"},
	"internal/servertest":        nil,
	"deploy":                     nil,
	"bench/startup":              nil,
	"bench/loadp99":              nil,
	"bench/trees":                {"internal/formats", "internal/formats/sklearn", "internal/formats/xgboost", "internal/model", "internal/tensor"},
	"test/integration":           nil,
	"test/architecture":          nil,
	"test/docs":                  {"internal/doctest"},
	"internal/doctest":           nil,
	"test/hostile":               {"internal/oip/pb", "internal/servertest"},
}

func TestImportsFollowTheLayers(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		rules, ok := allowed[name]
		if !ok {
			t.Errorf("%s is not in docs/architecture.md's import table (test/architecture): add it to both", name)
			continue
		}
		seen++
		var bad []string
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if dep := strings.TrimPrefix(imp, module); !contains(rules, dep) {
				bad = append(bad, dep)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s imports %s, which its layer may not (docs/architecture.md, What may import what)", name, strings.Join(bad, ", "))
		}
	}
	if seen < 20 {
		t.Fatalf("checked only %d packages: go list found too little", seen)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
