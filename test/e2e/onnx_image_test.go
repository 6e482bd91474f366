//go:build e2e

package e2e

// Tide's ONNX image on a real cluster: the image `tide image build --onnxruntime-lib`
// makes (a cgo tide, ONNX Runtime, and the loader and shared libraries they need, on
// no base image) is installed with the Helm chart and answers OIP v2 infer requests
// through its Service with the outputs torch gave for the model.
//
// Environment (besides cluster_test.go's and tide_chart_test.go's):
//
//	TIDE_E2E_ONNX_IMAGE_TAR  docker archive of the ONNX image, from
//	                         `tide image build --model internal/formats/onnx/testdata/mlp.onnx
//	                         --onnxruntime-lib /usr/local/lib/tide/libonnxruntime.so.1.24.1
//	                         --tag tide.local/tide:onnx-mlp --output FILE`
//	TIDE_E2E_ONNX_IMAGE      its reference (default tide.local/tide:onnx-mlp)
//
// The archive is loaded with TIDE_E2E_LOAD_IMAGE; the test skips without it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

const mlpFixture = "../../internal/formats/onnx/testdata/mlp.json"

var onnxTestImage = &testImage{tarEnv: "TIDE_E2E_ONNX_IMAGE_TAR", refEnv: "TIDE_E2E_ONNX_IMAGE",
	defaultRef: "tide.local/tide:onnx-mlp",
	hint:       "build it with tide image build --model internal/formats/onnx/testdata/mlp.onnx --onnxruntime-lib PATH"}

// onnxImage loads the ONNX image once and returns its reference.
func onnxImage(t *testing.T) string { return onnxTestImage.ref(t) }

// mlpCases are the MLP's test inputs with torch's outputs for them.
type mlpCases struct {
	Input, Output string
	Cases         []struct {
		Shape       []int64   `json:"shape"`
		Input       []float64 `json:"input"`
		OutputShape []int64   `json:"output_shape"`
		Output      []float64 `json:"output"`
	}
}

// inferFP32 posts one FP32 tensor to an OIP v2 infer URL and returns the named output.
func inferFP32(ctx context.Context, url, input string, shape []int64, data []float64, output string) ([]int64, []float64, error) {
	body, _ := json.Marshal(map[string]any{
		"inputs": []map[string]any{{"name": input, "datatype": "FP32", "shape": shape, "data": data}},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	var r struct {
		Outputs []struct {
			Name  string    `json:"name"`
			Shape []int64   `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("POST %s: body %.200q: %v", url, b, err)
	}
	for _, o := range r.Outputs {
		if o.Name == output {
			return o.Shape, o.Data, nil
		}
	}
	return nil, nil, fmt.Errorf("POST %s: no output %q in %.200q", url, output, b)
}

func TestOnnxImageInferThroughService(t *testing.T) {
	c := testCluster
	image := onnxImage(t)
	raw, err := os.ReadFile(mlpFixture)
	if err != nil {
		t.Fatal(err)
	}
	var mlp mlpCases
	if err := json.Unmarshal(raw, &mlp); err != nil {
		t.Fatal(err)
	}
	repo, tag, _ := strings.Cut(image, ":")
	const name = "onnx"
	c.helm(t, "install", name, chartDir, "--wait", "--timeout", "4m",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag,
		"--set", "model.path=/models/mlp.onnx",
		"--set", "replicaCount=1", "--set", "service.type=NodePort",
		"--set", "resources.requests.cpu=100m",
		"--set", "server.drainDelaySeconds=1", "--set", "server.drainTimeoutSeconds=5")
	helm := helmBin(t)
	t.Cleanup(func() {
		exec.Command(helm, "--kubeconfig", c.kubeconfig, "--namespace", c.namespace, "uninstall", name, "--wait", "--timeout", "2m").Run()
	})
	svc := "service/" + name + "-tide"

	port := c.jsonpath(t.Context(), svc, `{.spec.ports[?(@.name=="http")].nodePort}`)
	if port == "" {
		t.Fatalf("%s has no NodePort", svc)
	}
	type route struct{ via, base string }
	routes := []route{{"NodePort", "http://" + hostPort(c.nodeIP(t), port)}}
	if envOr("TIDE_E2E_HOST_REACHES_CLUSTER_IP", "") == "1" {
		ip := c.jsonpath(t.Context(), svc, "{.spec.clusterIP}")
		servicePort := c.jsonpath(t.Context(), svc, `{.spec.ports[?(@.name=="http")].port}`)
		routes = append(routes, route{"ClusterIP", "http://" + hostPort(ip, servicePort)})
	}
	for _, r := range routes {
		via := r.via
		t.Run(via, func(t *testing.T) {
			url := r.base + "/v2/models/mlp/infer"
			c0 := mlp.Cases[0]
			// kube-proxy programs a new Service a moment after its endpoints are ready.
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
				_, _, err := inferFP32(t.Context(), url, mlp.Input, c0.Shape, c0.Input, mlp.Output)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no answer through the %s in 60 s: %v", via, err)
				}
			}
			for _, tc := range mlp.Cases {
				shape, got, err := inferFP32(t.Context(), url, mlp.Input, tc.Shape, tc.Input, mlp.Output)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(shape, tc.OutputShape) || len(got) != len(tc.Output) {
					t.Fatalf("batch %v: output shape %v (%d values), want %v (%d)", tc.Shape, shape, len(got), tc.OutputShape, len(tc.Output))
				}
				var maxErr float64
				for i := range got {
					maxErr = math.Max(maxErr, math.Abs(got[i]-tc.Output[i]))
				}
				// ONNX Runtime against torch: within 4e-7 on these models (runtime-notes.md).
				if maxErr > 1e-5 {
					t.Errorf("batch %v: max abs error %g against torch", tc.Shape, maxErr)
				}
				t.Logf("%s batch %v: %d outputs, max abs error %.2g against torch", via, tc.Shape, len(got), maxErr)
			}
		})
	}
}
