//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTideFeedbackReachesTheReplicaThatPredicted: three replicas of the fraud
// model with monitoring on (a model config in the ConfigMap beside the model),
// each request on a new connection so that the Service spreads them; feedback
// for all of them, sent through the Service to whichever replica, is matched by
// the replica that made each prediction: the chart's headless peers Service and
// --feedback-peers, through the cluster's DNS, on a real cluster.
func TestTideFeedbackReachesTheReplicaThatPredicted(t *testing.T) {
	c := testCluster
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "model.yaml"), []byte("monitoring:\n  window: 100\n"), 0o644)
	c.kubectl(t, "create", "configmap", "fraud-monitored", "--from-file=model.pkl=../../examples/fraud/model.pkl",
		"--from-file=model.yaml="+filepath.Join(dir, "model.yaml"))
	url := c.installFraud(t, "fbpeers", "--set", "autoscaling.mode=none", "--set", "replicaCount=3",
		"--set", "model.source=configMap", "--set", "model.configMap.name=fraud-monitored", "--set", "model.path=/models/model.pkl")
	// A new connection per request: kube-proxy picks a replica for each.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(path, body string) (*http.Response, []byte) {
		t.Helper()
		resp, err := client.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
		return resp, b
	}
	// Where the predictions are: each replica's own count, through the API server.
	kept := func() (holding, total, replicas int) {
		pods := strings.Fields(c.kubectl(t, "get", "pods", "-l", "app.kubernetes.io/instance=fbpeers", "-o", `jsonpath={.items[*].metadata.name}`))
		for _, pod := range pods {
			metrics := c.kubectl(t, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8080/proxy/metrics", c.namespace, pod))
			for _, l := range strings.Split(metrics, "\n") {
				if strings.HasPrefix(l, `tide_feedback_predictions_kept{model="model"}`) {
					var n int
					fmt.Sscanf(strings.Fields(l)[1], "%d", &n)
					total += n
					if n > 0 {
						holding++
					}
				}
			}
		}
		return holding, total, len(pods)
	}
	// Rounds of 20 until at least two replicas hold predictions: helm's --wait
	// sees the pods Ready before the node's Service rules list all three (CI once
	// sent 60 requests in the second after install and all reached one replica),
	// and spreading them is the Service's job, not what this test is about.
	var items []string
	holding, total, replicas := 0, 0, 0
	for deadline := time.Now().Add(time.Minute); ; {
		for i, end := len(items), len(items)+20; i < end; i++ {
			resp, _ := post("/predict", fmt.Sprintf(`{"feature1": %g, "feature2": %g}`, float64(i%7)-3, float64(i%5)-2))
			items = append(items, fmt.Sprintf(`{"id": %q, "label": %d}`, resp.Header.Get("X-Request-Id"), i%2))
		}
		holding, total, replicas = kept()
		if total != len(items) {
			t.Fatalf("%d predictions kept of %d made, on %d of %d replicas", total, len(items), holding, replicas)
		}
		if holding >= 2 && len(items) >= 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d predictions kept on %d of %d replicas after a minute; want them spread over at least 2", total, holding, replicas)
		}
	}
	n := len(items)
	_, body := post("/v2/models/model/feedback", "["+strings.Join(items, ",")+"]")
	var ans struct{ Counts map[string]int }
	if err := json.Unmarshal(body, &ans); err != nil || ans.Counts["ok"] != n {
		t.Fatalf("feedback for %d predictions kept on %d replicas, sent to one: %s", n, holding, body)
	}
	t.Logf("%d predictions on %d of %d replicas; feedback through the Service: %v", n, holding, replicas, ans.Counts)
}
