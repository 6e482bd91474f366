package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tideserve/tide/internal/servertest"
)

const fraudModel = "../../internal/server/testdata/fraud_logreg.joblib"

// TestServeProcess runs `tide-server serve model.joblib` as a pod would: it answers the
// tutorial's request, and SIGTERM drains it to exit status 0.
func TestServeProcess(t *testing.T) {
	p := servertest.Serve(t, servertest.Build(t), fraudModel, "--log-format", "json")
	cmd := p.Cmd
	resp, err := http.Post("http://"+p.HTTP+"/predict", "application/json", strings.NewReader(`{"feature1": 0.5, "feature2": -1.2}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"prediction":[0]}` {
		t.Fatalf("predict: %s", body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, p.Logs())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(p.Logs(), `"msg":"drained, exiting"`) {
		t.Errorf("no drain log line in:\n%s", p.Logs())
	}
}

// TestServeErrors: a user's mistake is one line on stderr and a non-zero exit.
func TestServeErrors(t *testing.T) {
	bin := servertest.Build(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "evil.pkl"), []byte("cposix\nsystem\n(S'echo pwned'\ntR."), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "serve takes one PATH"},
		{[]string{"serve", filepath.Join(dir, "missing.pkl")}, "no such file"},
		{[]string{"serve", "--grpc-addr", "", "--http-addr", "nonsense", filepath.Join(dir, "evil.pkl")}, "listen on nonsense"},
		{[]string{"serve", "--log-level", "loud", filepath.Join(dir, "evil.pkl")}, "--log-level"},
		{[]string{"serve", "--bogus", "x"}, "unknown flag: --bogus"},
		{[]string{"serve", "--load-memory-budget", "lots", filepath.Join(dir, "evil.pkl")}, `--load-memory-budget: "lots" is not a size`},
		{[]string{"serve", "--load-cpu-share", "2", filepath.Join(dir, "evil.pkl")}, `--load-cpu-share: CPU share "2" is out of range`},
		{[]string{"serve", "--load-cpu-share", "most", filepath.Join(dir, "evil.pkl")}, `--load-cpu-share: "most" is not a CPU share`},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, c.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		msg := strings.TrimSpace(stderr.String())
		if err == nil || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("tide %v: err=%v stderr=%q, want one line with %q", c.args, err, msg, c.want)
		}
	}
	// A malicious pickle: the process keeps serving, reports the model as failed,
	// and names the refused class; nothing runs.
	p := servertest.Start(t, bin, filepath.Join(dir, "evil.pkl"))
	var got string
	for i := 0; i < 100; i++ {
		resp, err := http.Get(fmt.Sprintf("http://%s/v2/models/evil/ready", p.HTTP))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if strings.Contains(p.Logs(), "model failed to load") {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(got, "503") || !strings.Contains(p.Logs(), "posix.system") {
		t.Fatalf("evil pickle: ready=%q stderr:\n%s", got, p.Logs())
	}
}

// TestInvokedAsTide: in the image /usr/local/bin/tide links to tide-server, so an
// old manifest's "tide activator" runs the production binary, and "tide load" there
// says where the load generator went (exit 2, one line).
func TestInvokedAsTide(t *testing.T) {
	bin := servertest.Build(t)
	link := filepath.Join(t.TempDir(), "tide")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(link, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "tide-server dev" {
		t.Errorf("tide version through the link: %q, %v; want tide-server dev", out, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(link, "load", "-c", "1", "http://127.0.0.1:1/predict")
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	msg := strings.TrimSpace(stderr.String())
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(msg, `run "tide load"`) || strings.Contains(msg, "\n") {
		t.Errorf("tide load in the image: %v, stderr %q; want exit 2 and one line pointing at the tide CLI", err, msg)
	}
}

// TestSecureDefaults: the startup log states who may do what, with model control
// off unless configured, and an unconfigured unload is refused. (test/hostile
// replays the blank-key refusals.)
func TestSecureDefaults(t *testing.T) {
	p := servertest.Serve(t, servertest.Build(t), fraudModel, "--log-format", "json")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Logs(), `"msg":"access"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.Logs(), `"inference":"anyone","repository_index":"anyone","model_control":"off"`) {
		t.Fatalf("no access summary with model control off in the startup log:\n%s", p.Logs())
	}
	resp, err := http.Post("http://"+p.HTTP+"/v2/repository/models/fraud_logreg/unload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unload without configuration: %d, want 403", resp.StatusCode)
	}
}
