package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
)

func serverWithConfig(t *testing.T, opts Options, spec formatstest.Spec, config string) *Server {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	os.MkdirAll(dir, 0o755)
	if _, err := formatstest.Write(dir, "model", spec); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644)
	}
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, opts, quietLog())
	s.LoadModels(context.Background())
	t.Cleanup(s.repo.Close)
	return s
}

func predict(s *Server, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

const oneRow = `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`

func TestOverloadIsShedWith429(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 300}
	s := serverWithConfig(t, Options{}, slow, "batching:\n  max_inflight: 1\n  max_queue: 1\n")
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ { // one runs, one queues
		wg.Add(1)
		go func() { defer wg.Done(); codes <- predict(s, oneRow, nil).Code }()
		time.Sleep(30 * time.Millisecond)
	}
	rec := predict(s, oneRow, nil)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "overloaded") {
		t.Fatalf("third request: %d %q Retry-After=%q", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("admitted request got %d", c)
		}
	}
	m := httptest.NewRecorder()
	s.ServeHTTP(m, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(m.Body.String(), `tide_shed_requests_total{model="m"} 1`) {
		t.Error("shed request not counted")
	}
	if !strings.Contains(m.Body.String(), `tide_requests_total{code="429",model="m",protocol="oip-rest"} 1`) {
		t.Error("429 not counted in requests")
	}
}

func TestRequestTimeoutEndsQueuedWork(t *testing.T) {
	slow := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 400}
	s := serverWithConfig(t, Options{}, slow, "batching:\n  max_inflight: 1\n  max_queue: 4\n")
	go predict(s, oneRow, nil) // holds the only run slot
	time.Sleep(30 * time.Millisecond)
	start := time.Now()
	rec := predict(s, oneRow, map[string]string{"Request-Timeout": "50ms"})
	if rec.Code != http.StatusGatewayTimeout || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("queued past its deadline: %d %s after %s", rec.Code, rec.Body.String(), time.Since(start))
	}
	for _, bad := range []string{"soon", "-5ms", "0"} {
		if rec := predict(s, oneRow, map[string]string{"Request-Timeout": bad}); rec.Code != 400 {
			t.Errorf("Request-Timeout %q: %d, want 400", bad, rec.Code)
		}
	}
	if rec := predict(s, oneRow, map[string]string{"Request-Timeout": "2000"}); rec.Code != 200 {
		t.Errorf("Request-Timeout in ms: %d %s", rec.Code, rec.Body.String())
	}
}

func TestDynamicBatchingThroughServer(t *testing.T) {
	model := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 20}
	s := serverWithConfig(t, Options{}, model, "batching:\n  max_batch_size: 8\n  max_queue_delay: 30ms\n  max_inflight: 1\n  max_queue: 64\n")
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`
			want := `"data":[1]`
			if i%2 == 1 {
				body = `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[0,1]}]}`
				want = `"data":[0]`
			}
			rec := predict(s, body, nil)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
				t.Errorf("request %d: %d %s", i, rec.Code, rec.Body.String())
			}
		}(i)
	}
	wg.Wait()
	m := httptest.NewRecorder()
	s.ServeHTTP(m, httptest.NewRequest("GET", "/metrics", nil))
	body := m.Body.String()
	if !strings.Contains(body, `tide_batch_rows_sum{model="m"} 16`) {
		t.Fatalf("batch rows not recorded:\n%s", grepLines(body, "tide_batch_rows"))
	}
	if strings.Contains(body, `tide_batch_rows_count{model="m"} 16`) {
		t.Fatalf("16 requests ran as 16 model runs: nothing was batched")
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A model that panics inside a batched run fails the requests of that batch as
// a panic in a direct run does (500 "internal error", the panic logged): it must
// not take the process down from the run's goroutine, nor leave the batch's
// callers waiting. The next batch is served.
func TestBatchedRunPanicIsContained(t *testing.T) {
	bad := 7.0
	model := formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 5, PanicOn: &bad}
	s := serverWithConfig(t, Options{}, model, "batching:\n  max_batch_size: 8\n  max_queue_delay: 20ms\n  max_inflight: 1\n  max_queue: 64\n")
	good := `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`
	poison := `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[7,0]}]}`
	statuses := make([]int, 4)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := good
			if i == 0 {
				body = poison
			}
			rec := predict(s, body, nil)
			statuses[i] = rec.Code
			if rec.Code == 500 && rec.Body.String() != `{"error":"internal error"}` {
				t.Errorf("request %d: %s, want the generic internal error", i, rec.Body.String())
			}
		}()
	}
	wg.Wait()
	if statuses[0] != 500 {
		t.Errorf("the request that makes the model panic: %d, want 500", statuses[0])
	}
	for i, c := range statuses[1:] {
		if c != 500 && c != 200 {
			t.Errorf("request %d beside it: %d, want 500 (same batch) or 200", i+1, c)
		}
	}
	if rec := predict(s, good, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"data":[1]`) {
		t.Fatalf("after the panic: %d %s", rec.Code, rec.Body.String())
	}
	// gRPC: the same panic, contained by its interceptor into Internal.
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	_, err := c.ModelInfer(t.Context(), inferReq("m", fp64Input("input", []int64{1, 2}, 7, 0)))
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "testlinear") {
		t.Errorf("gRPC, the panicking input: %v, want Internal without the panic's text", err)
	}
	if _, err := c.ModelInfer(t.Context(), inferReq("m", fp64Input("input", []int64{1, 2}, 1, 0))); err != nil {
		t.Errorf("gRPC after the panic: %v", err)
	}
}
