package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/servertest"
)

// startLogged starts cmd with its output in dir/name.log, kills it when the
// test ends, and shows the log's last 4 KB if the test failed.
func startLogged(t *testing.T, dir, name string, cmd *exec.Cmd) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (last 4 KB):\n%s", name, tail(b, 4096))
		}
	})
}

// promProcess is a real Prometheus the test started.
type promProcess struct {
	addr string
}

// startPrometheus runs Prometheus scraping target every second. With rules it
// also evaluates them every second and waits until they are loaded. The
// target is labelled as a pod of the release "fraud" in namespace "ml", so the
// chart's rules, which select on those labels, match it.
func startPrometheus(t *testing.T, bin, target string, rules []byte) *promProcess {
	t.Helper()
	dir := t.TempDir()
	addr := servertest.FreeAddr(t)
	ruleFiles := ""
	if rules != nil {
		if err := os.WriteFile(filepath.Join(dir, "rules.yml"), rules, 0o644); err != nil {
			t.Fatal(err)
		}
		ruleFiles = "rule_files: [rules.yml]\n"
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
%sscrape_configs:
  - job_name: tide
    static_configs:
      - targets: [%q]
        labels: {namespace: ml, pod: fraud-tide-0}
`, ruleFiles, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startLogged(t, dir, "prometheus", exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr))
	p := &promProcess{addr: addr}
	waitFor(t, 20*time.Second, "prometheus ready (and its rules loaded)", func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/api/v1/rules")
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && (rules == nil || bytes.Contains(b, []byte(`"type":"alerting"`))), string(b)
	})
	return p
}

// query is an instant query's single value as Prometheus writes it.
func (p *promProcess) query(q string) (string, error) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	if len(out.Data.Result) != 1 || len(out.Data.Result[0].Value) != 2 {
		return "", fmt.Errorf("%d series", len(out.Data.Result))
	}
	return fmt.Sprint(out.Data.Result[0].Value[1]), nil
}

// value is query's value as a number, -1 when there is none.
func (p *promProcess) value(q string) float64 {
	s, err := p.query(q)
	if err != nil {
		return -1
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}

// alertState is the alert's state in Prometheus's own rule evaluation:
// inactive, pending or firing.
func (p *promProcess) alertState(name string) string {
	resp, err := http.Get("http://" + p.addr + "/api/v1/rules?type=alert")
	if err != nil {
		return "unknown"
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name  string `json:"name"`
					State string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return "unknown"
	}
	for _, g := range out.Data.Groups {
		for _, r := range g.Rules {
			if r.Name == name {
				return r.State
			}
		}
	}
	return "absent"
}

// vector is an instant query's series, by their "backend" label.
func (p *promProcess) vector(q string) (map[string]float64, error) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	v := map[string]float64{}
	for _, r := range out.Data.Result {
		if len(r.Value) == 2 {
			f, err := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
			if err != nil {
				return nil, err
			}
			v[r.Metric["backend"]] = f
		}
	}
	return v, nil
}
