package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tideserve/tide/internal/formats/formatstest"
	"github.com/tideserve/tide/internal/repository"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestServer serves a repository folder with the given test models, loaded.
func newTestServer(t testing.TB, opts Options, models map[string]formatstest.Spec) *Server {
	t.Helper()
	root := t.TempDir()
	for name, spec := range models {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := formatstest.Write(dir, "model", spec); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := repository.Open(root, repository.Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := New(repo, opts, quietLog())
	s.LoadModels(context.Background())
	return s
}

var fraud = formatstest.Spec{Weights: []float64{1, -1}, Bias: 0}

// testRequestID is the X-Request-Id runCases sends; OIP answers without an id of
// their own carry it.
const testRequestID = "t-1"

type httpCase struct {
	name       string
	method     string
	path       string
	body       string
	wantStatus int
	wantBody   string // exact, if set
	contains   string // substring, if set
}

func runCases(t *testing.T, h http.Handler, cases []httpCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, c.path, strings.NewReader(c.body))
			req.Header.Set("X-Request-Id", testRequestID)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Body.String()
			if id := rec.Header().Get("X-Request-Id"); id != testRequestID {
				t.Fatalf("X-Request-Id %q in the answer, want the request's %q", id, testRequestID)
			}
			if rec.Code != c.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %s", method, c.path, rec.Code, c.wantStatus, got)
			}
			if c.wantBody != "" && got != c.wantBody {
				t.Fatalf("body\n got %s\nwant %s", got, c.wantBody)
			}
			if c.contains != "" && !strings.Contains(got, c.contains) {
				t.Fatalf("body %s does not contain %q", got, c.contains)
			}
			if ct := rec.Header().Get("Content-Type"); rec.Code != 200 && !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("error response has Content-Type %q", ct)
			}
			if strings.Count(strings.TrimSpace(got), "\n") > 0 {
				t.Fatalf("response is more than one line: %q", got)
			}
		})
	}
}

func TestSeedPredict(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	runCases(t, s, []httpCase{
		{name: "one object", path: "/predict", body: `{"feature1": 0.5, "feature2": -1.2}`, wantStatus: 200, wantBody: `{"prediction":[1]}`},
		{name: "negative", path: "/predict", body: `{"feature1": -3, "feature2": 1e2}`, wantStatus: 200, wantBody: `{"prediction":[0]}`},
		{name: "key order does not matter", path: "/predict", body: `{"feature2": 5, "feature1": 1}`, wantStatus: 200, wantBody: `{"prediction":[0]}`},
		{name: "batch", path: "/predict", body: `[{"feature1":1,"feature2":0},{"feature1":0,"feature2":1},{"feature1":2,"feature2":1}]`, wantStatus: 200, wantBody: `{"prediction":[1,0,1]}`},
		{name: "duplicate key, last wins as in Python", path: "/predict", body: `{"feature1": -5, "feature2": 0, "feature1": 5}`, wantStatus: 200, wantBody: `{"prediction":[1]}`},
		{name: "missing feature", path: "/predict", body: `{"feature1": 1}`, wantStatus: 422, contains: "missing features: feature2"},
		{name: "unknown feature", path: "/predict", body: `{"feature1": 1, "feature2": 2, "amount": 3}`, wantStatus: 422, contains: "unknown features: amount"},
		{name: "string value", path: "/predict", body: `{"feature1": "1", "feature2": 2}`, wantStatus: 422, contains: `feature \"feature1\": expected a number, got string`},
		{name: "null value reads as a missing value (NaN)", path: "/predict", body: `{"feature1": null, "feature2": 2}`, wantStatus: 200, wantBody: `{"prediction":[0]}`},
		{name: "malformed JSON", path: "/predict", body: `{"feature1": 1,`, wantStatus: 400, contains: "invalid JSON"},
		{name: "trailing garbage", path: "/predict", body: `{"feature1": 1, "feature2": 2} x`, wantStatus: 400, contains: "after the JSON value"},
		{name: "empty body", path: "/predict", body: ``, wantStatus: 400, contains: "empty request body"},
		{name: "not an object", path: "/predict", body: `42`, wantStatus: 422, contains: "expected an object"},
		{name: "empty list", path: "/predict", body: `[]`, wantStatus: 422, contains: "empty list"},
		{name: "bad row in batch", path: "/predict", body: `[{"feature1":1,"feature2":0},{"feature1":0}]`, wantStatus: 422, contains: "row 1: missing features: feature2"},
		{name: "wrong method", method: "GET", path: "/predict", wantStatus: 405},
	})
}

func TestSeedPredictNeedsDefaultModelWhenSeveral(t *testing.T) {
	models := map[string]formatstest.Spec{"a": fraud, "b": fraud}
	s := newTestServer(t, Options{}, models)
	runCases(t, s, []httpCase{{name: "ambiguous", path: "/predict", body: `{"feature1":1,"feature2":0}`, wantStatus: 404, contains: "--default-model"}})
	s = newTestServer(t, Options{DefaultModel: "b"}, models)
	runCases(t, s, []httpCase{{name: "default", path: "/predict", body: `{"feature1":1,"feature2":0}`, wantStatus: 200, wantBody: `{"prediction":[1]}`}})
}

func TestOIP(t *testing.T) {
	s := newTestServer(t, Options{Version: "1.2.3"}, map[string]formatstest.Spec{"fraud": fraud})
	infer := `{"id":"req-7","inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[[1,0],[0,1]]}]}`
	runCases(t, s, []httpCase{
		{name: "server metadata", method: "GET", path: "/v2", wantStatus: 200, wantBody: `{"name":"tide","version":"1.2.3","extensions":["model_repository","binary_tensor_data"]}`},
		{name: "live", method: "GET", path: "/v2/health/live", wantStatus: 200, wantBody: `{"live":true}`},
		{name: "ready", method: "GET", path: "/v2/health/ready", wantStatus: 200, wantBody: `{"ready":true}`},
		{name: "model metadata", method: "GET", path: "/v2/models/fraud", wantStatus: 200,
			wantBody: `{"name":"fraud","versions":["1"],"platform":"testlinear","inputs":[{"name":"input","datatype":"FP64","shape":[-1,2]}],"outputs":[{"name":"predict","datatype":"INT64","shape":[-1]},{"name":"predict_proba","datatype":"FP64","shape":[-1,2]}],"parameters":{"features":["feature1","feature2"]}}`},
		{name: "version metadata", method: "GET", path: "/v2/models/fraud/versions/1", wantStatus: 200, contains: `"name":"fraud"`},
		{name: "unknown version", method: "GET", path: "/v2/models/fraud/versions/9", wantStatus: 404, contains: `version \"9\"`},
		{name: "model ready", method: "GET", path: "/v2/models/fraud/ready", wantStatus: 200, wantBody: `{"name":"fraud","ready":true}`},
		{name: "unknown model ready", method: "GET", path: "/v2/models/nope/ready", wantStatus: 404, contains: "model not found"},
		{name: "infer", path: "/v2/models/fraud/infer", body: infer, wantStatus: 200,
			wantBody: `{"model_name":"fraud","model_version":"1","id":"req-7","outputs":[{"name":"predict","datatype":"INT64","shape":[2],"data":[1,0]},{"name":"predict_proba","datatype":"FP64","shape":[2,2],"data":[0,1,1,0]}]}`},
		{name: "infer by version, requested output", path: "/v2/models/fraud/versions/1/infer",
			body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[3,1]}],"outputs":[{"name":"predict"}]}`, wantStatus: 200,
			wantBody: `{"model_name":"fraud","model_version":"1","id":"t-1","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[1]}]}`},
		{name: "int input converts", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"INT32","data":[3,1]}]}`, wantStatus: 200, contains: `"data":[1]`},
		{name: "unknown output", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[3,1]}],"outputs":[{"name":"logits"}]}`, wantStatus: 422, contains: `no output \"logits\"`},
		{name: "unknown model", path: "/v2/models/nope/infer", body: infer, wantStatus: 404, contains: "model not found"},
		{name: "wrong input name", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[3,1]}]}`, wantStatus: 422, contains: `missing input \"input\"`},
		{name: "shape mismatch", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[3,1]}]}`, wantStatus: 422, contains: "needs 4 elements, data has 2"},
		{name: "wrong width", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP64","data":[3,1,2]}]}`, wantStatus: 422, contains: "want shape [-1, 2]"},
		{name: "bad datatype", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP128","data":[3,1]}]}`, wantStatus: 422, contains: "unknown datatype"},
		{name: "string in FP64 data", path: "/v2/models/fraud/infer", body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":["a",1]}]}`, wantStatus: 422, contains: "expected a number, got string"},
		{name: "no inputs", path: "/v2/models/fraud/infer", body: `{"inputs":[]}`, wantStatus: 422, contains: "no inputs"},
		{name: "malformed", path: "/v2/models/fraud/infer", body: `{"inputs":[{`, wantStatus: 400, contains: "invalid JSON"},
		{name: "repository index", path: "/v2/repository/index", wantStatus: 200, wantBody: `[{"name":"fraud","version":"1","state":"READY","reason":""}]`},
		{name: "unknown route", method: "GET", path: "/v3", wantStatus: 404, contains: "no route"},
	})
}

func TestKServeV1(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	runCases(t, s, []httpCase{
		{name: "predict lists", path: "/v1/models/fraud:predict", body: `{"instances":[[1,0],[0,1]]}`, wantStatus: 200, wantBody: `{"predictions":[1,0]}`},
		{name: "predict objects", path: "/v1/models/fraud:predict", body: `{"instances":[{"feature1":0,"feature2":1}]}`, wantStatus: 200, wantBody: `{"predictions":[0]}`},
		{name: "wrong width", path: "/v1/models/fraud:predict", body: `{"instances":[[1,0,3]]}`, wantStatus: 422, contains: "has 3 values, the model takes 2"},
		{name: "no instances", path: "/v1/models/fraud:predict", body: `{"inputs":[[1,0]]}`, wantStatus: 422, contains: `no \"instances\"`},
		{name: "empty instances", path: "/v1/models/fraud:predict", body: `{"instances":[]}`, wantStatus: 422, contains: "is empty"},
		{name: "unknown verb", path: "/v1/models/fraud:explain", body: `{}`, wantStatus: 404, contains: "no route"},
		{name: "unknown model", path: "/v1/models/nope:predict", body: `{"instances":[[1,0]]}`, wantStatus: 404, contains: "model not found"},
		{name: "status", method: "GET", path: "/v1/models/fraud", wantStatus: 200, wantBody: `{"name":"fraud","ready":true}`},
		{name: "list", method: "GET", path: "/v1/models", wantStatus: 200, wantBody: `{"models":["fraud"]}`},
	})
}

func TestBodyLimit(t *testing.T) {
	s := newTestServer(t, Options{MaxBodyBytes: 64}, map[string]formatstest.Spec{"fraud": fraud})
	big := `{"feature1": 1, "feature2": 2` + strings.Repeat(" ", 100) + `}`
	runCases(t, s, []httpCase{{name: "too large", path: "/predict", body: big, wantStatus: 413, contains: "larger than"}})
	// Without Content-Length the limit still holds (chunked upload).
	req := httptest.NewRequest("POST", "/predict", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 413 {
		t.Fatalf("chunked: status %d, want 413", rec.Code)
	}
	// The connection is closed after a refused body, so that the rest of it
	// is not read.
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Errorf("chunked: Connection %q, want close", got)
	}
	// A body of exactly the limit, read in small pieces, is accepted.
	exact := `{"feature1": 1, "feature2": 2` + strings.Repeat(" ", 64-len(`{"feature1": 1, "feature2": 2}`)) + `}`
	req = httptest.NewRequest("POST", "/predict", iotest.HalfReader(strings.NewReader(exact)))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 200 || len(exact) != 64 {
		t.Fatalf("a body of the limit (%d bytes): status %d %s", len(exact), rec.Code, rec.Body)
	}
	// A body that fails while read is a 400 that says so.
	req = httptest.NewRequest("POST", "/predict", iotest.ErrReader(errors.New("connection reset")))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "connection reset") {
		t.Fatalf("a failing body: status %d %s", rec.Code, rec.Body)
	}
}

// The tutorial's /predict, on the tutorial's LogisticRegression, allocates at
// most 10 objects per request in the handler (request and response writer reused, as net/http's server keeps its
// own): the feature table is pooled, the body read without wrappers, headers
// assigned from shared values.
func TestPredictAllocations(t *testing.T) {
	s := benchServer(t, "fraud_logreg.joblib") // the tutorial's model
	allocs := testing.AllocsPerRun(500, reusedRequest(t, s, "/predict", `{"feature1": 0.5, "feature2": -1.2}`))
	if allocs > 10 {
		t.Errorf("/predict allocates %.1f objects per request, want at most 10", allocs)
	}
}

func TestFailedModelDoesNotStopOthers(t *testing.T) {
	models := map[string]formatstest.Spec{"good": fraud, "bad": {FailLoad: "corrupt file"}}
	s := newTestServer(t, Options{}, models)
	runCases(t, s, []httpCase{
		{name: "good serves", path: "/v2/models/good/infer", body: `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP64","data":[1,0]}]}`, wantStatus: 200},
		{name: "bad is 503 with reason", path: "/v2/models/bad/infer", body: `{}`, wantStatus: 503, contains: "corrupt file"},
		{name: "server ready (lenient)", method: "GET", path: "/v2/health/ready", wantStatus: 200},
		{name: "index shows failure", path: "/v2/repository/index", wantStatus: 200, contains: `"state":"FAILED","reason":"load model.tlin: corrupt file"`},
	})
	strict := newTestServer(t, Options{StrictReadiness: true}, models)
	runCases(t, strict, []httpCase{{name: "strict: not ready", method: "GET", path: "/v2/health/ready", wantStatus: 503}})
}

func TestMetricsExposed(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	for i := 0; i < 3; i++ {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/predict", strings.NewReader(`{"feature1":1,"feature2":0}`)))
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/made-up/infer", strings.NewReader(`{}`)))
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`tide_requests_total{code="200",model="fraud",protocol="predict"} 3`,
		`tide_requests_total{code="404",model="",protocol="oip-rest"} 1`,
		`tide_request_duration_seconds_count{model="fraud",protocol="predict"} 3`,
		`tide_inflight_requests{model="fraud"} 0`,
		`tide_model_ready{model="fraud",version="1"} 1`,
		`tide_model_load_duration_seconds{model="fraud",version="1"}`,
		`tide_build_info{`,
		`go_goroutines`,
		`process_cpu_seconds_total`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestMalformedBodiesAre400: a body that is not JSON is 400 on every protocol, even
// when it starts like a literal; a well-formed body of the wrong shape stays 422.
func TestMalformedBodiesAre400(t *testing.T) {
	s := newTestServer(t, Options{}, map[string]formatstest.Spec{"fraud": fraud})
	var cases []httpCase
	for _, path := range []string{"/predict", "/v2/models/fraud/infer", "/v1/models/fraud:predict"} {
		for _, body := range []string{"tru", "feature1=0.5&feature2=1", "nul", "{\"feature1\": tru}"} {
			cases = append(cases, httpCase{name: path + " " + body, path: path, body: body, wantStatus: 400})
		}
		cases = append(cases, httpCase{name: path + " true", path: path, body: "true", wantStatus: 422})
	}
	runCases(t, s.Handler(), cases)
}
