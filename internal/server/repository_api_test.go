package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/oip/pb"
	"github.com/tideserve/tide/internal/repository"
)

func TestRepositoryAPI(t *testing.T) {
	s := newTestServer(t, Options{ModelControl: true}, map[string]formatstest.Spec{"fraud": fraud})
	runCases(t, s, []httpCase{
		{name: "index", path: "/v2/repository/index", wantStatus: 200, wantBody: `[{"name":"fraud","version":"1","state":"READY","reason":""}]`},
		{name: "unload", path: "/v2/repository/models/fraud/unload", wantStatus: 200, wantBody: `{}`},
		{name: "unloaded model answers 503 with why", path: "/v2/models/fraud/infer", body: oneRowFraud, wantStatus: 503, contains: "unloaded through the repository API"},
		{name: "index shows it", path: "/v2/repository/index", wantStatus: 200, contains: `"state":"UNAVAILABLE"`},
		{name: "load", path: "/v2/repository/models/fraud/load", wantStatus: 200, wantBody: `{}`},
		{name: "serves again", path: "/v2/models/fraud/infer", body: oneRowFraud, wantStatus: 200},
		{name: "unknown model", path: "/v2/repository/models/nope/load", wantStatus: 404, contains: "not in the repository"},
		{name: "unknown model unload", path: "/v2/repository/models/nope/unload", wantStatus: 404},
	})
}

// TestLoadFailureThroughTheAPIIs422: a model whose file cannot be loaded is the
// file's fault, not the server's: 422 with the reason (INVALID_ARGUMENT over gRPC),
// not a 500 "internal error".
func TestLoadFailureThroughTheAPIIs422(t *testing.T) {
	s := newTestServer(t, Options{ModelControl: true}, map[string]formatstest.Spec{"fraud": fraud, "broken": {FailLoad: "corrupt file"}})
	runCases(t, s, []httpCase{
		{name: "REST", path: "/v2/repository/models/broken/load", wantStatus: 422, contains: "model failed to load: broken version 1: load model.tlin: corrupt file"},
	})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	_, err := c.RepositoryModelLoad(t.Context(), &pb.RepositoryModelLoadRequest{ModelName: "broken"})
	wantCode(t, err, codes.InvalidArgument, "corrupt file")
}

const oneRowFraud = `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`

// TestModelControlOffByDefault: with no management keys and no --model-control,
// the index is readable but load and unload are refused (403, PermissionDenied
// over gRPC) and nothing changes; the startup summary says so.
func TestModelControlOffByDefault(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	runCases(t, s, []httpCase{
		{name: "index readable", path: "/v2/repository/index", wantStatus: 200, contains: `"state":"READY"`},
		{name: "unload refused", path: "/v2/repository/models/fraud/unload", wantStatus: 403, contains: "model control is off on this server"},
		{name: "load refused", path: "/v2/repository/models/fraud/load", wantStatus: 403, contains: "--model-control"},
		{name: "still serving", path: "/v2/models/fraud/infer", body: oneRowFraud, wantStatus: 200},
	})
	c := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	_, err := c.RepositoryModelUnload(t.Context(), &pb.RepositoryModelUnloadRequest{ModelName: "fraud"})
	wantCode(t, err, codes.PermissionDenied, "model control is off")
	if _, err := c.RepositoryIndex(t.Context(), &pb.RepositoryIndexRequest{}); err != nil {
		t.Errorf("gRPC index: %v", err)
	}
	for _, c := range []struct {
		opts Options
		want Access
	}{
		{Options{}, Access{Inference: "anyone", RepositoryIndex: "anyone", ModelControl: "off"}},
		{Options{ModelControl: true}, Access{Inference: "anyone", RepositoryIndex: "anyone", ModelControl: "anyone"}},
		{Options{APIKeys: []string{"a"}, ModelControl: true}, Access{Inference: "api-keys", RepositoryIndex: "api-keys", ModelControl: "api-keys"}},
		{Options{ManagementKeys: []string{"m"}}, Access{Inference: "anyone", RepositoryIndex: "management-keys", ModelControl: "management-keys"}},
		{Options{DisableRepositoryAPI: true, ModelControl: true}, Access{Inference: "anyone", RepositoryIndex: "off", ModelControl: "off"}},
	} {
		if got := (&Server{opts: c.opts}).Access(); got != c.want {
			t.Errorf("%+v: access %+v, want %+v", c.opts, got, c.want)
		}
	}
}

func TestRepositoryAPIProtectedOrOff(t *testing.T) {
	s := newTestServer(t, Options{ManagementKeys: []string{"k1", "s3cret"}}, map[string]formatstest.Spec{"fraud": fraud})
	for _, c := range []struct {
		header, value string
		want          int
	}{
		{"", "", 401}, {"Authorization", "Bearer wrong", 401}, {"X-API-Key", "s3cre", 401},
		{"Authorization", "Bearer s3cret", 200}, {"authorization", "bearer k1", 200}, {"X-API-Key", "k1", 200},
	} {
		req := httptest.NewRequest("POST", "/v2/repository/index", nil)
		if c.header != "" {
			req.Header.Set(c.header, c.value)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %q → %d, want %d", c.header, c.value, rec.Code, c.want)
		}
	}
	// Inference needs no management key.
	runCases(t, s, []httpCase{{name: "infer", path: "/v2/models/fraud/infer", body: oneRowFraud, wantStatus: 200}})

	off := newTestServer(t, Options{DisableRepositoryAPI: true}, map[string]formatstest.Spec{"fraud": fraud})
	runCases(t, off, []httpCase{
		{name: "disabled", path: "/v2/repository/models/fraud/unload", wantStatus: 404},
		{name: "not advertised", method: "GET", path: "/v2", wantStatus: 200, wantBody: `{"name":"tide","version":"dev","extensions":["binary_tensor_data"]}`},
	})

	// With only inference API keys, the repository API takes them too.
	apiOnly := newTestServer(t, Options{APIKeys: []string{"inf"}}, map[string]formatstest.Spec{"fraud": fraud})
	for key, want := range map[string]int{"": 401, "inf": 200} {
		req := httptest.NewRequest("POST", "/v2/repository/index", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		rec := httptest.NewRecorder()
		apiOnly.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("API keys only, key %q: %d, want %d", key, rec.Code, want)
		}
	}
}

// TestVersionSwapUnderLoadLosesNothing: while clients send requests without pause,
// a new version is written into the repository and picked up by the watcher; every
// request succeeds, answered by the old version until the new one is ready and by
// the new one after.
func TestVersionSwapUnderLoadLosesNothing(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	os.MkdirAll(filepath.Join(dir, "1"), 0o755)
	// Version 1 says 1 for [1,0]; version 2 has opposite weights and says 0.
	formatstest.Write(filepath.Join(dir, "1"), "model", formatstest.Spec{Weights: []float64{1, -1}, DelayMS: 2})
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, Options{}, quietLog())
	s.LoadModels(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go repo.Watch(ctx, 50*time.Millisecond, 0)

	var ok1, ok2, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(oneRowFraud))
				req.Header.Set("X-Request-Id", "swap")
				s.ServeHTTP(rec, req)
				switch {
				case rec.Code == 200 && strings.Contains(rec.Body.String(), `"model_version":"1","id":"swap","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[1]}`):
					ok1.Add(1)
				case rec.Code == 200 && strings.Contains(rec.Body.String(), `"model_version":"2","id":"swap","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[0]}`):
					ok2.Add(1)
				default:
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", rec.Code, rec.Body.String()))
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	os.MkdirAll(filepath.Join(dir, "2"), 0o755)
	formatstest.Write(filepath.Join(dir, "2"), "model", formatstest.Spec{Weights: []float64{-1, 1}, DelayMS: 2})
	deadline := time.Now().Add(10 * time.Second)
	for ok2.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("answered by version 1: %d, by version 2: %d, failed: %d", ok1.Load(), ok2.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during the swap; first: %v", failed.Load(), firstFailure.Load())
	}
	if ok1.Load() == 0 || ok2.Load() < 200 {
		t.Fatalf("the swap did not happen under load")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/models/m", nil))
	if !strings.Contains(rec.Body.String(), `"versions":["2"]`) {
		t.Fatalf("metadata after the swap: %s", rec.Body.String())
	}
	_ = http.StatusOK
}

// TestManagementAddrConfinesModelControl: with a management address, load and
// unload are served there alone (so that a network policy on that port decides
// who may change what is served); the main port and gRPC refuse them with where
// to go, and the index stays readable on both.
func TestManagementAddrConfinesModelControl(t *testing.T) {
	s := newTestServer(t, Options{ModelControl: true, ManagementAddr: "127.0.0.1:0"}, map[string]formatstest.Spec{"fraud": fraud})
	main := "http://" + serveInBackground(t, s)
	waitReady(t, main)
	// Serve listens on the management address before it serves HTTP at all.
	if s.ManagementAddr() == "" {
		t.Fatal("ready without the management listener")
	}
	mgmt := "http://" + s.ManagementAddr()
	post := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Post(url, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		url, contains string
		status        int
	}{
		{main + "/v2/repository/models/fraud/unload", "management port (--management-addr)", 404},
		{main + "/v2/repository/models/fraud/load", "management port (--management-addr)", 404},
		{main + "/v2/repository/index", `"state":"READY"`, 200},
		{mgmt + "/v2/repository/index", `"state":"READY"`, 200},
		{mgmt + "/v2/repository/models/fraud/unload", `{}`, 200},
		{main + "/v2/repository/index", `"state":"UNAVAILABLE"`, 200},
		{mgmt + "/v2/repository/models/fraud/load", `{}`, 200},
		{mgmt + "/v2/models/fraud/infer", "no route", 404}, // nothing else lives there
		{mgmt + "/v2/../v2/repository/index", "no route", 404},
		{main + "/v2/models/fraud/infer", "", 400}, // inference stays on the main port (no body: 400)
	} {
		status, body := post(c.url)
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("POST %s: %d %s; want %d containing %q", c.url, status, body, c.status, c.contains)
		}
	}
	cl := pb.NewGRPCInferenceServiceClient(dialGRPC(t, s))
	_, err := cl.RepositoryModelUnload(t.Context(), &pb.RepositoryModelUnloadRequest{ModelName: "fraud"})
	wantCode(t, err, codes.Unimplemented, "management port")
	if _, err := cl.RepositoryIndex(t.Context(), &pb.RepositoryIndexRequest{}); err != nil {
		t.Errorf("gRPC index: %v", err)
	}
}
