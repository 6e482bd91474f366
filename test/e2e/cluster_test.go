//go:build e2e

// Package e2e holds Tide's end-to-end tests. They run against whatever cluster
// KUBECONFIG points at, through kubectl, so the same tests run on the project's own
// hermetic cluster (hack/cluster, used by CI) and on kind or minikube (docs/cluster.md).
//
// Environment:
//
//	KUBECONFIG                       the cluster (required)
//	TIDE_E2E_KUBECTL                 kubectl binary (default: kubectl on PATH)
//	TIDE_E2E_DEMO_IMAGE              the demo workload image (default tide.local/demo:v1)
//	TIDE_E2E_LOAD_IMAGE              optional command that loads an image archive into
//	                                 the cluster, e.g. "kind load image-archive"; run
//	                                 with TIDE_E2E_DEMO_IMAGE_TAR appended
//	TIDE_E2E_DEMO_IMAGE_TAR          archive of the demo image (for TIDE_E2E_LOAD_IMAGE)
//	TIDE_E2E_HOST_REACHES_CLUSTER_IP "1" when this host routes to Service ClusterIPs (it
//	                                 is a node, as on hack/cluster); the NodePort path is
//	                                 always tested
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// cluster is the connection to the cluster under test, shared by all tests.
type cluster struct {
	kubectlBin string
	kubeconfig string
	demoImage  string
	namespace  string // created for this run, deleted afterwards
}

var testCluster *cluster

func TestMain(m *testing.M) {
	c, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	testCluster = c
	code := m.Run()
	if err := c.teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func setup() (*cluster, error) {
	c := &cluster{
		kubectlBin: envOr("TIDE_E2E_KUBECTL", "kubectl"),
		kubeconfig: os.Getenv("KUBECONFIG"),
		demoImage:  envOr("TIDE_E2E_DEMO_IMAGE", "tide.local/demo:v1"),
	}
	if c.kubeconfig == "" {
		return nil, fmt.Errorf("KUBECONFIG is not set: point it at the cluster to test (hack/cluster/cluster kubeconfig)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if load := os.Getenv("TIDE_E2E_LOAD_IMAGE"); load != "" {
		archive := os.Getenv("TIDE_E2E_DEMO_IMAGE_TAR")
		if archive == "" {
			return nil, fmt.Errorf("TIDE_E2E_LOAD_IMAGE is set but TIDE_E2E_DEMO_IMAGE_TAR is not")
		}
		args := append(strings.Fields(load), archive)
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("load image %s: %w: %s", archive, err, out)
		}
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return nil, fmt.Errorf("namespace suffix: %w", err)
	}
	c.namespace = "tide-e2e-" + hex.EncodeToString(suffix)
	if _, err := c.run(ctx, "", "create", "namespace", c.namespace); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := c.run(ctx, "", "delete", "namespace", c.namespace, "--wait=true", "--timeout=150s")
	return err
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// run executes kubectl in the test namespace with stdin (may be empty) and returns stdout.
func (c *cluster) run(ctx context.Context, stdin string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", c.kubeconfig}, args...)
	if c.namespace != "" {
		full = append([]string{"--namespace", c.namespace}, full...)
	}
	cmd := exec.CommandContext(ctx, c.kubectlBin, full...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// kubectl runs kubectl and fails the test on error.
func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(t.Context(), "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *cluster) apply(t *testing.T, manifest string) {
	t.Helper()
	if _, err := c.run(t.Context(), manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// jsonpath reads one field of an object; a missing object or field reads as "".
func (c *cluster) jsonpath(ctx context.Context, object, path string) string {
	out, err := c.run(ctx, "", "get", object, "-o", "jsonpath="+path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// eventually polls cond every interval until it returns true or timeout passes.
func eventually(t *testing.T, what string, timeout, interval time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(interval):
		}
	}
}

// httpGet fetches url from the host and returns the body of a 200 response.
func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

func hostPort(host, port string) string { return net.JoinHostPort(host, port) }

// servingPods counts a release's Tide pods, terminating ones included (-1 when
// the API cannot be read). A Deployment scaled to zero has status.replicas 0 while
// its last pod drains, and that pod still serves: kube-proxy sends a Service's
// traffic to serving, terminating endpoints when no other is ready. A test of the
// wake from zero waits for none.
func (c *cluster) servingPods(t *testing.T, release string) int {
	out, err := c.run(t.Context(), "", "get", "pods", "-l", "app.kubernetes.io/name=tide,app.kubernetes.io/instance="+release, "-o", "name")
	if err != nil {
		return -1
	}
	return len(strings.Fields(out))
}
